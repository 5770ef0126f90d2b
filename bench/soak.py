#!/usr/bin/env python3
"""Soak: a steady call rate with hold times for a long while, the B2BUA's memory sampled throughout.

    python bench/soak.py [--minutes 10] [--rate 20] [--hold 5000] [--radius [--acct]] [--warmup 90]
        [--flat-minutes 5]

SIPp's uac -> the B2BUA -> SIPp's uas on loopback. Every --sample seconds it prints the time, the
calls completed and up, the B2BUA's RSS and the part of it that is glibc's heap (`[heap]` in
/proc/PID/smaps: what malloc serves beside Python's own arenas; growth there with flat Python
object counts is heap fragmentation). At the end: the RSS once warmed up, at the end of the load
and once the last calls' timers ran out, the growth rate (least-squares slope) since warm-up and
over the last --flat-minutes of the load, and the verdict: "RSS flat after warm-up: PASS" when that
last slope is under FLAT_SLOPE KiB/min. The growth from warm-up to the end of the load is printed
too, but a stall (a sample with many more calls up than rate x hold: a busy machine) steps RSS up
once (the backlog's high-water mark, which Python's arenas keep), so it is no verdict on growth over
time; the stalls are listed. --acct runs a FreeRADIUS (tests/radius_util.py) and b2bua_radius
-A 2 accounting to it. Exit 0 on PASS with every call completed. Not a CI test.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from typing import Any, NamedTuple, Optional

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path[:0] = [HERE, ROOT]

from b2bua import free_udp_port, read_stats, status_kib, stop, wait_listening  # noqa: E402

# After the load: INVITE transactions live 64*T1 (32 s), finished calls linger 32 s.
DRAIN = 70.0
# Largest growth rate over the last --flat-minutes still called flat. A leak of this rate is 360 MiB
# a day; the 64 KiB-per-datagram fragmentation (sippy.DatagramPort) was ~1300 KiB/min at 20 calls/s.
FLAT_SLOPE = 256.0
# More calls up than this many times rate x hold: the B2BUA fell behind (a stall).
STALL_FACTOR = 1.5


class Sample(NamedTuple):
    t: float
    rss: int  # KiB
    heap: int  # KiB of RSS in glibc's [heap]
    up: int  # calls up (SIPp's CurrentCall)


def heap_kib(pid: int) -> int:
    """Resident KiB of the process's [heap] mapping (glibc's main arena)."""
    heap = False
    with open(f"/proc/{pid}/smaps") as f:
        for line in f:
            if heap and line.startswith("Rss:"):
                return int(line.split()[1])
            if line[:1] in "0123456789abcdef" and "-" in line.split(" ", 1)[0]:
                heap = line.rstrip().endswith("[heap]")
    return 0


def slope_kib_per_min(samples: list[Sample]) -> float:
    """Least-squares slope of RSS over time."""
    n = len(samples)
    if n < 2:
        return 0.0
    mt = sum(s.t for s in samples) / n
    mr = sum(s.rss for s in samples) / n
    den = sum((s.t - mt) ** 2 for s in samples)
    return 60.0 * sum((s.t - mt) * (s.rss - mr) for s in samples) / den if den else 0.0


@contextlib.contextmanager
def accounting_server(work: str) -> Iterator[Optional[str]]:
    """A FreeRADIUS and a radiusclient.conf for it (None without --acct)."""
    from tests.radius_util import running_freeradius

    with running_freeradius() as srv:
        yield srv.write_radconf(work, [f"127.0.0.1:{srv.auth_port}"], [f"127.0.0.1:{srv.acct_port}"])


def start_b2bua(opts: Any, port: int, uas_port: int, work: str, radconf: Optional[str]) -> subprocess.Popen:
    name = "radius" if opts.radius else "simple"
    if opts.mem:
        # bench/b2bua_mem.py: object counts, cycle garbage and tracemalloc growth every 10 s.
        cmd = [
            sys.executable,
            os.path.join(HERE, "b2bua_mem.py"),
            os.path.abspath(opts.mem),
            "--tracemalloc",
            name,
        ]
    else:
        cmd = [sys.executable, os.path.join(ROOT, "scripts", f"b2bua_{name}.py")]
    cmd += ["-f", "-l", "127.0.0.1", "-p", str(port)]
    if opts.radius:
        cmd += ["-c", os.path.join(work, "b2bua.sock")]
    if opts.radius:
        cmd += ["-u", "-s", f"127.0.0.1:{uas_port}"]
        if radconf is not None:
            cmd += ["-A", "2", "-R", radconf, "--acct_spool_dir", os.path.join(work, "spool")]
        else:
            cmd += ["-A", "0"]
    else:
        cmd += ["-n", f"127.0.0.1:{uas_port}"]
    env = dict(os.environ, SIPLOG_LVL=os.environ.get("SIPLOG_LVL", "WARN"))
    with open(os.path.join(work, "b2bua.log"), "wb") as log:
        return subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=10.0, help="minutes of load (default 10)")
    ap.add_argument("--rate", type=float, default=20.0, help="calls per second (default 20)")
    ap.add_argument("--hold", type=int, default=5000, help="ms from answer to BYE (default 5000)")
    ap.add_argument("--radius", action="store_true", help="b2bua_radius -u -s instead of b2bua_simple")
    ap.add_argument("--acct", action="store_true", help="with --radius: -A 2 to a FreeRADIUS")
    ap.add_argument(
        "--warmup",
        type=float,
        default=90.0,
        help="seconds before RSS should be flat (default 90: calls linger 64*T1)",
    )
    ap.add_argument("--sample", type=float, default=10.0, help="seconds between samples (default 10)")
    ap.add_argument(
        "--flat-minutes",
        type=float,
        default=5.0,
        help="the verdict's slope is taken over the last this many minutes of the load (default 5)",
    )
    ap.add_argument(
        "--mem",
        metavar="REPORT",
        help="under bench/b2bua_mem.py: objects, cycle garbage, RSS, Python blocks, malloc heap every 10 s",
    )
    opts = ap.parse_args()
    duration = opts.minutes * 60.0
    calls = int(opts.rate * duration)
    work = tempfile.mkdtemp(prefix="bench-soak-")
    port, uas_port = free_udp_port(), free_udp_port()
    b2bua = uas = uac = None
    acct = accounting_server(work) if opts.acct else contextlib.nullcontext(None)
    with acct as radconf:
        try:
            b2bua = start_b2bua(opts, port, uas_port, work, radconf)
            wait_listening(b2bua, port, os.path.join(work, "b2bua.log"))
            sipp = ["sipp", "-i", "127.0.0.1", "-nostdin"]
            uas = subprocess.Popen(
                [*sipp, "-sn", "uas", "-p", str(uas_port), "-mp", str(free_udp_port())],
                cwd=work,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            time.sleep(0.3)
            stat_file = os.path.join(work, "uac.csv")
            uac = subprocess.Popen(
                [*sipp, "-sn", "uac", f"127.0.0.1:{port}", "-p", str(free_udp_port())]
                + ["-mp", str(free_udp_port()), "-r", str(opts.rate), "-m", str(calls), "-d", str(opts.hold)]
                + ["-l", str(int(opts.rate * (opts.hold / 1000.0 + 40)))]
                + ["-trace_stat", "-stf", stat_file, "-fd", "1", "-timeout", f"{int(duration + 120)}s"],
                cwd=work,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            t0 = time.monotonic()
            samples: list[Sample] = []
            print(f"{'t/s':>6} {'done':>7} {'up':>5} {'RSS/MiB':>8} {'heap/MiB':>8}", flush=True)
            while uac.poll() is None and time.monotonic() - t0 < duration + 120:
                time.sleep(opts.sample)
                t, stats = time.monotonic() - t0, read_stats(stat_file)
                up = int(stats.get("CurrentCall", 0))
                sample = Sample(t, status_kib(b2bua.pid), heap_kib(b2bua.pid), up)
                samples.append(sample)
                done = stats.get("SuccessfulCall(C)", "0")
                print(
                    f"{t:6.0f} {done:>7} {up:>5} {sample.rss / 1024:8.1f} {sample.heap / 1024:8.1f}",
                    flush=True,
                )
            end_rss, end_heap = status_kib(b2bua.pid), heap_kib(b2bua.pid)
            time.sleep(DRAIN)
            drained_rss = status_kib(b2bua.pid)
            stats = read_stats(stat_file)
        finally:
            for proc in (uac, uas, b2bua):
                stop(proc)
    warm = [s for s in samples if opts.warmup <= s.t <= duration]
    done, failed = int(stats.get("SuccessfulCall(C)", 0)), int(stats.get("FailedCall(C)", 0))
    name = "b2bua_radius -u -s" + (" -A 2" if opts.acct else "") if opts.radius else "b2bua_simple"
    print(f"B2BUA:              {name}, {opts.rate:g} calls/s, hold {opts.hold} ms, {opts.minutes:g} min")
    print(f"calls completed:    {done} of {calls}, failed {failed}")
    if not warm:
        print("no sample after warm-up: run longer")
        return 1
    first, peak = warm[0], max(s.rss for s in warm)
    last = [s for s in warm if s.t >= duration - 60.0 * opts.flat_minutes]
    mib = "{:.1f} MiB".format
    print(f"RSS after warm-up:  {mib(first.rss / 1024)}, heap {mib(first.heap / 1024)} (t = {first.t:.0f} s)")
    print(f"RSS at end of load: {mib(end_rss / 1024)}, heap {mib(end_heap / 1024)}, peak {mib(peak / 1024)}")
    print(f"RSS after drain:    {mib(drained_rss / 1024)} ({DRAIN:g} s after the load)")
    print(f"growth since warm-up: {slope_kib_per_min(warm):+.1f} KiB/min (least squares)")
    slope = slope_kib_per_min(last)
    span = (last[-1].t - last[0].t) / 60
    print(f"growth over the last {span:.1f} min: {slope:+.1f} KiB/min (limit {FLAT_SLOPE:g})")
    stalls = [s for s in warm if s.up > STALL_FACTOR * opts.rate * opts.hold / 1000.0]
    if stalls:
        print(
            f"stalls (calls up > {STALL_FACTOR:g} x rate x hold): {len(stalls)} samples, at t = "
            + ", ".join(f"{s.t:.0f}" for s in stalls[:10])
            + " s (RSS may step up then: backlog, not growth)"
        )
    flat = slope < FLAT_SLOPE
    print(f"RSS grew {(end_rss - first.rss) / 1024:+.1f} MiB from warm-up to the end of the load")
    print(f"RSS flat after warm-up: {'PASS' if flat else 'FAIL'}")
    return 0 if flat and failed == 0 and done == calls else 1


if __name__ == "__main__":
    sys.exit(main())
