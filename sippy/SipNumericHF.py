"""Base of headers whose value is one non-negative integer (Max-Forwards, Expires...)."""

from __future__ import annotations

from typing import Optional

from sippy.Exceptions.SipParseError import SipParseError
from sippy.SipGenericHF import SipGenericHF, keeps_text


class SipNumericHF(SipGenericHF):
    """`number` (int); subclasses set `default_number` for a header made from nothing."""

    default_number: int = 0

    @keeps_text
    def __init__(self, body: Optional[str] = None, number: Optional[int] = None) -> None:
        super().__init__(body)
        if body is None:
            self.parsed = True
            self.number: int = self.default_number if number is None else number

    def parse(self) -> None:
        body = self.body.strip()
        if not (body.isascii() and body.isdigit()) or len(body) > 10:
            raise SipParseError(f"Malformed {self.can_name} value")
        self.number = int(body)
        self.parsed = True

    def __str__(self) -> str:
        if not self.parsed:
            return self.body
        return str(self.number)

    def getNum(self) -> int:
        return self.number

    def setNum(self, number: int) -> None:
        self.number = number

    def incNum(self, incr: int = 1) -> int:
        self.number += incr
        return self.number

    def decNum(self, decr: int = 1) -> int:
        self.number -= decr
        return self.number
