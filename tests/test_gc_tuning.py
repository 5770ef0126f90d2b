"""The B2BUA programs' collector settings (sippy.CallMap.tune_gc): the older generations are never
collected automatically, and the young one is also collected on a reactor timer, since CPython's
allocation count stays low once calls end as fast as they start (the young generation would grow
for seconds and take one long pass)."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator
from typing import Any

import pytest
from twisted.internet.task import Clock

from sippy.CallMap import GC_THRESHOLDS, GC_YOUNG_EVERY, tune_gc

pytestmark = pytest.mark.skipif(not hasattr(gc, "freeze"), reason="CPython's collector only")


class Node:
    pass


@pytest.fixture
def passes() -> Iterator[list[int]]:
    """The generations collected while the test runs; the collector's settings restored after."""
    thresholds, was_enabled = gc.get_threshold(), gc.isenabled()
    seen: list[int] = []

    def on_gc(phase: str, info: dict[str, Any]) -> None:
        if phase == "stop":
            seen.append(info["generation"])

    gc.callbacks.append(on_gc)
    yield seen
    gc.callbacks.remove(on_gc)
    gc.unfreeze()
    gc.set_threshold(*thresholds)
    if was_enabled:
        gc.enable()


def test_the_young_generation_is_collected_every_interval(passes: list[int]) -> None:
    clock = Clock()
    timer = tune_gc(clock)
    assert timer is not None
    assert gc.get_threshold() == GC_THRESHOLDS
    gc.disable()  # only the timer collects now
    node = Node()
    node.me = node  # type: ignore[attr-defined]
    leftover = weakref.ref(node)
    del node
    passes.clear()
    clock.advance(GC_YOUNG_EVERY * 0.9)
    assert passes == [] and leftover() is not None
    clock.advance(GC_YOUNG_EVERY * 0.1)
    assert passes == [0] and leftover() is None
    clock.advance(GC_YOUNG_EVERY * 3)
    assert passes == [0] * 4
    timer.cancel()


def test_no_timer_without_a_reactor(passes: list[int]) -> None:
    assert tune_gc() is None
    assert gc.get_threshold() == GC_THRESHOLDS
