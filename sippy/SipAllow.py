"""Allow header (RFC 3261 20.5): methods the sender supports, comma separated."""

from __future__ import annotations

from typing import Optional

from sippy.SipSupported import SipTokenList


class SipAllow(SipTokenList):
    hf_names = ("allow",)
    can_name = "Allow"

    def __init__(self, body: Optional[str] = None, methods: Optional[list[str]] = None) -> None:
        super().__init__(body, methods)

    @property
    def methods(self) -> list[str]:
        """Sippy's name for the list of methods."""
        return self.items

    @methods.setter
    def methods(self, methods: list[str]) -> None:
        self.items = list(methods)
