"""One-shot and periodic timers on the Twisted reactor, with Sippy's call signatures.

Every timer in sippy goes through here with an explicit `reactor`, so tests can drive time with
`twisted.internet.task.Clock` instead of sleeping.
"""

from __future__ import annotations

import random
from typing import Any, Callable, Optional

from twisted.python import log

from sippy.Time.MonoTime import MonoTime


def default_reactor() -> Any:
    """The global Twisted reactor, imported at call time so that a program can install another
    reactor before first use."""
    from twisted.internet import reactor

    return reactor


class TimeoutInact:
    """A timer armed only by `go()` (what `ED2.regTimer()` returns).

    `nticks` is the number of runs (-1: forever); runs are `ival` seconds apart, scheduled from
    the previous due time rather than from when the callback returned, so periodic timers do not
    drift.
    """

    # Subclasses that start at once (Sippy's Timeout, TimeoutAbsMono) set this instead of
    # repeating the constructor.
    start_at_once = False

    def __init__(
        self,
        timeout_cb: Callable[..., Any],
        ival: float,
        nticks: int = 1,
        *cb_params: Any,
        reactor: Any = None,
    ) -> None:
        self.timeout_cb: Optional[Callable[..., Any]] = timeout_cb
        self.ival = ival
        self.nticks = nticks
        self.cb_params = cb_params
        self.reactor = reactor if reactor is not None else default_reactor()
        self._call: Any = None
        self._etime = 0.0
        self._randomizer: Optional[Callable[[float], float]] = None
        if self.start_at_once:
            self.go()

    def spread_runs(self, p: float) -> None:
        """Randomise each interval by up to +/- p (a fraction), so periodic jobs of many calls
        started together do not stay in lockstep."""
        self._randomizer = lambda x: x * (1.0 + p * (1.0 - 2.0 * random.random()))

    def _next_ival(self) -> float:
        return self.ival if self._randomizer is None else self._randomizer(self.ival)

    def go(self) -> TimeoutInact:
        """Arm the timer; returns self so `ED2.regTimer(cb, ival).go()` can be kept."""
        if self.timeout_cb is None or self._call is not None or self.nticks == 0:
            return self
        ival = max(0.0, self._next_ival())
        self._etime = self.reactor.seconds() + ival
        self._call = self.reactor.callLater(ival, self._fire)
        return self

    def _fire(self) -> None:
        self._call = None
        cb = self.timeout_cb
        if cb is None:
            return
        if self.nticks == -1 or self.nticks > 1:
            if self.nticks > 1:
                self.nticks -= 1
            self._reschedule()
        else:
            self.timeout_cb = None
        try:
            cb(*self.cb_params)
        except Exception:
            # A failing callback must not take the reactor (or a periodic timer) down with it.
            log.err(None, f"Timeout: unhandled exception in timer callback {cb!r}")

    def _reschedule(self) -> None:
        self._etime += self._next_ival()
        self._call = self.reactor.callLater(max(0.0, self._etime - self.reactor.seconds()), self._fire)

    def cancel(self) -> None:
        """Stop the timer; safe to call any number of times, also from its own callback."""
        self.timeout_cb = None
        self.cb_params = ()
        call, self._call = self._call, None
        if call is not None and call.active():
            call.cancel()

    def active(self) -> bool:
        return self._call is not None and self.timeout_cb is not None


class Timeout(TimeoutInact):
    """`Timeout(cb, ival, nticks=1, *cb_params, reactor=None)`: a timer that starts at once."""

    start_at_once = True


class TimeoutAbsMonoInact(TimeoutInact):
    """A one-shot timer due at a MonoTime, armed by `go()`."""

    def __init__(
        self, timeout_cb: Callable[..., Any], mtime: MonoTime, *cb_params: Any, reactor: Any = None
    ) -> None:
        if not isinstance(mtime, MonoTime):
            raise TypeError("mtime is not MonoTime")
        # Set first: a timer that starts at once reads it in go().
        self.mtime = mtime
        super().__init__(timeout_cb, 0.0, 1, *cb_params, reactor=reactor)

    def _next_ival(self) -> float:
        return self.mtime - MonoTime()


class TimeoutAbsMono(TimeoutAbsMonoInact):
    """`TimeoutAbsMono(cb, mtime, *cb_params, reactor=None)`: fires once at mtime (at once if past)."""

    start_at_once = True
