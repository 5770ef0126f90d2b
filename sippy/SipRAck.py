"""RAck header (RFC 3262): which reliable provisional response a PRACK acknowledges."""

from __future__ import annotations

from typing import Optional

from sippy.Exceptions.SipParseError import SipParseError
from sippy.SipCSeq import SipCSeq
from sippy.SipHeader import is_token


class SipRAck(SipCSeq):
    """`rseq` plus the CSeq number and method of the response being acknowledged."""

    hf_names = ("rack",)
    can_name = "RAck"

    def __init__(
        self,
        body: Optional[str] = None,
        rseq: Optional[int] = None,
        cseq: Optional[int] = None,
        method: Optional[str] = None,
    ) -> None:
        super().__init__(body, cseq, method)
        if body is None:
            self.rseq: int = 1 if rseq is None else rseq

    def parse(self) -> None:
        parts = self.body.split()
        if len(parts) != 3 or not all(x.isascii() and x.isdigit() and len(x) <= 10 for x in parts[:2]):
            raise SipParseError("Malformed RAck")
        if not is_token(parts[2]):
            raise SipParseError("Malformed RAck method")
        self.rseq = int(parts[0])
        self.cseq = int(parts[1])
        self.method = parts[2]
        self.parsed = True

    def __str__(self) -> str:
        if not self.parsed:
            return self.body
        return str(self.rseq) + " " + str(self.cseq) + " " + str(self.method)

    def getRSeq(self) -> tuple[int, int, Optional[str]]:
        return (self.rseq, self.cseq, self.method)
