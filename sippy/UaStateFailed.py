"""The INVITE got (or we sent) a final non-2xx: no dialog; linger briefly, then die."""

from __future__ import annotations

from typing import Any

from sippy.UaStateLingering import UaStateLingering


class UaStateFailed(UaStateLingering):
    __slots__ = ()

    sname = "Failed"

    def __init__(self, ua: Any) -> None:
        # Linger so that retransmissions and stray in-dialog requests still find us (and get 481).
        super().__init__(ua, ua.godead_timeout)
