"""Monotonic timestamps that also know their wall-clock equivalent.

Timers and transaction ages must not jump when the system clock is stepped, yet logs and CDRs
need wall-clock time: a MonoTime carries both. One is made per received message, so it is kept
cheap: two floats in `__slots__`, and the wall-clock value derived from an offset fixed at import.
"""

from __future__ import annotations

import time
from typing import Optional, Union

# Wall clock minus monotonic clock, sampled once so that realt stays monotonic as well.
_REALT_OFFSET: float = time.time() - time.monotonic()


class MonoTime:
    """A point in time: `monot` (time.monotonic() seconds) and `realt` (seconds since the epoch)."""

    __slots__ = ("monot", "realt")

    def __init__(self, monot: Optional[float] = None, realt: Optional[float] = None) -> None:
        if monot is None:
            monot = time.monotonic() if realt is None else realt - _REALT_OFFSET
        self.monot: float = monot
        self.realt: float = monot + _REALT_OFFSET if realt is None else realt

    def getCopy(self) -> MonoTime:
        return MonoTime(self.monot, self.realt)

    def offset(self, secs: float) -> None:
        """Move this timestamp by secs (in place)."""
        self.monot += secs
        self.realt += secs

    def offsetCopy(self, secs: float) -> MonoTime:
        return MonoTime(self.monot + secs, self.realt + secs)

    # Sippy's name for offsetCopy().
    getOffsetCopy = offsetCopy

    def offsetFromNow(self) -> float:
        """Seconds elapsed since this timestamp (negative when it is in the future)."""
        return time.monotonic() - self.monot

    def getdiff(self) -> float:
        return self.realt - self.monot

    def _realt(self, base: Optional[MonoTime]) -> float:
        # With a base, translate through the base's own realt (Sippy's semantics).
        return self.realt if base is None else base.realt - (base.monot - self.monot)

    def ftime(self, base: Optional[MonoTime] = None) -> str:
        """UTC time as RADIUS/CDR records want it: `2024-11-26 05:50:22+00`."""
        return time.strftime("%Y-%m-%d %H:%M:%S+00", time.gmtime(round(self._realt(base))))

    def fptime(self, base: Optional[MonoTime] = None) -> str:
        """Local time with milliseconds, the SipLogger line prefix: `26 Nov 05:50:22.123`."""
        realt = self._realt(base)
        secs, msec = divmod(round(realt * 1000), 1000)
        return f"{time.strftime('%d %b %H:%M:%S', time.localtime(secs))}.{msec:03d}"

    def frtime(self, base: Optional[MonoTime] = None) -> str:
        """UTC in the Cisco VSA format: `5:50:22.000 GMT Tue Nov 26 2024` (day without zero pad)."""
        gt = time.gmtime(self._realt(base))
        return time.strftime("%H:%M:%S.000 GMT %a %b ", gt) + str(gt.tm_mday) + time.strftime(" %Y", gt)

    def __str__(self) -> str:
        return f"{self.realt:.6f}-{self.monot:.6f}"

    def __repr__(self) -> str:
        return f"MonoTime(monot={self.monot!r}, realt={self.realt!r})"

    def __sub__(self, other: Union[MonoTime, float]) -> float:
        if isinstance(other, MonoTime):
            return self.monot - other.monot
        return self.monot - other

    def __rsub__(self, other: float) -> float:
        return other - self.monot

    def __add__(self, other: Union[MonoTime, float]) -> float:
        if isinstance(other, MonoTime):
            return self.monot + other.monot
        return self.monot + other

    __radd__ = __add__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, MonoTime) and self.monot == other.monot

    def __ne__(self, other: object) -> bool:
        return not self.__eq__(other)

    def __lt__(self, other: MonoTime) -> bool:
        return self.monot < other.monot

    def __le__(self, other: MonoTime) -> bool:
        return self.monot <= other.monot

    def __gt__(self, other: MonoTime) -> bool:
        return self.monot > other.monot

    def __ge__(self, other: MonoTime) -> bool:
        return self.monot >= other.monot

    def __hash__(self) -> int:
        return hash(self.monot)
