"""Stateless digest nonces: a timestamp and algorithm mask signed with a per-process HMAC key.

The server needs no table of outstanding challenges: a nonce proves by its MAC that this process
issued it, and its timestamp tells a stale nonce (RFC 7616 `stale=true`) from a forged one.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import struct
import time
from collections.abc import Iterable
from typing import Callable, Optional

DGST_MD5 = 1 << 0
DGST_MD5SESS = 1 << 1
DGST_SHA256 = 1 << 2
DGST_SHA256SESS = 1 << 3
DGST_SHA512 = 1 << 4
DGST_SHA512SESS = 1 << 5

DGST_PRIOS = (DGST_SHA512, DGST_SHA512SESS, DGST_SHA256, DGST_SHA256SESS, DGST_MD5, DGST_MD5SESS)

NONCE_OK = 0
NONCE_STALE = 1
NONCE_BAD = 2

_PAYLOAD = struct.Struct(">QB4s")  # milliseconds, algorithm mask, random salt
_MAC_LEN = 16
_NONCE_LEN = _PAYLOAD.size + _MAC_LEN


class HashOracle:
    """Emits and checks nonces; `vtime` seconds is how long a nonce stays fresh (Sippy: 32)."""

    vtime: float = 32.0

    def __init__(
        self,
        key: Optional[bytes] = None,
        clock: Callable[[], float] = time.monotonic,
        vtime: Optional[float] = None,
    ) -> None:
        self.key = key if key is not None else os.urandom(32)
        self.clock = clock
        if vtime is not None:
            self.vtime = vtime

    def _mac(self, payload: bytes) -> bytes:
        return hmac.new(self.key, payload, hashlib.sha256).digest()[:_MAC_LEN]

    def emit_challenge(self, cmask: Iterable[int] = DGST_PRIOS) -> str:
        """A fresh nonce valid for the algorithms whose DGST_* bits are in cmask."""
        mask = 0
        for m in cmask:
            mask |= m
        payload = _PAYLOAD.pack(int(self.clock() * 1000), mask, os.urandom(4))
        return base64.urlsafe_b64encode(payload + self._mac(payload)).decode().rstrip("=")

    def check_challenge(self, nonce: str, cmask: Iterable[int] = ()) -> int:
        """NONCE_OK, NONCE_STALE (ours but too old: answer stale=true) or NONCE_BAD."""
        try:
            raw = base64.urlsafe_b64decode(nonce + "=" * (-len(nonce) % 4))
        except (binascii.Error, ValueError):
            return NONCE_BAD
        if len(raw) != _NONCE_LEN:
            return NONCE_BAD
        payload, mac = raw[: _PAYLOAD.size], raw[_PAYLOAD.size :]
        if not hmac.compare_digest(mac, self._mac(payload)):
            return NONCE_BAD
        ts_ms, mask, _ = _PAYLOAD.unpack(payload)
        for m in cmask:
            if not mask & m:
                return NONCE_BAD
        age = self.clock() - ts_ms / 1000.0
        if age < 0 or age > self.vtime:
            return NONCE_STALE
        return NONCE_OK

    def validate_challenge(self, nonce: str, cmask: Iterable[int] = ()) -> bool:
        return self.check_challenge(nonce, cmask) == NONCE_OK


# One key per process, shared by every challenge and every verification in it.
default_oracle = HashOracle()
