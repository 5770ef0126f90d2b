"""We sent a re-INVITE within the dialog and wait for its final response."""

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
from sippy.UaStateGeneric import NextState, UaStateGeneric, copy_reason


class UacStateUpdating(UaStateGeneric):
    __slots__ = ("previous_sdp",)

    sname = "Updating(UAC)"
    connected = True

    def __init__(self, ua: Any) -> None:
        super().__init__(ua)
        # The SDP in force before this re-INVITE, restored if it fails (Connected fills it in).
        self.previous_sdp: Any = None

    def recvRequest(self, req: Any, sip_t: Any) -> NextState:
        ua = self.ua
        method = req.getMethod()
        if method == "INVITE":
            # RFC 3261 14.2: glare, both sides re-INVITE at once.
            ua.sendResponse(req.genResponse(491, "Request Pending", server=ua.local_ua), sip_t)
            return None
        if method == "BYE":
            ua.tm.cancelTransaction(ua.tr)
            ua.sendResponse(req.genResponse(200, "OK", server=ua.local_ua), sip_t)
            return self.remoteDisconnected(req.rtime, req)
        return super().recvRequest(req, sip_t)

    def recvResponse(self, resp: Any, tr: Any) -> NextState:
        ua = self.ua
        body = resp.getBody()
        code, reason = resp.getSCode()
        if code < 200:
            if code != 100:
                ua.equeue.append(CCEventRing((code, reason, body), rtime=resp.rtime, origin=ua.origin))
            return None
        if code < 300:
            ua.sendACK(tr, resp)
            ua.queueRemote(CCEventConnect((code, reason, body), rtime=resp.rtime, origin=ua.origin), body)
            return UaStateConnected
        if code in (301, 302, 300) and resp.countHFs("contact") > 0:
            contacts = tuple(x.address.getCopy() for x in resp.getHFBodys("contact"))
            event: CCEventGeneric = CCEventRedirect(
                (code, reason, body, contacts), rtime=resp.rtime, origin=ua.origin
            )
        else:
            event = CCEventFail((code, reason, body), rtime=resp.rtime, origin=ua.origin)
        copy_reason(resp, event)
        ua.equeue.append(event)
        ua.lSDP = self.previous_sdp
        if code in (408, 481):
            # RFC 3261 12.2.1.2: the dialog is gone on the far side; end it here too.
            ua.sendBYE()
            return self.remoteDisconnected(resp.rtime)
        return UaStateConnected

    def recvEvent(self, event: CCEventGeneric) -> NextState:
        ua = self.ua
        if isinstance(event, (CCEventDisconnect, CCEventFail, CCEventRedirect)):
            ua.tm.cancelTransaction(ua.tr)
            ua.sendBYE(extra_headers=event.getExtraHeaders())
            return self.disconnected(event.rtime, event.origin)
        return super().recvEvent(event)


from sippy.UaStateConnected import UaStateConnected  # noqa: E402
