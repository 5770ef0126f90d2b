"""UAC before anything happened: CCEventTry sets the dialog up and sends the INVITE."""

from __future__ import annotations

from typing import Any

from sippy.CCEvents import CCEventDisconnect, CCEventFail, CCEventGeneric, CCEventRedirect, CCEventTry
from sippy.SipAddress import SipAddress
from sippy.SipCallId import SipCallId
from sippy.SipHeader import SipHeader
from sippy.SipTo import SipTo
from sippy.SipURL import SipURL
from sippy.UaStateGeneric import NextState, UaStateGeneric


class UacStateIdle(UaStateGeneric):
    __slots__ = ()

    sname = "Idle(UAC)"

    def recvEvent(self, event: CCEventGeneric) -> NextState:
        ua = self.ua
        if isinstance(event, CCEventTry):
            return self._try(event)
        if isinstance(event, (CCEventFail, CCEventRedirect, CCEventDisconnect)):
            return (UaStateDead, ua.disc_cbs, event.rtime, event.origin)
        return super().recvEvent(event)

    def _try(self, event: CCEventTry) -> NextState:
        ua = self.ua
        if ua.setup_ts is None:
            ua.setup_ts = event.rtime
        ua.origin = "callee"
        call_id: Any = event.call_id
        body = event.body
        ua.late_media = body is None
        ua.cId = call_id.getCopy() if call_id is not None else SipCallId()
        ua.regConsumer()
        host, port = ua.rAddr0
        ua.rTarget = SipURL(username=event.cld, host=host, port=port, transport=ua.ruri_transport)
        ua.rUri = SipTo.kept(SipAddress(url=SipURL(username=event.cld, host=host), hadbrace=True))
        ua.useDefaultFrom(event.cli, event.caller_name)
        ua.lCSeq = 200
        if ua.lContact is None:
            ua.useDefaultContact(event.cli)
        else:
            ua.lContact.getUrl().username = event.cli
        ua.routes = []
        event.onUacSetupComplete(ua)
        eh = list(event.getExtraHeaders() or ())
        if event.auth is not None and ua.pass_auth:
            eh.append(SipHeader(body=event.auth))
        ua.sendInvite(body, extra_headers=eh or None, max_forwards=event.max_forwards)
        ua.startSetupTimers(event.rtime)
        return UacStateTrying


from sippy.UacStateTrying import UacStateTrying  # noqa: E402
from sippy.UaStateDead import UaStateDead  # noqa: E402
