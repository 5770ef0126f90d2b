"""b2bua_radius end to end with RADIUS: the real program, a real FreeRADIUS, SIPp on both sides.

Every test runs `scripts/b2bua_radius.py -f -R <radiusclient.conf>` as a subprocess on a free
loopback port. The billing rules are tests/radius_e2e/users; callers are told apart by the
loopback address their SIPp binds to. What is asserted is what a user or a billing operator
sees: the SIP answers the caller got, what the callee received and when, the log line, and the
records FreeRADIUS wrote to its detail file.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Any, Optional

import pytest

from sippy.CiscoCDR import h323_disconnect_cause
from tests.conftest import free_udp_port
from tests.radius_util import FreeRadius, running_freeradius
from tests.sipp_util import Sipp, SippResult
from tests.udp_relay import Relay

HERE = os.path.dirname(os.path.abspath(__file__))
SCRIPT = os.path.join(os.path.dirname(HERE), "scripts", "b2bua_radius.py")
USERS_TEMPLATE = os.path.join(HERE, "radius_e2e", "users")
B2B_IP = "127.0.0.1"
START_TIMEOUT = 20.0  # generous: only a slow machine waits that long
# radiusclient.conf for the tests: a silent server costs RETRIES * TIMEOUT seconds.
RADIUS_TIMEOUT = 0.5
RADIUS_RETRIES = 2
HANGUP = h323_disconnect_cause(0)
BUSY = h323_disconnect_cause(486)


# ----- fixtures: the callees' ports, the server, radiusclient.conf ---------------------------


@pytest.fixture(scope="module")
def callee_ports() -> dict[str, int]:
    """Ports of the SIPp callees the users file routes to (ANSWER, BUSY, RING)."""
    ports: dict[str, int] = {}
    while len(set(ports.values())) < 3:
        ports = {name: free_udp_port() for name in ("ANSWER", "BUSY", "RING")}
    return ports


@pytest.fixture(scope="module")
def radius(callee_ports: dict[str, int]) -> Iterator[FreeRadius]:
    with open(USERS_TEMPLATE, encoding="utf-8") as f:
        users = re.sub(r"@([A-Z]+)@", lambda m: str(callee_ports[m.group(1)]), f.read())
    with running_freeradius(overlay={"users": users}) as srv:
        yield srv


@pytest.fixture
def silent_server() -> Iterator[int]:
    """A UDP port with a socket bound that never answers (a RADIUS server that is down)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    try:
        yield sock.getsockname()[1]
    finally:
        sock.close()


def radconf(radius: FreeRadius, tmp_path: Any, auth_ports: Optional[Sequence[int]] = None) -> str:
    """radiusclient.conf: the given auth ports (default: the real server), the real acct port."""
    auth = [f"127.0.0.1:{p}" for p in (auth_ports or [radius.auth_port])]
    return radius.write_radconf(
        str(tmp_path),
        auth,
        [f"127.0.0.1:{radius.acct_port}"],
        radius_timeout=str(RADIUS_TIMEOUT),
        radius_retries=str(RADIUS_RETRIES),
    )


# ----- the B2BUA process -----------------------------------------------------------------------


