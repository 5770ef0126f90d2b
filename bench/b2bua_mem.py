#!/usr/bin/env python3
"""Run b2bua_simple or b2bua_radius with memory and GC instrumentation (used by b2bua.py --mem).

    python bench/b2bua_mem.py REPORT [--tracemalloc] simple|radius [B2BUA flags...]
    python bench/b2bua_mem.py --burst N [--pinned]

Writes REPORT when the B2BUA stops: the longest cyclic-GC pauses per generation (what stalls the
reactor long enough for the kernel to drop datagrams), and, every 10 s of the run, the live object
counts by type (top 25), what was garbage in reference cycles and, with --tracemalloc, the
allocation sites that grew since the first
sample (top 25). Instrumentation costs CPU: compare rates only between runs without it.

--burst N replays the timeline of `bench/cps.py --hold N` in this process, on a clock moved by hand
(bench/call_cpu.py's harness: b2bua_radius's call machinery, no sockets, its idle tidy and GC timer
on that clock): 5 s of calls at 100/s, then N calls placed at 100/s and held 30 s each, then 60 s
after the last one ended. It prints memory_line() at each step (RSS; CPython's small-object arenas,
1 MiB each, whose unused 16 KiB pools stay resident; glibc's heap) in seconds, on a busy machine
too; the arenas left vary by a few from run to run (hash seeds, addresses). --pinned then lists
what holds the nearly empty arenas: a few long-lived small objects made or re-made during the
burst (a re-armed timer, counters) keep a whole arena each. Approximate: a 1 MiB slice of an
anonymous mapping stands for an arena, and only objects the collector tracks and what they refer
to are seen (a dict of strings and numbers is not tracked), so a slice may hold more than listed.
"""

from __future__ import annotations

import ctypes
import gc
import itertools
import os
import re
import sys
import tempfile
import time
import tracemalloc
from collections import Counter
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from b2bua import status_kib  # noqa: E402

SAMPLE_EVERY = 10.0


class _Mallinfo2(ctypes.Structure):
    _fields_ = [
        (name, ctypes.c_size_t)
        for name in ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks")
        + ("fordblks", "keepcost")
    ]


def pymalloc_arenas() -> tuple[int, int]:
    """CPython's small-object arenas allocated now, and the unused pools in them (-1, -1 where
    sys._debugmallocstats says nothing: PyPy, PYTHONMALLOC=malloc, tracemalloc on)."""
    if not hasattr(sys, "_debugmallocstats"):
        return -1, -1
    sys.stderr.flush()
    with tempfile.TemporaryFile("w+") as tf:
        saved = os.dup(2)
        os.dup2(tf.fileno(), 2)
        try:
            sys._debugmallocstats()
        finally:
            os.dup2(saved, 2)
            os.close(saved)
        tf.seek(0)
        text = tf.read()
    arenas = re.search(r"# arenas allocated current\s*=\s*([\d,]+)", text)
    pools = re.search(r"([\d,]+) unused pools \*", text)
    if arenas is None or pools is None:
        return -1, -1
    return int(arenas.group(1).replace(",", "")), int(pools.group(1).replace(",", ""))


def mallinfo() -> Any:
    """glibc's mallinfo2(), or None without glibc."""
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallinfo2.restype = _Mallinfo2
        return libc.mallinfo2()
    except (OSError, AttributeError):
        return None


def memory_line() -> str:
    """RSS, the blocks Python's allocator holds and its arenas, and glibc's heap split into in use
    and free: RSS growing while the blocks stay flat is fragmentation, not retained objects."""
    arenas, unused = pymalloc_arenas()
    line = (
        f"RSS {status_kib(os.getpid())} KiB, Python allocated blocks {sys.getallocatedblocks()} in "
        f"{arenas} arenas ({unused} unused pools)"
    )
    mi = mallinfo()
    if mi is None:
        return line
    return line + f", malloc in use {mi.uordblks // 1024} KiB, free in heap {mi.fordblks // 1024} KiB"


