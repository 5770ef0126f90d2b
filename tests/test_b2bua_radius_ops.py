"""b2bua_radius operations: a real B2BUA process between two SIPp instances, driven by signals and
its control socket; the status line and the stop sequence also with a Clock.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Callable, Optional

import pytest
from twisted.internet.task import Clock

from sippy.B2BOperations import B2BOperations
from sippy.CallMap import CallMap
from sippy.CLIManager import CLIConnectionManager, UnknownCommand
from sippy.Network_server import Network_server, Network_server_opts
from sippy.SipLogger import SipLogger
from sippy.SipRequest import SipRequest
from sippy.SipTransactionManager import COMPLETED, TRYING, SipTransactionManager
from sippy.Time.MonoTime import MonoTime
from tests.conftest import free_tcp_port, free_udp_port
from tests.sipp_util import Sipp

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "scripts" / "b2bua_radius.py"

# A caller that stays in the call until the B2BUA hangs up: answers the BYE (after `pause` ms).
CALLER_WAIT_BYE = """<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="caller waits for BYE">
  <send retrans="500"><![CDATA[
INVITE sip:[service]@[remote_ip]:[remote_port] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: sipp <sip:sipp@[local_ip]:[local_port]>;tag=[pid]SIPpTag[call_number]
To: <sip:[service]@[remote_ip]:[remote_port]>
Call-ID: [call_id]
CSeq: 1 INVITE
Contact: <sip:sipp@[local_ip]:[local_port]>
Max-Forwards: 70
Content-Type: application/sdp
Content-Length: [len]

v=0
o=user1 53655765 2353687637 IN IP[local_ip_type] [local_ip]
s=-
c=IN IP[media_ip_type] [media_ip]
t=0 0
m=audio [media_port] RTP/AVP 0
a=rtpmap:0 PCMU/8000
]]></send>
  <recv response="100" optional="true" />
  <recv response="180" optional="true" />
  <recv response="200" rrs="true" />
  <send><![CDATA[
ACK [next_url] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: sipp <sip:sipp@[local_ip]:[local_port]>;tag=[pid]SIPpTag[call_number]
To: <sip:[service]@[remote_ip]:[remote_port]>[peer_tag_param]
Call-ID: [call_id]
CSeq: 1 ACK
Contact: <sip:sipp@[local_ip]:[local_port]>
Max-Forwards: 70
Content-Length: 0
]]></send>
  <recv request="BYE" />
  <pause milliseconds="{pause}" />
  <send><![CDATA[
SIP/2.0 200 OK
[last_Via:]
[last_From:]
[last_To:]
[last_Call-ID:]
[last_CSeq:]
Content-Length: 0
]]></send>
</scenario>
"""

# A caller that expects its INVITE to be refused with 503.
CALLER_503 = """<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="caller expects 503">
  <send retrans="500"><![CDATA[
INVITE sip:[service]@[remote_ip]:[remote_port] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: sipp <sip:sipp@[local_ip]:[local_port]>;tag=[pid]SIPpTag[call_number]
To: <sip:[service]@[remote_ip]:[remote_port]>
Call-ID: [call_id]
CSeq: 1 INVITE
Contact: <sip:sipp@[local_ip]:[local_port]>
Max-Forwards: 70
Content-Length: 0
]]></send>
  <recv response="100" optional="true" />
  <recv response="503" />
  <send><![CDATA[
ACK sip:[service]@[remote_ip]:[remote_port] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: sipp <sip:sipp@[local_ip]:[local_port]>;tag=[pid]SIPpTag[call_number]
To: <sip:[service]@[remote_ip]:[remote_port]>[peer_tag_param]
Call-ID: [call_id]
CSeq: 1 ACK
Max-Forwards: 70
Content-Length: 0
]]></send>
</scenario>
"""

CALL_LINE = re.compile(
    r"^(?P<cid>\S+): (?P<state>\w+) "
    r"\((?P<astate>\S+) (?P<ahost>[\d.]+):(?P<aport>\d+) (?P<acli>\S+) (?P<acld>\S+)"
    r" -> (?P<ostate>\S+) (?P<ohost>[\d.]+):(?P<oport>\d+) (?P<ocli>\S+) (?P<ocld>\S+)\)$",
    re.M,
)


def wait_for(cond: Callable[[], object], timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.05)
    return bool(cond())


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def read_text(path: Path) -> str:
    try:
        return path.read_text(errors="replace")
    except FileNotFoundError:
        return ""


def cli_command(address: str, commands: str, timeout: float = 5.0) -> str:
    """Send newline-terminated commands then `q`; return everything the B2BUA answered until it closed."""
    if address.startswith("tcp:"):
        host, port = address[4:].rsplit(":", 1)
        sock = socket.create_connection((host, int(port)), timeout=timeout)
    else:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(timeout)
        sock.connect(address)
    with sock:
        sock.sendall(commands.encode() + b"q\n")
        chunks = []
        while True:
            data = sock.recv(65536)
            if not data:
                return b"".join(chunks).decode()
            chunks.append(data)


class B2bua:
    """One b2bua_radius process on loopback with a static route to `callee`; always killed at the end."""

    def __init__(self, tmp: Path, callee_port: int, *, foreground: bool = True, extra: tuple = ()) -> None:
        self.tmp = tmp
        self.port = free_udp_port()
        self.sock = str(tmp / "b2bua.sock")
        self.log = tmp / "b2bua.log"
        self.pidfile = tmp / "b2bua.pid"
        self.args = [sys.executable, str(SCRIPT), "-u", "-A", "0", "-l", "127.0.0.1", "-p", str(self.port)]
        self.args += ["-s", f"127.0.0.1:{callee_port}", "-c", self.sock, *extra]
        if foreground:
            self.args.append("-f")
        else:
            self.args += ["-P", str(self.pidfile), "-L", str(self.log)]
        self.foreground = foreground
        self.proc: Optional[subprocess.Popen] = None
        self.pid: Optional[int] = None

    def start(self) -> B2bua:
        if self.foreground:
            with open(self.log, "ab") as log:
                self.proc = subprocess.Popen(self.args, stdin=subprocess.DEVNULL, stdout=log, stderr=log)
            self.pid = self.proc.pid
        else:
            res = subprocess.run(self.args, capture_output=True, text=True, timeout=15)
            assert res.returncode == 0, res.stderr
            self.pid = int(self.pidfile.read_text())
        assert wait_for(lambda: "b2bua_radius started" in read_text(self.log), 20), read_text(self.log)
        return self

    @property
    def address(self) -> tuple[str, int]:
        return ("127.0.0.1", self.port)

    def signal(self, signum: int) -> None:
        assert self.pid is not None
        os.kill(self.pid, signum)

    def gone(self) -> bool:
        if self.proc is not None:
            return self.proc.poll() is not None
        return self.pid is not None and not pid_alive(self.pid)

    def kill(self) -> None:
        if self.pid is not None and not self.gone():
            os.kill(self.pid, signal.SIGKILL)
        if self.proc is not None:
            self.proc.wait(timeout=5)

    def calls(self) -> str:
        return cli_command(self.sock, "l\n")

    def wait_connected(self, n: int = 1) -> list[re.Match]:
        """Wait until `l` shows n connected calls; return their lines."""
        found: list[re.Match] = []

        def check() -> bool:
            found[:] = [m for m in CALL_LINE.finditer(self.calls()) if m["state"] == "Connected"]
            return len(found) == n

        assert wait_for(check), self.calls() + read_text(self.log)
        return found


@pytest.fixture
def b2bua_factory(tmp_path):
    """Start B2BUAs and SIPp instances; everything is killed at the end of the test."""
    started: list = []

    def make(callee_port: int, **kwargs) -> B2bua:
        b = B2bua(tmp_path, callee_port, **kwargs)
        started.append(b)
        return b.start()

    def sipp(scenario: str, remote=None, **kwargs) -> Sipp:
        if scenario in ("caller_wait_bye", "caller_slow_bye", "caller_503"):
            path = tmp_path / f"{scenario}.xml"
            text = CALLER_503 if scenario == "caller_503" else CALLER_WAIT_BYE
            path.write_text(text.replace("{pause}", "1500" if scenario == "caller_slow_bye" else "0"))
            scenario = str(path)
        s = Sipp(scenario, remote, timeout=kwargs.pop("timeout", 10.0), **kwargs)
        started.append(s)
        return s.start()

    yield make, sipp
    for item in started:
        if isinstance(item, Sipp):
            item.cleanup()
        else:
            item.kill()


def bye_received(res) -> bool:
    # (a slow answer makes the B2BUA retransmit its BYE)
    return len(res.received("BYE ")) >= 1 and len(res.sent("SIP/2.0 200")) >= 1


def call_up(make, sipp, **kwargs):
    """callee (SIPp uas) <- B2BUA <- caller waiting for BYE; returns them with the call connected."""
    scenario = kwargs.pop("caller", "caller_wait_bye")
    callee = sipp("uas")
    b2b = make(callee.local_port, **kwargs)
    caller = sipp(scenario, b2b.address)
    return callee, b2b, caller


# ----- control socket -----


@pytest.mark.parametrize("kind", ["unix", "tcp"])
def test_control_socket_lists_and_disconnects_a_call(b2bua_factory, kind):
    make, sipp = b2bua_factory
    extra = () if kind == "unix" else ("-c", f"tcp:127.0.0.1:{free_tcp_port()}")
    callee = sipp("uas")
    b2b = make(callee.local_port, extra=extra)
    if kind == "tcp":
        b2b.sock = extra[1]
    caller = sipp("caller_wait_bye", b2b.address)
    (line,) = b2b.wait_connected()
    text = b2b.calls()
    assert text.startswith("In-memory calls:\n") and text.endswith("Total: 1\n"), text
    assert (line["astate"], line["ostate"]) == ("Connected", "Connected")
    assert (line["ahost"], int(line["aport"])) == caller.address
    assert (line["ohost"], int(line["oport"])) == callee.address
    # caller's number, then the number called, on both legs
    assert (line["acli"], line["acld"], line["ocli"], line["ocld"]) == ("sipp", "service", "sipp", "service")
    assert cli_command(b2b.sock, f"d {line['cid']}\n") == "OK\n"
    res_caller, res_callee = caller.wait(), callee.wait()
    assert res_caller.returncode == 0 and bye_received(res_caller), res_caller.describe()
    assert res_callee.returncode == 0 and bye_received(res_callee), res_callee.describe()
    assert (
        cli_command(b2b.sock, f"d {line['cid']}x\n")
        == f"ERROR: no call with id of {line['cid']}x has been found\n"
    )


def test_control_socket_disconnect_all_and_other_commands(b2bua_factory):
    make, sipp = b2bua_factory
    callee, b2b, caller = call_up(make, sipp)
    b2b.wait_connected()
    answer = cli_command(b2b.sock, "lt\n")
    server, _, client = answer.partition("In-memory client transactions:\n")
    assert server.startswith("In-memory server transactions:\n")
    # the caller's INVITE (server side) and ours to the callee (client side): Call-ID, tid, method,
    # state, peer
    assert re.search(r"^\S+ \(.*\) INVITE [A-Z]+ udp:127\.0\.0\.1:\d+$", server, re.M), answer
    assert re.search(r"^\S+ \(.*\) INVITE [A-Z]+ udp:127\.0\.0\.1:\d+$", client, re.M), answer
    # nothing is a minute old yet
    assert (
        cli_command(b2b.sock, "llt\n") == "In-memory server transactions:\nIn-memory client transactions:\n"
    )
    assert cli_command(b2b.sock, "frobnicate\n") == "ERROR: unknown command\n"
    assert cli_command(b2b.sock, "d\n") == "ERROR: syntax error: d <call-id>\n"
    assert cli_command(b2b.sock, "d *\n") == "OK\n"
    res_caller, res_callee = caller.wait(), callee.wait()
    assert res_caller.returncode == 0 and bye_received(res_caller), res_caller.describe()
    assert res_callee.returncode == 0 and bye_received(res_callee), res_callee.describe()


def test_control_socket_q_closes_connection(b2bua_factory):
    make, sipp = b2bua_factory
    b2b = make(free_udp_port())
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(5)
        s.connect(b2b.sock)
        s.sendall(b"l\n")
        assert s.recv(4096) == b"In-memory calls:\nTotal: 0\n"
        s.sendall(b"q\n")
        assert s.recv(4096) == b""


def test_control_socket_owner_only_and_not_stolen_by_a_second_instance(b2bua_factory, tmp_path):
    make, _ = b2bua_factory
    first = make(free_udp_port())
    assert os.stat(first.sock).st_mode & 0o777 == 0o600
    inode = os.stat(first.sock).st_ino
    # A second B2BUA with the same -c: one line, exit 2, the first one keeps its socket.
    second = B2bua(tmp_path, free_udp_port())
    res = subprocess.run(second.args, capture_output=True, text=True, timeout=15)
    assert res.returncode == 2, res
    assert (
        res.stderr
        == f"b2bua_radius: control socket {first.sock} is in use by a running process, not starting\n"
    )
    assert os.stat(first.sock).st_ino == inode and first.calls() == "In-memory calls:\nTotal: 0\n"
    # Killed, it leaves a stale socket file behind: the next start replaces it.
    first.kill()
    assert os.path.exists(first.sock)
    first.log.write_text("")  # the next B2bua waits for its own "started" line in the same file
    third = make(free_udp_port(), extra=("--b2bua_socket_mode", "0660"))
    assert os.stat(third.sock).st_mode & 0o777 == 0o660
    assert third.calls() == "In-memory calls:\nTotal: 0\n"


def test_udp_control_socket_answers_only_allowed_sources(b2bua_factory):
    make, _ = b2bua_factory
    port = free_udp_port()
    # Listens on every address, answers only 127.0.0.2 (and, through the default, nobody else).
    b2b = make(free_udp_port(), extra=("-c", f"udp:0.0.0.0:{port}", "--b2bua_socket_allow", "127.0.0.2"))
    with (
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as victim,
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as admin,
    ):
        victim.bind(("127.0.0.1", 0))
        admin.bind(("127.0.0.2", 0))
        victim.settimeout(0.5)
        admin.settimeout(5)
        victim.sendto(b"l", ("127.0.0.1", port))  # what a spoofed datagram claiming the victim's address does
        admin.sendto(b"l", ("127.0.0.1", port))
        assert admin.recv(4096) == b"In-memory calls:\nTotal: 0\n"
        with pytest.raises(socket.timeout):
            victim.recv(4096)
    assert not b2b.gone()


# ----- signals -----


def test_sigterm_hangs_up_refuses_new_calls_and_exits(b2bua_factory):
    make, sipp = b2bua_factory
    callee, b2b, caller = call_up(make, sipp, caller="caller_slow_bye")
    b2b.wait_connected()
    b2b.signal(signal.SIGTERM)
    # the caller takes 1.5 s to answer the BYE: the B2BUA is still stopping when this INVITE comes
    late = sipp("caller_503", b2b.address, timeout=5.0)
    res_late = late.wait()
    assert res_late.returncode == 0 and len(res_late.received("SIP/2.0 503")) == 1, res_late.describe()
    res_caller, res_callee = caller.wait(), callee.wait()
    assert res_caller.returncode == 0 and bye_received(res_caller), res_caller.describe()
    assert res_callee.returncode == 0 and bye_received(res_callee), res_callee.describe()
    assert b2b.proc.wait(timeout=5) == 0
    assert not os.path.exists(b2b.sock)  # control socket removed


def test_sighup_disconnects_calls_and_keeps_running(b2bua_factory):
    make, sipp = b2bua_factory
    callee, b2b, caller = call_up(make, sipp)
    b2b.wait_connected()
    b2b.signal(signal.SIGHUP)
    res_caller, res_callee = caller.wait(), callee.wait()
    assert res_caller.returncode == 0 and bye_received(res_caller), res_caller.describe()
    assert res_callee.returncode == 0 and bye_received(res_callee), res_callee.describe()
    assert not b2b.gone()
    assert "Total: 1\n" in b2b.calls()  # the hung-up call lingers (absorbing retransmissions)


def test_sigusr1_reopens_log(b2bua_factory):
    make, sipp = b2bua_factory
    callee = sipp("uas")
    b2b = make(callee.local_port, foreground=False)
    rotated = b2b.log.with_name("b2bua.log.1")
    os.rename(b2b.log, rotated)
    b2b.signal(signal.SIGUSR1)
    assert wait_for(lambda: "reopened logs" in read_text(b2b.log)), read_text(rotated)
    res = sipp("uac", b2b.address, duration=100).wait()
    assert res.returncode == 0, res.describe()
    assert wait_for(lambda: "placing call #1" in read_text(b2b.log))
    assert "placing call" not in read_text(rotated) and "b2bua_radius started" in read_text(rotated)


def test_sigusr2_toggles_debug_logging(b2bua_factory):
    make, sipp = b2bua_factory
    callee = sipp("uas", calls=None)
    b2b = make(callee.local_port)
    res = sipp("uac", b2b.address, duration=100).wait()
    assert res.returncode == 0, res.describe()
    assert "INVITE sip:" not in read_text(b2b.log)
    b2b.signal(signal.SIGUSR2)
    assert wait_for(lambda: "debug logging on" in read_text(b2b.log))
    res = sipp("uac", b2b.address, duration=100).wait()
    assert res.returncode == 0, res.describe()
    text = read_text(b2b.log)
    assert re.search(r"RECEIVED message from 127\.0\.0\.1:\d+:\nINVITE sip:service@", text), text
    b2b.signal(signal.SIGUSR2)
    assert wait_for(lambda: "debug logging off" in read_text(b2b.log))
    size = len(read_text(b2b.log))
    res = sipp("uac", b2b.address, duration=100).wait()
    assert res.returncode == 0, res.describe()
    assert wait_for(lambda: read_text(b2b.log).count("placing call") == 3)
    assert "INVITE sip:" not in read_text(b2b.log)[size:]


# ----- with a Clock: the status line, the stop sequence, llt -----


class ClockReactor(Clock):
    """A Clock with what B2BOperations asks of a reactor."""

    def __init__(self) -> None:
        super().__init__()
        self.stopped = 0

    def stop(self) -> None:
        self.stopped += 1


class FakeCall:
    """A controller whose legs are not modelled: it only records disconnect()."""

    uaA = None
    uaO = None

    def __init__(self) -> None:
        self.disconnects = 0

    def disconnect(self, rtime=None) -> None:
        self.disconnects += 1


class FakeTransaction:
    def __init__(self, method, state, age) -> None:
        self.method = method
        self.state = state
        self.rtime = MonoTime().offsetCopy(-age)


class FakeTm:
    def __init__(self) -> None:
        self.tserver: dict = {}
        self.tclient: dict = {}


class FakeUdpServer(Network_server):
    """A UDP transport that sends nowhere."""

    transport = "udp"

    def __init__(self) -> None:
        super().__init__({}, Network_server_opts(("127.0.0.1", 5060), None), Clock())

    def send_to(self, data, address) -> bool:
        return True


INVITE = (
    "INVITE sip:200@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5062;branch=z9hG4bK1\r\n"
    "From: <sip:100@127.0.0.1>;tag=1\r\nTo: <sip:200@127.0.0.1>\r\nCall-ID: new@x\r\nCSeq: 1 INVITE\r\n"
    "Max-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
)


@pytest.fixture
def ops_env(tmp_path, monkeypatch):
    monkeypatch.setenv("SIPLOG_BEND", "logfile")
    monkeypatch.setenv("SIPLOG_LVL", "INFO")
    log = tmp_path / "sip.log"
    logger = SipLogger("b2bua", logfile=str(log))
    tm = FakeTm()
    cfg = {"_sip_logger": logger, "_sip_tm": tm, "foreground": True}
    callmap = CallMap(cfg, lambda *a: pytest.fail("no call expected"))
    reactor = ClockReactor()
    ops = B2BOperations(cfg, callmap, reactor=reactor, stop_timeout=3.0)
    yield ops, callmap, reactor, log, tm
    logger.shutdown()


def test_status_line_every_interval(ops_env):
    ops, callmap, reactor, log, tm = ops_env
    calls = [FakeCall(), FakeCall()]
    for i, cc in enumerate(calls):
        callmap.ncalls_total += 1
        callmap.addLeg(cc, f"c{i}")
    callmap.ncalls_total += 1
    callmap.ncalls_failed += 1
    tm.tclient["t1"] = FakeTransaction("INVITE", TRYING, 1)
    ops.startStatus(60)
    reactor.advance(59.9)
    assert "status:" not in read_text(log)
    reactor.advance(0.1)
    lines = [x for x in read_text(log).splitlines() if "status:" in x]
    assert len(lines) == 1
    assert lines[0].endswith(
        "status: 2 active calls, 3 calls since start, 1 failed, 1 client / 0 server transactions; "
        "bad messages: none; refused at a bound: none"
    )
    callmap.dropCall(calls[0])
    reactor.advance(60)
    lines = [x for x in read_text(log).splitlines() if "status:" in x]
    assert len(lines) == 2 and "status: 1 active calls," in lines[1]


def test_status_line_counts_bad_messages_by_kind_and_refusals(ops_env):
    ops, callmap, reactor, log, tm = ops_env
    tm.bad_counts = Counter({"no_via": 3, "bad_request": 12, "unanswerable": 0})
    tm.refused = Counter({"server": 2})
    callmap.ncalls_refused = 5
    ops.startStatus(60)
    reactor.advance(60)
    (line,) = [x for x in read_text(log).splitlines() if "status:" in x]
    assert line.endswith(
        "0 server transactions; bad messages: bad_request 12, no_via 3; "
        "refused at a bound: calls 5, server transactions 2"
    ), line


def test_safe_stop_refuses_new_calls_and_waits_for_hangups(ops_env):
    ops, callmap, reactor, log, tm = ops_env
    cc = FakeCall()
    callmap.addLeg(cc, "c1")
    hooks: list = []
    callmap.shutdown_hooks.append(lambda: hooks.append("hook"))
    # our BYE to a slow peer
    tm.tclient["bye"] = FakeTransaction("BYE", TRYING, 0)
    ops.handleSignal(signal.SIGTERM)
    assert cc.disconnects == 1
    resp, _, _ = callmap.recvRequest(SipRequest(buf=INVITE), None)
    assert resp.getSCode() == (503, "Service Unavailable")
    reactor.advance(1.0)
    assert reactor.stopped == 0 and hooks == []
    tm.tclient["bye"].state = COMPLETED  # the peer answered
    reactor.advance(0.1)
    assert reactor.stopped == 1 and hooks == ["hook"]
    assert "Signal 15 received, stopping: disconnecting 1 call(s)" in read_text(log)
    reactor.advance(10)
    assert reactor.stopped == 1


def test_safe_stop_gives_up_after_timeout_and_second_signal_stops_at_once(ops_env):
    ops, callmap, reactor, log, tm = ops_env
    tm.tclient["bye"] = FakeTransaction("BYE", TRYING, 0)
    ops.safeStop()
    reactor.advance(2.9)
    assert reactor.stopped == 0
    reactor.advance(0.1)
    assert reactor.stopped == 1
    assert "stopping with 1 call(s) or hang-up(s) not finished" in read_text(log)

    ops2 = B2BOperations(ops.global_config, callmap, reactor=reactor)
    ops2.safeStop()
    ops2.safeStop()
    assert reactor.stopped == 2


def test_safe_stop_removes_the_control_socket_before_the_reactor_stops(ops_env, tmp_path):
    """Nothing of the control socket may depend on a reactor turn after stop()."""
    from twisted.internet import reactor as real_reactor

    ops, callmap, reactor, log, tm = ops_env
    path = tmp_path / "ctl.sock"
    cli = ops.cli = CLIConnectionManager(ops.recvCommand, str(path), reactor=real_reactor)
    assert path.exists()
    file_at_stop: list = []
    reactor.stop = lambda: file_at_stop.append(path.exists())
    ops.safeStop()
    reactor.advance(0.1)  # no call left: the first check stops
    assert file_at_stop == [False]
    deadline = time.monotonic() + 3
    while cli.port.connected and time.monotonic() < deadline:
        real_reactor.iterate(0.01)
    assert not cli.port.connected


def test_lt_and_llt_list_transactions_with_call_id_peer_and_age(ops_env):
    """Through a real transaction manager: an unanswered INVITE from a UDP peer (server side) and
    an OPTIONS we sent (client side); llt shows those at least 60 s old, with their age."""
    ops, callmap, reactor, log, tm = ops_env
    udp = FakeUdpServer()
    real = SipTransactionManager({}, lambda req, t: (None, None, None), transport=udp, reactor=Clock())
    ops.global_config["_sip_tm"] = real
    real.handleIncoming(INVITE.encode(), ("127.0.0.1", 5062), udp, MonoTime().offsetCopy(-75))
    real.newTransaction(
        SipRequest(buf=INVITE.replace("INVITE", "OPTIONS").replace("new@x", "opt@x").encode()), None
    )
    answers: list = []

    class Clim:
        def send(self, text):
            answers.append(text)

    ops.recvCommand(Clim(), "lt")
    lines = answers[0].splitlines()
    assert lines[0] == "In-memory server transactions:" and lines[2] == "In-memory client transactions:"
    assert re.fullmatch(
        r"new@x \('z9hG4bK1', '127.0.0.1', 5062, 'INVITE'\) INVITE RINGING udp:127.0.0.1:5062", lines[1]
    )
    assert re.fullmatch(r"opt@x \('z9hG4bK\S+', 'OPTIONS'\) OPTIONS TRYING udp:127.0.0.1:5060", lines[3])
    assert len(lines) == 4
    ops.recvCommand(Clim(), "LLT")
    lines = answers[1].splitlines()
    assert re.fullmatch(r"new@x \(.*\) INVITE RINGING udp:127.0.0.1:5062 75\.\d", lines[1]), lines
    assert lines[2] == "In-memory client transactions:" and len(lines) == 3
    with pytest.raises(UnknownCommand):
        ops.recvCommand(Clim(), "x 1")
    real.shutdown()


def test_readme_lists_every_flag_as_help_prints_it():
    from sippy.B2BConfig import usage

    help_lines = usage().split("options:\n", 1)[1].splitlines()
    readme = (ROOT / "README.rst").read_text()
    section = readme.split("\nb2bua_radius\n------------\n", 1)[1].split("\nRoutes\n~~~~~~\n", 1)[0]
    block = section.split("    options:\n", 1)[1].split("\n\n", 1)[0]
    assert [x[4:] for x in block.splitlines()] == help_lines


# ----- bounds -----


def test_max_calls_refuses_one_more_with_503_and_retry_after(b2bua_factory):
    make, sipp = b2bua_factory
    callee, b2b, caller = call_up(make, sipp, extra=("--max_calls=1",))
    b2b.wait_connected()
    res_late = sipp("caller_503", b2b.address, timeout=5.0).wait()
    assert res_late.returncode == 0, res_late.describe()
    (resp,) = res_late.received("SIP/2.0 503")
    assert "\nRetry-After: 10\n" in resp, resp
    assert "Total: 1\n" in b2b.calls(), "the refused call left nothing"
    assert cli_command(b2b.sock, "d *\n") == "OK\n"
    res_caller, res_callee = caller.wait(), callee.wait()
    assert res_caller.returncode == 0 and bye_received(res_caller), res_caller.describe()
    assert res_callee.returncode == 0 and bye_received(res_callee), res_callee.describe()
    assert wait_for(lambda: "1 calls in memory: 503 to a new INVITE" in read_text(b2b.log)), read_text(
        b2b.log
    )
    assert "at most 1 calls in memory (--max_calls), more get 503" in read_text(b2b.log)