class B2bua:
    """scripts/b2bua_radius.py in the foreground on a free loopback port, log to a file."""

    def __init__(self, tmp_path: Any, conf: str, flags: Sequence[str]) -> None:
        self.port = free_udp_port(B2B_IP)
        self.log_path = os.path.join(str(tmp_path), f"b2bua-{self.port}.log")
        cli_port = free_udp_port(B2B_IP)
        self.args = [sys.executable, SCRIPT, "-f", "-l", B2B_IP, "-p", str(self.port), "-R", conf]
        self.args += ["-c", f"udp:{B2B_IP}:{cli_port}"]
        if "--acct_spool_dir" not in flags:
            # Never the default beside /var/run/b2bua.pid: tests must not share a spool.
            self.args += ["--acct_spool_dir", os.path.join(str(tmp_path), f"spool-{self.port}")]
        self.args += flags
        self.proc: Optional[subprocess.Popen[bytes]] = None

    @property
    def address(self) -> tuple[str, int]:
        return (B2B_IP, self.port)

    def log(self) -> str:
        with open(self.log_path, encoding="utf-8", errors="replace") as f:
            return f.read()

    def start(self) -> B2bua:
        env = dict(os.environ, SIPLOG_BEND="stderr", SIPLOG_LVL="INFO")
        with open(self.log_path, "wb") as out:
            self.proc = subprocess.Popen(
                self.args,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=env,
                start_new_session=True,
            )
        self._wait_ready()
        return self

    def _wait_ready(self) -> None:
        """Ask with OPTIONS until the call map answers 200 (the SIP port is up).

        A 200 to any of the probes counts: a B2BUA slow to start answers the queued probes in a
        burst, and waiting for the newest one's answer would read one stale answer per new probe
        for ever."""
        assert self.proc is not None
        deadline = time.monotonic() + START_TIMEOUT
        sent: set[str] = set()
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.bind((B2B_IP, 0))
            s.settimeout(0.1)
            lport = s.getsockname()[1]
            while True:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"b2bua_radius did not start ({self.args}):\n{self.log()}")
                branch = uuid.uuid4().hex
                sent.add(branch)
                s.sendto(_options(self.port, lport, branch).encode(), self.address)
                try:
                    data = s.recv(65535).decode(errors="replace")
                except socket.timeout:
                    continue
                match = re.search(r"branch=z9hG4bK([0-9a-f]{32})", data)
                if data.startswith("SIP/2.0 200") and match is not None and match.group(1) in sent:
                    return

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(5)

    def __enter__(self) -> B2bua:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _options(rport: int, lport: int, branch: str) -> str:
    return (
        f"OPTIONS sip:ping@{B2B_IP}:{rport} SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP {B2B_IP}:{lport};branch=z9hG4bK{branch}\r\n"
        f"From: <sip:probe@{B2B_IP}:{lport}>;tag={branch[:8]}\r\n"
        f"To: <sip:ping@{B2B_IP}:{rport}>\r\n"
        f"Call-ID: {branch}@{B2B_IP}\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
    )


# ----- calls -------------------------------------------------------------------------------------


class Call:
    """One SIPp caller through the B2BUA, with the SIPp callees it may reach."""

    def __init__(self, uac: SippResult, callees: dict[str, SippResult], call_id: str) -> None:
        self.uac = uac
        self.callees = callees
        self.call_id = call_id

    def describe(self) -> str:
        parts = [f"caller:\n{self.uac.describe()}"]
        parts += [f"callee {name}:\n{res.describe()}" for name, res in self.callees.items()]
        return "\n".join(parts)


def place_call(
    b2b: B2bua,
    scenario: str,
    caller_ip: str,
    *,
    callees: Optional[dict[str, tuple[str, int]]] = None,
    cld: str = "200",
    cli: str = "16045550000",
    call_id: Optional[str] = None,
    xbilling: str = "none",
    domain: str = B2B_IP,
    hold_ms: Optional[int] = None,
    extra: Sequence[str] = (),
    timeout: float = 10.0,
) -> Call:
    """Run a SIPp caller from caller_ip to the B2BUA; callees: name -> (scenario, port).

    A callee that got no call is stopped once the caller is done (its result then shows no
    messages)."""
    call_id = call_id or f"aaa-{uuid.uuid4().hex[:12]}@{caller_ip}"
    keys = ["-key", "cli", cli, "-key", "cld", cld, "-key", "xbilling", xbilling, "-key", "domain", domain]
    keys += ["-cid_str", call_id]
    uas = {
        name: Sipp(scen, local_port=port, calls=1, timeout=timeout)
        for name, (scen, port) in (callees or {}).items()
    }
    uac = Sipp(
        scenario,
        b2b.address,
        local_ip=caller_ip,
        calls=1,
        duration=hold_ms,
        extra=[*keys, *extra],
        timeout=timeout,
    )
    try:
        for s in uas.values():
            s.start()
        uac.start()
        uac_res = uac.wait()
        results = {}
        for name, s in uas.items():
            got_call = any(d == "received" for d, _ in _read_messages(s))
            results[name] = s.wait(timeout=5.0 if got_call else 0.5)
        return Call(uac_res, results, call_id)
    finally:
        uac.cleanup()
        for s in uas.values():
            s.cleanup()


