"""`ED2`: Sippy's event-dispatcher API as a thin facade over the Twisted reactor.

Sippy programs drive everything through `ED2.loop()`, `ED2.breakLoop()` and
`ED2.regTimer(cb, ival).go()`; here those map onto reactor.run/stop and `sippy.Time.Timeout`, so
such programs port unchanged and still share the one reactor with Twisted code.
"""

from __future__ import annotations

from typing import Any, Callable, Optional

from twisted.internet.error import ReactorNotRunning

from sippy.Time.MonoTime import MonoTime
from sippy.Time.Timeout import TimeoutAbsMonoInact, TimeoutInact, default_reactor


class EventDispatcher2:
    """Facade over one reactor (the global one unless given, e.g. a Clock in tests)."""

    def __init__(self, reactor: Any = None) -> None:
        self._reactor = reactor
        self.el_rval: Any = None

    @property
    def reactor(self) -> Any:
        # Resolved on use so that a program may install another reactor after importing sippy.
        return self._reactor if self._reactor is not None else default_reactor()

    def regTimer(
        self,
        timeout_cb: Callable[..., Any],
        ival: Any,
        nticks: Optional[int] = 1,
        abs_time: Any = None,
        *cb_params: Any,
    ) -> TimeoutInact:
        """A timer not yet armed: call `.go()` on it. With `abs_time`, ival is a MonoTime."""
        if abs_time:
            if not isinstance(ival, MonoTime):
                raise TypeError("ival is not MonoTime")
            return TimeoutAbsMonoInact(timeout_cb, ival, *cb_params, reactor=self.reactor)
        return TimeoutInact(
            timeout_cb, ival, 1 if nticks is None else nticks, *cb_params, reactor=self.reactor
        )

    def callFromThread(self, thread_cb: Callable[..., Any], *cb_params: Any) -> None:
        self.reactor.callFromThread(thread_cb, *cb_params)

    def loop(self, timeout: Optional[float] = None) -> Any:
        """Run the reactor until `breakLoop()` (or for `timeout` seconds); returns breakLoop's rval.

        A Twisted reactor cannot be restarted, so a program calls loop() once.
        """
        self.el_rval = None
        if timeout is not None:
            self.reactor.callLater(timeout, self._stop)
        self.reactor.run()
        return self.el_rval

    def breakLoop(self, rval: Any = 0) -> None:
        self.el_rval = rval
        if self.reactor.running:
            self._stop()
        else:
            self.reactor.callWhenRunning(self._stop)

    def _stop(self) -> None:
        try:
            self.reactor.stop()
        except ReactorNotRunning:
            # Already stopping (breakLoop called twice, or the loop timeout raced with it).
            pass


ED2 = EventDispatcher2()
