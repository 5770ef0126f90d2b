"""From header: the caller's address and the dialog's local/remote tag."""

from __future__ import annotations

from typing import Optional

from sippy.SipAddress import SipAddress
from sippy.SipAddressHF import SipAddressHF
from sippy.SipURL import SipURL


class SipFrom(SipAddressHF):
    hf_names = ("from", "f")
    can_name = "From"
    compact_name = "f"
    relaxedparser = True

    def __init__(self, body: Optional[str] = None, address: Optional[SipAddress] = None) -> None:
        super().__init__(body, address)
        if body is None and address is None:
            # Sippy's default: an anonymous caller at this box (host filled in at send time).
            self.address = SipAddress(name="Anonymous", url=SipURL())
