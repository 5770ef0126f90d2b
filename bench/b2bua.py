#!/usr/bin/env python3
"""Call-rate benchmark: SIPp UAC -> B2BUA -> SIPp UAS on loopback, B2BUA CPU and memory from /proc.

    python bench/b2bua.py [--rate 100] [--duration 30] [--call-length 0] [--radius [--rtpproxy] [--tcp]]

--radius runs scripts/b2bua_radius.py -u -s (static route, no RADIUS) instead of b2bua_simple;
--rtpproxy adds -r with a real RTPproxy (rtp.io) on loopback, whose CPU is reported too (the extra
setup time per call it adds: bench/rtpp_setup.py). --tcp: the UAC calls over TCP (SIPp -t t1, one
connection for every call, as a trunk) to a --tcp_socket listener; the UAS side stays UDP.
Prints calls attempted/completed/failed, the achieved rate, the B2BUA's CPU seconds and share of one
core over the run, and its peak RSS. Not part of the test suite. Stepped rates, setup latency, the
highest clean rate and the comparison with Sippy 2.5.0: bench/cps.py (README "Benchmarks").
"""

from __future__ import annotations

import argparse
import csv
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from typing import Optional, Sequence

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CLK_TCK = os.sysconf("SC_CLK_TCK")


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_seconds(pid: int) -> float:
    """utime + stime of pid (fields 14 and 15 of /proc/pid/stat)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def status_kib(pid: int, field: str = "VmRSS") -> int:
    """A KiB figure of /proc/pid/status (VmRSS: resident now, VmHWM: peak); 0 if absent."""
    prefix = field + ":"
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(prefix):
                return int(line.split()[1])
    return 0


def peak_rss_kb(pid: int) -> int:
    return status_kib(pid, "VmHWM")


def read_stats(path: str) -> dict[str, str]:
    with open(path, newline="") as f:
        rows = list(csv.reader(f, delimiter=";"))
    return dict(zip(rows[0], rows[-1])) if len(rows) > 1 else {}


def failure_reasons(stats: dict[str, str]) -> str:
    """SIPp's cumulative failure counters that are not zero, e.g. 'MaxUDPRetrans 3, CallRejected 1'."""
    return ", ".join(
        f"{k[6:-3]} {v}"
        for k, v in stats.items()
        if k.startswith("Failed") and k.endswith("(C)") and k != "FailedCall(C)" and v not in ("", "0")
    )


def start_b2bua(
    radius: bool, port: int, uas_port: int, logpath: str, wrap: Sequence[str] = (), extra: Sequence[str] = ()
) -> subprocess.Popen[bytes]:
    """wrap: run the B2BUA through bench/b2bua_mem.py with these arguments before the flags."""
    name = "radius" if radius else "simple"
    if wrap:
        cmd = [sys.executable, os.path.join(ROOT, "bench", "b2bua_mem.py"), *wrap, name]
    else:
        cmd = [sys.executable, os.path.join(ROOT, "scripts", f"b2bua_{name}.py")]
    if radius:
        cmd += ["-f", "-u", "-s", f"127.0.0.1:{uas_port}"]
    else:
        cmd += ["-f", "-n", f"127.0.0.1:{uas_port}"]
    cmd += ["-l", "127.0.0.1", "-p", str(port), *extra]
    env = dict(os.environ, SIPLOG_LVL=os.environ.get("SIPLOG_LVL", "WARN"))
    with open(logpath, "wb") as log:
        return subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env)


def wait_listening(proc: subprocess.Popen[bytes], port: int, logpath: str, timeout: float = 10.0) -> None:
    """Until the B2BUA answers an OPTIONS (both scripts do), or exit with its log."""
    options = (
        f"OPTIONS sip:ping@127.0.0.1:{port} SIP/2.0\r\n"
        "Via: SIP/2.0/UDP 127.0.0.1:{lport};branch=z9hG4bK{branch}\r\n"
        "From: <sip:bench@127.0.0.1>;tag=b1\r\nTo: <sip:ping@127.0.0.1>\r\n"
        "Call-ID: bench-ping-{branch}\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
    )
    deadline = time.monotonic() + timeout
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        s.settimeout(0.2)
        lport = s.getsockname()[1]
        while time.monotonic() < deadline and proc.poll() is None:
            s.sendto(options.format(lport=lport, branch=os.urandom(4).hex()).encode(), ("127.0.0.1", port))
            try:
                if s.recv(65535).startswith(b"SIP/2.0 "):
                    return
            except socket.timeout:
                pass
    with open(logpath, errors="replace") as f:
        sys.exit(f"B2BUA did not start:\n{f.read()[-2000:]}")


