"""Route header: one hop of the route set (RFC 3261 12.2.1.1), several per line allowed."""

from __future__ import annotations

from typing import Optional

from sippy.SipAddressHF import SipAddressHF


class SipRoute(SipAddressHF):
    __slots__ = ()

    hf_names = ("route",)
    can_name = "Route"
    isMulti = True

    def getAddr(self) -> tuple[Optional[str], int]:
        """Where a request routed through this hop goes (socket tuple)."""
        return self.getUrl().getAddr()
