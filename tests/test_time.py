"""MonoTime arithmetic and Timeout/TimeoutAbsMono/ED2 timers driven by a fake clock."""

from __future__ import annotations

import subprocess
import sys
import time

from twisted.internet.task import Clock

from sippy.Core.EventDispatcher import EventDispatcher2
from sippy.Time.MonoTime import MonoTime
from sippy.Time.Timeout import Timeout, TimeoutAbsMono


def test_monotime_tracks_wall_clock_and_orders():
    before = time.time()
    a = MonoTime()
    b = a.offsetCopy(1.5)
    assert abs(a.realt - before) < 1.0
    assert b - a == 1.5
    assert a < b and b > a and a <= a.getCopy() and a == a.getCopy() and a != b
    assert b.realt - a.realt == 1.5
    a.offset(1.5)
    assert a == b
    assert 10.0 - MonoTime(monot=4.0) == 6.0
    assert MonoTime(monot=4.0) - 1.0 == 3.0


def test_monotime_formats():
    m = MonoTime(monot=0.0, realt=1732600222.123)
    assert m.ftime() == "2024-11-26 05:50:22+00"
    assert m.frtime() == "05:50:22.000 GMT Tue Nov 26 2024"
    assert m.fptime().endswith(".123")
    assert str(m) == "1732600222.123000-0.000000"


def test_monotime_from_realt_maps_back():
    now = MonoTime()
    m = MonoTime(realt=now.realt)
    assert abs(m.monot - now.monot) < 1e-6


def test_timeout_one_shot_with_params():
    clock = Clock()
    got = []
    Timeout(got.append, 2.0, 1, "x", reactor=clock)
    clock.advance(1.9)
    assert got == []
    clock.advance(0.2)
    assert got == ["x"]
    clock.advance(10)
    assert got == ["x"]


def test_timeout_periodic_counts_and_forever():
    clock = Clock()
    three, forever = [], []
    Timeout(lambda: three.append(clock.seconds()), 1.0, 3, reactor=clock)
    t = Timeout(lambda: forever.append(1), 0.5, -1, reactor=clock)
    for _ in range(20):
        clock.advance(0.5)
    assert three == [1.0, 2.0, 3.0]
    assert len(forever) == 20
    t.cancel()
    clock.advance(5)
    assert len(forever) == 20


def test_timeout_cancel_idempotent_and_from_callback():
    clock = Clock()
    got = []
    t = Timeout(got.append, 1.0, 1, 1, reactor=clock)
    t.cancel()
    t.cancel()
    clock.advance(2)
    assert got == []

    def cb():
        got.append(2)
        holder[0].cancel()

    holder = [Timeout(cb, 1.0, -1, reactor=clock)]
    clock.advance(1)
    clock.advance(1)
    assert got == [2]
    assert clock.getDelayedCalls() == []


def test_timeout_callback_exception_does_not_stop_periodic_timer():
    clock = Clock()
    runs = []

    def bad():
        runs.append(1)
        raise ValueError("boom")

    t = Timeout(bad, 1.0, -1, reactor=clock)
    clock.advance(1)
    clock.advance(1)
    assert len(runs) == 2
    t.cancel()


def test_timeout_spread_runs_keeps_intervals_within_bounds():
    clock = Clock()
    times = []
    ed = EventDispatcher2(reactor=clock)
    t = ed.regTimer(lambda: times.append(clock.seconds()), 10.0, -1)
    t.spread_runs(0.1)
    t.go()
    for _ in range(400):
        clock.advance(0.25)
    gaps = [b - a for a, b in zip([0.0] + times, times)]
    assert len(gaps) >= 8
    assert all(8.9 <= g <= 11.1 for g in gaps)
    assert len({round(g, 3) for g in gaps}) > 1
    t.cancel()


def test_timeout_abs_mono_fires_at_monotime():
    clock = Clock()
    got = []
    TimeoutAbsMono(got.append, MonoTime().offsetCopy(5.0), "due", reactor=clock)
    TimeoutAbsMono(got.append, MonoTime().offsetCopy(-1.0), "past", reactor=clock)
    clock.advance(0)
    assert got == ["past"]
    clock.advance(4.8)
    assert got == ["past"]
    clock.advance(0.5)
    assert got == ["past", "due"]


def test_ed2_regtimer_not_started_until_go():
    clock = Clock()
    ed = EventDispatcher2(reactor=clock)
    got = []
    t = ed.regTimer(got.append, 1.0, 1, None, "a")
    clock.advance(2)
    assert got == []
    t.go()
    clock.advance(1)
    assert got == ["a"]
    abs_t = ed.regTimer(got.append, MonoTime().offsetCopy(3.0), None, True, "abs").go()
    clock.advance(2.5)
    assert got == ["a"]
    clock.advance(1)
    assert got == ["a", "abs"]
    abs_t.cancel()


def test_ed2_loop_break_and_callfromthread_in_real_reactor():
    """ED2.loop() runs the global reactor until breakLoop(); its rval is loop()'s result."""
    prog = (
        "import sys\n"
        "from sippy.Core.EventDispatcher import ED2\n"
        "from sippy.Time.Timeout import Timeout\n"
        "seen = []\n"
        "ED2.callFromThread(seen.append, 'cft')\n"
        "ED2.regTimer(lambda: ED2.breakLoop(7 if seen == ['cft'] else 1), 0.05).go()\n"
        "rval = ED2.loop()\n"
        "sys.exit(rval)\n"
    )
    p = subprocess.run([sys.executable, "-c", prog], timeout=10, capture_output=True)
    assert p.returncode == 7, p.stderr


def test_ed2_loop_timeout_returns_without_breakloop():
    prog = (
        "import sys\n"
        "from sippy.Core.EventDispatcher import ED2\n"
        "sys.exit(3 if ED2.loop(timeout=0.1) is None else 4)\n"
    )
    p = subprocess.run([sys.executable, "-c", prog], timeout=10, capture_output=True)
    assert p.returncode == 3, p.stderr
