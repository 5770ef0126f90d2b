"""Replaces header (RFC 3891): which dialog an INVITE takes over."""

from __future__ import annotations

from typing import Optional

from sippy.Exceptions.SipParseError import SipParseError
from sippy.SipGenericHF import SipGenericHF


class SipReplaces(SipGenericHF):
    hf_names = ("replaces",)
    can_name = "Replaces"

    def __init__(
        self,
        body: Optional[str] = None,
        call_id: Optional[str] = None,
        from_tag: Optional[str] = None,
        to_tag: Optional[str] = None,
        early_only: bool = False,
        params: Optional[list[str]] = None,
    ) -> None:
        super().__init__(body)
        self.call_id = call_id
        self.from_tag = from_tag
        self.to_tag = to_tag
        self.early_only = early_only
        self.params: list[str] = list(params) if params else []
        if body is None:
            self.parsed = True

    def parse(self) -> None:
        call_id, *params = (p.strip() for p in self.body.split(";"))
        if not call_id or " " in call_id:
            raise SipParseError(f"bad Replaces: {self.body!r}")
        self.call_id = call_id
        for p in params:
            name, eq, value = p.partition("=")
            lname = name.strip().lower()
            if lname == "from-tag" and eq:
                self.from_tag = value.strip()
            elif lname == "to-tag" and eq:
                self.to_tag = value.strip()
            elif lname == "early-only" and not eq:
                self.early_only = True
            else:
                self.params.append(p)
        if self.from_tag is None or self.to_tag is None:
            raise SipParseError(f"Replaces without from-tag/to-tag: {self.body!r}")
        self.parsed = True
        self._snap = self._state()

    def _state(self) -> tuple:
        return (self.call_id, self.from_tag, self.to_tag, self.early_only, tuple(self.params))

    def __str__(self) -> str:
        if self.body is not None and (not self.parsed or self._state() == self._snap):
            return self.body
        res = f"{self.call_id};from-tag={self.from_tag};to-tag={self.to_tag}"
        if self.early_only:
            res += ";early-only"
        return res + "".join(";" + p for p in self.params)

    def getCopy(self) -> SipReplaces:
        new = super().getCopy()
        new.params = list(self.params)
        return new
