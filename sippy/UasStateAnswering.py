"""Base of the UAS states that owe the remote side a final answer to its INVITE or re-INVITE."""

from __future__ import annotations

import random
from typing import Any, Optional

from sippy.CCEvents import CCEventRedirect
from sippy.SipContact import SipContact
from sippy.SipHeader import SipHeader
from sippy.UaStateGeneric import NextState, UaStateGeneric


class UasStateAnswering(UaStateGeneric):
    """While an INVITE server transaction is open, a second INVITE is refused and a BYE also
    ends the open INVITE (487) before it ends the dialog."""

    __slots__ = ()

    def recvRequest(self, req: Any, sip_t: Any) -> NextState:
        ua = self.ua
        method = req.getMethod()
        if method == "INVITE":
            # RFC 3261 14.2: an INVITE while the previous one from that side is unanswered gets
            # 500 with a random Retry-After.
            resp = req.genResponse(500, "Server Internal Error", server=ua.local_ua)
            retry = SipHeader(name="retry-after", body=str(random.randint(0, 10)))
            ua.sendResponse(resp, sip_t, extra_headers=(retry,))
            return None
        if method == "BYE":
            ua.sendUasResponse(487, "Request Terminated")
            ua.sendResponse(req.genResponse(200, "OK", server=ua.local_ua), sip_t)
            return self.byeReceived(req)
        return super().recvRequest(req, sip_t)

    def byeReceived(self, req: Any) -> NextState:
        """The BYE has been answered; tell call control and end the dialog."""
        return self.remoteDisconnected(req.rtime, req)

    def sendRedirect(self, event: CCEventRedirect, extra_headers: Optional[Any]) -> None:
        """Answer the INVITE with call control's 3xx, its targets in Contact headers."""
        contacts = event.contacts
        hfs = tuple(SipContact(address=x) for x in contacts) if contacts is not None else None
        self.ua.sendUasResponse(event.scode, event.scode_reason, event.body, hfs, extra_headers=extra_headers)
