#!/usr/bin/env python3
"""Run b2bua_simple or b2bua_radius with memory and GC instrumentation (used by b2bua.py --mem).

    python bench/b2bua_mem.py REPORT [--tracemalloc] simple|radius [B2BUA flags...]

Writes REPORT when the B2BUA stops: the longest cyclic-GC pauses per generation (what stalls the
reactor long enough for the kernel to drop datagrams), and, every 10 s of the run, the live object
counts by type (top 25), what was garbage in reference cycles and, with --tracemalloc, the
allocation sites that grew since the first
sample (top 25). Instrumentation costs CPU: compare rates only between runs without it.
"""

from __future__ import annotations

import ctypes
import gc
import os
import sys
import time
import tracemalloc
from collections import Counter
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

SAMPLE_EVERY = 10.0


class _Mallinfo2(ctypes.Structure):
    _fields_ = [
        (name, ctypes.c_size_t)
        for name in ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks")
        + ("fordblks", "keepcost")
    ]


def memory_line() -> str:
    """RSS, the blocks Python's allocator holds, and glibc's heap split into in use and free: RSS
    growing while the first two stay flat is fragmentation, not retained objects."""
    with open("/proc/self/status") as f:
        rss = next((int(x.split()[1]) for x in f if x.startswith("VmRSS:")), 0)
    line = f"RSS {rss} KiB, Python allocated blocks {sys.getallocatedblocks()}"
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallinfo2.restype = _Mallinfo2
        mi = libc.mallinfo2()
    except (OSError, AttributeError):
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


def main() -> int:
    args = sys.argv[1:]
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
