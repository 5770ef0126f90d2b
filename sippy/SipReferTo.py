"""Refer-To header (RFC 3515): where a REFER sends the recipient; compact form r."""

from __future__ import annotations

from sippy.SipAddressHF import SipAddressHF


class SipReferTo(SipAddressHF):
    hf_names = ("refer-to", "r")
    can_name = "Refer-To"
    compact_name = "r"
