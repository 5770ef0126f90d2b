"""The remote side sent a re-INVITE; call control has yet to give us the answer for it."""

from __future__ import annotations

from typing import Any

from sippy.CCEvents import (
    CCEventConnect,
    CCEventDisconnect,
    CCEventFail,
    CCEventGeneric,
    CCEventRedirect,
    CCEventRing,
)
from sippy.UasStateAnswering import UasStateAnswering
from sippy.UaStateGeneric import NextState


class UasStateUpdating(UasStateAnswering):
    __slots__ = ("previous_sdp",)

    sname = "Updating(UAS)"
    connected = True

    def __init__(self, ua: Any) -> None:
        super().__init__(ua)
        # The SDP in force before this re-INVITE, restored if it fails (Connected fills it in).
        self.previous_sdp: Any = None

    def recvEvent(self, event: CCEventGeneric) -> NextState:
        ua = self.ua
        eh = event.getExtraHeaders()
        if isinstance(event, CCEventRing):
            if event.scode != 100:
                ua.sendUasResponse(event.scode, event.scode_reason, event.body, extra_headers=eh)
            return None
        if isinstance(event, CCEventConnect):
            ua.lSDP = event.body
            ua.sendUasResponse(
                event.scode, event.scode_reason, event.body, (ua.localContact(),), extra_headers=eh
            )
            return UaStateConnected
        if isinstance(event, CCEventRedirect):
            self.sendRedirect(event, eh)
            ua.rSDP = self.previous_sdp
            return UaStateConnected
        if isinstance(event, CCEventFail):
            # The other leg refused the change: refuse it here too; the old session stays.
            ua.sendUasResponse(event.scode, event.scode_reason, extra_headers=eh)
            ua.rSDP = self.previous_sdp
            return UaStateConnected
        if isinstance(event, CCEventDisconnect):
            ua.sendUasResponse(487, "Request Terminated", extra_headers=eh)
            ua.sendBYE(extra_headers=eh)
            return self.disconnected(event.rtime, event.origin)
        return super().recvEvent(event)

    def cancel(self, rtime: Any, req: Any) -> NextState:
        """CANCEL of a re-INVITE: Sippy ends the whole call (the transaction layer sends the 487)."""
        self.ua.sendBYE()
        return self.remoteDisconnected(rtime, req)


from sippy.UaStateConnected import UaStateConnected  # noqa: E402