def _read_messages(sipp: Sipp) -> list[tuple[str, str]]:
    res = SippResult(0, "", "", {}, sipp._read_trace())
    return res.messages


_STAMP = re.compile(r"^-{10,} (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+)\s*\n\S+ message (sent|received)", re.M)


def stamped(res: SippResult) -> list[tuple[float, str, str]]:
    """(time, 'sent'|'received', first line) of every message in a SIPp trace."""
    out = []
    for m in _STAMP.finditer(res.trace):
        when = datetime.strptime(m.group(1), "%Y-%m-%d %H:%M:%S.%f").timestamp()
        rest = res.trace[m.end() :]
        body = rest.split("\n\n", 1)[1] if "\n\n" in rest else ""
        out.append((when, m.group(2), body.lstrip("\r\n").split("\n", 1)[0].strip()))
    return out


def first_time(res: SippResult, direction: str, start: str) -> float:
    for when, d, line in stamped(res):
        if d == direction and line.startswith(start):
            return when
    raise AssertionError(f"no {direction} {start!r} in\n{res.trace[-3000:]}")


def header(msg: str, name: str) -> str:
    m = re.search(rf"^{name}:\s*(.*?)\s*$", msg, re.M | re.I)
    assert m is not None, f"no {name} in\n{msg}"
    return m.group(1)


def final_codes(res: SippResult) -> list[int]:
    """Final answers to the caller's INVITEs, in order."""
    out = []
    for m in res.received("SIP/2.0 "):
        code = int(m.split()[1])
        if code >= 200 and header(m, "CSeq").endswith("INVITE"):
            out.append(code)
    return out


# ----- the detail file -------------------------------------------------------------------------


def cisco(rec: dict[str, list[str]], name: str) -> str:
    """A Cisco VSA value without its `name=` prefix."""
    (value,) = rec[name]
    prefix = name + "="
    return value[len(prefix) :] if value.startswith(prefix) else value


def avpairs(rec: dict[str, list[str]]) -> dict[str, str]:
    return dict(v.split("=", 1) for v in rec.get("Cisco-AVPair", []) if "=" in v)


def records_for(radius: FreeRadius, call_id: str) -> list[dict[str, list[str]]]:
    return [r for r in radius.detail_records() if r.get("Acct-Session-Id") == [call_id]]


def wait_records(
    radius: FreeRadius, call_id: str, count: int, timeout: float = 5.0
) -> list[dict[str, list[str]]]:
    """The records of a call once `count` are there (and a moment more, to catch extras)."""
    deadline = time.monotonic() + timeout
    while len(records_for(radius, call_id)) < count:
        if time.monotonic() > deadline:
            break
        time.sleep(0.05)
    time.sleep(0.3)
    return records_for(radius, call_id)


def by_leg(records: list[dict[str, list[str]]]) -> dict[tuple[str, str], list[dict[str, list[str]]]]:
    """{(h323-call-origin, Acct-Status-Type): [records]}."""
    out: dict[tuple[str, str], list[dict[str, list[str]]]] = {}
    for r in records:
        out.setdefault((cisco(r, "h323-call-origin"), r["Acct-Status-Type"][0]), []).append(r)
    return out


def callee_invite(call: Call, name: str) -> str:
    invites = call.callees[name].received("INVITE ")
    assert invites, f"callee {name} got no INVITE\n{call.describe()}"
    return invites[0]


# ----- authorisation: Remote-IP ----------------------------------------------------------------


