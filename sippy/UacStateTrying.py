"""UAC that has sent its INVITE and has had no provisional response but 100 Trying."""

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
from sippy.UaStateGeneric import NextState, UaStateGeneric, contact_url, copy_reason


class UacStateTrying(UaStateGeneric):
    __slots__ = ()

    sname = "Trying(UAC)"

    def provisional(self, resp: Any, event: CCEventRing, code: int) -> NextState:
        """A 101-199 arrived; Ringing overrides this to stay where it is."""
        return (_ringing_mod.UacStateRinging, self.ua.ring_cbs, resp.rtime, self.ua.origin, code)

    def recvResponse(self, resp: Any, tr: Any) -> NextState:
        ua = self.ua
        body = resp.getBody()
        code, reason = resp.getSCode()
        ua.last_scode = code
        if code == 100:
            if ua.p100_ts is None:
                ua.p100_ts = resp.rtime
            ua.equeue.append(CCEventRing((code, reason, body), rtime=resp.rtime, origin=ua.origin))
            return None
        if code < 200:
            ua.cancelProgressTimer()
            if ua.p1xx_ts is None:
                ua.p1xx_ts = resp.rtime
            event = CCEventRing((code, reason, body), rtime=resp.rtime, origin=ua.origin)
            ua.queueRemote(event, body)
            return self.provisional(resp, event, code)
        ua.cancelSetupTimers()
        if code < 300:
            return self.answered(resp, tr, code, reason, body)
        if code in (301, 302) and resp.countHFs("contact") > 0:
            contacts = (resp.getHFBody("contact").address.getCopy(),)
            event = CCEventRedirect((code, reason, body, contacts), rtime=resp.rtime, origin=ua.origin)
        elif code == 300 and resp.countHFs("contact") > 0:
            contacts = tuple(x.address.getCopy() for x in resp.getHFBodys("contact"))
            event = CCEventRedirect((code, reason, body, contacts), rtime=resp.rtime, origin=ua.origin)
        else:
            event = CCEventFail((code, reason, body), rtime=resp.rtime, origin=ua.origin)
            if ua.pass_auth:
                ch_name = {401: "www-authenticate", 407: "proxy-authenticate"}.get(code)
                if ch_name is not None and resp.countHFs(ch_name) > 0:
                    event.challenges = [x.getCopy() for x in resp.getHFs(ch_name)]
        copy_reason(resp, event)
        ua.equeue.append(event)
        ua.disconnect_ts = resp.rtime
        return (UaStateFailed, ua.fail_cbs, resp.rtime, ua.origin, code)

    def answered(self, resp: Any, tr: Any, code: int, reason: str, body: Any) -> NextState:
        """2xx: the dialog is confirmed (RFC 3261 13.2.2.4); ACK now, or once call control gives
        us the SDP answer when our INVITE had no offer and the 2xx has one (late media)."""
        ua = self.ua
        tag = resp.getHFBody("to").getTag()
        ua.setRouting(list(reversed(resp.getHFBodys("record-route"))), contact_url(resp))
        if tag is None:
            # Cannot be in a dialog without the remote tag: end it, and fail the call.
            ua.logWrong("tag-less 2xx", code, self)
            ua.sendACK(tr, resp)
            ua.sendBYE()
            ua.equeue.append(CCEventFail((502, "Bad Gateway"), rtime=resp.rtime, origin=ua.origin))
            ua.disconnect_ts = resp.rtime
            return (UaStateFailed, ua.fail_cbs, resp.rtime, ua.origin, 502)
        ua.rUri.setTag(tag)
        if ua.late_media and body is not None:
            ua.pending_tr = (tr, resp)
            ua.queueRemote(CCEventPreConnect((code, reason, body), rtime=resp.rtime, origin=ua.origin), body)
            return UaStateConnected
        ua.late_media = False
        ua.sendACK(tr, resp)
        ua.startCreditTimer(resp.rtime)
        ua.connect_ts = resp.rtime
        ua.queueRemote(CCEventConnect((code, reason, body), rtime=resp.rtime, origin=ua.origin), body)
        return (UaStateConnected, ua.conn_cbs, resp.rtime, ua.origin)

    def recvEvent(self, event: CCEventGeneric) -> NextState:
        ua = self.ua
        if isinstance(event, (CCEventFail, CCEventRedirect, CCEventDisconnect)):
            ua.tm.cancelTransaction(ua.tr, extra_headers=event.getExtraHeaders())
            ua.cancelSetupTimers()
            ua.disconnect_ts = event.rtime
            return (UacStateCancelling, ua.disc_cbs, event.rtime, event.origin, ua.last_scode)
        return super().recvEvent(event)


# A module reference: UacStateRinging subclasses this class, so its module may still be loading.
import sippy.UacStateRinging as _ringing_mod  # noqa: E402
from sippy.UacStateCancelling import UacStateCancelling  # noqa: E402
from sippy.UaStateConnected import UaStateConnected  # noqa: E402
from sippy.UaStateFailed import UaStateFailed  # noqa: E402
