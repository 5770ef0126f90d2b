"""Diversion header (RFC 5806): who redirected the call and why, carried to the next leg."""

from __future__ import annotations

from sippy.SipAddressHF import SipAddressHF


class SipDiversion(SipAddressHF):
    hf_names = ("diversion",)
    can_name = "Diversion"
    isMulti = True
