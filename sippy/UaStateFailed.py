"""The INVITE got (or we sent) a final non-2xx: no dialog; linger briefly, then die."""

from __future__ import annotations

from typing import Any

from sippy.Time.Timeout import Timeout
from sippy.UaStateGeneric import UaStateGeneric


class UaStateFailed(UaStateGeneric):
    sname = "Failed"

    def __init__(self, ua: Any) -> None:
        super().__init__(ua)
        ua.on_local_sdp_change = None
        ua.on_remote_sdp_change = None
        # Linger so that retransmissions and stray in-dialog requests still find us (and get 481).
        self.te: Any = Timeout(self.goDead, ua.godead_timeout, reactor=ua.reactor)

    def goDead(self) -> None:
        self.te = None
        self.ua.changeState(UaStateDead)

    def onStateChange(self, newstate: type) -> None:
        if self.te is not None:
            self.te.cancel()
            self.te = None


from sippy.UaStateDead import UaStateDead  # noqa: E402
