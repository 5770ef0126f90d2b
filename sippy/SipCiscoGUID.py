"""Cisco-GUID / h323-conf-id header: the call's GUID as four 32-bit numbers (for CDRs/RADIUS)."""

from __future__ import annotations

import os
from typing import Optional

from sippy.Exceptions.SipParseError import SipParseError
from sippy.SipGenericHF import SipGenericHF


class SipCiscoGUID(SipGenericHF):
    """`ciscoGUID`: tuple of four ints, written "a-b-c-d"; a new one is random."""

    hf_names = ("cisco-guid", "h323-conf-id")
    can_name = "cisco-GUID"

    def __init__(
        self, body: Optional[str] = None, ciscoGUID: Optional[tuple[int, int, int, int]] = None
    ) -> None:
        super().__init__(body)
        if body is None:
            self.parsed = True
            if ciscoGUID is None:
                raw = os.urandom(16)
                ciscoGUID = tuple(int.from_bytes(raw[i : i + 4], "big") for i in range(0, 16, 4))
            self.ciscoGUID: tuple[int, ...] = tuple(ciscoGUID)

    def parse(self) -> None:
        parts = self.body.strip().split("-")
        if len(parts) != 4 or not all(x.isascii() and x.isdigit() and len(x) <= 10 for x in parts):
            raise SipParseError("Malformed Cisco-GUID")
        self.ciscoGUID = tuple(int(x) for x in parts)
        self.parsed = True

    def __str__(self) -> str:
        if not self.parsed:
            return self.body
        return "-".join(str(x) for x in self.ciscoGUID)

    def getCiscoGUID(self) -> tuple[int, ...]:
        return self.ciscoGUID

    def hexForm(self) -> str:
        """The form RADIUS h323-conf-id attributes use: four 8-digit upper-case hex groups."""
        return " ".join(f"{x:08X}" for x in self.ciscoGUID)

    def getCanName(self, name: str, compact: bool = False) -> str:
        return "h323-conf-id" if name.lower() == "h323-conf-id" else "cisco-GUID"
