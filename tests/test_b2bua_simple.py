"""b2bua_simple end to end: SIPp as the caller and as the callee, the B2BUA as a real process between.

Every test looks at what crossed the wire: the messages SIPp traced on each side.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from typing import Optional

import pytest

from tests.conftest import free_udp_port, stop_process
from tests.sipp_util import Sipp, SippResult

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(ROOT, "scripts", "b2bua_simple.py")
CLD = "5551234"

pytestmark = pytest.mark.skipif(
    not os.path.exists("/usr/bin/sipp") and not os.path.exists("/usr/local/bin/sipp"),
    reason="SIPp not installed",
)


def hf(msg: str, name: str) -> list[str]:
    """Values of header `name` in one traced message."""
    return [m.group(1).strip() for m in re.finditer(rf"^{name}:\s*(.*)$", msg, re.M | re.I)]


def hf1(msg: str, name: str) -> str:
    values = hf(msg, name)
    assert values, f"no {name} in:\n{msg}"
    return values[0]


def tag(value: str) -> Optional[str]:
    m = re.search(r";\s*tag=([^;>\s]+)", value)
    return m.group(1) if m else None


def body(msg: str) -> str:
    return msg.split("\n\n", 1)[1].strip() if "\n\n" in msg else ""


def first_line(msg: str) -> str:
    return msg.split("\n", 1)[0].strip()


class B2BUA:
    """scripts/b2bua_simple.py in the foreground on loopback, its log in a temporary file."""

    def __init__(self, nh_port: int, env: Optional[dict[str, str]] = None, args: Sequence[str] = ()) -> None:
        self.port = free_udp_port()
        self.nh_port = nh_port
        self.logdir = tempfile.mkdtemp(prefix="b2bua-simple-")
        self.logpath = os.path.join(self.logdir, "out.log")
        cmd = [sys.executable, SCRIPT, "-f", "-l", "127.0.0.1", "-p", str(self.port)]
        cmd += ["-n", f"127.0.0.1:{nh_port}", *args]
        full_env = dict(os.environ, SIPLOG_BEND="stderr")
        full_env.update(env or {})
        with open(self.logpath, "w") as log:
            self.proc = subprocess.Popen(
                cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=full_env
            )
        wait_for(lambda: "started, pid" in self.log() or self.proc.poll() is not None, 20)
        assert self.proc.poll() is None, self.log()

    @property
    def address(self) -> tuple[str, int]:
        return ("127.0.0.1", self.port)

    def log(self) -> str:
        with open(self.logpath, errors="replace") as f:
            return f.read()

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self) -> None:
        stop_process(self.proc)


def wait_for(cond, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.05)
    return cond()


@pytest.fixture
def uas_port() -> int:
    return free_udp_port()


@pytest.fixture
def b2bua(uas_port: int) -> Iterator[B2BUA]:
    b = B2BUA(uas_port)
    try:
        yield b
    finally:
        b.stop()
        print(b.log()[-3000:])


def run_call(
    b2bua: B2BUA,
    uac: str,
    uas: str,
    *,
    calls: int = 1,
    uac_extra: Sequence[str] = (),
    uas_extra: Sequence[str] = (),
    duration: Optional[int] = None,
    rate: Optional[float] = None,
    timeout: float = 10.0,
) -> tuple[SippResult, SippResult]:
    """Callee SIPp on b2bua.nh_port, caller SIPp towards the B2BUA; both results."""
    callee = Sipp(
        uas, local_port=b2bua.nh_port, calls=calls, duration=duration, extra=uas_extra, timeout=timeout
    )
    caller = Sipp(
        uac,
        remote=b2bua.address,
        calls=calls,
        duration=duration,
        rate=rate,
        service=CLD,
        extra=("-key", "cli", "alice", *uac_extra),
        timeout=timeout,
    )
    try:
        callee.start()  # returns once it listens
        caller.start()
        res_caller = caller.wait()
        res_callee = callee.wait(timeout=5)
    finally:
        caller.cleanup()
        callee.cleanup()
    return res_caller, res_callee


def ok(*results: SippResult) -> None:
    for res in results:
        assert res.returncode == 0, res.describe()


def requests(res: SippResult, direction: str, method: str) -> list[str]:
    msgs = res.sent(method + " ") if direction == "sent" else res.received(method + " ")
    return msgs


# ----- the basic call -----


def test_basic_call_caller_hangs_up_and_legs_are_isolated(b2bua: B2BUA) -> None:
    caller, callee = run_call(b2bua, "simple_uac.xml", "simple_uas.xml", duration=200)
    ok(caller, callee)
    (inv_a,) = caller.sent("INVITE ")
    (inv_b,) = callee.received("INVITE ")
    # Call parameters cross verbatim: CLD (R-URI user), CLI, caller and callee names, SDP.
    assert first_line(inv_b).startswith(f"INVITE sip:{CLD}@127.0.0.1:{b2bua.nh_port}")
    assert re.match(r'"?Alice 1"? <sip:alice1@', hf1(inv_b, "From")), inv_b
    assert re.match(rf'"?Bob"? <sip:{CLD}@', hf1(inv_b, "To")), inv_b
    assert body(inv_b) == body(inv_a)
    # ... and nothing else: own Call-ID, tags, CSeq and Via; headers of the caller stay behind.
    assert hf1(inv_b, "Call-ID") != hf1(inv_a, "Call-ID")
    assert tag(hf1(inv_b, "From")) != tag(hf1(inv_a, "From"))
    assert hf1(inv_b, "CSeq") != hf1(inv_a, "CSeq")
    assert hf(inv_b, "Via") == [hf(inv_b, "Via")[0]] and f"127.0.0.1:{b2bua.port}" in hf1(inv_b, "Via")
    assert hf1(inv_a, "Via").split(";branch=")[1] not in inv_b
    assert hf(inv_b, "Subject") == []
    assert hf1(inv_a, "Max-Forwards") == "70" and hf1(inv_b, "Max-Forwards") == "69"
    # The callee's tag and SDP answer reach the caller, but under the B2BUA's own tag.
    ok_b = callee.sent("SIP/2.0 200")[0]
    ok_a = [m for m in caller.received("SIP/2.0 200") if "INVITE" in hf1(m, "CSeq")][0]
    assert body(ok_a) == body(ok_b)
    assert tag(hf1(ok_a, "To")) != tag(hf1(ok_b, "To"))
    # The caller's BYE became a BYE on the callee's leg, in that leg's dialog.
    (bye_b,) = callee.received("BYE ")
    assert hf1(bye_b, "Call-ID") == hf1(inv_b, "Call-ID")
    assert tag(hf1(bye_b, "To")) == tag(hf1(ok_b, "To"))
    assert len(callee.received("ACK ")) == 1


def test_basic_call_callee_hangs_up(b2bua: B2BUA) -> None:
    caller, callee = run_call(b2bua, "simple_uac_wait_bye.xml", "simple_uas_bye.xml", duration=200)
    ok(caller, callee)
    (bye_a,) = caller.received("BYE ")
    (inv_a,) = caller.sent("INVITE ")
    assert hf1(bye_a, "Call-ID") == hf1(inv_a, "Call-ID")
    assert tag(hf1(bye_a, "To")) == tag(hf1(inv_a, "From"))
    assert callee.received("SIP/2.0 200")


# ----- set-up that does not end in an answer -----


def test_cancel_while_ringing_reaches_the_callee(b2bua: B2BUA) -> None:
    caller, callee = run_call(b2bua, "simple_uac_cancel.xml", "simple_uas_ring_cancel.xml", duration=200)
    ok(caller, callee)
    assert caller.received("SIP/2.0 180")
    assert caller.received("SIP/2.0 487")
    (inv_b,) = callee.received("INVITE ")
    (cancel_b,) = callee.received("CANCEL ")
    assert hf1(cancel_b, "Call-ID") == hf1(inv_b, "Call-ID")
    assert hf1(cancel_b, "Via") == hf1(inv_b, "Via")
    assert len(callee.received("ACK ")) == 1


def test_callee_that_never_answers_caller_cancels(b2bua: B2BUA) -> None:
    """180 and then silence, even to the CANCEL: the caller still gets its 487 at once."""
    caller, callee = run_call(b2bua, "simple_uac_cancel.xml", "simple_uas_ring_silent.xml", duration=200)
    ok(caller)
    assert caller.received("SIP/2.0 487")
    assert callee.received("CANCEL ")
    assert b2bua.alive()


@pytest.mark.parametrize(
    "code,reason", [(486, "Busy Here"), (404, "Not Found"), (503, "Service Unavailable")]
)
def test_callee_refusal_is_relayed(b2bua: B2BUA, code: int, reason: str) -> None:
    caller, callee = run_call(b2bua, "simple_uac_fail.xml", f"simple_uas_{code}.xml")
    ok(caller, callee)
    finals = [first_line(m) for m in caller.received("SIP/2.0 ") if int(first_line(m).split()[1]) >= 200]
    assert finals and all(f == f"SIP/2.0 {code} {reason}" for f in finals), finals
    # Both legs ACK their own non-2xx.
    assert len(callee.received("ACK ")) == 1


def test_early_media_reaches_the_caller(b2bua: B2BUA) -> None:
    caller, callee = run_call(b2bua, "simple_uac.xml", "simple_uas_early.xml", duration=100)
    ok(caller, callee)
    (p183_b,) = callee.sent("SIP/2.0 183")
    p183_a = caller.received("SIP/2.0 183")
    assert p183_a, caller.describe()
    assert "a=x-early-media" in body(p183_a[0])
    assert body(p183_a[0]) == body(p183_b)


# ----- re-INVITEs -----


def _sdp_direction(msg: str) -> Optional[str]:
    m = re.search(r"^a=(sendonly|recvonly|sendrecv|inactive)", body(msg), re.M)
    return m.group(1) if m else None


def test_reinvite_from_caller_hold_and_resume(b2bua: B2BUA) -> None:
    caller, callee = run_call(b2bua, "simple_uac_reinvite.xml", "simple_uas_answer_reinvite.xml")
    ok(caller, callee)
    reinv_b = callee.received("INVITE ")[1:]
    assert [_sdp_direction(m) for m in reinv_b] == ["sendonly", "sendrecv"]
    reinv_a = caller.sent("INVITE ")[1:]
    assert [body(m) for m in reinv_b] == [body(m) for m in reinv_a]
    answers = [m for m in caller.received("SIP/2.0 200") if "INVITE" in hf1(m, "CSeq")][1:]
    assert [_sdp_direction(m) for m in answers] == ["recvonly", "sendrecv"]
    # The callee's leg keeps its own CSeq numbering.
    assert [hf1(m, "CSeq") for m in reinv_b] != [hf1(m, "CSeq") for m in reinv_a]
    assert len({hf1(m, "Call-ID") for m in callee.received("")}) == 1


def test_reinvite_from_callee_hold_and_resume(b2bua: B2BUA) -> None:
    caller, callee = run_call(b2bua, "simple_uac_answer_reinvite.xml", "simple_uas_reinvite.xml")
    ok(caller, callee)
    reinv_a = caller.received("INVITE ")
    assert [_sdp_direction(m) for m in reinv_a] == ["sendonly", "sendrecv"]
    (inv_a,) = caller.sent("INVITE ")
    assert all(hf1(m, "Call-ID") == hf1(inv_a, "Call-ID") for m in reinv_a)
    answers_b = [m for m in callee.received("SIP/2.0 200") if "INVITE" in hf1(m, "CSeq")]
    assert [_sdp_direction(m) for m in answers_b] == ["recvonly", "sendrecv"]


# ----- retransmissions -----


def test_retransmitted_invite_reaches_the_callee_once(b2bua: B2BUA) -> None:
    # -nr: the scenario's second INVITE is the only retransmission. Without it SIPp adds its own
    # after T1 on a slow machine, and answers the B2BUA's second (identical) 100 by sending the
    # INVITE once more, as if that 100 were a retransmission.
    caller, callee = run_call(b2bua, "simple_uac_retrans.xml", "simple_uas.xml", uac_extra=("-nr",))
    ok(caller, callee)
    assert len(caller.sent("INVITE ")) == 2, caller.describe()
    assert len(callee.received("INVITE ")) == 1, callee.describe()


def test_lost_ack_gets_the_200_again(b2bua: B2BUA) -> None:
    caller, callee = run_call(b2bua, "simple_uac_lost_ack.xml", "simple_uas.xml")
    ok(caller, callee)
    oks = [m for m in caller.received("SIP/2.0 200") if "INVITE" in hf1(m, "CSeq")]
    # T1 = 0.5 s: retransmissions at 0.5 s and 1.5 s into the 1.3 s pause (one, maybe two).
    assert len(oks) >= 2, caller.describe()
    assert len(callee.received("ACK ")) == 1
    assert len(callee.received("BYE ")) == 1


# ----- several calls -----


def test_two_overlapping_calls_do_not_mix(b2bua: B2BUA) -> None:
    caller, callee = run_call(
        b2bua, "simple_uac.xml", "simple_uas.xml", calls=2, rate=10, duration=600, timeout=10
    )
    ok(caller, callee)
    invs_b = callee.received("INVITE ")
    assert len(invs_b) == 2
    # Call 2 started 100 ms after call 1, both last 600 ms: they overlapped.
    by_cli = {re.search(r"sip:(alice\d)@", hf1(m, "From")).group(1): hf1(m, "Call-ID") for m in invs_b}
    assert sorted(by_cli) == ["alice1", "alice2"]
    assert by_cli["alice1"] != by_cli["alice2"]
    byes = callee.received("BYE ")
    assert sorted(hf1(m, "Call-ID") for m in byes) == sorted(by_cli.values())
    caller_ids = {hf1(m, "Call-ID") for m in caller.sent("INVITE ")}
    assert not caller_ids & set(by_cli.values())


# ----- out-of-dialog and unknown-dialog requests, bad input -----


def _udp_exchange(dest: tuple[str, int], data: bytes, wait: float = 2.0) -> list[str]:
    """Send one datagram and collect what comes back within `wait` seconds."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        s.settimeout(0.3)
        s.sendto(data, dest)
        out: list[str] = []
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            try:
                out.append(s.recv(65535).decode(errors="replace"))
            except socket.timeout:
                if out:
                    break
        return out


