"""The dialog has ended (BYE sent or received): answer crossing BYEs, then die."""

from __future__ import annotations

from typing import Any

from sippy.UaStateGeneric import NextState
from sippy.UaStateLingering import UaStateLingering


class UaStateDisconnected(UaStateLingering):
    __slots__ = ()

    sname = "Disconnected"

    def __init__(self, ua: Any) -> None:
        super().__init__(ua, ua.godead_timeout)
        ua.cancelCreditTimer()
        ua.cancelSetupTimers()

    def recvRequest(self, req: Any, sip_t: Any) -> NextState:
        if req.getMethod() == "BYE":
            # Both sides hung up at once: the BYEs crossed.
            self.ua.sendResponse(req.genResponse(200, "OK", server=self.ua.local_ua), sip_t)
            return None
        return super().recvRequest(req, sip_t)

    def recvResponse(self, resp: Any, tr: Any) -> NextState:
        code = resp.getSCodeNum()
        if 200 <= code < 300 and resp.getHFBody("cseq").getCSeqMethod() == "INVITE":
            # The callee never got our ACK and still retransmits its 2xx (RFC 3261 13.2.2.4):
            # ACK again, the same bytes as before (the transaction kept them).
            self.ua.tm.sendACK(tr)
            return None
        return super().recvResponse(resp, tr)
