"""``b2bua_radius --workers N``: a process group sharing the SIP port (sippy.WorkerGroup).

SIPp callers run with ``-t un`` (a socket per call), so that the shared port's hash spreads the
calls over the workers; every in-dialog request goes where the B2BUA's Contact says (SIPp
``setdest``). A request that reached a worker without the dialog would get 481 and fail the
scenario. Pure parts (merging answers, the socket set, the control socket's ordering) are tested
beside them.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
from typing import Any, Callable, Optional, TypeVar

import pytest
from twisted.internet.defer import Deferred, succeed
from twisted.internet.error import ProcessDone, ProcessTerminated
from twisted.internet.task import Clock
from twisted.python.failure import Failure

from sippy.B2BOperations import add_counts, format_status
from sippy.CLIManager import CLIManager
from sippy.WorkerChannel import COUNTS
from sippy.WorkerControl import WorkerControl, merge_answers, merge_listing
from sippy.WorkerGroup import (
    WorkerGroup,
    bind_worker_sockets,
    close_sockets,
    worker_environment,
    worker_setup,
)
from tests.conftest import ListLog, free_port, free_udp_port
from tests.radius_util import running_freeradius
from tests.sipp_util import Sipp
from tests.test_b2bua_radius_calls import B2B, ROOT, SCRIPT, pytestmark  # noqa: F401
from tests.test_b2bua_radius_ops import cli_command

# A socket per call (SIPp needs its limit under the open-files one).
MULTI_SOCKET = ("-t", "un", "-max_socket", "200")
CALLS = 16
T = TypeVar("T")


def read(path: str) -> str:
    try:
        with open(path, errors="replace") as f:
            return f.read()
    except FileNotFoundError:
        return ""


def children(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(x) for x in f.read().split()]
    except FileNotFoundError:
        return []


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def wait_for(get: Callable[[], T], ok: Callable[[T], object] = bool, timeout: float = 15.0) -> T:
    """get() until ok(value) or timeout; the last value."""
    deadline = time.monotonic() + timeout
    value = get()
    while not ok(value) and time.monotonic() < deadline:
        time.sleep(0.05)
        value = get()
    return value


def contact_ports(messages: list[str]) -> set[int]:
    """Ports of the B2BUA's Contact in the given messages."""
    ports = set()
    for msg in messages:
        m = re.search(r"^Contact:.*?:(\d+)[;>]", msg, re.M | re.I)
        if m:
            ports.add(int(m[1]))
    return ports


def via_ports(messages: list[str]) -> set[int]:
    return {
        int(m[1]) for msg in messages for m in [re.search(r"^Via: SIP/2.0/UDP [^:]+:(\d+)", msg, re.M)] if m
    }


def group(*args: str, workers: int = 2) -> B2B:
    return B2B(("-u", "-A", "0", "--workers", str(workers), *args))


def bye_caller(address: tuple[str, int], duration: int = 200, timeout: int = 20) -> Sipp:
    """CALLS calls at 20/s, a socket each (so the shared port's hash spreads them), each ended by
    the caller's BYE to the Contact after duration ms."""
    return Sipp(
        "workers_uac_bye.xml",
        address,
        calls=CALLS,
        rate=20,
        duration=duration,
        extra=MULTI_SOCKET,
        timeout=timeout,
    )


def test_in_dialog_requests_from_the_caller_reach_the_owning_worker() -> None:
    uas_port, own = free_udp_port(), free_port(span=2)
    with Sipp("flags_uas_reinvite.xml", local_port=uas_port, calls=CALLS, timeout=20) as uas:
        with group("-s", f"127.0.0.1:{uas_port}", "--workers_port", str(own)) as b2b:
            with bye_caller(b2b.address) as uac:
                pass
            err = b2b.stderr()
            assert b2b.stop() == 0, err
    assert uac.result.returncode == 0, uac.result.describe() + err
    assert uas.result.returncode == 0, uas.result.describe() + err
    # Answering leg: each 200's Contact names the worker's own port, never the shared one; the
    # calls went to both workers.
    answered = contact_ports(uac.result.received("SIP/2.0 200"))
    assert answered == {own, own + 1}, answered  # --workers_port
    # Originating leg: each worker's INVITE names the same own port in Via and Contact.
    invites = uas.result.received("INVITE ")
    assert via_ports(invites) == contact_ports(invites) == answered