def test_accept_two_routes_first_busy_second_answers(
    radius: FreeRadius, callee_ports: dict[str, int], tmp_path: Any
) -> None:
    callees = {
        "busy": ("aaa_uas_busy.xml", callee_ports["BUSY"]),
        "ok": ("aaa_uas.xml", callee_ports["ANSWER"]),
    }
    with B2bua(tmp_path, radconf(radius, tmp_path), ["-A", "1"]) as b2b:
        call = place_call(b2b, "aaa_uac.xml", "127.0.0.21", callees=callees, hold_ms=500)
    assert call.uac.returncode == 0, call.describe()
    assert final_codes(call.uac) == [200]
    # The routes are tried in the reply's order, each with its own CLD.
    assert callee_invite(call, "busy").startswith("INVITE sip:201@127.0.0.1:")
    assert callee_invite(call, "ok").startswith("INVITE sip:202@127.0.0.1:")
    assert call.callees["ok"].returncode == 0, call.describe()
    # One Stop per leg: the caller's, and one for each attempted route.
    legs = by_leg(wait_records(radius, call.call_id, 3))
    assert sorted(legs) == [("answer", "Stop"), ("originate", "Stop")], legs
    (answer,) = legs[("answer", "Stop")]
    assert answer["User-Name"] == ["127.0.0.21"] and answer["Called-Station-Id"] == ["200"]
    assert cisco(answer, "h323-disconnect-cause") == HANGUP
    attempts = {r["Called-Station-Id"][0]: r for r in legs[("originate", "Stop")]}
    assert sorted(attempts) == ["201", "202"]
    assert cisco(attempts["201"], "h323-disconnect-cause") == BUSY
    assert attempts["201"]["Acct-Session-Time"] == ["0"]
    assert cisco(attempts["202"], "h323-disconnect-cause") == HANGUP


def test_cli_cnam_and_credit_time_from_reply(
    radius: FreeRadius, callee_ports: dict[str, int], tmp_path: Any
) -> None:
    callees = {"ok": ("aaa_uas.xml", callee_ports["ANSWER"])}
    with B2bua(tmp_path, radconf(radius, tmp_path), ["-A", "0"]) as b2b:
        call = place_call(b2b, "aaa_uac_until_bye.xml", "127.0.0.22", callees=callees, cli="16045550000")
    assert call.uac.returncode == 0, call.describe()
    invite = callee_invite(call, "ok")
    assert invite.startswith("INVITE sip:300@127.0.0.1:")
    frm = header(invite, "From")
    assert re.match(r'^"?Alice Smith"? <sip:16045551234@', frm), frm
    # h323-credit-time = 2: the B2BUA hangs up both legs two seconds after the answer.
    callee = call.callees["ok"]
    assert callee.returncode == 0, call.describe()
    talk = first_time(callee, "received", "BYE ") - first_time(callee, "sent", "SIP/2.0 200")
    assert 1.7 <= talk <= 3.0, talk
    caller_talk = first_time(call.uac, "received", "BYE ") - first_time(call.uac, "received", "SIP/2.0 200")
    assert 1.7 <= caller_talk <= 3.0, caller_talk


def test_remote_ip_request_carries_every_attribute(
    radius: FreeRadius, callee_ports: dict[str, int], tmp_path: Any
) -> None:
    """The users entry accepts only a request with all of User-Name, Calling/Called-Station-Id,
    call-id, h323-remote-address, h323-conf-id, h323-session-protocol and the pre-auth extra."""
    callees = {"ok": ("aaa_uas.xml", callee_ports["ANSWER"])}
    kw: dict[str, Any] = dict(cld="400", call_id="aaa-attrs@127.0.0.23", xbilling="x-billing=gold")
    flags = ["-A", "0", "-D", "--pre_auth_proc=HDR2Xattrs[X-Billing]"]
    with B2bua(tmp_path, radconf(radius, tmp_path), flags) as b2b:
        call = place_call(b2b, "aaa_uac.xml", "127.0.0.23", callees=callees, hold_ms=200, **kw)
    assert call.uac.returncode == 0, call.describe()
    assert callee_invite(call, "ok").startswith("INVITE sip:400@127.0.0.1:")
    # Without the pre-auth routine the extra attribute is missing and the server says no.
    with B2bua(tmp_path, radconf(radius, tmp_path), ["-A", "0", "-D"]) as b2b:
        call = place_call(b2b, "aaa_uac_refused.xml", "127.0.0.23", **kw)
    assert call.uac.returncode == 0, call.describe()
    assert final_codes(call.uac) == [403]


