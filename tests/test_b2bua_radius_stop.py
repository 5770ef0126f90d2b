"""Safe stop with many calls up: b2bua_radius as a daemon, SIPp both sides, a real FreeRADIUS.

SIGTERM with 200 connected calls: new INVITEs get 503, both legs of every call get their BYE, every
leg its Stop record, and the process exits in bounded time, removing its pidfile and control
socket. With the accounting server silent the Stops are spooled instead, and delivered by the next
start once the server is back.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import free_udp_port
from tests.radius_util import FreeRadius, running_freeradius
from tests.sipp_util import Sipp
from tests.test_b2bua_radius_calls import pytestmark  # noqa: F401
from tests.test_b2bua_radius_ops import (
    CALL_LINE,
    CALLER_WAIT_BYE,
    cli_command,
    pid_alive,
    read_text,
    wait_for,
)
from tests.test_b2bua_radius_spool import identity, spooled
from tests.udp_relay import Relay

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "scripts" / "b2bua_radius.py"


@pytest.fixture(scope="module")
def radius() -> Iterator[FreeRadius]:
    with running_freeradius() as srv:
        yield srv


class Daemon:
    """b2bua_radius detached (-P, -L, unix control socket), -u -s to the callee, Stop accounting."""

    def __init__(self, tmp: Path, conf: str, callee_port: int) -> None:
        self.port = free_udp_port()
        self.pidfile, self.log, self.sock = tmp / "b2bua.pid", tmp / "b2bua.log", tmp / "b2bua.sock"
        self.spool = tmp / "spool"
        self.args = [sys.executable, str(SCRIPT), "-u", "-s", f"200@127.0.0.1:{callee_port}", "-A", "1"]
        self.args += ["-R", conf, "-l", "127.0.0.1", "-p", str(self.port), "-P", str(self.pidfile)]
        self.args += ["-L", str(self.log), "-c", str(self.sock), "--acct_spool_dir", str(self.spool)]
        self.pid = 0

    @property
    def address(self) -> tuple[str, int]:
        return ("127.0.0.1", self.port)

    def start(self) -> Daemon:
        res = subprocess.run(self.args, capture_output=True, text=True, timeout=30)
        assert res.returncode == 0, res.stderr
        self.pid = int(self.pidfile.read_text())
        # The pidfile comes first; the control socket once the SIP side is up.
        assert wait_for(lambda: "b2bua_radius started" in read_text(self.log) and self.sock.exists(), 20)
        return self

    def connected(self) -> int:
        return sum(
            1 for m in CALL_LINE.finditer(cli_command(str(self.sock), "l\n")) if m["state"] == "Connected"
        )

    def kill(self) -> None:
        if self.pid and pid_alive(self.pid):
            os.kill(self.pid, signal.SIGKILL)


def caller_scenario(tmp: Path) -> str:
    path = tmp / "caller_wait_bye.xml"
    path.write_text(CALLER_WAIT_BYE.replace("{pause}", "0"))
    return str(path)


def call_ids(messages: list[str]) -> set[str]:
    out = set()
    for msg in messages:
        for line in msg.splitlines():
            if line.lower().startswith("call-id:"):
                out.add(line.split(":", 1)[1].strip())
    return out


def invite(port: int, lport: int) -> bytes:
    tag = uuid.uuid4().hex[:10]
    return (
        f"INVITE sip:200@127.0.0.1:{port} SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP 127.0.0.1:{lport};branch=z9hG4bK{tag}\r\n"
        f"From: <sip:late@127.0.0.1:{lport}>;tag={tag}\r\nTo: <sip:200@127.0.0.1:{port}>\r\n"
        f"Call-ID: late-{tag}@127.0.0.1\r\nCSeq: 1 INVITE\r\nContact: <sip:late@127.0.0.1:{lport}>\r\n"
        "Max-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
    ).encode()


def up_calls(tmp: Path, b2b: Daemon, callee_port: int, n: int, tag: str) -> tuple[Sipp, Sipp]:
    """n connected calls whose caller and callee both wait for the B2BUA's BYE."""
    callee = Sipp("aaa_uas.xml", local_port=callee_port, calls=n, timeout=60)
    caller = Sipp(
        caller_scenario(tmp),
        b2b.address,
        calls=n,
        rate=100,
        service="200",
        extra=["-l", str(n), "-cid_str", f"{tag}-%u@127.0.0.1"],
        timeout=60,
    )
    try:
        callee.start()
        caller.start()
        assert wait_for(lambda: b2b.connected() == n, 30), (b2b.connected(), read_text(b2b.log)[-3000:])
    except BaseException:
        caller.cleanup()
        callee.cleanup()
        raise
    return caller, callee


def stop_records(radius: FreeRadius, tag: str) -> list[dict[str, list[str]]]:
    return [
        r
        for r in radius.detail_records()
        if r["Acct-Session-Id"][0].startswith(tag + "-") and r["Acct-Status-Type"] == ["Stop"]
    ]


