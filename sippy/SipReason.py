"""Reason header (RFC 3326): why a call ended, as a SIP status code or a Q.850 cause."""

from __future__ import annotations

from typing import Optional

from sippy.Exceptions.SipParseError import SipParseError
from sippy.SipGenericHF import SipGenericHF


def _split_params(s: str) -> list[str]:
    """Split on ';' outside double quotes (the text parameter may hold ';')."""
    out = []
    start = 0
    inq = False
    i = 0
    n = len(s)
    while i < n:
        c = s[i]
        if c == "\\" and inq:
            i += 1
        elif c == '"':
            inq = not inq
        elif c == ";" and not inq:
            out.append(s[start:i])
            start = i + 1
        i += 1
    if inq:
        raise SipParseError("Unterminated quoted string in Reason")
    out.append(s[start:])
    return out


class SipReason(SipGenericHF):
    """`protocol` ("SIP" or "Q.850"), `cause` (int), `reason` (the text parameter or None)."""

    hf_names = ("reason",)
    can_name = "Reason"

    def __init__(
        self,
        body: Optional[str] = None,
        protocol: Optional[str] = None,
        cause: Optional[int] = None,
        reason: Optional[str] = None,
    ) -> None:
        super().__init__(body)
        if body is None:
            self.parsed = True
            self.protocol: Optional[str] = protocol
            self.cause: Optional[int] = cause
            self.reason: Optional[str] = reason
            self.extra: list[str] = []

    def parse(self) -> None:
        parts = _split_params(self.body)
        protocol = parts[0].strip()
        if not protocol or len(protocol.split()) != 1:
            raise SipParseError("Malformed Reason protocol")
        cause = reason = None
        extra = []
        for part in parts[1:]:
            pname, eq, pval = part.partition("=")
            pname = pname.strip().lower()
            pval = pval.strip()
            if pname == "cause":
                if not (pval.isascii() and pval.isdigit()) or len(pval) > 9:
                    raise SipParseError("Malformed Reason cause")
                cause = int(pval)
            elif pname == "text":
                if len(pval) >= 2 and pval[0] == '"' and pval[-1] == '"':
                    pval = pval[1:-1].replace('\\"', '"').replace("\\\\", "\\")
                reason = pval
            elif pname:
                extra.append(pname + "=" + pval if eq else pname)
        self.protocol = protocol
        self.cause = cause
        self.reason = reason
        self.extra = extra
        self.parsed = True

    def __str__(self) -> str:
        if not self.parsed:
            return self.body
        s = str(self.protocol)
        if self.cause is not None:
            s += "; cause=" + str(self.cause)
        if self.reason is not None:
            s += '; text="' + self.reason.replace("\\", "\\\\").replace('"', '\\"') + '"'
        for x in self.extra:
            s += "; " + x
        return s

    def getCopy(self) -> SipReason:
        new = super().getCopy()
        if self.parsed:
            new.extra = list(self.extra)
        return new