@pytest.mark.parametrize("caller_ip", ["127.0.0.24", "127.0.0.25"], ids=["reject", "return-code"])
def test_refused_caller_gets_403(
    caller_ip: str, radius: FreeRadius, callee_ports: dict[str, int], tmp_path: Any
) -> None:
    callees = {"ok": ("aaa_uas.xml", callee_ports["ANSWER"])}
    with B2bua(tmp_path, radconf(radius, tmp_path), ["-A", "0", "-D"]) as b2b:
        call = place_call(b2b, "aaa_uac_refused.xml", caller_ip, callees=callees)
    assert call.uac.returncode == 0, call.describe()
    (resp,) = call.uac.received("SIP/2.0 403")
    assert resp.startswith("SIP/2.0 403 Auth Failed")
    assert call.callees["ok"].received() == []


@pytest.mark.parametrize("digest", [True, False], ids=["digest-on", "digest-off"])
def test_silent_server_403_after_retries_with_log_line(
    digest: bool, radius: FreeRadius, silent_server: int, tmp_path: Any
) -> None:
    """No answer is a refusal (403) even when digest is on: no server to check credentials."""
    conf = radconf(radius, tmp_path, [silent_server])
    with B2bua(tmp_path, conf, ["-A", "0"] + ([] if digest else ["-D"])) as b2b:
        call = place_call(b2b, "aaa_uac_refused.xml", "127.0.0.21")
        log = b2b.log()
    assert call.uac.returncode == 0, call.describe()
    assert [r.splitlines()[0] for r in call.uac.received("SIP/2.0 403")] == ["SIP/2.0 403 Auth Failed"]
    waited = first_time(call.uac, "received", "SIP/2.0 403") - first_time(call.uac, "sent", "INVITE")
    budget = RADIUS_TIMEOUT * RADIUS_RETRIES
    assert budget - 0.1 <= waited <= budget + 1.5, waited
    m = re.search(r"Error sending AAA request \(delay is (\d+\.\d{3})\)", log)
    assert m is not None, log
    assert budget - 0.1 <= float(m.group(1)) <= budget + 1.0
    assert call.call_id in log[log.rfind("\n", 0, m.start()) : m.end()]


def test_second_server_answers_when_first_is_silent(
    radius: FreeRadius, silent_server: int, callee_ports: dict[str, int], tmp_path: Any
) -> None:
    conf = radconf(radius, tmp_path, [silent_server, radius.auth_port])
    callees = {"ok": ("aaa_uas.xml", callee_ports["ANSWER"])}
    with B2bua(tmp_path, conf, ["-A", "0", "-D"]) as b2b:
        call = place_call(b2b, "aaa_uac.xml", "127.0.0.26", callees=callees, hold_ms=200)
    assert call.uac.returncode == 0, call.describe()
    assert callee_invite(call, "ok").startswith("INVITE sip:600@")
    # The answer could only come after the first server was given up on.
    waited = first_time(call.callees["ok"], "received", "INVITE") - first_time(call.uac, "sent", "INVITE")
    assert waited >= RADIUS_TIMEOUT * RADIUS_RETRIES - 0.1, waited


# ----- authorisation: digest -------------------------------------------------------------------


def test_unauthorised_caller_is_challenged_with_fresh_nonces(radius: FreeRadius, tmp_path: Any) -> None:
    with B2bua(tmp_path, radconf(radius, tmp_path), ["-A", "0"]) as b2b:
        calls = [
            place_call(b2b, "aaa_uac_refused.xml", "127.0.0.24", domain="voip.example.net") for _ in range(2)
        ]
    nonces = []
    for call in calls:
        assert call.uac.returncode == 0, call.describe()
        (resp,) = call.uac.received("SIP/2.0 401")
        challenge = header(resp, "WWW-Authenticate")
        assert challenge.startswith("Digest ")
        assert re.search(r'realm="voip\.example\.net"', challenge), challenge
        m = re.search(r'nonce="([^"]+)"', challenge)
        assert m is not None, challenge
        nonces.append(m.group(1))
    assert nonces[0] != nonces[1]


