"""Run SIPp from tests: built-in or XML scenario, loopback, free ports, bounded, always killed.

Typical use::

    with Sipp("uac", remote=("127.0.0.1", port), calls=1) as sipp:
        ...  # drive the reactor while SIPp runs
    res = sipp.result
    assert res.returncode == 0, res.describe()

or, when nothing has to run meanwhile, `res = run_sipp("uac", remote=..., calls=1, timeout=10)`.
The result carries the exit code, SIPp's statistics (last row of its CSV, keyed by column name),
and the message trace (what SIPp sent and received) split into messages.
"""

from __future__ import annotations

import csv
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Sequence
from functools import cache
from typing import Optional, Union

from tests.conftest import free_port, free_udp_port

SCENARIO_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "scenarios")
_BUILTIN = {"uac", "uas", "regexp", "3pcc-C-A", "3pcc-C-B", "3pcc-A", "3pcc-B", "branchc", "branchs"}
_BUILTIN.update({"uac_pcap", "uas_ruri", "ooc_default", "ooc_dummy", "ooc_uac"})
_MSG_SEP = re.compile(r"^-{10,}\s.*$", re.M)
# Built-in scenarios that end in a 4 s <timewait> (to answer a retransmitted BYE again): run with
# TIMEWAIT_MS instead, still past the first BYE retransmission (T1 = 500 ms) but 3 s less per call.
_SHORT_TIMEWAIT = {"uas"}
TIMEWAIT_MS = 1000


@cache
def _short_timewait(name: str) -> str:
    """SIPp's built-in scenario `name` (as `sipp -sd` prints it) with a TIMEWAIT_MS timewait."""
    dump = subprocess.run(["sipp", "-sd", name], capture_output=True, text=True, timeout=10).stdout
    xml, n = re.subn(r'<timewait milliseconds="\d+"\s*/>', f'<timewait milliseconds="{TIMEWAIT_MS}"/>', dump)
    assert n == 1, f"sipp -sd {name}: expected one <timewait>:\n{dump}"
    return xml


def tcp_port_listening(port: int) -> bool:
    """Whether some socket listens on TCP `port`, read from /proc/net (state 0A: LISTEN)."""
    suffix = f":{port:04X}"
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as f:
                next(f)
                if any(p[1].endswith(suffix) and p[3] == "0A" for p in (line.split() for line in f)):
                    return True
        except OSError:
            pass
    return False


def udp_port_bound(port: int) -> bool:
    """Whether some socket is bound to UDP `port`, read from /proc/net (a probing bind() could
    make the program we wait for fail its own bind)."""
    suffix = f":{port:04X}"
    for table in ("/proc/net/udp", "/proc/net/udp6"):
        try:
            with open(table) as f:
                next(f)
                if any(line.split()[1].endswith(suffix) for line in f):
                    return True
        except OSError:
            continue
    return False


class SippResult:
    """What a finished SIPp run left behind."""

    def __init__(self, returncode: int, stdout: str, stderr: str, stats: dict[str, str], trace: str) -> None:
        self.returncode = returncode
        self.stdout = stdout
        self.stderr = stderr
        self.stats = stats
        self.trace = trace
        self.timed_out = False

    def stat(self, name: str) -> int:
        """A cumulative counter such as 'SuccessfulCall', 'FailedCall', 'Retransmissions'."""
        for key in (name + "(C)", name):
            if key in self.stats:
                return int(self.stats[key] or 0)
        raise KeyError(name)

    @property
    def messages(self) -> list[tuple[str, str]]:
        """(direction, text) per message in the trace; direction is 'sent' or 'received'."""
        out: list[tuple[str, str]] = []
        for m in re.finditer(
            r"^-{10,}\s.*?message (sent|received).*?\n(.*?)(?=^-{10,}\s|\Z)", self.trace, re.M | re.S
        ):
            out.append((m.group(1), m.group(2).strip("\r\n")))
        return out

    def sent(self, start: str = "") -> list[str]:
        """Messages SIPp sent whose first line starts with `start` (e.g. 'ACK', 'SIP/2.0 200')."""
        return [text for d, text in self.messages if d == "sent" and text.startswith(start)]

    def received(self, start: str = "") -> list[str]:
        """Messages SIPp received whose first line starts with `start`."""
        return [text for d, text in self.messages if d == "received" and text.startswith(start)]

    def describe(self) -> str:
        """Everything useful for an assertion message."""
        return (
            f"sipp exit {self.returncode} (timed out: {self.timed_out})\nstderr:\n{self.stderr[-2000:]}\n"
            f"stats: {self.stats}\ntrace:\n{self.trace[-4000:]}"
        )


