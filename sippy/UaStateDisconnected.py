"""The dialog has ended (BYE sent or received): answer crossing BYEs, then die."""

from __future__ import annotations

from typing import Any

from sippy.UaStateGeneric import NextState
from sippy.UaStateLingering import UaStateLingering


class UaStateDisconnected(UaStateLingering):
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
