"""Expires header (RFC 3261 20.19): seconds; 300 for a new one, as in Sippy."""

from __future__ import annotations

from sippy.SipNumericHF import SipNumericHF


class SipExpires(SipNumericHF):
    hf_names = ("expires",)
    can_name = "Expires"
    default_number = 300
