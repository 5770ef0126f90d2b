"""CSeq header (RFC 3261 20.16): sequence number and method of a transaction."""

from __future__ import annotations

from typing import Optional

from sippy.Exceptions.SipParseError import SipParseError
from sippy.SipGenericHF import SipGenericHF, keeps_text
from sippy.SipHeader import SIP_METHODS, is_token


class SipCSeq(SipGenericHF):
    """`cseq` (int) and `method`; a new one starts at 1 unless told otherwise."""

    # One per message, kept with it: fields in slots, no per-instance dict.
    __slots__ = ("cseq", "method")

    hf_names = ("cseq",)
    can_name = "CSeq"

    @keeps_text
    def __init__(
        self, body: Optional[str] = None, cseq: Optional[int] = None, method: Optional[str] = None
    ) -> None:
        super().__init__(body)
        if body is None:
            self.parsed = True
            self.cseq: int = 1 if cseq is None else cseq
            self.method: Optional[str] = method

    def parse(self) -> None:
        parts = self.body.split()
        if len(parts) != 2:
            raise SipParseError("Malformed CSeq")
        num, method = parts
        # RFC 3261 8.1.1.5: the number is a 32-bit unsigned integer below 2**31.
        if not (num.isascii() and num.isdigit()) or len(num) > 10:
            raise SipParseError("Malformed CSeq number")
        cseq = int(num)
        if cseq >= 2**31:
            raise SipParseError("Malformed CSeq number")
        if method not in SIP_METHODS and not is_token(method):
            raise SipParseError("Malformed CSeq method")
        self.cseq = cseq
        self.method = method
        self.parsed = True

    def localStr(self, local_addr: Optional[str] = None, local_port: Optional[int] = None) -> str:
        if not self.parsed:
            return self.body
        return f"{self.cseq} {self.method}"

    __str__ = localStr

    def getCopy(self) -> SipCSeq:
        new = super().getCopy()
        if self.parsed:
            new.cseq = self.cseq
            new.method = self.method
        return new

    def getCSeq(self) -> tuple[int, Optional[str]]:
        return (self.cseq, self.method)

    def getCSeqNum(self) -> int:
        return self.cseq

    def getCSeqMethod(self) -> Optional[str]:
        return self.method

    def setCSeq(self, cseq: int, method: str) -> None:
        self.cseq, self.method = cseq, method

    def setCSeqNum(self, cseq: int) -> None:
        self.cseq = cseq

    def setCSeqMethod(self, method: str) -> None:
        self.method = method

    def incCSeqNum(self) -> int:
        self.cseq += 1
        return self.cseq