def test_a_dispatcher_may_send_calls_to_a_workers_own_port() -> None:
    uas_port, own = free_udp_port(), free_port(span=2)
    with Sipp("flags_uas_reinvite.xml", local_port=uas_port, calls=4, timeout=20) as uas:
        with group("-s", f"127.0.0.1:{uas_port}", "--workers_port", str(own)) as b2b:
            with Sipp("workers_uac_bye.xml", ("127.0.0.1", own + 1), calls=4, rate=20, duration=200) as uac:
                pass
            err = b2b.stderr()
    assert uac.result.returncode == 0, uac.result.describe() + err
    assert uas.result.returncode == 0, uas.result.describe() + err
    assert contact_ports(uac.result.received("SIP/2.0 200")) == {own + 1}


def test_in_dialog_requests_from_the_callee_reach_the_owning_worker() -> None:
    uas_port = free_udp_port()
    with Sipp("workers_uas_bye.xml", local_port=uas_port, calls=CALLS, timeout=20) as uas:
        with group("-s", f"127.0.0.1:{uas_port}") as b2b:
            with Sipp(
                "workers_uac_wait.xml", b2b.address, calls=CALLS, rate=20, extra=MULTI_SOCKET, timeout=20
            ) as uac:
                pass
            err = b2b.stderr()
    assert uas.result.returncode == 0, uas.result.describe() + err
    assert uac.result.returncode == 0, uac.result.describe() + err
    own = contact_ports(uas.result.received("INVITE "))
    assert len(own) == 2 and b2b.port not in own, own
    # The callee's re-INVITE and BYE, passed on to the caller by the worker that owns the call.
    assert contact_ports(uac.result.received("INVITE ")) == own
    assert len(uac.result.received("BYE ")) == CALLS


def test_wildcard_listener_gives_each_worker_one_own_port_for_both_families() -> None:
    """-l '*': every worker has an IPv4 and an IPv6 socket on the shared port and on its own port
    (the same number): a caller on IPv4, a callee on IPv6, in-dialog requests both ways."""
    uas = Sipp("workers_uas_bye.xml", local_ip="::1", calls=CALLS, timeout=20)
    try:
        uas.start()
        with group("-l", "*", "-s", f"[::1]:{uas.local_port}") as b2b:
            with Sipp(
                "workers_uac_wait.xml", b2b.address, calls=CALLS, rate=20, extra=MULTI_SOCKET, timeout=20
            ) as uac:
                pass
            err = b2b.stderr()
        callee = uas.wait()
    finally:
        uas.cleanup()
    assert callee.returncode == 0, callee.describe() + err
    assert uac.result.returncode == 0, uac.result.describe() + err
    invites = callee.received("INVITE ")
    own = contact_ports(invites)
    assert len(own) == 2 and b2b.port not in own, own
    assert all(re.search(r"^Via: SIP/2.0/UDP \[::1\]:", m, re.M) for m in invites)
    # The caller (IPv4) was answered, re-INVITEd and hung up on from the same port numbers.
    assert contact_ports(uac.result.received("SIP/2.0 200")) == own
    assert contact_ports(uac.result.received("INVITE ")) == own == via_ports(uac.result.received("BYE "))