def _request(
    method: str,
    port: int,
    *,
    to_tag: str = "",
    call_id: str = "cid-x@127.0.0.1",
    extra: str = "",
    body_text: str = "",
    drop: str = "",
) -> bytes:
    lines = [
        f"{method} sip:{CLD}@127.0.0.1:{port} SIP/2.0",
        "Via: SIP/2.0/UDP 127.0.0.1:{lport};branch=z9hG4bK" + os.urandom(6).hex(),
        "From: <sip:alice@127.0.0.1>;tag=ft1",
        f"To: <sip:{CLD}@127.0.0.1>{to_tag}",
        f"Call-ID: {call_id}",
        f"CSeq: 1 {method}",
        "Contact: <sip:alice@127.0.0.1>",
        "Max-Forwards: 70",
    ]
    if extra:
        lines.append(extra)
    lines = [x for x in lines if not (drop and x.startswith(drop))]
    lines.append(f"Content-Length: {len(body_text.encode())}")
    return ("\r\n".join(lines) + "\r\n\r\n" + body_text).encode()


def _send_request(b2bua: B2BUA, method: str, **kwargs: str) -> list[str]:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        lport = s.getsockname()[1]
        data = _request(method, b2bua.port, **kwargs).replace(b"{lport}", str(lport).encode())
        s.settimeout(0.3)
        s.sendto(data, b2bua.address)
        out: list[str] = []
        deadline = time.monotonic() + 2.0
        while time.monotonic() < deadline:
            try:
                out.append(s.recv(65535).decode(errors="replace"))
            except socket.timeout:
                if out and int(out[-1].split()[1]) >= 200:
                    break
        return out


