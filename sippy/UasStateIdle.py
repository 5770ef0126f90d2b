"""UAS before anything happened: the first INVITE creates the dialog and a CCEventTry."""

from __future__ import annotations

from typing import Any

from sippy.CCEvents import CCEventTry
from sippy.SipFrom import SipFrom
from sippy.SipTo import SipTo
from sippy.UaStateGeneric import NextState, UaStateGeneric, copy_reason


class UasStateIdle(UaStateGeneric):
    __slots__ = ()

    sname = "Idle(UAS)"

    def recvRequest(self, req: Any, sip_t: Any) -> NextState:
        ua = self.ua
        if req.getMethod() != "INVITE":
            return super().recvRequest(req, sip_t)
        if req.countHFs("contact") == 0:
            # RFC 3261 8.1.1.8: without a Contact there is no remote target for the dialog.
            ua.sendResponse(req.genResponse(400, "Bad Request (Contact Missing)", server=ua.local_ua), sip_t)
            return UaStateDead
        ua.origin = "caller"
        ua.uas_t = sip_t
        ua.uasReq = req
        # Any value will do; 100 makes a mix-up with the caller's CSeq easy to spot in traces.
        ua.lCSeq = 100
        if ua.lContact is None:
            ua.useDefaultContact()
        ua.setRouting(req.getHFBodys("record-route"), req.getHFBody("contact").getUrl())
        ua.rAddr0 = ua.rAddr
        ua.noteConnection(req, sip_t)
        ua.lUri = SipFrom.kept(req.getHFBody("to").address)
        ua.lUri.setTag(ua.lTag)
        caller = req.getHFBody("from").address
        ua.rUri = SipTo.kept(caller)
        ua.cId = req.getHFBody("call-id").getCopy()
        ua.branch = req.getHFBody("via").getBranch()
        ua.regConsumer()
        auth = req.getHFBody("authorization").getCopy() if req.countHFs("authorization") > 0 else None
        body = req.getBody()
        event = CCEventTry(
            (ua.cId, caller.url.username, req.getRURI().username, body, auth, caller.name),
            rtime=req.rtime,
            origin=ua.origin,
        )
        copy_reason(req, event)
        if req.countHFs("max-forwards") > 0:
            event.max_forwards = req.getHFBody("max-forwards").getNum()
        ua.setup_ts = req.rtime
        ua.startSetupTimers(req.rtime)
        ua.queueRemote(event, body)
        return UasStateTrying


from sippy.UasStateTrying import UasStateTrying  # noqa: E402
from sippy.UaStateDead import UaStateDead  # noqa: E402
