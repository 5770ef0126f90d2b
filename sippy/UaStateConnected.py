"""An established dialog: re-INVITEs either way, INFO, BYE either way, keepalives, late-media ACK."""

from __future__ import annotations

from typing import Any

from sippy.CCEvents import (
    CCEventConnect,
    CCEventDisconnect,
    CCEventFail,
    CCEventGeneric,
    CCEventInfo,
    CCEventRedirect,
    CCEventUpdate,
)
from sippy.SipHeader import SipHeader
from sippy.Time.Timeout import Timeout
from sippy.UaStateGeneric import NextState, UaStateGeneric, copy_reason

# The requests a confirmed dialog answers (the 501 to any other lists them).
IN_DIALOG_METHODS = "INVITE, ACK, BYE, CANCEL, INFO, OPTIONS, REFER"


class UaStateConnected(UaStateGeneric):
    __slots__ = ("ka_tr", "ka_triedauth", "ka_timer")

    sname = "Connected"
    connected = True

    def __init__(self, ua: Any) -> None:
        super().__init__(ua)
        # In-dialog requests are matched by tags from now on, not by the INVITE's branch.
        ua.branch = None
        # The INVITE that made (or changed) the dialog is answered: its request and transactions
        # would only weigh on memory for the whole call (a re-INVITE sets them afresh); its
        # server transaction resends the answer and its client transaction the ACK from bytes.
        ua.uasReq = ua.uas_t = ua.tr = None
        self.ka_tr: Any = None
        self.ka_triedauth = False
        self.ka_timer: Any = None
        if ua.kaInterval > 0:
            self.ka_timer = Timeout(self.keepAlive, ua.kaInterval, reactor=ua.reactor)

    # ----- requests from the remote side -----

    def recvRequest(self, req: Any, sip_t: Any) -> NextState:
        ua = self.ua
        method = req.getMethod()
        if method == "INVITE":
            return self._reinvite(req, sip_t)
        if method == "BYE":
            ua.sendResponse(req.genResponse(200, "OK", server=ua.local_ua), sip_t)
            also = req.getHFBody("also").getCopy() if req.countHFs("also") > 0 else None
            return self.remoteDisconnected(req.rtime, req, also)
        if method == "INFO":
            ua.sendResponse(req.genResponse(200, "OK", server=ua.local_ua), sip_t)
            event = CCEventInfo(req.getBody(), rtime=req.rtime, origin=ua.origin)
            copy_reason(req, event)
            ua.equeue.append(event)
            return None
        if method == "OPTIONS":
            ua.sendResponse(req.genResponse(200, "OK", server=ua.local_ua), sip_t)
            return None
        if method == "REFER" and req.countHFs("refer-to") > 0:
            # Blind transfer: accept, hang up here and let call control dial the target.
            ua.sendResponse(req.genResponse(202, "Accepted", server=ua.local_ua), sip_t)
            also = req.getHFBody("refer-to").getCopy()
            ua.equeue.append(CCEventDisconnect(also, rtime=req.rtime, origin=ua.origin))
            ua.sendBYE()
            return self.disconnected(req.rtime, ua.origin)
        ua.logWrong("request", method, self)
        # RFC 3261 8.2.1: say what a dialog of ours does take.
        resp = req.genResponse(501, "Not Implemented", server=ua.local_ua)
        resp.appendHeader(SipHeader(name="allow", body=IN_DIALOG_METHODS))
        ua.sendResponse(resp, sip_t)
        return None

    def _reinvite(self, req: Any, sip_t: Any) -> NextState:
        ua = self.ua
        ua.uas_t = sip_t
        ua.uasReq = req
        body = req.getBody()
        if body is not None and ua.rSDP is not None and str(body) == str(ua.rSDP):
            # A session refresh: nothing changed, answer with what we have.
            ua.sendUasResponse(200, "OK", ua.lSDP, (ua.localContact(),))
            return None
        event = CCEventUpdate(body, rtime=req.rtime, origin=ua.origin)
        copy_reason(req, event)
        if req.countHFs("max-forwards") > 0:
            event.max_forwards = req.getHFBody("max-forwards").getNum()
        previous_sdp = ua.rSDP
        ua.queueRemote(event, body)
        return (UasStateUpdating, (_remember_sdp,), previous_sdp)

    def recvACK(self, req: Any) -> NextState:
        """ACK of our 2xx; with late media it carries the caller's SDP answer: the call is up."""
        ua = self.ua
        if not ua.uas_ack_wait:
            return None
        ua.uas_ack_wait = False
        body = req.getBody()
        event = CCEventConnect((200, "OK", body), rtime=req.rtime, origin=ua.origin)
        ua.startCreditTimer(req.rtime)
        ua.connect_ts = req.rtime
        for cb in ua.conn_cbs:
            cb(ua, req.rtime, ua.origin)
        ua.queueRemote(event, body)
        return None

    def recvResponse(self, resp: Any, tr: Any) -> NextState:
        ua = self.ua
        code = resp.getSCodeNum()
        cseq, method = resp.getHFBody("cseq").getCSeq()
        if 200 <= code < 300 and method == "INVITE" and ua.last_ack == cseq:
            # The 2xx was retransmitted: our ACK got lost, send it again.
            ua.sendACK(tr, resp)
            return None
        return super().recvResponse(resp, tr)

    # ----- events from call control -----

    def recvEvent(self, event: CCEventGeneric) -> NextState:
        ua = self.ua
        eh = event.getExtraHeaders()
        if isinstance(event, (CCEventDisconnect, CCEventFail, CCEventRedirect)):
            ua.sendBYE(extra_headers=eh)
            return self.disconnected(event.rtime, event.origin)
        if isinstance(event, CCEventUpdate):
            return self._update(event, eh)
        if isinstance(event, CCEventInfo):
            req = ua.genRequest("INFO", event.body, extra_headers=eh)
            ua.sendRequest(req)
            return None
        if isinstance(event, CCEventConnect) and ua.pending_tr is not None:
            # Late media: the SDP answer for the callee's 2xx offer has arrived; ACK with it.
            tr, resp = ua.pending_tr
            ua.pending_tr = None
            ua.lSDP = event.body
            ua.sendACK(tr, resp, event.body)
            ua.startCreditTimer(event.rtime)
            ua.connect_ts = event.rtime
            for cb in ua.conn_cbs:
                cb(ua, event.rtime, ua.origin)
            return None
        return super().recvEvent(event)

    def _update(self, event: CCEventUpdate, eh: Any) -> NextState:
        ua = self.ua
        body = event.body
        if body is not None and ua.lSDP is not None and str(body) == str(ua.lSDP):
            # Nothing to renegotiate on this leg: answer call control at once.
            rsdp = ua.rSDP.getCopy() if ua.rSDP is not None else None
            ua.equeue.append(CCEventConnect((200, "OK", rsdp), rtime=event.rtime, origin=event.origin))
            return None
        max_forwards = None
        if event.max_forwards is not None:
            if event.max_forwards <= 0:
                ua.equeue.append(CCEventFail((483, "Too Many Hops"), rtime=event.rtime, origin=event.origin))
                return None
            max_forwards = event.max_forwards - 1
        previous_sdp = ua.lSDP
        ua.sendInvite(body, extra_headers=eh, max_forwards=max_forwards)
        return (UacStateUpdating, (_remember_sdp,), previous_sdp)

    # ----- keepalive -----

    def keepAlive(self) -> None:
        """Re-INVITE with the same SDP: proves the callee still knows the dialog (Sippy's -k)."""
        self.ka_timer = None
        ua = self.ua
        if ua.state is not self:
            return
        self.ka_triedauth = False
        self._sendKeepAlive(None)

    def _sendKeepAlive(self, challenge: Any) -> None:
        ua = self.ua
        req = ua.genRequest("INVITE", ua.lSDP, challenge)
        ua.forgetRequest(req.getHFBody("cseq").getCSeqNum())
        self.ka_tr = ua.sendRequest(req, self.keepAliveResp)

    def keepAliveResp(self, resp: Any, tr: Any) -> None:
        ua = self.ua
        code = resp.getSCodeNum()
        if ua.state is not self or tr is not self.ka_tr:
            if 200 <= code < 300:
                # A retransmitted 2xx of an earlier keepalive: ACK again, nothing else.
                ua.sendACK(tr, resp)
            return
        if code < 200:
            return
        ch_name = {401: "www-authenticate", 407: "proxy-authenticate"}.get(code)
        if (
            ch_name is not None
            and resp.countHFs(ch_name) > 0
            and ua.username is not None
            and ua.password is not None
            and not self.ka_triedauth
        ):
            self.ka_triedauth = True
            self._sendKeepAlive(resp.getHFBody(ch_name))
            return
        self.ka_tr = None
        if 200 <= code < 300:
            ua.sendACK(tr, resp)
        if code in (408, 481):
            # RFC 3261 12.2.1.2: the dialog is gone on the other side (or the peer is).
            ua.logWrong("keepalive response", code, self)
            ua.disconnect()
            return
        self.ka_timer = Timeout(self.keepAlive, ua.kaInterval, reactor=ua.reactor)

    def onStateChange(self, newstate: type) -> None:
        ua = self.ua
        if self.ka_timer is not None:
            self.ka_timer.cancel()
            self.ka_timer = None
        if self.ka_tr is not None:
            ua.tm.cancelTransaction(self.ka_tr)
            self.ka_tr = None
        if ua.pending_tr is not None and newstate is not UacStateUpdating:
            # Leaving with a 2xx still un-ACKed (late media): ACK it so the callee stops resending.
            tr, resp = ua.pending_tr
            ua.pending_tr = None
            ua.sendACK(tr, resp)


def _remember_sdp(ua: Any, previous_sdp: Any) -> None:
    """Keep the SDP in force before an update, to go back to it if the update is rejected."""
    ua.state.previous_sdp = previous_sdp


from sippy.UacStateUpdating import UacStateUpdating  # noqa: E402
from sippy.UasStateUpdating import UasStateUpdating  # noqa: E402
