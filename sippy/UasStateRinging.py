"""UAS that has sent a provisional response (18x) and waits for call control's final word."""

from __future__ import annotations

from sippy.CCEvents import CCEventGeneric
from sippy.UasStateGeneric import UasStateGeneric
from sippy.UaStateGeneric import NextState


class UasStateRinging(UasStateGeneric):
    __slots__ = ()

    sname = "Ringing(UAS)"

    def rang(self, event: CCEventGeneric, code: int) -> NextState:
        for ring_cb in self.ua.ring_cbs:
            ring_cb(self.ua, event.rtime, event.origin, code)
        return None
