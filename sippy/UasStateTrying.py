"""UAS that has received an INVITE and answered nothing but 100 Trying yet."""

from __future__ import annotations

from sippy.CCEvents import CCEventGeneric
from sippy.UasStateGeneric import UasStateGeneric
from sippy.UaStateGeneric import NextState


class UasStateTrying(UasStateGeneric):
    __slots__ = ()

    sname = "Trying(UAS)"

    def rang(self, event: CCEventGeneric, code: int) -> NextState:
        return (UasStateRinging, self.ua.ring_cbs, event.rtime, event.origin, code)


from sippy.UasStateRinging import UasStateRinging  # noqa: E402
