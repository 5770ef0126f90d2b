"""To header: the callee's address; the UAS adds its tag to make the dialog."""

from __future__ import annotations

from sippy.SipAddress import SipAddress
from sippy.SipAddressHF import SipAddressHF
from sippy.SipURL import SipURL


class SipTo(SipAddressHF):
    __slots__ = ()

    hf_names = ("to", "t")
    can_name = "To"
    compact_name = "t"
    relaxedparser = True

    @staticmethod
    def _newAddress() -> SipAddress:
        return SipAddress(url=SipURL())
