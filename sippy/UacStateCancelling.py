"""UAC that has CANCELled its INVITE and waits for the final response to it."""

from __future__ import annotations

from typing import Any

from sippy.CCEvents import CCEventGeneric
from sippy.Time.Timeout import Timeout
from sippy.UaStateGeneric import NextState, UaStateGeneric


class UacStateCancelling(UaStateGeneric):
    sname = "Cancelling(UAC)"

    def __init__(self, ua: Any) -> None:
        super().__init__(ua)
        ua.on_local_sdp_change = None
        ua.on_remote_sdp_change = None
        # The callee may never answer the CANCELled INVITE; do not wait for it forever.
        self.te: Any = Timeout(self.goDead, ua.cancel_timeout, reactor=ua.reactor)

    def goDead(self) -> None:
        self.te = None
        self.ua.changeState(UaStateDead)

    def recvResponse(self, resp: Any, tr: Any) -> NextState:
        ua = self.ua
        code = resp.getSCodeNum()
        if code < 200:
            return None
        if 200 <= code < 300:
            # The 2xx crossed our CANCEL: the callee answered, so confirm and end that dialog.
            contact = resp.getHFBody("contact").getUrl() if resp.countHFs("contact") > 0 else None
            ua.setRouting(list(reversed(resp.getHFBodys("record-route"))), contact)
            ua.rUri.setTag(resp.getHFBody("to").getTag())
            ua.sendACK(tr, resp)
            ua.sendBYE()
            return UaStateDisconnected
        return UaStateDead

    def recvEvent(self, event: CCEventGeneric) -> NextState:
        # Call control has already ended this leg; nothing it says can matter now.
        return None

    def onStateChange(self, newstate: type) -> None:
        if self.te is not None:
            self.te.cancel()
            self.te = None


from sippy.UaStateDead import UaStateDead  # noqa: E402
from sippy.UaStateDisconnected import UaStateDisconnected  # noqa: E402
