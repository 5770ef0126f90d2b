"""From header: the caller's address and the dialog's local/remote tag."""

from __future__ import annotations

from sippy.SipAddress import SipAddress
from sippy.SipAddressHF import SipAddressHF
from sippy.SipURL import SipURL


class SipFrom(SipAddressHF):
    hf_names = ("from", "f")
    can_name = "From"
    compact_name = "f"
    relaxedparser = True

    @staticmethod
    def _newAddress() -> SipAddress:
        # Sippy's default: an anonymous caller at this box (host filled in at send time).
        return SipAddress(name="Anonymous", url=SipURL())
