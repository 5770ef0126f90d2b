"""Call-ID header (RFC 3261 20.8): the dialog's identifier."""

from __future__ import annotations

import os
import random
from typing import Optional

from sippy.Exceptions.SipParseError import SipParseError
from sippy.SipConf import SipConf
from sippy.SipGenericHF import SipGenericHF, keeps_text

# RFC 3261 25.1 `word`: every character a Call-ID may carry.
CALL_ID_CHARSET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz-.!%*_+`'~()<>:\\\"/[]?{}"


def gen_test_cid(lens: tuple[int, int] = (32, 16)) -> str:
    """A Call-ID drawn from every character the grammar allows (word "@" word), for tests that
    want parsers to meet the unusual ones; not for real calls (see SipCallId.genCallId)."""
    return "@".join("".join(random.choices(CALL_ID_CHARSET, k=n)) for n in lens)


class SipCallId(SipGenericHF):
    """The id is the text itself (`.body`); a new one is random + "@" + this host."""

    __slots__ = ()

    hf_names = ("call-id", "i")
    can_name = "Call-ID"
    compact_name = "i"

    @keeps_text
    def __init__(self, body: Optional[str] = None) -> None:
        super().__init__(body)
        if body is None:
            self.genCallId()

    def parse(self) -> None:
        body = self.body.strip()
        if not body or len(body.split()) != 1:
            raise SipParseError("Malformed Call-ID")
        self.body = body
        self.parsed = True

    def genCallId(self) -> None:
        """A fresh id: 128 random bits in hex, then "@" and this box's address."""
        self.body = os.urandom(16).hex() + "@" + str(SipConf.my_address)
        self.parsed = True

    def __add__(self, other: object) -> SipCallId:
        """Sippy's way to derive the other leg's id: `cId + '-b2b_1'`."""
        return SipCallId(self.body + str(other))

    def __eq__(self, other: object) -> bool:
        if isinstance(other, SipCallId):
            return self.body == other.body
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self.body)
