"""The dialog has ended (BYE sent or received): answer crossing BYEs, then die."""

from __future__ import annotations

from typing import Any

from sippy.Time.Timeout import Timeout
from sippy.UaStateGeneric import NextState, UaStateGeneric


class UaStateDisconnected(UaStateGeneric):
    sname = "Disconnected"

    def __init__(self, ua: Any) -> None:
        super().__init__(ua)
        ua.on_local_sdp_change = None
        ua.on_remote_sdp_change = None
        ua.cancelCreditTimer()
        ua.cancelSetupTimers()
        self.te: Any = Timeout(self.goDead, ua.godead_timeout, reactor=ua.reactor)

    def recvRequest(self, req: Any, sip_t: Any) -> NextState:
        if req.getMethod() == "BYE":
            # Both sides hung up at once: the BYEs crossed.
            self.ua.sendResponse(req.genResponse(200, "OK", server=self.ua.local_ua), sip_t)
            return None
        return super().recvRequest(req, sip_t)

    def goDead(self) -> None:
        self.te = None
        self.ua.changeState(UaStateDead)

    def onStateChange(self, newstate: type) -> None:
        if self.te is not None:
            self.te.cancel()
            self.te = None


from sippy.UaStateDead import UaStateDead  # noqa: E402