def test_control_socket_lists_the_calls_of_every_worker() -> None:
    uas_port = free_udp_port()
    with Sipp("flags_uas_reinvite.xml", local_port=uas_port, calls=CALLS, timeout=30) as uas:
        with group("-s", f"127.0.0.1:{uas_port}") as b2b:
            ctl = os.path.join(b2b.tmpdir, "ctl.sock")
            # The calls are held 4 s before their BYE.
            with bye_caller(b2b.address, duration=4000, timeout=30) as uac:
                listing = wait_for(
                    lambda: cli_command(ctl, "l\n"), lambda text: f"Total: {CALLS}\n" in text, 10
                )
                transactions = cli_command(ctl, "lt\n")
            err = b2b.stderr()
    assert uac.result.returncode == 0, uac.result.describe() + err
    assert uas.result.returncode == 0, uas.result.describe() + err
    lines = listing.splitlines()
    assert lines[0] == "In-memory calls:" and lines[-1] == f"Total: {CALLS}"
    call_ids = {line.split(":", 1)[0] for line in lines[1:-1]}
    sent = {re.search(r"^Call-ID: *(\S+)", m, re.M)[1] for m in uac.result.sent("INVITE ")}
    assert sent <= call_ids and len(lines) - 2 == CALLS, listing
    assert len(contact_ports(uac.result.received("SIP/2.0 200"))) == 2  # both workers held some
    assert transactions.count("In-memory server transactions:") == 1, transactions
    assert transactions.count("In-memory client transactions:") == 1, transactions


def test_every_worker_sends_its_calls_accounting(tmp_path) -> None:
    """-A 1 against a real FreeRADIUS: a Stop record for both legs of every call, whichever worker
    carried it."""
    uas_port = free_udp_port()
    with running_freeradius() as srv:
        conf = srv.write_radconf(
            str(tmp_path), [f"127.0.0.1:{srv.auth_port}"], [f"127.0.0.1:{srv.acct_port}"]
        )
        with Sipp("flags_uas_reinvite.xml", local_port=uas_port, calls=CALLS, timeout=20) as uas:
            with group("-A", "1", "-R", conf, "-s", f"127.0.0.1:{uas_port}") as b2b:
                with bye_caller(b2b.address) as uac:
                    pass
                stops = wait_for(
                    lambda: [r for r in srv.detail_records() if r.get("Acct-Status-Type") == ["Stop"]],
                    lambda found: len(found) >= 2 * CALLS,
                )
                err = b2b.stderr()
    assert uac.result.returncode == 0, uac.result.describe() + err
    assert uas.result.returncode == 0, uas.result.describe() + err
    assert len(contact_ports(uac.result.received("SIP/2.0 200"))) == 2  # both workers carried calls
    sent = {re.search(r"^Call-ID: *(\S+)", m, re.M)[1] for m in uac.result.sent("INVITE ")}
    answering = [r for r in stops if r.get("h323-call-origin") == ["h323-call-origin=answer"]]
    assert len(stops) == 2 * CALLS and {r["Acct-Session-Id"][0] for r in answering} == sent, stops


def test_a_killed_worker_is_restarted_and_carries_calls() -> None:
    uas_port = free_udp_port()
    with group("-s", f"127.0.0.1:{uas_port}") as b2b:
        assert b2b.proc is not None
        parent = b2b.proc.pid
        workers = wait_for(lambda: children(parent), lambda w: len(w) == 2)
        assert workers, children(parent)
        victim = workers[0]
        os.kill(victim, signal.SIGKILL)
        replaced = wait_for(lambda: children(parent), lambda w: len(w) == 2 and victim not in w)
        assert replaced, children(parent)
        (new,) = set(replaced) - set(workers)
        assert wait_for(lambda: re.search(rf"worker \d started, pid {new}", b2b.stderr())), b2b.stderr()
        err = b2b.stderr()
        assert re.search(rf"worker \d \(pid {victim}\) killed by SIGKILL: restarting it", err), err
        # Calls on both workers again (the new one adopted the dead one's sockets).
        with Sipp("flags_uas_reinvite.xml", local_port=uas_port, calls=CALLS, timeout=20) as uas:
            with bye_caller(b2b.address) as uac:
                pass
        err = b2b.stderr()
    assert uac.result.returncode == 0, uac.result.describe() + err
    assert uas.result.returncode == 0, uas.result.describe() + err
    assert len(contact_ports(uac.result.received("SIP/2.0 200"))) == 2


