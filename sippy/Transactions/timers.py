"""The transaction timers on few reactor calls: one per delay in use, not one per timer.

Every transaction arms two to four timers and most are cancelled long before they are due, yet a
cancelled reactor call (Twisted's DelayedCall, some 700 bytes with its bound methods) stays in the
reactor's heap until its time comes: 32 s for timers B, H, J, M. The delays are few (T1 and its
doublings, T4, 64*T1, an INVITE's Expires), and timers of one delay fall due in the order they
were armed, so each delay gets a first-in first-out lane with one reactor call, armed for the
lane's first live timer. A timer is then a small record; cancelling one marks it, and a lane with
no live timer left gives up its reactor call at once (nothing stays pending in the reactor).

A lane fires at most LANE_BATCH timers per reactor call; the rest follow on the next reactor
iteration, after the datagrams that came meanwhile. Timers armed in a burst (the calls of a backlog
answered together) fall due together 32 s later: firing them all at once held every message behind
them (1,100-1,500 in one call, 25-78 ms, in the B2BUA at 500 calls/s).
"""

from __future__ import annotations

from collections import deque
from typing import Any, Callable, Optional

from twisted.python import log

from sippy.Time.Timeout import default_reactor

# Put in a lane's `call` while it runs its due timers: a timer armed meanwhile does not arm the
# lane's reactor call, the run does when it ends.
_RUNNING = object()
# Timers fired in one reactor call at most (see the module text): some 3 ms of work.
LANE_BATCH = 100


class LaneTimer:
    """One armed timer: the lanes' `fire(fn, arg)` at `time`; `active()` and `cancel()` as a
    DelayedCall's."""

    __slots__ = ("time", "fn", "arg", "lane")

    def __init__(self, time: float, fn: Callable[..., Any], arg: Any, lane: _Lane) -> None:
        self.time = time
        self.fn: Optional[Callable[..., Any]] = fn
        self.arg = arg
        self.lane = lane

    def active(self) -> bool:
        return self.fn is not None

    def cancel(self) -> None:
        if self.fn is None:
            return
        self.fn = self.arg = None
        lane = self.lane
        lane.live -= 1
        if lane.live == 0 and lane.call is not _RUNNING:
            lane.owner._stop(lane)


class _Lane:
    __slots__ = ("delay", "entries", "live", "call", "owner")

    def __init__(self, delay: float, owner: TimerLanes) -> None:
        self.delay = delay
        self.entries: deque[LaneTimer] = deque()
        self.live = 0
        self.call: Any = None
        self.owner = owner


class TimerLanes:
    """`callLater(delay, fn, arg)`: `fire(fn, arg)` in delay seconds, for timers that are mostly
    cancelled (see the module text). `fire` keeps a failing fn from the reactor."""

    def __init__(self, reactor: Any, fire: Callable[[Callable[..., Any], Any], None]) -> None:
        self.reactor = reactor
        self.fire = fire
        self._lanes: dict[float, _Lane] = {}

    def callLater(self, delay: float, fn: Callable[..., Any], arg: Any) -> LaneTimer:
        lane = self._lanes.get(delay)
        if lane is None:
            lane = self._lanes[delay] = _Lane(delay, self)
        timer = LaneTimer(self.reactor.seconds() + delay, fn, arg, lane)
        lane.entries.append(timer)
        lane.live += 1
        if lane.call is None:
            lane.call = self.reactor.callLater(delay, self._run, lane)
        return timer

    def _run(self, lane: _Lane) -> None:
        """Fire the lane's due timers in order, at most LANE_BATCH, then arm its call for the next
        live one (at once if it is due already: the reactor reads its sockets first)."""
        lane.call = _RUNNING
        entries = lane.entries
        fired = 0
        try:
            while entries and fired < LANE_BATCH:
                timer = entries[0]
                fn = timer.fn
                if fn is None:
                    entries.popleft()
                    continue
                if timer.time > self.reactor.seconds():
                    break
                entries.popleft()
                arg = timer.arg
                timer.fn = timer.arg = None
                lane.live -= 1
                fired += 1
                self.fire(fn, arg)
        finally:
            lane.call = None
            if lane.live == 0:
                self._stop(lane)
            else:
                while entries[0].fn is None:
                    entries.popleft()
                delay = max(0.0, entries[0].time - self.reactor.seconds())
                lane.call = self.reactor.callLater(delay, self._run, lane)

    def _stop(self, lane: _Lane) -> None:
        """No live timer left in the lane: its reactor call goes, and so does the lane."""
        call, lane.call = lane.call, None
        if call is not None and call.active():
            call.cancel()
        lane.entries.clear()
        if self._lanes.get(lane.delay) is lane:
            del self._lanes[lane.delay]


def _fire_logged(fn: Callable[[Any], Any], arg: Any) -> None:
    try:
        fn(arg)
    except Exception:
        # As Timeout does: a failing callback must not take the reactor down with it.
        log.err(None, f"unhandled exception in timer callback {fn!r}")


def shared_lanes(reactor: Any = None) -> TimerLanes:
    """The lanes of a reactor (None: the global one) for the long, fixed timers a call arms
    outside the transaction manager (a UA's lingering): `fn(arg)`, an exception logged. Kept on
    the reactor itself, so that they live and go with it (a test's Clock)."""
    if reactor is None:
        reactor = default_reactor()
    lanes = getattr(reactor, "_sippy_lanes", None)
    if lanes is None:
        lanes = reactor._sippy_lanes = TimerLanes(reactor, _fire_logged)
    return lanes
