"""IPv6 end to end: b2bua_simple and b2bua_radius (-u -s) as real processes between two SIPp on
::1, with in-dialog requests from the callee (re-INVITE, BYE) so that the B2BUA also writes to the
caller's IPv6 Contact. What each SIPp received must carry the IPv6 hosts in brackets."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from typing import Optional

import pytest

from tests.conftest import free_udp_port, stop_process
from tests.sipp_util import Sipp, SippResult

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CLD = "5551234"

pytestmark = pytest.mark.skipif(
    not any(
        os.access(os.path.join(d, "sipp"), os.X_OK) for d in os.environ.get("PATH", "").split(os.pathsep)
    ),
    reason="sipp not installed",
)


def hf(msg: str, name: str) -> list[str]:
    return [m.group(1).strip() for m in re.finditer(rf"^{name}:\s*(.*)$", msg, re.M | re.I)]


def first_line(msg: str) -> str:
    return msg.split("\n", 1)[0].strip()


class B2BProgram:
    """scripts/<program>.py in the foreground listening on `listen`, calls going to `callee`
    (b2bua_simple -n, b2bua_radius -u -A 0 -s); stdout and stderr in one log file."""

    def __init__(self, program: str, listen: str, callee: tuple[str, int], extra: Sequence[str] = ()) -> None:
        self.port = free_udp_port("::1" if ":" in listen else "127.0.0.1")
        self.tmpdir = tempfile.mkdtemp(prefix="b2bua-ipv6-")
        self.logpath = os.path.join(self.tmpdir, "out.log")
        host = f"[{callee[0]}]" if ":" in callee[0] else callee[0]
        cmd = [sys.executable, os.path.join(ROOT, "scripts", f"{program}.py"), "-f", "-l", listen]
        cmd += ["-p", str(self.port)]
        if program == "b2bua_simple":
            cmd += ["-n", f"{host}:{callee[1]}"]
        else:
            cmd += ["-u", "-A", "0", "-c", os.path.join(self.tmpdir, "ctl.sock"), "-s", f"{host}:{callee[1]}"]
        cmd += list(extra)
        with open(self.logpath, "w") as log:
            self.proc = subprocess.Popen(
                cmd,
                cwd=ROOT,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=dict(os.environ, SIPLOG_BEND="stderr"),
            )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and "started, pid" not in self.log() and self.proc.poll() is None:
            time.sleep(0.05)
        if "started, pid" not in self.log():
            self.stop()
            raise AssertionError(f"{program} did not start:\n{self.log()}")

    def log(self) -> str:
        with open(self.logpath, errors="replace") as f:
            return f.read()

    def stop(self) -> None:
        stop_process(self.proc)


def call_through(
    program: str,
    listen: str,
    caller_ip: str,
    callee_ip: str,
    uac: str,
    uas: str,
    duration: Optional[int] = None,
) -> tuple[SippResult, SippResult, B2BProgram]:
    """One call caller SIPp (on caller_ip) -> B2BUA (on listen) -> callee SIPp (on callee_ip)."""
    callee = Sipp(uas, local_ip=callee_ip, calls=1, duration=duration, timeout=10)
    b2b = B2BProgram(program, listen, callee.address)
    caller = Sipp(
        uac,
        remote=(caller_ip, b2b.port),
        local_ip=caller_ip,
        calls=1,
        duration=duration,
        service=CLD,
        extra=("-key", "cli", "alice"),
        timeout=10,
    )
    try:
        callee.start()
        caller.start()
        res_caller = caller.wait()
        res_callee = callee.wait(timeout=5)
    finally:
        caller.cleanup()
        callee.cleanup()
        b2b.stop()
    assert res_caller.returncode == 0, res_caller.describe() + "\nB2BUA log:\n" + b2b.log()[-3000:]
    assert res_callee.returncode == 0, res_callee.describe() + "\nB2BUA log:\n" + b2b.log()[-3000:]
    assert "Traceback" not in b2b.log(), b2b.log()
    return res_caller, res_callee, b2b


def assert_written_for(msgs: Sequence[str], peer_ip: str, b2b: B2BProgram) -> None:
    """Every request the B2BUA sent to a peer on peer_ip names it, and the B2BUA itself, with the
    host as SIP text writes it; responses carry the B2BUA's Contact the same way."""
    peer = f"[{peer_ip}]" if ":" in peer_ip else peer_ip
    assert msgs
    for msg in msgs:
        line = first_line(msg)
        if not line.startswith("SIP/2.0"):
            assert re.match(rf"^[A-Z]+ sip:[^ ]*@?{re.escape(peer)}(:\d+)?[;> ]", line + " "), msg
            assert hf(msg, "Via")[0].startswith(f"SIP/2.0/UDP {peer}:{b2b.port}"), msg
        for contact in hf(msg, "Contact"):
            assert f"@{peer}:{b2b.port}>" in contact or f"sip:{peer}:{b2b.port}>" in contact, msg


