"""P-Asserted-Identity header (RFC 3325): the network-asserted caller identity."""

from __future__ import annotations

from sippy.SipAddressHF import SipAddressHF


class SipPAssertedIdentity(SipAddressHF):
    hf_names = ("p-asserted-identity",)
    can_name = "P-Asserted-Identity"
    isMulti = True