def test_bye_for_unknown_dialog_gets_481(b2bua: B2BUA) -> None:
    resps = _send_request(b2bua, "BYE", to_tag=";tag=nosuchdialog")
    assert [first_line(r) for r in resps] == ["SIP/2.0 481 Call Leg/Transaction Does Not Exist"]


def test_reinvite_for_unknown_dialog_gets_481(b2bua: B2BUA) -> None:
    resps = _send_request(b2bua, "INVITE", to_tag=";tag=nosuchdialog")
    finals = [first_line(r) for r in resps if not r.startswith("SIP/2.0 100")]
    assert finals == ["SIP/2.0 481 Call Leg/Transaction Does Not Exist"]


def test_out_of_dialog_options_200_and_other_methods_501(b2bua: B2BUA) -> None:
    (resp,) = _send_request(b2bua, "OPTIONS")
    assert first_line(resp) == "SIP/2.0 200 OK"
    assert "INVITE" in hf1(resp, "Allow") and "BYE" in hf1(resp, "Allow")
    (resp,) = _send_request(b2bua, "NOTIFY")
    assert first_line(resp) == "SIP/2.0 501 Not Implemented"


def test_bad_input_never_stops_the_process(b2bua: B2BUA) -> None:
    for junk in (os.urandom(300), b"\r\n\r\n", b"INVITE\r\n\r\n" + b"\xff" * 64, b"SIP/2.0 200 OK\r\n" * 4):
        assert _udp_exchange(b2bua.address, junk, wait=0.2) == []
    resps = _send_request(b2bua, "INVITE", drop="Call-ID")
    assert [first_line(r).split()[1] for r in resps] == ["400"], resps
    # An INVITE whose SDP is cut short: whatever the answer, it is an answer.
    truncated = "v=0\r\no=alice 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0"
    callee = Sipp("simple_uas_486.xml", local_port=b2bua.nh_port, calls=1, timeout=5)
    try:
        callee.start()  # returns once it listens
        resps = _send_request(
            b2bua,
            "INVITE",
            call_id="cid-trunc@127.0.0.1",
            body_text=truncated,
            extra="Content-Type: application/sdp",
        )
    finally:
        callee.cleanup()
    finals = [first_line(r).split()[1] for r in resps if not r.startswith("SIP/2.0 1")]
    assert finals and finals[0] in ("400", "486", "488"), resps
    assert b2bua.alive()
    caller, callee_res = run_call(b2bua, "simple_uac.xml", "simple_uas.xml", duration=100)
    ok(caller, callee_res)
    assert len(callee_res.received("INVITE ")) == 1
    assert b2bua.alive()
