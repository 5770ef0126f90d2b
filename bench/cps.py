#!/usr/bin/env python3
"""Calls per second, step by step: SIPp UAC -> b2bua_radius -> SIPp UAS on loopback.

    python bench/cps.py [--steps 200,400,600,800,1000] [--step-time 10] [--reference]
    python bench/cps.py --hold 2000 [--after 60] [--reference]

The B2BUA is `scripts/b2bua_radius.py -f -u -A 0 -s <the UAS>` with SIPLOG_LVL=ERR (--log-info FILE:
INFO to a file). Each step offers one call rate for --step-time seconds with a fresh SIPp caller
(calls of --call-length ms: INVITE, 100, 180, 200, ACK, BYE, 200) and prints what happened
(see COLUMNS).
Then the highest clean rate: every call completed and no message retransmitted by either SIPp.
--reference runs the same steps, interleaved in the same run, against Sippy 2.5.0 from PyPI (in a
virtualenv of its own, bench/reference.py) and prints the ratios. --hold N measures memory instead:
N calls held at once, the B2BUA's RSS per call, and its RSS --after seconds after they ended.
--workers N and --python PY go to this project's B2BUA; --python twice or more (e.g. CPython and
PyPy) runs one B2BUA per interpreter, --workers twice or more (e.g. 1 and 2) one per group size,
side by side; with --workers the caller uses a socket per call (SIPp -t un) on every side, since the
calls of one socket all reach one worker. Ratios are to the reference, else to the first B2BUA.
Not part of the test suite.
"""

from __future__ import annotations

import argparse
import dataclasses
import glob
import math
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from typing import Optional

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)

import reference  # noqa: E402
from b2bua import (  # noqa: E402
    cpu_seconds,
    failure_reasons,
    free_udp_port,
    read_stats,
    status_kib,
    stop,
    wait_listening,
)

COLUMNS = """\
columns:
  rate      calls per second offered by the SIPp caller for the step
  calls     calls the caller attempted; ok: completed (BYE answered); fail: failed or never finished
  rtx uac   messages the caller retransmitted (INVITE/BYE not answered within 500 ms)
  rtx uas   messages the callee retransmitted (its 200 not ACKed in time)
  p50, p99  setup latency, INVITE sent to 200 received at the caller, in ms (SIPp's coarse clock:
            steps of the kernel tick, 4 ms at 250 Hz, so 0 is under 4 ms)
  CPU%      B2BUA CPU time over the --step-time seconds of offered load, 100 = one core (all its
            processes)
  wait%     B2BUA time runnable but waiting for a CPU (taken by other processes), same scale: on a
            shared machine, a step whose p99 is high with it high measured the machine
  ms/call   B2BUA CPU time per completed call (to the end of the step's last call)
  RSS       B2BUA resident memory at the end of the step, MiB (summed over its processes)
  load      the machine's load average (1 min) at the end of the step: above the CPUs' count, the
            B2BUA and SIPp wait for a CPU, and latency shows it
  clean     every call completed and nothing retransmitted"""

# A step whose calls mostly failed means the B2BUA is past saturation: higher steps only time out.
GIVE_UP_SHARE = 0.1
# The callee: SIPp's built-in uas without `;transport=UDP` in its Contact, which Sippy 2.5.0 cannot
# send to (RuntimeError "unsupported transport: UDP" on the BYE to the callee: it checks lower case).
UAS_CONTACT_TRANSPORT = ";transport=[transport]"
# The caller: SIPp's built-in uac with its messages in SIPp transactions (start_txn/response_txn),
# so that a 100 or 180 arriving after the 200 is ignored rather than failing the call: Sippy 2.5.0
# sends from a pool of threads and at times delivers them in that order. Anything else unexpected
# (a late final response) still fails the call. (attribute added, in the order they occur)
UAC_TXNS = (
    ('<send retrans="500">', 'start_txn="invite"'),
    ('<recv response="100"', 'response_txn="invite"'),
    ('<recv response="180"', 'response_txn="invite"'),
    ('<recv response="183"', 'response_txn="invite"'),
    ('<recv response="200" rtd="true"', 'response_txn="invite"'),
    ("<send>", 'ack_txn="invite"'),
    ('<send retrans="500">', 'start_txn="bye"'),
    ('<recv response="200" crlf="true"', 'response_txn="bye"'),
)
# The label of --direct's side: SIPp calling SIPp, no B2BUA.
DIRECT = "SIPp direct"
# SIPp's INVITE gives up after 64*T1 (32 s): long enough for the calls of an overloaded step to end.
UAC_GRACE = 40.0


