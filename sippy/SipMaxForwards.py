"""Max-Forwards header (RFC 3261 20.22): hop limit; 70 for new requests."""

from __future__ import annotations

from sippy.SipNumericHF import SipNumericHF


class SipMaxForwards(SipNumericHF):
    hf_names = ("max-forwards",)
    can_name = "Max-Forwards"
    default_number = 70
