"""What the UAS does while the caller waits for an answer (Trying and Ringing share it)."""

from __future__ import annotations

from typing import Any

from sippy.CCEvents import (
    CCEventConnect,
    CCEventDisconnect,
    CCEventFail,
    CCEventGeneric,
    CCEventPreConnect,
    CCEventRedirect,
    CCEventRing,
)
from sippy.UasStateAnswering import UasStateAnswering
from sippy.UaStateGeneric import NextState


class UasStateGeneric(UasStateAnswering):
    """Early UAS: call control answers the INVITE with Ring, (Pre)Connect, Fail, Redirect or
    Disconnect; the caller may CANCEL or (rarely) BYE."""

    __slots__ = ()

    sname = "Early(UAS)"

    def rang(self, event: CCEventGeneric, code: int) -> NextState:
        """After a provisional response went out: Trying moves to Ringing, Ringing stays."""
        raise NotImplementedError

    def recvEvent(self, event: CCEventGeneric) -> NextState:
        ua = self.ua
        eh = event.getExtraHeaders()
        if isinstance(event, CCEventRing):
            code, reason, body = event.scode, event.scode_reason, event.body
            if code == 100:
                return None
            if body is not None:
                ua.lSDP = body
            ua.sendUasResponse(code, reason, body, extra_headers=eh)
            ua.cancelProgressTimer()
            if ua.p1xx_ts is None:
                ua.p1xx_ts = event.rtime
            return self.rang(event, code)
        if isinstance(event, (CCEventConnect, CCEventPreConnect)):
            code, reason, body = event.scode, event.scode_reason, event.body
            ua.lSDP = body
            ua.cancelSetupTimers()
            if isinstance(event, CCEventPreConnect):
                # Late media: our 2xx carries the offer, the caller's ACK will carry the answer.
                ua.sendUasResponse(code, reason, body, (ua.localContact(),), extra_headers=eh, ack_wait=True)
                return UaStateConnected
            ua.sendUasResponse(code, reason, body, (ua.localContact(),), extra_headers=eh)
            ua.startCreditTimer(event.rtime)
            ua.connect_ts = event.rtime
            return (UaStateConnected, ua.conn_cbs, event.rtime, event.origin)
        if isinstance(event, CCEventRedirect):
            self.sendRedirect(event, eh)
            return self._failed(event, event.scode)
        if isinstance(event, CCEventFail):
            ua.sendUasResponse(event.scode, event.scode_reason, extra_headers=eh)
            return self._failed(event, event.scode)
        if isinstance(event, CCEventDisconnect):
            ua.sendUasResponse(500, "Disconnected", extra_headers=eh)
            ua.cancelSetupTimers()
            return self.disconnected(event.rtime, event.origin, ua.last_scode)
        return super().recvEvent(event)

    def _failed(self, event: CCEventGeneric, code: int) -> NextState:
        self.ua.cancelSetupTimers()
        self.ua.disconnect_ts = event.rtime
        return (UaStateFailed, self.ua.fail_cbs, event.rtime, event.origin, code)

    def byeReceived(self, req: Any) -> NextState:
        """Before the call is answered a BYE may still carry Also (a transfer target, RFC 2543)."""
        also = req.getHFBody("also").getCopy() if req.countHFs("also") > 0 else None
        self.ua.cancelSetupTimers()
        return self.remoteDisconnected(req.rtime, req, also)

    def cancel(self, rtime: Any, req: Any) -> NextState:
        """The caller gave up; the transaction layer answers 487 to the INVITE after this."""
        self.ua.cancelSetupTimers()
        return self.remoteDisconnected(rtime, req)


from sippy.UaStateConnected import UaStateConnected  # noqa: E402
from sippy.UaStateFailed import UaStateFailed  # noqa: E402