def test_digest_credentials_accepted(radius: FreeRadius, callee_ports: dict[str, int], tmp_path: Any) -> None:
    callees = {"ok": ("aaa_uas.xml", callee_ports["ANSWER"])}
    with B2bua(tmp_path, radconf(radius, tmp_path), ["-A", "0"]) as b2b:
        call = place_call(
            b2b,
            "aaa_uac_digest_ok.xml",
            "127.0.0.29",
            callees=callees,
            hold_ms=200,
            extra=("-au", "alice", "-ap", "wonderland"),
        )
    assert call.uac.returncode == 0, call.describe()
    assert final_codes(call.uac) == [401, 200]
    assert callee_invite(call, "ok").startswith("INVITE sip:500@127.0.0.1:")
    assert "Login OK: [alice]" in radius.log()


def test_digest_credentials_refused(radius: FreeRadius, callee_ports: dict[str, int], tmp_path: Any) -> None:
    callees = {"ok": ("aaa_uas.xml", callee_ports["ANSWER"])}
    with B2bua(tmp_path, radconf(radius, tmp_path), ["-A", "0"]) as b2b:
        call = place_call(
            b2b,
            "aaa_uac_digest_refused.xml",
            "127.0.0.29",
            callees=callees,
            extra=("-au", "alice", "-ap", "looking-glass"),
        )
    assert call.uac.returncode == 0, call.describe()
    assert final_codes(call.uac) == [401, 403]
    assert call.callees["ok"].received() == []


def test_digest_auth_only_skips_remote_ip(
    radius: FreeRadius, callee_ports: dict[str, int], tmp_path: Any
) -> None:
    """127.0.0.30 would pass by address, but --digest_auth_only challenges it at once."""
    callees = {"ok": ("aaa_uas.xml", callee_ports["ANSWER"])}
    with B2bua(tmp_path, radconf(radius, tmp_path), ["-A", "0", "--digest_auth_only"]) as b2b:
        call = place_call(
            b2b,
            "aaa_uac_digest_ok.xml",
            "127.0.0.30",
            callees=callees,
            hold_ms=200,
            extra=("-au", "alice", "-ap", "wonderland"),
        )
    assert call.uac.returncode == 0, call.describe()
    assert final_codes(call.uac) == [401, 200]
    assert "127.0.0.30" not in radius.log()


def test_no_auth_with_static_route(radius: FreeRadius, callee_ports: dict[str, int], tmp_path: Any) -> None:
    """-u: no Access-Request at all, the -s route is used; accounting still bills the caller."""
    callees = {"ok": ("aaa_uas.xml", callee_ports["ANSWER"])}
    flags = ["-u", "-s", f"900@127.0.0.1:{callee_ports['ANSWER']}", "-A", "1"]
    with B2bua(tmp_path, radconf(radius, tmp_path), flags) as b2b:
        call = place_call(b2b, "aaa_uac.xml", "127.0.0.31", callees=callees, hold_ms=200)
    assert call.uac.returncode == 0, call.describe()
    assert callee_invite(call, "ok").startswith("INVITE sip:900@127.0.0.1:")
    assert "127.0.0.31" not in radius.log()
    legs = by_leg(wait_records(radius, call.call_id, 2))
    assert sorted(legs) == [("answer", "Stop"), ("originate", "Stop")]
    assert legs[("answer", "Stop")][0]["User-Name"] == ["127.0.0.31"]


# ----- accounting ------------------------------------------------------------------------------


def _three_calls(b2b: B2bua, callee_ports: dict[str, int]) -> tuple[Call, Call, Call]:
    """A completed call (about 1 s), a failed one (486) and a cancelled one."""
    done = place_call(
        b2b,
        "aaa_uac.xml",
        "127.0.0.26",
        callees={"ok": ("aaa_uas.xml", callee_ports["ANSWER"])},
        hold_ms=1200,
    )
    failed = place_call(
        b2b, "aaa_uac_refused.xml", "127.0.0.27", callees={"busy": ("aaa_uas_busy.xml", callee_ports["BUSY"])}
    )
    cancelled = place_call(
        b2b, "aaa_uac_cancel.xml", "127.0.0.28", callees={"ring": ("aaa_uas_ring.xml", callee_ports["RING"])}
    )
    for call in (done, failed, cancelled):
        assert call.uac.returncode == 0, call.describe()
    assert final_codes(failed.uac) == [486]
    return done, failed, cancelled


