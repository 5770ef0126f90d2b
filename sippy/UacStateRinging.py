"""UAC that has had a provisional response (18x): more may come, then the final one."""

from __future__ import annotations

from typing import Any

from sippy.CCEvents import CCEventRing
from sippy.UacStateTrying import UacStateTrying
from sippy.UaStateGeneric import NextState


class UacStateRinging(UacStateTrying):
    __slots__ = ()

    sname = "Ringing(UAC)"

    def provisional(self, resp: Any, event: CCEventRing, code: int) -> NextState:
        for ring_cb in self.ua.ring_cbs:
            ring_cb(self.ua, resp.rtime, self.ua.origin, code)
        return None