@pytest.mark.parametrize("program", ["b2bua_simple", "b2bua_radius"])
def test_ipv6_call_with_reinvites_from_the_callee(program: str) -> None:
    caller, callee, b2b = call_through(
        program, "::1", "::1", "::1", "simple_uac_answer_reinvite.xml", "simple_uas_reinvite.xml"
    )
    (inv_b,) = [m for m in callee.received("INVITE ")]
    assert first_line(inv_b).startswith(f"INVITE sip:{CLD}@[::1]:")
    assert "@[::1]" in hf(inv_b, "To")[0] and "<sip:alice1@[::1]" in hf(inv_b, "From")[0]
    assert_written_for(callee.received(), "::1", b2b)
    # The callee's re-INVITEs reached the caller's IPv6 Contact, written with brackets.
    reinvites = caller.received("INVITE ")
    assert len(reinvites) == 2
    assert all(first_line(m).startswith("INVITE sip:sipp@[::1]:") for m in reinvites)
    assert_written_for(caller.received(), "::1", b2b)
    # ... and the caller's BYE reached the callee's IPv6 Contact.
    assert len(callee.received("BYE sip:[::1]:")) == 1


@pytest.mark.parametrize("program", ["b2bua_simple", "b2bua_radius"])
def test_ipv6_call_callee_hangs_up(program: str) -> None:
    caller, callee, b2b = call_through(
        program, "::1", "::1", "::1", "simple_uac_wait_bye.xml", "simple_uas_bye.xml", duration=200
    )
    (bye,) = caller.received("BYE ")
    assert first_line(bye).startswith("BYE sip:sipp@[::1]:")
    assert_written_for(caller.received(), "::1", b2b)
    assert_written_for(callee.received(), "::1", b2b)


# ----- -l '*': every IPv4 and IPv6 address, mixed across the legs ---------------------------------


@pytest.mark.parametrize("program", ["b2bua_simple", "b2bua_radius"])
@pytest.mark.parametrize("caller_ip, callee_ip", [("127.0.0.1", "::1"), ("::1", "127.0.0.1")])
def test_wildcard_listener_mixes_families_across_legs(program: str, caller_ip: str, callee_ip: str) -> None:
    caller, callee, b2b = call_through(
        program, "*", caller_ip, callee_ip, "simple_uac_answer_reinvite.xml", "simple_uas_reinvite.xml"
    )
    # Each peer saw the B2BUA at the local address that faces it, in its own family.
    assert_written_for(callee.received(), callee_ip, b2b)
    assert_written_for(caller.received(), caller_ip, b2b)
    assert len(caller.received("INVITE ")) == 2 and len(callee.received("BYE ")) == 1
    assert f"listening on *:{b2b.port}" in b2b.log()


def test_sip_proxy_on_ipv6_behind_a_wildcard_listener() -> None:
    """--sip_proxy [::1]:port: an IPv4 client's REGISTER goes on over IPv6 with the B2BUA's IPv6
    Via on top, and the answer comes back to the client over IPv4."""
    registrar = Sipp("flags_registrar.xml", local_ip="::1", timeout=5)
    b2b = B2BProgram(
        "b2bua_radius", "*", ("127.0.0.1", 9), extra=("--sip_proxy", f"[::1]:{registrar.local_port}")
    )
    try:
        registrar.start()
        with Sipp("flags_register.xml", remote=("127.0.0.1", b2b.port), timeout=5) as client:
            pass
        reg = registrar.wait()
    finally:
        registrar.cleanup()
        b2b.stop()
    assert client.result.returncode == 0, client.result.describe() + b2b.log()
    assert reg.returncode == 0, reg.describe() + b2b.log()
    (fwd,) = reg.received("REGISTER")
    assert hf(fwd, "Via")[0].startswith(f"SIP/2.0/UDP [::1]:{b2b.port};"), fwd
    assert hf(fwd, "Via")[1].startswith("SIP/2.0/UDP 127.0.0.1:"), fwd
    (answer,) = client.result.received("SIP/2.0 200")
    assert len(hf(answer, "Via")) == 1, answer
