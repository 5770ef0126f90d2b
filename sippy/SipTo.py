"""To header: the callee's address; the UAS adds its tag to make the dialog."""

from __future__ import annotations

from typing import Optional

from sippy.SipAddress import SipAddress
from sippy.SipAddressHF import SipAddressHF
from sippy.SipURL import SipURL


class SipTo(SipAddressHF):
    hf_names = ("to", "t")
    can_name = "To"
    compact_name = "t"
    relaxedparser = True

    def __init__(self, body: Optional[str] = None, address: Optional[SipAddress] = None) -> None:
        super().__init__(body, address)
        if body is None and address is None:
            self.address = SipAddress(url=SipURL())