def test_signals_reach_every_worker() -> None:
    with group("-s", f"127.0.0.1:{free_udp_port()}", workers=3) as b2b:
        assert b2b.proc is not None
        os.kill(b2b.proc.pid, signal.SIGHUP)
        err = wait_for(b2b.stderr, lambda e: e.count("Signal 1 received, disconnecting") == 3)
        # Each worker's lines say which it is.
        assert all(f"/b2bua.w{i}: Signal 1 received, disconnecting" in err for i in range(3)), err
        os.kill(b2b.proc.pid, signal.SIGUSR2)
        # The parent and the three workers each turn debug logging on.
        assert wait_for(b2b.stderr, lambda e: e.count("debug logging on") == 4), b2b.stderr()


def test_workers_stop_when_their_parent_is_killed() -> None:
    with group("-s", f"127.0.0.1:{free_udp_port()}") as b2b:
        assert b2b.proc is not None
        workers = wait_for(lambda: children(b2b.proc.pid), lambda w: len(w) == 2)
        assert len(workers) == 2
        b2b.proc.kill()
        try:
            assert wait_for(lambda: [p for p in workers if alive(p)], lambda left: not left, 10) == []
        finally:
            for pid in workers:
                if alive(pid):
                    os.kill(pid, signal.SIGKILL)


def test_sigterm_stops_the_daemon_group_and_removes_its_pidfile() -> None:
    tmp = tempfile.mkdtemp(prefix="b2bua-workers-")
    pidfile, logfile, ctl = (os.path.join(tmp, n) for n in ("b2bua.pid", "b2bua.log", "ctl.sock"))
    port = free_udp_port()
    args = ["-u", "-A", "0", "-s", f"127.0.0.1:{free_udp_port()}", "-l", "127.0.0.1", "-p", str(port)]
    args += [
        "-P",
        pidfile,
        "-L",
        logfile,
        "-c",
        ctl,
        "--workers",
        "2",
        "--acct_spool_dir",
        os.path.join(tmp, "s"),
    ]
    # Returns once the daemon wrote its pidfile.
    subprocess.run(
        [sys.executable, SCRIPT, *args], cwd=ROOT, check=True, timeout=30, stdin=subprocess.DEVNULL
    )
    with open(pidfile) as f:
        parent = int(f.read())
    workers: list[int] = []
    try:
        assert "2 workers (pids" in wait_for(lambda: read(logfile), lambda text: "2 workers (pids" in text)
        workers = children(parent)
        assert len(workers) == 2
        assert "Total: 0" in cli_command(ctl, "l\n")
        # logrotate: the log moved away, SIGUSR1 to the parent; it and both workers start the new one.
        os.rename(logfile, logfile + ".1")
        os.kill(parent, signal.SIGUSR1)
        reopened = wait_for(lambda: read(logfile), lambda text: text.count("reopened logs") == 3)
        assert reopened.count("Signal 10 received, reopened logs") == 3, reopened
        os.kill(parent, signal.SIGTERM)
        assert wait_for(lambda: not any(alive(p) for p in (parent, *workers))), read(logfile)
        assert not os.path.exists(pidfile) and not os.path.exists(ctl)
    finally:
        for pid in (parent, *workers):
            if alive(pid):
                os.kill(pid, signal.SIGKILL)


