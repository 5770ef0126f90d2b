"""Referred-By header (RFC 3892): who asked for the transfer; compact form b."""

from __future__ import annotations

from sippy.SipAddressHF import SipAddressHF


class SipReferredBy(SipAddressHF):
    hf_names = ("referred-by", "b")
    can_name = "Referred-By"
    compact_name = "b"
