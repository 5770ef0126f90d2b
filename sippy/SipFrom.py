"""From header: the caller's address and the dialog's local/remote tag."""

from __future__ import annotations

import random

from sippy.SipAddress import SipAddress
from sippy.SipAddressHF import SipAddressHF
from sippy.SipURL import SipURL

# RFC 3261 25.1 `token`: every character a tag may carry.
TOKEN_CHARSET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz-.!%*_+`'~"


def gen_test_tag(length: int = 32) -> str:
    """A tag drawn from every character the grammar allows, for tests of parsers and dialogs."""
    return "".join(random.choices(TOKEN_CHARSET, k=length))


class SipFrom(SipAddressHF):
    __slots__ = ()

    hf_names = ("from", "f")
    can_name = "From"
    compact_name = "f"
    relaxedparser = True

    @staticmethod
    def _newAddress() -> SipAddress:
        # Sippy's default: an anonymous caller at this box (host filled in at send time).
        return SipAddress(name="Anonymous", url=SipURL())