def test_bad_workers_value_is_one_line_and_exit_2() -> None:
    for value in ("0", "x", "65"):
        res = subprocess.run(
            [sys.executable, SCRIPT, "-f", "-u", "-s", "127.0.0.1:5060", "--workers", value],
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert res.returncode == 2 and res.stderr.count("\n") == 1 and "workers" in res.stderr, res.stderr


def test_a_worker_that_cannot_start_stops_the_group_with_its_reason() -> None:
    """Worker 0 cannot listen on its --tcp_socket (taken): the start fails, exit 1, both lines said."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        tcp_port = taken.getsockname()[1]
        b2b = group("-s", "127.0.0.1:5999", "--tcp_socket", f"127.0.0.1:{tcp_port}")
        res = subprocess.run(
            b2b.cmd, cwd=ROOT, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL
        )
    assert res.returncode == 1, res.stderr
    assert f"--tcp_socket: cannot listen on 127.0.0.1:{tcp_port}" in res.stderr
    assert re.search(r"b2bua_radius: worker 0 \(pid \d+\) exited with status 1 while starting", res.stderr)
    assert "started," not in res.stdout


def test_a_port_held_without_reuseport_stops_the_group_from_starting() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as holder:
        holder.bind(("127.0.0.1", 0))
        port = holder.getsockname()[1]
        with pytest.raises(OSError):
            bind_worker_sockets(("127.0.0.1",), port, 2)


# ----- pure parts ------------------------------------------------------------------------------


def test_worker_own_ports_from_workers_port() -> None:
    base = free_port(span=2)
    bound = bind_worker_sockets(("127.0.0.1",), 0, 2, base)
    try:
        assert [ws.own_port for ws in bound] == [base, base + 1]
        with pytest.raises(OSError):  # taken now: no kernel-picked port instead
            bind_worker_sockets(("127.0.0.1",), 0, 1, base + 1)
    finally:
        close_sockets(bound)


def test_worker_sockets_share_the_port_and_each_has_its_own() -> None:
    bound = bind_worker_sockets(("127.0.0.1",), 0, 3)
    try:
        shared = {ws.shared[socket.AF_INET].getsockname()[1] for ws in bound}
        own = {ws.own_port for ws in bound}
        assert len(shared) == 1 and len(own) == 3 and not shared & own
        value, fds = worker_environment(1, bound[1], 4, 7)
        setup = worker_setup({"SIPPY_WORKER": value})
        assert setup is not None and setup.index == 1 and setup.own_port == bound[1].own_port
        assert setup.generation == 7
        assert fds == {4: bound[1].shared[socket.AF_INET].fileno(), 5: bound[1].own[socket.AF_INET].fileno()}
        assert setup.shared == {socket.AF_INET: 4} and setup.own == {socket.AF_INET: 5}
    finally:
        close_sockets(bound)
    assert worker_setup({}) is None


def test_listings_merge_under_one_heading_with_one_total() -> None:
    a = "In-memory calls:\nc1: Connected (...)\nTotal: 1\n"
    b = "In-memory calls:\nc2: Connected (...)\nc3: Connected (...)\nTotal: 2\n"
    assert (
        merge_listing([a, b])
        == "In-memory calls:\nc1: Connected (...)\nc2: Connected (...)\nc3: Connected (...)\nTotal: 3\n"
    )
    lt = "In-memory server transactions:\ns{0}\nIn-memory client transactions:\nc{0}\n"
    assert merge_answers("lt", [lt.format(1), lt.format(2), ""]) == (
        "In-memory server transactions:\ns1\ns2\nIn-memory client transactions:\nc1\nc2\n"
    )
    missing = "ERROR: no call with id of x has been found\n"
    assert merge_answers("d", [missing, "OK\n"]) == "OK\n"
    assert merge_answers("d", [missing, missing]) == missing
    assert merge_answers("l", []).startswith("ERROR")


def test_status_numbers_add_up_to_the_group_line() -> None:
    one = {"active": 2, "total": 5, "failed": 1, "client": 3, "server": 4, "bad": {"no_via": 1}}
    one["refused"] = {"calls": 0, "server transactions": 0, "client transactions": 0}
    two = {**one, "bad": {"unparsable": 2}, "spool": {"waiting": 1, "delivered": 2, "lost": 0}}
    line = format_status(add_counts(add_counts({}, one), two))
    assert line.startswith("status: 4 active calls, 10 calls since start, 2 failed, 6 client / 8 server")
    assert (
        "bad messages: no_via 1, unparsable 2" in line and "accounting spool 1 waiting, 2 delivered" in line
    )


def test_control_socket_answers_in_order_when_an_answer_comes_later() -> None:
    out: list[bytes] = []
    later: Deferred = Deferred()

    def command(clim: CLIManager, line: str) -> object:
        if line == "slow":
            return later.addCallback(lambda _: clim.send("slow done\n"))
        clim.send(f"{line} done\n")
        return None

    clim = CLIManager(command, None, out.append)
    closed: list[bool] = []
    clim._close_cb = lambda: closed.append(True)
    for line in ("slow", "fast", "q"):
        clim.handle_cmd(line)
    assert out == [] and not closed  # `fast` and `q` wait for `slow`
    later.callback(None)
    assert out == [b"slow done\n", b"fast done\n"] and closed == [True]


class _FakeGroup:
    """What WorkerControl asks of a WorkerGroup: two workers whose answers are given."""

    def __init__(self, answers: dict[str, list[str]]) -> None:
        self.answers = answers
        self.workers = [object(), object()]
        self.running = 2
        self.restarts = 1
        self.stopped: Deferred = Deferred()
        self.asked: list[str] = []

    def ask(self, cmd: str) -> Deferred:
        self.asked.append(cmd)
        return succeed(self.answers[cmd])


def test_group_status_line_and_control_answers_come_from_every_worker() -> None:
    one = {"active": 1, "total": 3, "failed": 0, "client": 2, "server": 1, "bad": {}, "stream": {}}
    one["refused"] = {"calls": 0, "server transactions": 0, "client transactions": 0}
    answers = {
        COUNTS: [json.dumps(one), json.dumps({**one, "active": 2}), ""],
        "l": ["In-memory calls:\na: x\nTotal: 1\n", "In-memory calls:\nb: y\nTotal: 1\n"],
    }
    log = ListLog()
    ctl = WorkerControl({"_sip_logger": log}, _FakeGroup(answers), reactor=Clock())  # type: ignore[arg-type]
    ctl.logStatus()
    assert log.lines == [
        "status: 3 active calls, 6 calls since start, 0 failed, 4 client / 2 server transactions;"
        " bad messages: none; refused at a bound: none; workers: 2 of 2 running, 1 restarted"
    ]
    out: list[bytes] = []
    CLIManager(ctl.recvCommand, None, out.append).handle_cmd("l")
    assert out == [b"In-memory calls:\na: x\nb: y\nTotal: 2\n"]


class _SpawnClock(Clock):
    """A Clock that records spawnProcess calls (the group's only other use of its reactor)."""

    def __init__(self) -> None:
        super().__init__()
        self.spawned: list[tuple[Any, dict[int, Any]]] = []
        self.next_pid = 1000

    def spawnProcess(self, proto: Any, executable: str, args: Any, env: Any, path: Any, childFDs: Any) -> Any:
        self.next_pid += 1
        transport = type("T", (), {"pid": self.next_pid, "writeToChild": lambda self, fd, data: None})()
        proto.transport = transport
        self.spawned.append((proto, childFDs))
        return transport


def _end(proto: Any, signum: Optional[int] = None) -> None:
    proto.processEnded(Failure(ProcessTerminated(signal=signum) if signum else ProcessDone(0)))


def test_group_restarts_a_dead_worker_later_each_time_it_dies_young_and_stops_all() -> None:
    reactor = _SpawnClock()
    bound = bind_worker_sockets(("127.0.0.1",), 0, 2)
    logged: list[str] = []
    try:
        group = WorkerGroup(
            bound, ["-f"], boot="pass", reactor=reactor, log=lambda text, level: logged.append(text)
        )
        started: list[Any] = []
        group.start().addCallback(started.append)
        for proto, fds in reactor.spawned:
            assert fds[0] == "w" and fds[3] == "r" and set(fds) == {0, 1, 2, 3, 4, 5}
            proto.childDataReceived(3, b"ready\0")
        assert started == [group] and group.running == 2
        delays = []
        for _ in range(3):  # worker 0 dies young again and again: 0.5, 1, 2 s
            proto = reactor.spawned[-2 if len(reactor.spawned) == 2 else -1][0]
            _end(proto, signal.SIGKILL)
            delays.append(re.search(r"restarting it in ([0-9.]+) s", logged[-1])[1])
            before = len(reactor.spawned)
            reactor.advance(float(delays[-1]))
            assert len(reactor.spawned) == before + 1
            reactor.spawned[-1][0].childDataReceived(3, b"ready\0")
        assert delays == ["0.5", "1", "2"] and group.restarts == 3
        restarting = [line for line in logged if "restarting" in line]
        assert all(line.startswith("worker 0 (pid ") and "killed by SIGKILL" in line for line in restarting)
        # Worker 1 dies, then the group is told to stop before its restart: no restart.
        _end(reactor.spawned[1][0], signal.SIGSEGV)
        assert "worker 1 (pid 1002) killed by SIGSEGV: restarting it in 0.5 s" in logged[-1]
        stopped: list[Any] = []
        group.stop().addCallback(stopped.append)
        reactor.advance(60)
        assert len(reactor.spawned) == 5 and not stopped  # worker 0 has not exited yet
        _end(reactor.spawned[-1][0])
        assert stopped == [group]
    finally:
        close_sockets(bound)


def test_a_worker_that_ends_before_it_is_ready_fails_the_start() -> None:
    reactor = _SpawnClock()
    bound = bind_worker_sockets(("127.0.0.1",), 0, 2)
    try:
        group = WorkerGroup(bound, [], boot="pass", reactor=reactor, log=lambda text, level: None)
        failures: list[Any] = []
        group.start().addErrback(failures.append)
        reactor.spawned[0][0].childDataReceived(3, b"ready\0")
        _end(reactor.spawned[1][0])
        assert "worker 1" in failures[0].getErrorMessage() and group.stopping
        _end(reactor.spawned[0][0])
        assert group.stopped.called and len(reactor.spawned) == 2
    finally:
        close_sockets(bound)


def test_a_worker_takes_its_own_port_spool_call_numbers_and_no_stream_listener_past_worker_0() -> None:
    from sippy.B2BConfig import parse_args
    from sippy.b2bua_radius import CALL_NUMBERS_PER_GENERATION, CALL_NUMBERS_PER_WORKER, become_worker
    from sippy.CallController import CallController
    from sippy.WorkerGroup import WorkerSetup

    saved = CallController._next_id
    try:
        for index, generation in ((0, 0), (2, 0), (2, 3)):
            cfg = parse_args(
                ["-u", "-s", "127.0.0.1:5999", "--tcp_socket", "127.0.0.1:5070", "-P", "/x/b.pid"]
            )
            become_worker(
                cfg, WorkerSetup(index, {socket.AF_INET: 4}, {socket.AF_INET: 5}, 40125, generation)
            )
            assert cfg["_sip_fds"] == {socket.AF_INET: 5} and cfg["_sip_port"] == 40125
            assert cfg["acct_spool_dir"] == f"/x/b.acct-spool/worker{index}"
            assert ("_tcp_sockets" in cfg) == (index == 0)
            # A restarted worker numbers its calls past its predecessors' (their media may notify).
            first = index * CALL_NUMBERS_PER_WORKER + generation * CALL_NUMBERS_PER_GENERATION + 1
            assert CallController._next_id == first
    finally:
        CallController._next_id = saved
