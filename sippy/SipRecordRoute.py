"""Record-Route header: proxies that stay on the dialog path; becomes the route set."""

from __future__ import annotations

from typing import Optional

from sippy.SipAddressHF import SipAddressHF


class SipRecordRoute(SipAddressHF):
    __slots__ = ()

    hf_names = ("record-route",)
    can_name = "Record-Route"
    isMulti = True

    def getAddr(self) -> tuple[Optional[str], int]:
        """Where a request routed through this hop goes (socket tuple)."""
        return self.getUrl().getAddr()
