"""The call map's idle tidy: once the last call has left the map and none came for IDLE_TIDY_DELAY
seconds, a full collection (which also empties CPython's free lists, whose blocks pin pymalloc
arenas) and malloc_trim(0) run, so that RSS falls back after a burst (bench/cps.py --hold). That the
collection ran is observed through a cycle of garbage; the automatic collector is off for the test."""

from __future__ import annotations

import gc
import sys
import weakref
from collections.abc import Iterator
from typing import Any, Callable

import pytest
from twisted.internet.task import Clock

from sippy.CallMap import FULL_GC_PERIOD, IDLE_TIDY_DELAY, CallMap


class Call:
    """A call controller as far as the map cares: hashable, can hang up."""

    def disconnect(self, rtime: Any = None) -> None:
        pass


class Node:
    pass


@pytest.fixture
def no_auto_gc() -> Iterator[None]:
    was_enabled = gc.isenabled()
    gc.disable()
    yield
    if was_enabled:
        gc.enable()


def cyclic_garbage() -> Callable[[], Any]:
    """A weak reference to an object kept alive only by a reference cycle."""
    node = Node()
    node.me = node  # type: ignore[attr-defined]
    return weakref.ref(node)


def callmap_with(clock: Clock, *call_ids: str) -> tuple[CallMap, list[Call]]:
    cmap = CallMap({}, lambda *args: None, reactor=clock)
    calls = [Call() for _ in call_ids]
    for cc, call_id in zip(calls, call_ids):
        cmap.addLeg(cc, call_id)
    return cmap, calls


def test_leftovers_are_collected_a_delay_after_the_last_call_left(no_auto_gc: None) -> None:
    clock = Clock()
    cmap, (first, second) = callmap_with(clock, "a", "b")
    leftover = cyclic_garbage()
    cmap.dropCall(first)
    clock.advance(IDLE_TIDY_DELAY * 2)
    assert leftover() is not None  # a call is still up: nothing runs
    cmap.dropCall(second)
    clock.advance(IDLE_TIDY_DELAY - 0.5)
    assert leftover() is not None
    clock.advance(0.5)
    assert leftover() is None
    assert clock.getDelayedCalls() == []


def test_a_call_arriving_within_the_delay_puts_the_tidy_off_until_it_leaves(no_auto_gc: None) -> None:
    clock = Clock()
    cmap, (first,) = callmap_with(clock, "a")
    leftover = cyclic_garbage()
    cmap.dropCall(first)
    clock.advance(IDLE_TIDY_DELAY / 2)
    late = Call()
    cmap.addLeg(late, "c")
    clock.advance(IDLE_TIDY_DELAY)
    assert leftover() is not None  # never a full collection with a call up
    cmap.dropCall(late)
    cmap.dropCall(late)  # idempotent: still one timer
    assert len(clock.getDelayedCalls()) == 1
    clock.advance(IDLE_TIDY_DELAY)
    assert leftover() is None


def test_the_map_empties_twice_within_the_delay_one_tidy_from_the_last(no_auto_gc: None) -> None:
    clock = Clock()
    cmap, (first,) = callmap_with(clock, "a")
    cmap.dropCall(first)
    clock.advance(IDLE_TIDY_DELAY / 2)
    again = Call()
    cmap.addLeg(again, "b")
    cmap.dropCall(again)
    assert len(clock.getDelayedCalls()) == 1
    leftover = cyclic_garbage()
    clock.advance(IDLE_TIDY_DELAY - 0.5)
    assert leftover() is not None
    clock.advance(0.5)
    assert leftover() is None


def test_without_a_reactor_no_timer_is_set(no_auto_gc: None) -> None:
    cmap = CallMap({}, lambda *args: None)
    cc = Call()
    cmap.addLeg(cc, "a")
    cmap.dropCall(cc)
    assert cmap.idle_tidy is None


def test_a_box_that_is_never_idle_still_collects_every_period(no_auto_gc: None) -> None:
    clock = Clock()
    cmap, (first,) = callmap_with(clock, "a")
    leftover = cyclic_garbage()
    clock.advance(FULL_GC_PERIOD - 0.5)
    assert leftover() is not None
    clock.advance(0.5)
    assert leftover() is None  # with the call still up
    again = cyclic_garbage()
    cmap.addLeg(Call(), "b")  # no second timer for a second call
    assert len(clock.getDelayedCalls()) == 1
    clock.advance(FULL_GC_PERIOD)
    assert again() is None


def test_the_periodic_collection_stops_when_the_map_empties(no_auto_gc: None) -> None:
    clock = Clock()
    cmap, (first,) = callmap_with(clock, "a")
    cmap.dropCall(first)
    clock.advance(IDLE_TIDY_DELAY)
    assert clock.getDelayedCalls() == []  # the idle tidy ran; nothing periodic left
    cmap.addLeg(Call(), "b")
    assert len(clock.getDelayedCalls()) == 1  # armed again by the next call


class Manager:
    """The transaction manager as far as the tidy cares."""

    def __init__(self) -> None:
        self.released = 0

    def releaseEmptyTables(self) -> None:
        self.released += 1


def test_the_tidy_gives_back_the_tables_the_burst_grew(no_auto_gc: None) -> None:
    clock = Clock()
    tm = Manager()
    cmap = CallMap({"_sip_tm": tm}, lambda *args: None, reactor=clock)
    calls = [Call() for _ in range(500)]
    for n, cc in enumerate(calls):
        cmap.addLeg(cc, f"{n}-a")
        cmap.addLeg(cc, f"{n}-b")
    for cc in calls:
        cmap.dropCall(cc)
    empty = sys.getsizeof({})
    assert sys.getsizeof(cmap.by_call_id) > empty  # emptied, yet as big as the burst made it
    clock.advance(IDLE_TIDY_DELAY - 0.5)
    assert tm.released == 0
    clock.advance(0.5)
    assert (sys.getsizeof(cmap.by_call_id), sys.getsizeof(cmap.ccmap)) == (empty, empty)
    assert tm.released == 1
    cmap.addLeg(Call(), "next")  # the map works on
    assert list(cmap.by_call_id) == ["next"] and cmap.ncalls_active == 1
