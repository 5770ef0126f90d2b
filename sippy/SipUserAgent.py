"""User-Agent header (RFC 3261 20.41): free text naming the software."""

from __future__ import annotations

from typing import Optional

from sippy.SipConf import SipConf
from sippy.SipGenericHF import SipGenericHF


class SipUserAgent(SipGenericHF):
    """`name`: the product text; a new one says SipConf.my_uaname."""

    hf_names = ("user-agent",)
    can_name = "User-Agent"

    def __init__(self, body: Optional[str] = None, name: Optional[str] = None) -> None:
        super().__init__(body)
        if body is None:
            self.parsed = True
            self.name: str = SipConf.my_uaname if name is None else name

    def parse(self) -> None:
        self.name = self.body
        self.parsed = True

    def __str__(self) -> str:
        if not self.parsed:
            return self.body
        return self.name
