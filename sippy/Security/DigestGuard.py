"""Digest credentials checked before they cost a RADIUS request.

The nonces the B2BUA issues are stateless (``SipNonce.HashOracle``: a timestamp signed with a
per-process key), so by themselves they stop forged and stale nonces but not a replay within a
nonce's 32 s of life. The guard also remembers, per nonce, the highest nonce-count accepted until
the nonce goes stale: without qop a nonce answers one INVITE; with qop each INVITE must count up
(RFC 7616 3.4). A reused nonce is answered like a stale one (a new challenge with
``stale=true``), which an honest client answers at once and a replayer cannot.

The ledger is bounded (``MAX_NONCES``): when full the entry closest to going stale is forgotten
first.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

from sippy.Exceptions.SipParseError import SipParseError
from sippy.Security.SipNonce import NONCE_BAD, NONCE_OK, NONCE_STALE, HashOracle, default_oracle

__all__ = ("DigestGuard", "MAX_NONCES")

# Nonces remembered at once: 2,000 authenticated INVITEs a second for a nonce's lifetime.
MAX_NONCES = 65536


class DigestGuard:
    """``check(authorization)`` -> NONCE_OK (send it to RADIUS), NONCE_STALE (challenge again
    with stale=true) or NONCE_BAD (not our nonce, or garbled: challenge again)."""

    def __init__(self, oracle: HashOracle = default_oracle, max_nonces: int = MAX_NONCES) -> None:
        self.oracle = oracle
        self.max_nonces = max_nonces
        # nonce -> (when it may be forgotten, highest nonce-count accepted); oldest first
        self.used: OrderedDict[str, tuple[float, int]] = OrderedDict()
        self.evicted = 0

    def check(self, auth: Any) -> int:
        try:
            state = auth.nonceState(self.oracle)
            nc = int(auth.nc, 16) if auth.nc is not None else 1
        except (SipParseError, ValueError):
            return NONCE_BAD
        if state != NONCE_OK:
            return state
        return NONCE_OK if self._count_up(auth.nonce, nc) else NONCE_STALE

    def _count_up(self, nonce: str, nc: int) -> bool:
        now = self.oracle.clock()
        used = self.used
        while used:
            oldest = next(iter(used.values()))
            if oldest[0] > now:
                break
            used.popitem(last=False)
        seen = used.get(nonce)
        if seen is not None:
            if nc <= seen[1]:
                return False
            used[nonce] = (seen[0], nc)
            return True
        if len(used) >= self.max_nonces:
            used.popitem(last=False)
            self.evicted += 1
        # Kept at least as long as the nonce can be fresh (it was issued before now).
        used[nonce] = (now + self.oracle.vtime, nc)
        return True