def stop(proc: Optional[subprocess.Popen], sig: int = signal.SIGTERM) -> None:
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(sig)
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rate", type=float, default=100.0, help="calls per second (default 100)")
    ap.add_argument("--duration", type=float, default=30.0, help="seconds of offered load (default 30)")
    ap.add_argument("--call-length", type=int, default=0, help="ms between answer and BYE (default 0)")
    ap.add_argument("--radius", action="store_true", help="b2bua_radius -u -s instead of b2bua_simple")
    ap.add_argument(
        "--trace",
        metavar="DIR",
        help="keep SIPp's message and error logs (-trace_msg -trace_err) and the B2BUA's log in DIR",
    )
    ap.add_argument(
        "--mem",
        metavar="REPORT",
        help="run the B2BUA under bench/b2bua_mem.py: GC pauses and object counts written to REPORT",
    )
    ap.add_argument("--tracemalloc", action="store_true", help="with --mem: tracemalloc growth too (slow)")
    ap.add_argument(
        "--rtpproxy", action="store_true", help="with --radius: media relay through a real RTPproxy"
    )
    ap.add_argument("--tcp", action="store_true", help="with --radius: the UAC calls over TCP (-t t1)")
    opts = ap.parse_args()
    if (opts.rtpproxy or opts.tcp) and not opts.radius:
        sys.exit("--rtpproxy and --tcp need --radius")
    if shutil.which("sipp") is None:
        sys.exit("sipp not found")
    calls = int(opts.rate * opts.duration)
    if opts.trace:
        os.makedirs(opts.trace, exist_ok=True)
        work = opts.trace
    else:
        work = tempfile.mkdtemp(prefix="bench-b2bua-")
    trace = ["-trace_msg", "-trace_err"] if opts.trace else []
    b2b_port, uas_port = free_udp_port(), free_udp_port()
    b2bua = uas = uac = None
    rtpproxy = None
    try:
        wrap = [os.path.abspath(opts.mem)] if opts.mem else []
        if opts.mem and opts.tracemalloc:
            wrap.append("--tracemalloc")
        # A control socket of its own: the default one may belong to another running B2BUA.
        extra = ["-c", os.path.join(work, "ctl.sock")] if opts.radius else []
        if opts.rtpproxy:
            sys.path.insert(0, ROOT)
            from tests.rtpproxy_util import RtpProxy

            rtpproxy = RtpProxy("udp", rtp_span=0).start()
            extra += ["-r", rtpproxy.contact]
        uac_port, uac_transport = b2b_port, []
        if opts.tcp:
            uac_port, uac_transport = free_udp_port(), ["-t", "t1"]
            extra += ["--tcp_socket", f"127.0.0.1:{uac_port}"]
        b2bua = start_b2bua(opts.radius, b2b_port, uas_port, os.path.join(work, "b2bua.log"), wrap, extra)
        wait_listening(b2bua, b2b_port, os.path.join(work, "b2bua.log"))
        sipp = ["sipp", "-i", "127.0.0.1", "-nostdin"]
        uas = subprocess.Popen(
            [*sipp, "-sn", "uas", "-p", str(uas_port), "-mp", str(free_udp_port()), *trace],
            cwd=work,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        time.sleep(0.3)
        cpu0, t0 = cpu_seconds(b2bua.pid), time.monotonic()
        rtpp_cpu0 = cpu_seconds(rtpproxy.proc.pid) if rtpproxy is not None and rtpproxy.proc else 0.0
        stat_file = os.path.join(work, "uac.csv")
        uac = subprocess.Popen(
            [
                *sipp,
                "-sn",
                "uac",
                f"127.0.0.1:{uac_port}",
                *uac_transport,
                "-p",
                str(free_udp_port()),
                "-mp",
                str(free_udp_port()),
                "-r",
                str(opts.rate),
                "-m",
                str(calls),
                "-d",
                str(opts.call_length),
                "-l",
                str(max(1000, int(opts.rate * 64))),
                "-trace_stat",
                "-stf",
                stat_file,
                "-fd",
                "1",
                "-timeout",
                f"{int(opts.duration + 60)}s",
                *trace,
            ],
            cwd=work,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        # Poll SIPp's statistics: the achieved rate is over the time until the last call completed,
        # not including the wait for stragglers to time out.
        done, last_done_t = 0, t0
        deadline = t0 + opts.duration + 90
        while uac.poll() is None and time.monotonic() < deadline:
            time.sleep(0.5)
            now_done = int(read_stats(stat_file).get("SuccessfulCall(C)", 0) or 0)
            if now_done != done:
                done, last_done_t = now_done, time.monotonic()
        elapsed, cpu = max(last_done_t - t0, 1e-3), cpu_seconds(b2bua.pid) - cpu0
        rss = peak_rss_kb(b2bua.pid)
        rtpp_cpu = (
            cpu_seconds(rtpproxy.proc.pid) - rtpp_cpu0 if rtpproxy is not None and rtpproxy.proc else None
        )
        stats = read_stats(stat_file)
        done = int(stats.get("SuccessfulCall(C)", 0))
        failed = int(stats.get("FailedCall(C)", 0))
        attempted = int(stats.get("TotalCallCreated", 0))
        name = "b2bua_radius -u -s" if opts.radius else "b2bua_simple"
        name += " -r (RTPproxy)" if opts.rtpproxy else ""
        name += ", caller over TCP" if opts.tcp else ""
        print(f"B2BUA:            {name}, offered {opts.rate:g} calls/s for {opts.duration:g} s")
        print(f"calls attempted:  {attempted}")
        print(f"calls completed:  {done}")
        reasons = failure_reasons(stats)
        print(f"calls failed:     {failed}" + (f" ({reasons})" if reasons else ""))
        print(f"retransmissions:  {stats.get('Retransmissions(C)', '?')} (seen by the caller)")
        print(f"achieved rate:    {done / elapsed:.1f} calls/s (completed calls over {elapsed:.1f} s)")
        print(f"B2BUA CPU:        {cpu:.2f} s, {100.0 * cpu / elapsed:.1f} % of one core over the load")
        print(f"B2BUA peak RSS:   {rss / 1024:.1f} MiB")
        if rtpp_cpu is not None:
            print(f"RTPproxy CPU:     {rtpp_cpu:.2f} s, {100.0 * rtpp_cpu / elapsed:.1f} % of one core")
        return 0 if failed == 0 and done == calls else 1
    finally:
        for proc in (uac, uas, b2bua):
            stop(proc)
        if rtpproxy is not None:
            rtpproxy.stop()
        if not opts.trace:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
