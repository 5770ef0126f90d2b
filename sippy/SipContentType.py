"""Content-Type header (RFC 3261 20.15): media type of the body, with parameters."""

from __future__ import annotations

from typing import Optional

from sippy.Exceptions.SipParseError import SipParseError
from sippy.SipGenericHF import SipGenericHF


class SipContentType(SipGenericHF):
    """`name` ("type/subtype") and ordered `params` (name -> value, None for a bare name)."""

    hf_names = ("content-type", "c")
    can_name = "Content-Type"
    compact_name = "c"

    def __init__(self, body: Optional[str] = None, name: Optional[str] = None) -> None:
        super().__init__(body)
        if body is None:
            self.parsed = True
            self.name: Optional[str] = name
            self.params: dict[str, Optional[str]] = {}

    def parse(self) -> None:
        mtype, _, rest = self.body.partition(";")
        mtype = mtype.strip()
        major, slash, minor = mtype.partition("/")
        if not slash or not major.strip() or not minor.strip():
            raise SipParseError("Malformed Content-Type")
        params: dict[str, Optional[str]] = {}
        if rest:
            for param in rest.split(";"):
                pname, eq, pval = param.partition("=")
                pname = pname.strip()
                if not pname:
                    raise SipParseError("Malformed Content-Type parameter")
                params[pname] = pval.strip() if eq else None
        self.name = mtype
        self.params = params
        self.parsed = True

    def __str__(self) -> str:
        if not self.parsed:
            return self.body
        s = str(self.name)
        for k, v in self.params.items():
            s += ";" + k if v is None else ";" + k + "=" + v
        return s

    def getCopy(self) -> SipContentType:
        new = super().getCopy()
        if self.parsed:
            new.params = dict(self.params)
        return new
