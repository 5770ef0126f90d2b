"""Base of the end states that wait a while before Dead (Failed, Disconnected, Cancelling(UAC))."""

from __future__ import annotations

from typing import Any

from sippy.Transactions.timers import shared_lanes
from sippy.UaStateGeneric import UaStateGeneric


class UaStateLingering(UaStateGeneric):
    """The call is over for call control, but the UA stays a while so that retransmissions and
    late in-dialog requests still find it; then it goes Dead on its own."""

    __slots__ = ("te",)

    def __init__(self, ua: Any, linger: float) -> None:
        super().__init__(ua)
        # Call control no longer wants SDP news from this leg.
        ua.on_local_sdp_change = None
        ua.on_remote_sdp_change = None
        # Nothing is answered, retried or renegotiated any more: the INVITE served, the INVITEs
        # sent (kept for digest retries) and their transactions, and both SDPs would only weigh
        # on memory for the whole lingering time.
        ua.uasReq = ua.uas_t = ua.tr = ua.last_ack = None
        ua.lSDP = ua.rSDP = None
        ua.reqs = None
        # Two per call for its last 32 s: a lane timer, not a Timeout and a reactor call.
        self.te: Any = shared_lanes(ua.reactor).callLater(linger, type(self).goDead, self)

    def goDead(self) -> None:
        self.te = None
        self.ua.changeState(UaStateDead)

    def onStateChange(self, newstate: type) -> None:
        if self.te is not None:
            self.te.cancel()
            self.te = None


from sippy.UaStateDead import UaStateDead  # noqa: E402
