"""TimerLanes (the transaction timers) on a Clock: when each timer fires, what cancelling does,
and that nothing is left pending in the reactor."""

from __future__ import annotations

from typing import Any

from twisted.internet.task import Clock
from twisted.python import log

from sippy.Transactions.timers import LANE_BATCH, TimerLanes, shared_lanes


def lanes() -> tuple[TimerLanes, Clock, list[tuple[float, Any]]]:
    clock = Clock()
    fired: list[tuple[float, Any]] = []
    return TimerLanes(clock, lambda fn, arg: fn(arg)), clock, fired


def test_each_timer_fires_once_at_its_time_in_order_across_delays() -> None:
    tl, clock, fired = lanes()

    def note(arg: Any) -> None:
        fired.append((clock.seconds(), arg))

    tl.callLater(32.0, note, "h1")
    tl.callLater(0.5, note, "g1")
    clock.advance(0.25)
    tl.callLater(32.0, note, "h2")
    tl.callLater(0.5, note, "g2")
    clock.advance(1.0)
    assert fired == [(1.25, "g1"), (1.25, "g2")]
    fired.clear()
    clock.pump([0.25] * 200)
    assert fired == [(32.0, "h1"), (32.25, "h2")]
    assert clock.getDelayedCalls() == []


def test_a_lane_fires_at_most_a_batch_per_reactor_call_and_goes_on_at_once() -> None:
    tl, clock, fired = lanes()
    order: list[int] = []
    for n in range(2 * LANE_BATCH + 5):
        tl.callLater(32.0, order.append, n)
    # All due together; the reactor's calls run one at a time (the reactor reads its sockets between).
    clock.rightNow += 40.0
    after_each = []
    while clock.calls:
        call = clock.calls.pop(0)
        assert call.getTime() in (32.0, 40.0)  # the first as armed, the rest at once
        call.func(*call.args, **call.kw)
        after_each.append(len(order))
    assert after_each == [LANE_BATCH, 2 * LANE_BATCH, 2 * LANE_BATCH + 5]
    assert order == list(range(2 * LANE_BATCH + 5))


def test_cancelled_timers_never_fire_and_an_empty_lane_leaves_no_reactor_call() -> None:
    tl, clock, fired = lanes()
    a = tl.callLater(5.0, fired.append, "a")
    b = tl.callLater(5.0, fired.append, "b")
    tl.callLater(5.0, fired.append, "c")
    assert len(clock.getDelayedCalls()) == 1, "one reactor call per delay"
    a.cancel()
    a.cancel()  # twice is harmless, as DelayedCall.active() guards it in callers
    assert not a.active() and b.active()
    clock.advance(5.0)
    assert fired == ["b", "c"] and not b.active()
    d = tl.callLater(5.0, fired.append, "d")
    d.cancel()
    assert clock.getDelayedCalls() == []
    clock.advance(10.0)
    assert fired == ["b", "c"]


def test_timer_armed_by_a_firing_timer_of_the_same_lane() -> None:
    tl, clock, fired = lanes()

    def again(n: int) -> None:
        fired.append((clock.seconds(), n))
        if n < 3:
            tl.callLater(2.0, again, n + 1)

    tl.callLater(2.0, again, 1)
    clock.pump([1.0] * 10)
    assert fired == [(2.0, 1), (4.0, 2), (6.0, 3)]
    assert clock.getDelayedCalls() == []


def test_head_cancelled_lane_rearms_for_the_next_live_timer() -> None:
    tl, clock, fired = lanes()
    first = tl.callLater(4.0, fired.append, "first")
    clock.advance(1.0)
    tl.callLater(4.0, fired.append, "second")
    first.cancel()
    clock.advance(3.0)
    assert fired == []
    clock.advance(1.0)
    assert fired == ["second"] and clock.getDelayedCalls() == []


def test_a_failing_timer_does_not_stop_the_lane() -> None:
    clock = Clock()
    fired: list[str] = []

    def fire(fn: Any, arg: Any) -> None:
        try:
            fn(arg)
        except ZeroDivisionError:
            fired.append("failed")

    tl = TimerLanes(clock, fire)
    tl.callLater(1.0, lambda arg: 1 / 0, None)
    tl.callLater(1.0, fired.append, "next")
    clock.advance(1.0)
    assert fired == ["failed", "next"] and clock.getDelayedCalls() == []


def test_shared_lanes_belong_to_their_reactor_and_log_a_failing_timer() -> None:
    clock, other = Clock(), Clock()
    assert shared_lanes(clock) is shared_lanes(clock)
    assert shared_lanes(other) is not shared_lanes(clock)
    fired: list[str] = []
    errors: list[Any] = []
    log.addObserver(errors.append)
    try:
        shared_lanes(clock).callLater(32.0, lambda arg: 1 / 0, None)
        shared_lanes(clock).callLater(32.0, fired.append, "after")
        clock.advance(32.0)
    finally:
        log.removeObserver(errors.append)
    assert fired == ["after"] and clock.getDelayedCalls() == []
    assert any(e.get("isError") for e in errors)
    assert other.getDelayedCalls() == []