@dataclasses.dataclass
class StepResult:
    rate: float
    calls: int
    attempted: int = 0
    completed: int = 0
    failed: int = 0
    rtx_uac: int = 0
    rtx_uas: int = 0
    p50: Optional[float] = None
    p99: Optional[float] = None
    cpu: float = 0.0
    wall: float = 0.0
    load_cpu: float = 0.0
    load_wait: float = 0.0
    load_wall: float = 0.0
    rss_kib: int = 0
    load: float = 0.0
    reasons: str = ""

    @property
    def clean(self) -> bool:
        return self.completed == self.calls and self.rtx_uac == 0 and self.rtx_uas == 0

    @property
    def overloaded(self) -> bool:
        return self.calls - self.completed > GIVE_UP_SHARE * self.calls

    @property
    def cpu_ms_per_call(self) -> Optional[float]:
        return 1000.0 * self.cpu / self.completed if self.completed else None


def group_pids(root: int) -> list[int]:
    """root and its descendants (a B2BUA with --workers is a process group)."""
    children: dict[int, list[int]] = {}
    for stat in glob.glob("/proc/[0-9]*/stat"):
        try:
            with open(stat) as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except OSError:
            continue
        children.setdefault(ppid, []).append(int(stat.split("/")[2]))
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo += children.get(pid, [])
    return out


def group_cpu(root: int) -> float:
    total = 0.0
    for pid in group_pids(root):
        try:
            total += cpu_seconds(pid)
        except OSError:
            pass
    return total


def group_cpu_wait(root: int) -> float:
    """Seconds root and its descendants spent runnable but waiting for a CPU (the second field of
    /proc/PID/schedstat, main threads): what a busy machine adds to the B2BUA's latency."""
    total = 0.0
    for pid in group_pids(root):
        try:
            with open(f"/proc/{pid}/schedstat") as f:
                total += int(f.read().split()[1]) / 1e9
        except (OSError, IndexError, ValueError):
            pass
    return total


def group_rss_kib(root: int) -> int:
    total = 0
    for pid in group_pids(root):
        try:
            total += status_kib(pid)
        except OSError:
            pass
    return total


def percentile(values: list[float], share: float) -> Optional[float]:
    """Nearest-rank percentile; None without values."""
    if not values:
        return None
    values = sorted(values)
    return values[min(len(values), max(1, math.ceil(share * len(values)))) - 1]


def setup_times(work: str) -> list[float]:
    """INVITE-to-200 times (ms) from SIPp's -trace_rtt file(s) in work."""
    out: list[float] = []
    for path in glob.glob(os.path.join(work, "uac_*_rtt.csv")):
        with open(path) as f:
            next(f, None)
            for line in f:
                parts = line.strip().split(";")
                if len(parts) >= 2:
                    out.append(float(parts[1]))
    return out


def uas_scenario() -> str:
    """SIPp's built-in uas scenario without the transport parameter in its Contact."""
    # (sipp -sd exits 99 after printing the scenario.)
    xml = subprocess.run(["sipp", "-sd", "uas"], capture_output=True, text=True, timeout=10).stdout
    assert UAS_CONTACT_TRANSPORT in xml, "sipp -sd uas: no Contact transport parameter to drop"
    return xml.replace(UAS_CONTACT_TRANSPORT, "")


