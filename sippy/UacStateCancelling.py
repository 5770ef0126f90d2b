"""UAC that has CANCELled its INVITE and waits for the final response to it."""

from __future__ import annotations

from typing import Any

from sippy.CCEvents import CCEventGeneric
from sippy.UaStateGeneric import NextState, contact_url
from sippy.UaStateLingering import UaStateLingering


class UacStateCancelling(UaStateLingering):
    __slots__ = ()

    sname = "Cancelling(UAC)"

    def __init__(self, ua: Any) -> None:
        # The callee may never answer the CANCELled INVITE; do not wait for it forever.
        super().__init__(ua, ua.cancel_timeout)

    def recvResponse(self, resp: Any, tr: Any) -> NextState:
        ua = self.ua
        code = resp.getSCodeNum()
        if code < 200:
            return None
        if 200 <= code < 300:
            # The 2xx crossed our CANCEL: the callee answered, so confirm and end that dialog.
            ua.setRouting(list(reversed(resp.getHFBodys("record-route"))), contact_url(resp))
            ua.rUri.setTag(resp.getHFBody("to").getTag())
            ua.sendACK(tr, resp)
            ua.sendBYE()
            return UaStateDisconnected
        return UaStateDead

    def recvEvent(self, event: CCEventGeneric) -> NextState:
        # Call control has already ended this leg; nothing it says can matter now.
        return None


from sippy.UaStateDead import UaStateDead  # noqa: E402
from sippy.UaStateDisconnected import UaStateDisconnected  # noqa: E402
