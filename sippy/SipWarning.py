"""Warning header (RFC 3261 20.43): code, agent and quoted text."""

from __future__ import annotations

import socket
from typing import Optional

from sippy.Exceptions.SipParseError import SipParseError
from sippy.SipGenericHF import SipGenericHF


class SipWarning(SipGenericHF):
    """`code` (int, 399 by default), `agent` (host name), `text`."""

    hf_names = ("warning",)
    can_name = "Warning"

    def __init__(
        self,
        body: Optional[str] = None,
        code: Optional[int] = None,
        text: Optional[str] = None,
        agent: Optional[str] = None,
    ) -> None:
        super().__init__(body)
        if body is None:
            self.parsed = True
            self.code: int = 399 if code is None else code
            self.agent: str = agent or socket.gethostname()
            self.text: str = (text or "").replace('"', "'")

    def parse(self) -> None:
        parts = self.body.split(None, 2)
        if len(parts) != 3 or len(parts[0]) != 3 or not (parts[0].isascii() and parts[0].isdigit()):
            raise SipParseError("Malformed Warning")
        self.code = int(parts[0])
        self.agent = parts[1]
        self.text = parts[2].strip().strip('"')
        self.parsed = True

    def __str__(self) -> str:
        if not self.parsed:
            return self.body
        return f'{self.code} {self.agent} "{self.text}"'