def _check_stop(rec: dict[str, list[str]], caller_ip: str, connected: bool) -> None:
    assert rec["User-Name"] == [caller_ip]
    assert rec["Calling-Station-Id"] == ["16045550000"]
    assert avpairs(rec)["h323-session-protocol"] == "sipv2"
    if connected:
        assert 1 <= int(rec["Acct-Session-Time"][0]) <= 2, rec
        assert cisco(rec, "h323-connect-time") != cisco(rec, "h323-disconnect-time")
    else:
        assert rec["Acct-Session-Time"] == ["0"], rec
        assert cisco(rec, "h323-connect-time") == cisco(rec, "h323-disconnect-time")


@pytest.mark.parametrize("level", [0, 1, 2])
def test_accounting_levels(
    level: int, radius: FreeRadius, callee_ports: dict[str, int], tmp_path: Any
) -> None:
    with B2bua(tmp_path, radconf(radius, tmp_path), ["-A", str(level)]) as b2b:
        done, failed, cancelled = _three_calls(b2b, callee_ports)
    if level == 0:
        time.sleep(1.0)
        for call in (done, failed, cancelled):
            assert records_for(radius, call.call_id) == []
        return
    starts = 2 if level == 2 else 0
    legs = by_leg(wait_records(radius, done.call_id, 2 + starts))
    expected = [("answer", "Stop"), ("originate", "Stop")]
    if level == 2:
        expected += [("answer", "Start"), ("originate", "Start")]
    assert sorted(legs) == sorted(expected), legs
    assert all(len(v) == 1 for v in legs.values()), legs
    answer, originate = legs[("answer", "Stop")][0], legs[("originate", "Stop")][0]
    _check_stop(answer, "127.0.0.26", connected=True)
    _check_stop(originate, "127.0.0.26", connected=True)
    assert answer["Called-Station-Id"] == ["200"] and originate["Called-Station-Id"] == ["600"]
    assert cisco(answer, "h323-disconnect-cause") == HANGUP
    assert avpairs(answer)["release-source"] == "2"  # the caller hung up
    assert cisco(answer, "h323-remote-address") == "127.0.0.26"
    assert cisco(originate, "h323-remote-address") == "127.0.0.1"
    if level == 2:
        for origin in ("answer", "originate"):
            (start,) = legs[(origin, "Start")]
            assert "Acct-Session-Time" not in start and "h323-disconnect-cause" not in start
            stop = legs[(origin, "Stop")][0]
            assert cisco(start, "h323-connect-time") == cisco(stop, "h323-connect-time")

    # Calls that never connected get their Stops (never a Start), session time 0, and the cause.
    legs = by_leg(wait_records(radius, failed.call_id, 2))
    assert sorted(legs) == [("answer", "Stop"), ("originate", "Stop")], legs
    for rec in (legs[("answer", "Stop")][0], legs[("originate", "Stop")][0]):
        _check_stop(rec, "127.0.0.27", connected=False)
        assert cisco(rec, "h323-disconnect-cause") == BUSY
    legs = by_leg(wait_records(radius, cancelled.call_id, 2))
    assert sorted(legs) == [("answer", "Stop"), ("originate", "Stop")], legs
    for rec in (legs[("answer", "Stop")][0], legs[("originate", "Stop")][0]):
        _check_stop(rec, "127.0.0.28", connected=False)
        # The caller gave up: a normal clearing, released by the caller.
        assert cisco(rec, "h323-disconnect-cause") == HANGUP
        assert avpairs(rec)["release-source"] == "2"


def test_alive_records_while_connected(
    radius: FreeRadius, callee_ports: dict[str, int], tmp_path: Any
) -> None:
    callees = {"ok": ("aaa_uas.xml", callee_ports["ANSWER"])}
    with B2bua(tmp_path, radconf(radius, tmp_path), ["-A", "2", "--alive_acct_int=1"]) as b2b:
        call = place_call(b2b, "aaa_uac.xml", "127.0.0.26", callees=callees, hold_ms=2600)
    assert call.uac.returncode == 0, call.describe()
    records = wait_records(radius, call.call_id, 8)
    legs = by_leg(records)
    for origin in ("answer", "originate"):
        assert len(legs[(origin, "Start")]) == 1 and len(legs[(origin, "Stop")]) == 1, legs
        # Alive is Acct-Status-Type 3, which FreeRADIUS calls Interim-Update.
        assert 2 <= len(legs.get((origin, "Interim-Update"), [])) <= 3, legs
    # The Stop is the last record of each leg.
    order = [(cisco(r, "h323-call-origin"), r["Acct-Status-Type"][0]) for r in records]
    for origin in ("answer", "originate"):
        assert [s for o, s in order if o == origin][-1] == "Stop"