def uac_scenario() -> str:
    """SIPp's built-in uac scenario with its INVITE and BYE transactions named (UAC_TXNS)."""
    xml = subprocess.run(["sipp", "-sd", "uac"], capture_output=True, text=True, timeout=10).stdout
    pos = 0
    for tag, attr in UAC_TXNS:
        at = xml.index(tag, pos)
        end = at + len(tag) - (1 if tag.endswith(">") else 0)
        xml = xml[:end] + " " + attr + xml[end:]
        pos = end
    return xml


def implementation(python: str) -> str:
    """'CPython 3.11', 'PyPy 3.9': which interpreter `python` is."""
    probe = "import platform; print(platform.python_implementation(), *platform.python_version_tuple()[:2])"
    out = subprocess.run([python, "-c", probe], capture_output=True, text=True, timeout=60, check=True)
    impl, major, minor = out.stdout.split()
    return f"{impl} {major}.{minor}"


class Side:
    """One B2BUA under test with its SIPp callee, alive for the whole run."""

    def __init__(self, label: str, cmd: list[str], env: dict[str, str], work: str) -> None:
        self.label = label
        self.work = work
        os.makedirs(work, exist_ok=True)
        self.port, self.uas_port = free_udp_port(), free_udp_port()
        # An empty cmd: no B2BUA, SIPp calls SIPp (--direct).
        self.cmd = cmd + ["-f", "-u", "-A", "0", "-s", f"127.0.0.1:{self.uas_port}"] if cmd else []
        if cmd:
            self.cmd += ["-l", "127.0.0.1", "-p", str(self.port), "-c", os.path.join(work, "ctl.sock")]
        self.env = env
        self.logpath = os.path.join(work, "b2bua.log")
        self.proc: Optional[subprocess.Popen[bytes]] = None
        self.uas: Optional[subprocess.Popen[bytes]] = None
        self.uas_stats = os.path.join(work, "uas.csv")
        self.uac_scenario = os.path.join(work, "uac.xml")
        self.steps: list[StepResult] = []
        self.given_up = False
        # Extra arguments of the SIPp caller (e.g. a socket per call, see --workers).
        self.uac_args: list[str] = []

    def start(self) -> None:
        if self.cmd:
            with open(self.logpath, "wb") as log:
                self.proc = subprocess.Popen(
                    self.cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=self.env
                )
            wait_listening(self.proc, self.port, self.logpath, timeout=60.0)
        scenario = os.path.join(self.work, "uas.xml")
        with open(scenario, "w") as f:
            f.write(uas_scenario())
        with open(self.uac_scenario, "w") as f:
            f.write(uac_scenario())
        self.uas = subprocess.Popen(
            [
                "sipp",
                "-sf",
                scenario,
                "-i",
                "127.0.0.1",
                "-p",
                str(self.uas_port),
                "-mp",
                str(free_udp_port()),
            ]
            + ["-nostdin", "-trace_stat", "-stf", self.uas_stats, "-fd", "1"],
            cwd=self.work,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        if not self.cmd:
            # No B2BUA (--direct): the caller calls the callee, whose CPU and RSS the rows show.
            self.proc, self.port = self.uas, self.uas_port
        time.sleep(0.5)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def uas_retransmissions(self) -> int:
        return int(read_stats(self.uas_stats).get("Retransmissions(C)", 0) or 0)

    def uac(
        self, work: str, rate: float, calls: int, call_ms: int, limit: int, timeout: float
    ) -> subprocess.Popen:
        os.makedirs(work, exist_ok=True)
        cmd = ["sipp", "-sf", self.uac_scenario, f"127.0.0.1:{self.port}", "-i", "127.0.0.1", "-nostdin"]
        cmd += ["-p", str(free_udp_port()), "-mp", str(free_udp_port()), "-r", f"{rate:g}", "-m", str(calls)]
        cmd += ["-d", str(call_ms), "-l", str(limit), "-timeout", f"{int(timeout)}s", *self.uac_args]
        cmd += [
            "-trace_stat",
            "-stf",
            os.path.join(work, "uac.csv"),
            "-fd",
            "1",
            "-trace_rtt",
            "-rtt_freq",
            "1",
            "-trace_err",
        ]
        return subprocess.Popen(cmd, cwd=work, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def run_calls(self, name: str, rate: float, seconds: float, call_ms: int) -> StepResult:
        """One step: `rate` calls/s for `seconds`, measured."""
        assert self.proc is not None
        calls = max(1, int(rate * seconds))
        res = StepResult(rate=rate, calls=calls)
        work = os.path.join(self.work, name)
        rtx0, cpu0, t0 = self.uas_retransmissions(), group_cpu(self.proc.pid), time.monotonic()
        wait0 = group_cpu_wait(self.proc.pid)
        uac = self.uac(work, rate, calls, call_ms, max(1000, int(rate * 64)), seconds + UAC_GRACE)
        try:
            try:
                uac.wait(seconds)
            except subprocess.TimeoutExpired:
                pass
            # The load's own share of a core, before the tail of slow calls dilutes it.
            res.load_cpu, res.load_wall = group_cpu(self.proc.pid) - cpu0, time.monotonic() - t0
            res.load_wait = group_cpu_wait(self.proc.pid) - wait0
            uac.wait(seconds + UAC_GRACE + 10)
        except subprocess.TimeoutExpired:
            # SIPp past its own -timeout (a B2BUA far past saturation): what it counted so far.
            pass
        finally:
            stop(uac)
        res.wall = time.monotonic() - t0
        res.cpu = group_cpu(self.proc.pid) - cpu0
        res.rss_kib = group_rss_kib(self.proc.pid)
        res.load = os.getloadavg()[0]
        stats = read_stats(os.path.join(work, "uac.csv"))
        res.attempted = int(stats.get("TotalCallCreated", 0) or 0)
        res.completed = int(stats.get("SuccessfulCall(C)", 0) or 0)
        res.failed = calls - res.completed
        res.rtx_uac = int(stats.get("Retransmissions(C)", 0) or 0)
        res.reasons = failure_reasons(stats)
        times = setup_times(work)
        res.p50, res.p99 = percentile(times, 0.5), percentile(times, 0.99)
        # The callee's statistics are written every second: wait for the row after the step.
        time.sleep(1.2)
        res.rtx_uas = self.uas_retransmissions() - rtx0
        return res

    def stop(self) -> None:
        stop(self.uas)
        stop(self.proc)


def fmt(value: Optional[float], spec: str = ".0f") -> str:
    return "-" if value is None else format(value, spec)


def step_row(label: str, width: int, r: StepResult) -> str:
    return (
        f"{r.rate:6g}  {label:<{width}} {r.attempted:7d} {r.completed:7d} {r.failed:5d}"
        f" {r.rtx_uac:7d} {r.rtx_uas:7d}"
        f" {fmt(r.p50):>5} {fmt(r.p99):>5} {r.load_cpu / r.load_wall * 100 if r.load_wall else 0:6.1f}"
        f" {r.load_wait / r.load_wall * 100 if r.load_wall else 0:6.1f}"
        f" {fmt(r.cpu_ms_per_call, '.2f'):>7} {r.rss_kib / 1024:7.1f} {r.load:5.2f}"
        f"  {'yes' if r.clean else 'NO'}"
    )


def header(width: int) -> str:
    return (
        f"{'rate':>6}  {'B2BUA':<{width}} {'calls':>7} {'ok':>7} {'fail':>5} {'rtx uac':>7} {'rtx uas':>7}"
        f" {'p50':>5} {'p99':>5} {'CPU%':>6} {'wait%':>6} {'ms/call':>7} {'RSS':>7} {'load':>5}  clean"
    )


def ratio(a: Optional[float], b: Optional[float]) -> str:
    return f"{a / b:.2f}x" if a and b else "-"


def highest_clean(side: Side) -> Optional[StepResult]:
    clean = [r for r in side.steps if r.clean]
    return max(clean, key=lambda r: r.rate) if clean else None


def summary(sides: list[Side], baseline: Side) -> None:
    print()
    best: dict[str, Optional[StepResult]] = {}
    for side in sides:
        top = best[side.label] = highest_clean(side)
        if top is None:
            print(f"highest clean rate, {side.label}: none (no step was clean)")
            continue
        note = ""
        if top is side.steps[-1] and not side.given_up:
            note = " (the highest step offered: add higher --steps to find the limit)"
        unclean_below = [f"{r.rate:g}" for r in side.steps if r.rate < top.rate and not r.clean]
        if unclean_below:
            note += f" (but not clean at {', '.join(unclean_below)}: noise? rerun)"
        print(f"highest clean rate, {side.label}: {top.rate:g} calls/s{note}")
        half = min(side.steps, key=lambda r: abs(r.rate - top.rate / 2))
        print(
            f"  p99 setup latency at the step nearest half of it ({half.rate:g} calls/s): {fmt(half.p99)} ms"
        )
    ref = best[baseline.label]
    for side in sides:
        if side is not baseline and side.cmd:
            top = best[side.label]
            print(
                f"highest clean rate, {side.label} / {baseline.label}: "
                f"{ratio(top.rate if top else None, ref.rate if ref else None)}"
            )


def run_steps(opts: argparse.Namespace, sides: list[Side], baseline: Side) -> None:
    rates = [float(x) for x in opts.steps.split(",") if x.strip()]
    if opts.warmup > 0:
        for side in sides:
            r = side.run_calls("warmup", rates[0], opts.warmup, opts.call_length)
            print(
                f"warm-up, {side.label}: {r.completed} of {r.calls} calls at {rates[0]:g}/s (not counted)",
                flush=True,
            )
    print(COLUMNS)
    print()
    width = max(len(side.label) for side in sides)
    print(header(width), flush=True)
    for i, rate in enumerate(rates):
        for side in sides:
            if side.given_up or not side.alive():
                continue
            if i and opts.pause:
                time.sleep(opts.pause)
            r = side.run_calls(f"step-{i}-{rate:g}", rate, opts.step_time, opts.call_length)
            side.steps.append(r)
            print(step_row(side.label, width, r), flush=True)
            if r.reasons:
                print(f"{'':8}{side.label}: failed calls, as SIPp's caller counted them: {r.reasons}")
            if r.overloaded and not opts.all_steps:
                side.given_up = True
                print(f"        {side.label}: most calls failed, no higher steps for it", flush=True)
            if not side.alive():
                print(f"        {side.label}: the B2BUA EXITED (log: {side.logpath})", flush=True)
        if len(baseline.steps) == i + 1:
            ref = baseline.steps[i]
            for side in sides:
                if side is not baseline and side.cmd and len(side.steps) == i + 1:
                    r = side.steps[i]
                    print(
                        f"{'':8}ratio {side.label} / {baseline.label}: CPU per call"
                        f" {ratio(r.cpu_ms_per_call, ref.cpu_ms_per_call)}, p99 {ratio(r.p99, ref.p99)}",
                        flush=True,
                    )
    summary(sides, baseline)


@dataclasses.dataclass
class HoldResult:
    label: str
    up: int
    base_kib: int
    after_kib: int
    per_call_kib: Optional[float]


def run_hold(opts: argparse.Namespace, sides: list[Side], baseline: Side) -> None:
    """N calls up at once: RSS per call, then RSS --after seconds after they ended."""
    n = opts.hold
    ramp = n / opts.hold_rate
    hold_ms = int((ramp + opts.settle) * 1000)
    print(
        f"--hold {n}: calls placed at {opts.hold_rate:g}/s, each held {hold_ms / 1000:g} s, so that all "
        f"{n} are up together for about {opts.settle:g} s;\nRSS sampled before (after a warm-up of "
        f"{opts.warmup:g} s at {opts.hold_rate:g}/s and the end of its calls), with all up, and "
        f"{opts.after:g} s after the last call ended."
    )
    rows: dict[str, HoldResult] = {}
    for side in sides:
        assert side.proc is not None
        if opts.warmup > 0:
            side.run_calls("warmup", opts.hold_rate, opts.warmup, opts.call_length)
        base = group_rss_kib(side.proc.pid)
        work = os.path.join(side.work, "hold")
        uac = side.uac(work, opts.hold_rate, n, hold_ms, n + 10, ramp + opts.settle + UAC_GRACE + 30)
        stats_path = os.path.join(work, "uac.csv")
        up, held = 0, base
        deadline = time.monotonic() + ramp + opts.settle
        try:
            while time.monotonic() < deadline and uac.poll() is None:
                time.sleep(0.5)
                up = int(read_stats(stats_path).get("CurrentCall", 0) or 0)
                if up >= n:
                    time.sleep(1.0)
                    break
            held = group_rss_kib(side.proc.pid)
            up = int(read_stats(stats_path).get("CurrentCall", 0) or 0)
            uac.wait(ramp + opts.settle + UAC_GRACE + 40)
        except subprocess.TimeoutExpired:
            pass
        finally:
            stop(uac)
        stats = read_stats(stats_path)
        completed = int(stats.get("SuccessfulCall(C)", 0) or 0)
        ended = group_rss_kib(side.proc.pid)
        time.sleep(opts.after)
        after = group_rss_kib(side.proc.pid)
        per_call = (held - base) / up if up else None
        rows[side.label] = HoldResult(side.label, up, base, after, per_call)
        print(
            f"{side.label}: {up} calls up, {completed} of {n} completed; RSS before {base / 1024:.1f} MiB, "
            f"with the calls up {held / 1024:.1f} MiB, when they ended {ended / 1024:.1f} MiB, "
            f"{opts.after:g} s later {after / 1024:.1f} MiB",
            flush=True,
        )
    print()
    width = max(len(side.label) for side in sides)
    print(
        f"{'B2BUA':<{width}} {'held':>6} {'KiB/call':>9} {'RSS before':>11} {'after':>9} {'after-before':>13}"
    )
    for h in rows.values():
        print(
            f"{h.label:<{width}} {h.up:6d} {fmt(h.per_call_kib, '.1f'):>9} {h.base_kib / 1024:9.1f} M"
            f" {h.after_kib / 1024:7.1f} M {(h.after_kib - h.base_kib) / 1024:+11.1f} M"
        )
    print(
        "KiB/call = (RSS with the calls up - RSS before) / calls up; after = RSS "
        f"{opts.after:g} s after the calls ended (calls linger 32 s to absorb retransmissions)"
    )
    ref = rows[baseline.label].per_call_kib
    for h in rows.values():
        if h.label != baseline.label:
            print(f"memory per call, {h.label} / {baseline.label}: {ratio(h.per_call_kib, ref)}")


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__.splitlines()[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=COLUMNS,
    )
    ap.add_argument("--steps", default="200,400,600,800,1000", help="call rates to step through (calls/s)")
    ap.add_argument("--step-time", type=float, default=10.0, help="seconds per step (default 10)")
    ap.add_argument("--pause", type=float, default=2.0, help="seconds between steps (default 2)")
    ap.add_argument("--call-length", type=int, default=0, help="ms from answer to BYE (default 0)")
    ap.add_argument(
        "--warmup",
        type=float,
        default=5.0,
        help="seconds of calls at the first rate before measuring, per B2BUA (default 5; for PyPy's JIT: 30)",
    )
    ap.add_argument("--all-steps", action="store_true", help="go on past a step where most calls failed")
    ap.add_argument("--reference", action="store_true", help=f"the same against {reference.LABEL} (PyPI)")
    ap.add_argument("--hold", type=int, metavar="N", help="memory instead of rates: hold N calls at once")
    ap.add_argument("--hold-rate", type=float, default=100.0, help="with --hold: calls/s to set them up")
    ap.add_argument("--settle", type=float, default=10.0, help="with --hold: seconds all N stay up")
    ap.add_argument("--after", type=float, default=60.0, help="with --hold: RSS this many s after (60)")
    ap.add_argument(
        "--workers",
        type=int,
        action="append",
        metavar="N",
        help="b2bua_radius --workers N (this project only); given twice or more, one B2BUA each."
        " The caller then uses a socket per call (SIPp -t un) on every side, so that the shared"
        " port's hash spreads the calls",
    )
    ap.add_argument(
        "--python",
        action="append",
        metavar="PY",
        help="interpreter for this project's B2BUA, e.g. pypy3; given twice or more, one B2BUA each",
    )
    ap.add_argument(
        "--log-info",
        metavar="FILE",
        help="SIPLOG_LVL=INFO to FILE (the reference to FILE.ref) instead of error-only logging",
    )
    ap.add_argument(
        "--direct",
        action="store_true",
        help="also SIPp calling SIPp directly, no B2BUA, in the same steps: what the load generator and"
        " the machine add to the latency on their own (CPU%%, RSS: the callee's)",
    )
    ap.add_argument("--keep", metavar="DIR", help="keep the B2BUA and SIPp files in DIR")
    opts = ap.parse_args()
    if shutil.which("sipp") is None:
        sys.exit("cps.py: sipp not found")
    if opts.hold is not None and opts.hold < 1:
        sys.exit("cps.py: --hold needs a positive number of calls")
    work = opts.keep or tempfile.mkdtemp(prefix="bench-cps-")

    def env_for(logfile: Optional[str]) -> dict[str, str]:
        env = dict(os.environ, SIPLOG_LVL="ERR")
        if logfile:
            env.update(SIPLOG_LVL="INFO", SIPLOG_BEND="logfile", SIPLOG_LOGFILE_FILE=os.path.abspath(logfile))
        return env

    pythons = opts.python or [sys.executable]
    workers = opts.workers or [None]
    sides = []
    for i, (py, n) in enumerate((py, n) for py in pythons for n in workers):
        cmd = [py, os.path.join(ROOT, "scripts", "b2bua_radius.py")]
        label = "this project" if len(pythons) == 1 else f"this, {implementation(py)}"
        if n is not None:
            cmd += ["--workers", str(n)]
            if len(workers) > 1:
                label += f", {n} worker{'s' if n > 1 else ''}"
        sides.append(Side(label, cmd, env_for(opts.log_info), os.path.join(work, f"this-{i}")))
    if opts.reference:
        ref_log = opts.log_info + ".ref" if opts.log_info else None
        # Without PYTHONPATH, which may point at this checkout: the reference imports its own sippy.
        ref_env = {k: v for k, v in env_for(ref_log).items() if k != "PYTHONPATH"}
        sides.append(Side(reference.LABEL, reference.b2bua_radius(), ref_env, os.path.join(work, "ref")))
    # Ratios are to the reference, else to the first interpreter.
    baseline = sides[-1] if opts.reference else sides[0]
    if opts.direct and opts.hold is None:
        sides.append(Side(DIRECT, [], {}, os.path.join(work, "direct")))
    if opts.workers:
        for side in sides:
            side.uac_args = ["-t", "un", "-max_socket", "10000"]
    load = os.getloadavg()
    print(
        f"cps.py: SIPp uac -> B2BUA -> SIPp uas on 127.0.0.1; {os.cpu_count()} CPUs,"
        f" load average {load[0]:.2f} at the start"
    )
    for side in sides:
        what = shlex.join(side.cmd) if side.cmd else "no B2BUA, the caller calls the callee"
        print(f"  {side.label}: {what}")
    level = f"INFO to {opts.log_info}" if opts.log_info else "ERR"
    print(f"  logging: SIPLOG_LVL={level}; calls of {opts.call_length} ms; files in {work}", flush=True)
    try:
        for side in sides:
            side.start()
            assert side.proc is not None
            if side.cmd:
                print(
                    f"  {side.label}: pid {side.proc.pid} (e.g. for py-spy top --pid {side.proc.pid})",
                    flush=True,
                )
        if opts.hold is not None:
            run_hold(opts, sides, baseline)
        else:
            run_steps(opts, sides, baseline)
    finally:
        for side in sides:
            side.stop()
        if not opts.keep:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
