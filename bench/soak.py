#!/usr/bin/env python3
"""Soak: a steady call rate with hold times for a long while, the B2BUA's memory sampled throughout.

    python bench/soak.py [--minutes 10] [--rate 20] [--hold 5000] [--radius [--acct]] [--warmup 90]

SIPp's uac -> the B2BUA -> SIPp's uas on loopback. Every --sample seconds it prints the time, the
calls completed and up, and the B2BUA's RSS; at the end the RSS once warmed up, at the end of the
load and once the last calls' timers ran out, and the growth rate after warm-up (a least-squares
slope). --acct runs a FreeRADIUS (tests/radius_util.py) and b2bua_radius -A 2 accounting to it.
Exit 0 when every call completed and RSS stayed flat: from the first sample after warm-up to the
end of the load it grew less than 5 % or 4 MiB, whichever is more. Not a CI test.
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
from typing import Any, Optional

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path[:0] = [HERE, ROOT]

from b2bua import free_udp_port, read_stats, stop, wait_listening  # noqa: E402

# After the load: INVITE transactions live 64*T1 (32 s), finished calls linger 32 s.
DRAIN = 70.0
FLAT_SHARE = 0.05
FLAT_KIB = 4096


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def slope_kib_per_min(samples: list[tuple[float, int]]) -> float:
    """Least-squares slope of RSS over time."""
    n = len(samples)
    if n < 2:
        return 0.0
    mt = sum(t for t, _ in samples) / n
    mr = sum(r for _, r in samples) / n
    den = sum((t - mt) ** 2 for t, _ in samples)
    return 60.0 * sum((t - mt) * (r - mr) for t, r in samples) / den if den else 0.0


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
            samples: list[tuple[float, int]] = []
            print(f"{'t/s':>6} {'done':>7} {'up':>5} {'RSS/MiB':>8}", flush=True)
            while uac.poll() is None and time.monotonic() - t0 < duration + 120:
                time.sleep(opts.sample)
                t, rss, stats = time.monotonic() - t0, rss_kib(b2bua.pid), read_stats(stat_file)
                samples.append((t, rss))
                done, up = stats.get("SuccessfulCall(C)", "0"), stats.get("CurrentCall", "0")
                print(f"{t:6.0f} {done:>7} {up:>5} {rss / 1024:8.1f}", flush=True)
            end_rss = rss_kib(b2bua.pid)
            time.sleep(DRAIN)
            drained_rss = rss_kib(b2bua.pid)
            stats = read_stats(stat_file)
        finally:
            for proc in (uac, uas, b2bua):
                stop(proc)
    warm = [(t, r) for t, r in samples if opts.warmup <= t <= duration]
    done, failed = int(stats.get("SuccessfulCall(C)", 0)), int(stats.get("FailedCall(C)", 0))
    name = "b2bua_radius -u -s" + (" -A 2" if opts.acct else "") if opts.radius else "b2bua_simple"
    print(f"B2BUA:              {name}, {opts.rate:g} calls/s, hold {opts.hold} ms, {opts.minutes:g} min")
    print(f"calls completed:    {done} of {calls}, failed {failed}")
    if not warm:
        print("no sample after warm-up: run longer")
        return 1
    first, peak = warm[0][1], max(r for _, r in warm)
    slope = slope_kib_per_min(warm)
    print(f"RSS after warm-up:  {first / 1024:.1f} MiB (t = {warm[0][0]:.0f} s)")
    print(f"RSS at end of load: {end_rss / 1024:.1f} MiB, peak after warm-up {peak / 1024:.1f} MiB")
    print(f"RSS after drain:    {drained_rss / 1024:.1f} MiB ({DRAIN:g} s after the load)")
    print(f"growth after warm-up: {slope:+.1f} KiB/min (least squares)")
    growth = end_rss - first
    flat = growth < max(FLAT_SHARE * first, FLAT_KIB)
    print("RSS flat after warm-up" if flat else f"RSS GREW by {growth / 1024:.1f} MiB")
    return 0 if flat and failed == 0 and done == calls else 1


if __name__ == "__main__":
    sys.exit(main())
