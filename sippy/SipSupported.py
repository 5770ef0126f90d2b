"""Supported header (RFC 3261 20.37): option tags, comma separated."""

from __future__ import annotations

from typing import Optional

from sippy.SipGenericHF import SipGenericHF


class SipTokenList(SipGenericHF):
    """A header whose value is a comma-separated list of tokens, kept in `items` in order."""

    def __init__(self, body: Optional[str] = None, items: Optional[list[str]] = None) -> None:
        super().__init__(body)
        if body is None:
            self.parsed = True
            self.items: list[str] = list(items) if items else []

    def parse(self) -> None:
        self.items = [x for x in (y.strip() for y in self.body.split(",")) if x]
        self.parsed = True

    def __str__(self) -> str:
        if not self.parsed:
            return self.body
        return ", ".join(self.items)

    def getCopy(self) -> SipTokenList:
        new = super().getCopy()
        if self.parsed:
            new.items = list(self.items)
        return new

    def has(self, item: str) -> bool:
        """Case-insensitive membership (option tags and methods compare that way in practice)."""
        item = item.lower()
        return any(x.lower() == item for x in self.items)


class SipSupported(SipTokenList):
    hf_names = ("supported", "k")
    can_name = "Supported"
    compact_name = "k"

    def __init__(self, body: Optional[str] = None, caps: Optional[list[str]] = None) -> None:
        super().__init__(body, caps)

    @property
    def caps(self) -> list[str]:
        """Sippy's name for the option tags."""
        return self.items

    @caps.setter
    def caps(self, caps: list[str]) -> None:
        self.items = list(caps)