class Sipp:
    """One SIPp process on loopback; `start()` runs it in the background, `wait()` collects it.

    scenario: a built-in name (`uac`, `uas`, ...), a file name under tests/scenarios/, or a path.
    remote: the peer's (host, port), omitted for a pure server (`uas`).
    calls/rate/duration/service/inf map to `-m`, `-r`, `-d` (ms), `-s`, `-inf`.
    extra: further SIPp arguments, e.g. `("-nr",)` or `("-key", "name", "value")`.
    """

    def __init__(
        self,
        scenario: str,
        remote: Optional[tuple[str, int]] = None,
        *,
        local_ip: str = "127.0.0.1",
        local_port: Optional[int] = None,
        calls: Optional[int] = 1,
        rate: Optional[float] = None,
        duration: Optional[int] = None,
        service: Optional[str] = None,
        inf: Union[str, Sequence[Sequence[str]], None] = None,
        extra: Sequence[str] = (),
        timeout: float = 15.0,
        trace_msg: bool = True,
    ) -> None:
        self.scenario = scenario
        self.remote = remote
        self.local_ip = local_ip
        self.local_port = local_port if local_port is not None else free_udp_port(local_ip)
        self.timeout = timeout
        self.workdir = tempfile.mkdtemp(prefix="sipp-")
        self.stat_file = os.path.join(self.workdir, "stats.csv")
        self.message_file = os.path.join(self.workdir, "messages.log") if trace_msg else None
        self.proc: Optional[subprocess.Popen[str]] = None
        self.result: Optional[SippResult] = None
        self._deadline = 0.0
        args = ["sipp"]
        if scenario in _SHORT_TIMEWAIT:
            path = os.path.join(self.workdir, f"{scenario}.xml")
            with open(path, "w") as f:
                f.write(_short_timewait(scenario))
            args += ["-sf", path]
        elif scenario in _BUILTIN:
            args += ["-sn", scenario]
        else:
            path = scenario if os.path.sep in scenario else os.path.join(SCENARIO_DIR, scenario)
            args += ["-sf", path]
        if remote is not None:
            host = f"[{remote[0]}]" if ":" in remote[0] else remote[0]
            args.append(f"{host}:{remote[1]}")
        # -mp: SIPp binds the media port and media port + 2 (audio, video), RTCP takes +1 and +3
        args += ["-i", local_ip, "-p", str(self.local_port), "-mp", str(free_port(local_ip, span=4))]
        args += ["-nostdin", "-trace_stat", "-stf", self.stat_file, "-fd", "1"]
        args += ["-timeout", f"{max(1, int(timeout))}s", "-timeout_error"]
        if self.message_file is not None:
            args += ["-trace_msg", "-message_file", self.message_file]
        if calls is not None:
            args += ["-m", str(calls)]
        if rate is not None:
            args += ["-r", str(rate)]
        if duration is not None:
            args += ["-d", str(duration)]
        if service is not None:
            args += ["-s", service]
        if inf is not None:
            if not isinstance(inf, str):
                path = os.path.join(self.workdir, "inject.csv")
                with open(path, "w") as f:
                    f.write("SEQUENTIAL\n")
                    for row in inf:
                        f.write(";".join(row) + "\n")
                inf = path
            args += ["-inf", inf]
        args += list(extra)
        self.args = args

    @property
    def address(self) -> tuple[str, int]:
        return (self.local_ip, self.local_port)

    def start(self) -> Sipp:
        """Start SIPp and return once it listens on its port: a peer may send to it right away
        (a request sent earlier would be lost and cost a retransmission interval)."""
        self.proc = subprocess.Popen(
            self.args,
            cwd=self.workdir,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            errors="replace",
            start_new_session=True,
        )
        self._deadline = time.monotonic() + self.timeout + 5.0
        self.wait_bound()
        return self

    def wait_bound(self, timeout: float = 5.0) -> bool:
        """Wait until SIPp listens on its port, UDP or with -t t1/tn TCP (so a server scenario
        misses no request)."""
        bound = (
            tcp_port_listening
            if "-t" in self.args and self.args[self.args.index("-t") + 1] in ("t1", "tn")
            else udp_port_bound
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.poll() is None:
            if bound(self.local_port):
                return True
            time.sleep(0.01)
        return False

    def poll(self) -> Optional[int]:
        """Exit code if SIPp has finished, else None (lets a test pump its reactor meanwhile)."""
        return None if self.proc is None else self.proc.poll()

    def wait(self, timeout: Optional[float] = None) -> SippResult:
        """Wait for SIPp to exit (killing it past the deadline) and collect its results."""
        if self.result is not None:
            return self.result
        assert self.proc is not None, "start() first"
        timed_out = False
        left = max(0.1, self._deadline - time.monotonic()) if timeout is None else timeout
        try:
            out, err = self.proc.communicate(timeout=left)
        except subprocess.TimeoutExpired:
            timed_out = True
            self.kill()
            out, err = self.proc.communicate()
        self.result = SippResult(self.proc.returncode, out, err, self._read_stats(), self._read_trace())
        self.result.timed_out = timed_out
        return self.result

    def kill(self) -> None:
        """Stop SIPp (its whole process group) now; safe to call more than once."""
        if self.proc is not None and self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait()

    def cleanup(self) -> None:
        self.kill()
        if self.proc is not None and self.result is None:
            self.wait()
        shutil.rmtree(self.workdir, ignore_errors=True)

    def _read_stats(self) -> dict[str, str]:
        try:
            with open(self.stat_file, newline="") as f:
                rows = list(csv.reader(f, delimiter=";"))
        except OSError:
            return {}
        if len(rows) < 2:
            return {}
        return dict(zip(rows[0], rows[-1]))

    def _read_trace(self) -> str:
        if self.message_file is None:
            return ""
        try:
            with open(self.message_file, errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def __enter__(self) -> Sipp:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        try:
            self.wait()
        finally:
            self.cleanup()


def run_sipp(scenario: str, remote: Optional[tuple[str, int]] = None, **kwargs: object) -> SippResult:
    """Run SIPp to completion (bounded by `timeout`) and return its result."""
    sipp = Sipp(scenario, remote, **kwargs)  # type: ignore[arg-type]
    try:
        sipp.start()
        return sipp.wait()
    finally:
        sipp.cleanup()
