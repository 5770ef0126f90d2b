"""An SDP line value kept verbatim (s=, t=, b=, ... and anything sippy does not interpret)."""

from __future__ import annotations

from typing import Optional


class SdpGeneric:
    """Opaque value of one `x=value` SDP line."""

    __slots__ = ("body",)

    def __init__(self, body: str) -> None:
        self.body = body

    def __str__(self) -> str:
        return self.body

    def localStr(self, local_addr: Optional[str] = None, local_port: Optional[int] = None) -> str:
        return self.body

    def getCopy(self) -> SdpGeneric:
        return SdpGeneric(self.body)