def test_authorisation_outage_fails_new_calls_only_and_recovers_at_once(
    radius: FreeRadius, callee_ports: dict[str, int], tmp_path: Any
) -> None:
    """The auth server goes silent while a call is up: a new call gets 403 within timeout *
    retries, the SIP port keeps answering meanwhile, the connected call goes on to its normal end,
    and the first call after the server is back is authorised at once."""
    with Relay(("127.0.0.1", radius.auth_port)) as relay:
        conf = radconf(radius, tmp_path, [relay.front])
        callee = Sipp("aaa_uas.xml", local_port=callee_ports["ANSWER"], calls=2, timeout=20)
        keys = ["-key", "cli", "16045550000", "-key", "cld", "200", "-key", "xbilling", "none"]
        keys += ["-key", "domain", B2B_IP]
        with B2bua(tmp_path, conf, ["-A", "0", "-D"]) as b2b:
            up = Sipp(
                "aaa_uac.xml",
                b2b.address,
                local_ip="127.0.0.26",
                calls=1,
                duration=4000,
                extra=[*keys, "-cid_str", f"outage-up-{uuid.uuid4().hex[:8]}"],
                timeout=20,
            )
            try:
                callee.start()
                up.start()
                deadline = time.monotonic() + 10
                while not any(d == "sent" and m.startswith("SIP/2.0 200") for d, m in _read_messages(callee)):
                    assert time.monotonic() < deadline, "the first call did not connect"
                    time.sleep(0.05)
                relay.down()
                refused_at = time.monotonic()
                with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
                    # While the refused call waits for the silent server, SIP is answered at once.
                    probe.bind((B2B_IP, 0))
                    probe.settimeout(0.5)
                    refused = Sipp(
                        "aaa_uac_refused.xml",
                        b2b.address,
                        local_ip="127.0.0.27",
                        calls=1,
                        extra=[*keys, "-cid_str", "outage-refused"],
                        timeout=10,
                    ).start()
                    time.sleep(0.2)
                    branch = uuid.uuid4().hex
                    sent = time.monotonic()
                    probe.sendto(_options(b2b.port, probe.getsockname()[1], branch).encode(), b2b.address)
                    assert probe.recv(65535).startswith(b"SIP/2.0 200")
                    options_took = time.monotonic() - sent
                refused_res = refused.wait()
                refused.cleanup()
                took_refused = time.monotonic() - refused_at
                relay.up()
                back = place_call(b2b, "aaa_uac.xml", "127.0.0.26", cld="200", hold_ms=200)
                up_res = up.wait()
                callee_res = callee.wait(timeout=5)
                log = b2b.log()
            finally:
                up.cleanup()
                callee.cleanup()
    assert final_codes(refused_res) == [403], refused_res.describe()
    budget = RADIUS_TIMEOUT * RADIUS_RETRIES
    waited = first_time(refused_res, "received", "SIP/2.0 403") - first_time(refused_res, "sent", "INVITE")
    assert budget - 0.1 <= waited <= budget + 1.5, waited
    assert "Error sending AAA request" in log
    assert options_took < 0.3, options_took
    assert took_refused < budget + 3.0
    # The call that was up carried on and ended normally (its caller's BYE got its 200).
    assert up_res.returncode == 0, up_res.describe()
    assert len(callee_res.received("BYE ")) >= 1
    # Back: authorised at once, no lingering penalty for the server that was silent.
    assert back.uac.returncode == 0, back.describe()
    assert final_codes(back.uac) == [200]
    auth_wait = first_time(back.uac, "received", "SIP/2.0 200") - first_time(back.uac, "sent", "INVITE")
    assert auth_wait < RADIUS_TIMEOUT, auth_wait