def test_sigterm_with_200_calls(radius: FreeRadius, tmp_path: Path) -> None:
    callee_port = free_udp_port()
    conf = radius.write_radconf(
        str(tmp_path),
        [f"127.0.0.1:{radius.auth_port}"],
        [f"127.0.0.1:{radius.acct_port}"],
        radius_timeout="1",
        radius_retries="2",
    )
    b2b = Daemon(tmp_path, conf, callee_port).start()
    caller = callee = None
    try:
        caller, callee = up_calls(tmp_path, b2b, callee_port, 200, "stop200")
        started = time.monotonic()
        os.kill(b2b.pid, signal.SIGTERM)
        assert wait_for(lambda: "stopping: disconnecting 200 call(s)" in read_text(b2b.log), 5)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.bind(("127.0.0.1", 0))
            s.settimeout(2.0)
            s.sendto(invite(b2b.port, s.getsockname()[1]), b2b.address)
            answer = s.recv(65535).decode(errors="replace")
        assert answer.startswith("SIP/2.0 503 "), answer
        assert wait_for(lambda: not pid_alive(b2b.pid), 15), read_text(b2b.log)[-3000:]
        took = time.monotonic() - started
        caller_res, callee_res = caller.wait(timeout=10), callee.wait(timeout=10)
    finally:
        b2b.kill()
        for s in (caller, callee):
            if s is not None:
                s.cleanup()
    print(f"\nSIGTERM with 200 calls: exited after {took:.1f} s")
    assert took < 8.0, took
    assert not b2b.pidfile.exists() and not b2b.sock.exists()
    # Every call hung up on both sides; SIPp answered every BYE (exit code 0: all calls complete).
    assert len(call_ids(caller_res.received("BYE "))) == 200, caller_res.describe()
    assert len(call_ids(callee_res.received("BYE "))) == 200, callee_res.describe()
    assert caller_res.returncode == 0 and callee_res.returncode == 0, caller_res.describe()
    # 400 Stop records: one per leg.
    assert wait_for(lambda: len(stop_records(radius, "stop200")) >= 400, 10)
    time.sleep(0.3)
    recs = stop_records(radius, "stop200")
    legs = {(r["Acct-Session-Id"][0], r["h323-call-origin"][0]) for r in recs}
    # A retransmission the loaded server logged twice is the same record (same identity).
    assert len(legs) == 400 and len({identity(r) for r in recs}) == 400, len(recs)
    print(f"400 Stop records ({len(recs) - 400} duplicate copies from retransmissions)")
    assert not os.path.isdir(b2b.spool) or os.listdir(b2b.spool) == []


def test_sigterm_spools_stops_the_server_does_not_answer(radius: FreeRadius, tmp_path: Path) -> None:
    callee_port = free_udp_port()
    with Relay(("127.0.0.1", radius.acct_port)) as relay:
        # A server given 2 x 5 s: the stop (3 s at most) cannot wait for it.
        conf = radius.write_radconf(
            str(tmp_path),
            [f"127.0.0.1:{radius.auth_port}"],
            [f"127.0.0.1:{relay.front}"],
            radius_timeout="5",
            radius_retries="2",
        )
        relay.down()
        b2b = Daemon(tmp_path, conf, callee_port).start()
        caller = callee = None
        try:
            caller, callee = up_calls(tmp_path, b2b, callee_port, 20, "stopspool")
            started = time.monotonic()
            os.kill(b2b.pid, signal.SIGTERM)
            assert wait_for(lambda: not pid_alive(b2b.pid), 10), read_text(b2b.log)[-3000:]
            took = time.monotonic() - started
            caller.wait(timeout=10)
            callee.wait(timeout=10)
        finally:
            b2b.kill()
            for s in (caller, callee):
                if s is not None:
                    s.cleanup()
        assert took < 6.0, took
        log = read_text(b2b.log)
        assert "stopping with 40 accounting record(s) unanswered: spooled" in log, log[-3000:]
        assert spooled(str(b2b.spool)) == 40
        assert stop_records(radius, "stopspool") == []
        # The next start, with the server back, delivers them.
        relay.up()
        again = Daemon(tmp_path, conf, callee_port).start()
        try:
            assert wait_for(lambda: len(stop_records(radius, "stopspool")) >= 40, 15)
            assert wait_for(lambda: os.listdir(b2b.spool) == [], 5)
        finally:
            os.kill(again.pid, signal.SIGTERM)
            assert wait_for(lambda: not pid_alive(again.pid), 10)
            again.kill()
    time.sleep(0.3)
    recs = stop_records(radius, "stopspool")
    assert len({(r["Acct-Session-Id"][0], r["h323-call-origin"][0]) for r in recs}) == 40
    assert all(int(r["Acct-Delay-Time"][0]) >= 1 for r in recs)