class Recorder:
    """GC pause times (gc.callbacks) and periodic snapshots, written out at the end."""

    def __init__(self, path: str, trace: bool) -> None:
        self.path = path
        self.trace = trace
        self.pauses: dict[int, list[float]] = {0: [], 1: [], 2: []}
        self.t0 = 0.0
        self.lines: list[str] = []
        self.base: Any = None
        self.start = time.monotonic()
        self.sampling = False
        gc.callbacks.append(self.on_gc)

    def on_gc(self, phase: str, info: dict[str, Any]) -> None:
        if self.sampling:
            # The census's own collections are not pauses the B2BUA would have.
            return
        if phase == "start":
            self.t0 = time.perf_counter()
        else:
            self.pauses[info["generation"]].append(time.perf_counter() - self.t0)

    def sample(self) -> None:
        from twisted.internet import reactor

        self.sampling = True
        try:
            self.census()
        finally:
            self.sampling = False
        reactor.callLater(SAMPLE_EVERY, self.sample)

    def census(self) -> None:
        counts = Counter(type(o).__name__ for o in gc.get_objects())
        elapsed = time.monotonic() - self.start
        self.lines.append(f"--- t={elapsed:.0f} s, gc-tracked objects: {sum(counts.values())}")
        self.lines.append("  " + memory_line())
        self.lines += [f"  {n:8d} {name}" for name, n in counts.most_common(25)]
        # What only the cyclic GC can free: collect with DEBUG_SAVEALL and count what it found.
        gc.set_debug(gc.DEBUG_SAVEALL)
        gc.collect()
        garbage = Counter(type(o).__name__ for o in gc.garbage)
        gc.garbage.clear()
        gc.set_debug(0)
        gc.collect()
        self.lines.append(f"  in reference cycles (garbage): {sum(garbage.values())}")
        self.lines += [f"    {n:8d} {name}" for name, n in garbage.most_common(25)]
        if self.trace:
            snap = tracemalloc.take_snapshot()
            if self.base is None:
                self.base = snap
            else:
                self.lines.append("  grown since the first sample (tracemalloc):")
                for stat in snap.compare_to(self.base, "lineno")[:25]:
                    self.lines.append(f"    {stat}")

    def write(self) -> None:
        with open(self.path, "w") as f:
            f.write(f"gc thresholds {gc.get_threshold()}, frozen {gc.get_freeze_count()}\n")
            for gen, pauses in self.pauses.items():
                pauses.sort()
                if pauses:
                    top = ", ".join(f"{p * 1000:.1f}" for p in pauses[-5:])
                    f.write(
                        f"gen{gen}: {len(pauses)} collections, total {sum(pauses) * 1000:.0f} ms, "
                        f"longest (ms): {top}\n"
                    )
            f.write("\n".join(self.lines) + "\n")


def burst(n: int, pinned: bool) -> int:
    """--burst: see the module text."""
    from call_cpu import Harness
    from twisted.internet import reactor

    from sippy.CallMap import tune_gc

    rate, hold, tick = 100, 30.0, 0.01
    h = Harness()
    h.callmap.reactor = reactor  # as the programs build it: the idle tidy runs on the clock
    tune_gc(reactor)

    def show(stage: str) -> None:
        print(f"{stage + ':':<29} {memory_line()}; calls in map {h.callmap.ncalls_active}", flush=True)

    show("start")
    for i in range(5 * rate):
        h.call(i)
        h.advance(tick)
    h.advance(1.5)
    show("warm-up done (calls linger)")
    byes = []
    for i in range(n):
        byes.append(h.call(5 * rate + i, hang_up=False))
        h.advance(tick)
    show(f"{n} calls up")
    h.advance(hold - n * tick)
    while byes:
        byes.pop(0)()
        h.advance(tick)
    show("all ended")
    for _ in range(120):
        h.advance(0.5)
    show("60 s later")
    if pinned:
        print_pinned()
    return 0


def print_pinned(most: int = 50) -> None:
    """The objects seen in each 1 MiB slice of anonymous memory that holds at most `most` of them
    (see the module text for what is not seen)."""
    maps = []
    with open("/proc/self/maps") as f:
        for line in f:
            fields = line.split()
            if len(fields) == 5 and fields[1].startswith("rw"):
                lo, hi = (int(x, 16) for x in fields[0].split("-"))
                maps.append((lo, hi))
    gc.collect()
    gc.unfreeze()
    objs = {id(o): o for o in gc.get_objects()}
    for o in tuple(objs.values()):
        for r in gc.get_referents(o):
            objs.setdefault(id(r), r)
    slices: dict[tuple[int, int], list[Any]] = {}
    for addr, o in objs.items():
        for lo, hi in maps:
            if lo <= addr < hi:
                slices.setdefault((hi, (hi - addr) >> 20), []).append(o)
                break
    ours = {id(objs), id(slices), *map(id, slices.values())}
    for (hi, mib), held in sorted(slices.items(), key=lambda kv: len(kv[1])):
        if len(held) > most:
            break
        kinds = Counter(type(o).__name__ for o in held).most_common(4)
        print(f"{hex(hi)}-{mib} MiB: {len(held)} objects {kinds}")
        for o in itertools.islice(held, 5):
            refs = [type(r).__name__ for r in gc.get_referrers(o) if id(r) not in ours]
            print(f"    {type(o).__name__} {repr(o)[:70]} <- {refs[:3]}")


def main() -> int:
    args = sys.argv[1:]
    if args[:1] == ["--burst"]:
        return burst(int(args[1]), "--pinned" in args[2:])
    report = args.pop(0)
    trace = args[0] == "--tracemalloc"
    if trace:
        args.pop(0)
        tracemalloc.start(4)
    which = args.pop(0)
    rec = Recorder(report, trace)
    from twisted.internet import reactor

    reactor.callWhenRunning(reactor.callLater, 2.0, rec.sample)
    try:
        if which == "radius":
            from sippy.b2bua_radius import main as b2b_main
        else:
            from sippy.b2bua_simple import main as b2b_main
        sys.argv = [which, *args]
        return b2b_main(args)
    finally:
        rec.write()


if __name__ == "__main__":
    sys.exit(main())
