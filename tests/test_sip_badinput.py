"""Bad requests of issue 10: each gets the answer RFC 3261 gives it (or is dropped and counted
when no answer is possible), nothing stays in the transaction tables, no traceback is logged.
First through a transaction manager (fake transport, Clock), then through a running b2bua_simple
over UDP."""

from __future__ import annotations

import socket
import time
from typing import Iterator, Optional

import pytest

from sippy.SipRequest import SipRequest
from tests.conftest import free_udp_port
from tests.sip_torture import Run, dropped, refused
from tests.test_b2bua_simple import B2BUA
from tests.test_load_regressions import B2B as B2B_
from tests.test_load_regressions import CALLEE, CALLER, callee_answer, caller_request
from tests.test_load_regressions import SDP as SDP_
from tests.test_transactions import request

OPTIONS = request("OPTIONS")
TO = b"To: <sip:bob@127.0.0.1>"


def swap(old: bytes, new: bytes, data: bytes = OPTIONS) -> bytes:
    assert old in data
    return data.replace(old, new, 1)


# (what is wrong, the datagram, status, reason phrase)
CASES = [
    ("malformed To", swap(TO, b"To: <sip:bob@127.0.0.1"), 400, "Bad To Header"),
    ("malformed From", swap(b";tag=ftag1", b";tag=ftag1;=x"), 400, "Bad From Header"),
    (
        "non-numeric Max-Forwards",
        swap(b"Max-Forwards: 70", b"Max-Forwards: many"),
        400,
        "Bad Max-Forwards Header",
    ),
    ("Max-Forwards 0", swap(b"Max-Forwards: 70", b"Max-Forwards: 0"), 483, "Too Many Hops"),
    ("To twice", swap(TO, TO + b"\r\nt: <sip:carol@127.0.0.1>"), 400, "Multiple To Headers"),
    ("From twice", swap(TO, TO + b"\r\nFrom: <sip:x@h>;tag=2"), 400, "Multiple From Headers"),
    ("Call-ID twice", swap(TO, TO + b"\r\ni: other@h"), 400, "Multiple Call-ID Headers"),
    ("CSeq twice", swap(TO, TO + b"\r\nCSeq: 2 OPTIONS"), 400, "Multiple CSeq Headers"),
    ("Max-Forwards twice", swap(TO, TO + b"\r\nMax-Forwards: 69"), 400, "Multiple Max-Forwards Headers"),
    (
        "two Content-Length values",
        swap(b"Content-Length: 0\r\n\r\n", b"Content-Length: 0\r\nContent-Length: 4\r\n\r\nabcd"),
        400,
        "Conflicting Content-Length Headers",
    ),
    ("SIP/3.0", swap(b" SIP/2.0\r\n", b" SIP/3.0\r\n"), 505, "Version Not Supported"),
    ("http: Request-URI", swap(b"OPTIONS sip:", b"OPTIONS http:"), 416, "Unsupported URI Scheme"),
    ("garbled Request-Line", swap(b"OPTIONS sip:bob@127.0.0.1:5060 SIP/2.0", b"OPTIONS  SIP/2.0"), 400, None),
    ("unknown Require", swap(TO, TO + b"\r\nRequire: 100rel, foo"), 420, "Bad Extension"),
    ("no From", request("OPTIONS", skip=("From",)), 400, "Missing From Header"),
    ("oversized", swap(TO, TO + b"\r\nX-Pad: " + b"x" * 9000), 413, "Request Entity Too Large"),
]


@pytest.mark.parametrize("what,data,scode,reason", CASES, ids=[c[0] for c in CASES])
def test_bad_request_answered_statelessly(what: str, data: bytes, scode: int, reason: Optional[str]) -> None:
    resp = refused(data, scode, reason)
    # Sent where the request came from, with what parsed of it.
    assert resp.getHFBody("call-id") is not None or what == "Call-ID twice"
    if scode == 420:
        assert resp.getHFs("unsupported")[0].getValue() == "100rel, foo"


@pytest.mark.parametrize("what,data,scode,reason", CASES, ids=[c[0] for c in CASES])
def test_same_defects_in_an_ack_are_dropped_and_counted(
    what: str, data: bytes, scode: int, reason: Optional[str]
) -> None:
    ack = b"ACK " + data.removeprefix(b"OPTIONS ").replace(b"1 OPTIONS", b"1 ACK")
    if scode in (420, 413):
        return  # Require does not apply to ACK; a big ACK is just an ACK
    r = dropped(ack)
    assert sum(r.tm.bad_counts.values()) == 1


def test_malformed_to_in_the_answer_path_leaves_nothing() -> None:
    """The reported case: a malformed To once failed again while building the 400."""
    r = Run()
    bad = swap(TO, b"To: <sip:bob@127.0.0.1")
    for n in range(50):
        resp = r.feed(bad.replace(b"z9hG4bK-b1", f"z9hG4bK-{n}".encode()))
        assert resp is not None and resp.getSL() == "SIP/2.0 400 Bad To Header"
        # The broken To goes back as it came, without a tag it could not carry.
        assert resp.getHFs("to")[0].getValue() == "<sip:bob@127.0.0.1"
    assert r.tables_empty() and r.no_traceback()
    assert r.tm.bad_counts == {"bad_header": 50}


def test_no_via_and_unparsable_dropped_and_counted() -> None:
    dropped(request("OPTIONS", skip=("Via",)), "no_via")
    dropped(swap(b"127.0.0.1:5062;branch", b"127.0.0.1:x;branch"), "bad_via")
    dropped(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + bytes(range(200)), "unparsable")


def test_consumer_tripping_on_a_header_answers_400_and_keeps_nothing() -> None:
    r = Run()

    def consumer(req, t):  # type: ignore[no-untyped-def]
        req.getHFBody("contact")  # malformed below; only the consumer reads it
        return (req.genResponse(200, "OK"), None, None)

    r.tm.req_cb = consumer
    resp = r.feed(swap(b"Contact: <sip:alice@127.0.0.1:5062>", b"Contact: <sip:alice@127.0.0.1:5062"))
    assert resp is not None and resp.getSCodeNum() == 400
    assert r.no_traceback()
    r.clock.advance(64 * 0.5 + 1)
    assert r.tables_empty()


# ---------------------------------------------------------------------------------------------
# The same through a running B2BUA.


@pytest.fixture
def b2bua() -> Iterator[B2BUA]:
    b = B2BUA(free_udp_port())
    try:
        yield b
    finally:
        b.stop()


def exchange(sock: socket.socket, dest: tuple[str, int], data: bytes, wait: float = 1.0) -> list[bytes]:
    sock.sendto(data, dest)
    out: list[bytes] = []
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        try:
            out.append(sock.recv(65535))
            break
        except socket.timeout:
            pass
    return out


def test_running_b2bua_answers_each_bad_request_and_stays_quiet(b2bua: B2BUA) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        s.settimeout(0.2)
        lport = s.getsockname()[1]

        def fix(data: bytes, n: int) -> bytes:
            data = data.replace(b"127.0.0.1:5062", f"127.0.0.1:{lport}".encode())
            return data.replace(b"z9hG4bK-b1", f"z9hG4bK-live{n}".encode())

        for n, (what, data, scode, reason) in enumerate(CASES):
            got = exchange(s, b2bua.address, fix(data, n))
            assert got, f"{what}: no answer"
            line = got[0].split(b"\r\n", 1)[0].decode()
            assert line.startswith(f"SIP/2.0 {scode} "), (what, line)
            if reason is not None:
                assert line == f"SIP/2.0 {scode} {reason}"
        # ACK with a broken To, and an unknown method: silence, then a 501 that says what we take.
        bad_ack = swap(TO, b"To: <sip:bob@127.0.0.1", request("ACK"))
        assert exchange(s, b2bua.address, fix(bad_ack, 100), wait=0.5) == []
        got = exchange(s, b2bua.address, fix(request("FROBNICATE"), 101))
        assert got and got[0].startswith(b"SIP/2.0 501 ") and b"\r\nAllow: INVITE" in got[0]
        # Still at work.
        got = exchange(s, b2bua.address, fix(OPTIONS, 102))
        assert got and got[0].startswith(b"SIP/2.0 200 OK")
    log = b2bua.log()
    assert "Traceback" not in log, log[-3000:]
    assert b2bua.alive()


def test_garbled_request_line_of_an_ack_is_not_answered() -> None:
    """Found by the atheris target: an ACK whose Request-Line and CSeq are both unreadable."""
    line = b"ACK sip:bob@127.0.0.1:5060;x INVITE sip:u@h SIP/2.0"
    dropped(swap(b"OPTIONS sip:bob@127.0.0.1:5060 SIP/2.0", line, request("OPTIONS", skip=("CSeq",))))


def test_response_the_ua_could_not_read_is_dropped_and_counted() -> None:
    """A 200 to our INVITE with a To we cannot parse never reaches the UA (it would fail there,
    with the transaction already moved on); the INVITE goes on as if it had been lost."""
    from tests.fuzz.harness import _OURS, SEEDS

    r = Run()
    got: list = []
    ours = SipRequest(buf=_OURS)
    ours.setTarget(("127.0.0.1", 5062))
    t = r.tm.newTransaction(ours, got.append)
    ok = SEEDS[6]
    for bad in (
        swap(b"To: <sip:bob@127.0.0.1>;tag=ttag1", b"To: <sip:bob@127.0.0.1;tag=ttag1", ok),
        swap(b"To: <sip:bob@127.0.0.1>;tag=ttag1", b"To: <sip:bob@127.0.0.1>;tag=ttag1\r\nt: <sip:x@y>", ok),
        swap(b"Record-Route: <sip:10.0.0.1;lr>", b"Record-Route: <sip:10.0.0.1;lr", ok),
    ):
        assert r.feed(bad) is None
    assert got == [] and r.tm.bad_counts == {"bad_response": 3} and r.no_traceback()
    r.feed(ok)
    assert [x.getSCodeNum() for x in got] == [200] and t.state.__name__ == "UACK"


# ---------------------------------------------------------------------------------------------
# Headers only the UA reads: a broken one is refused before the UA acts on the request, so that
# no call is left half made (the call machinery of both B2BUAs on a Clock).

READ_BY_UA = [
    ("Contact", "Contact: <sip:alice@127.0.0.1:5062"),
    ("Record-Route", "Record-Route: <sip:proxy.example.com;lr"),
    ("Authorization", 'Authorization: Digest realm="r'),
]


@pytest.mark.parametrize("kind", ["simple", "radius"])
@pytest.mark.parametrize("header,line", READ_BY_UA, ids=[h for h, _ in READ_BY_UA])
def test_invite_with_a_broken_header_the_ua_reads_leaves_no_call(kind: str, header: str, line: str) -> None:
    b2b = B2B_(kind)
    invite = caller_request("INVITE", "c1", 1, "b1", body=SDP_).replace(
        "Max-Forwards: 70", f"Max-Forwards: 70\r\n{line}"
    )
    b2b.feed(invite, CALLER)
    assert b2b.wire.lines(CALLER) == [f"SIP/2.0 400 Bad {header} Header"]
    assert b2b.wire.lines(CALLEE) == []
    for _ in range(3):
        b2b.clock.advance(40)
    assert not any(b2b.held().values()), b2b.held()


def test_refer_with_a_broken_refer_to_is_refused_and_the_call_goes_on() -> None:
    b2b = B2B_("simple")
    b2b.feed(caller_request("INVITE", "c1", 1, "b1", body=SDP_), CALLER)
    b2b.feed(callee_answer(b2b.wire.last("INVITE"), 200, "OK"), CALLEE)
    tag = b2b.wire.last("SIP/2.0 200").getHFBody("to").getTag()
    b2b.feed(caller_request("ACK", "c1", 1, "b2", to_tag=tag), CALLER)
    bad_refer = caller_request("REFER", "c1", 2, "b3", to_tag=tag).replace(
        "Max-Forwards: 70", "Refer-To: <sip:x"
    )
    b2b.feed(bad_refer, CALLER)
    assert b2b.wire.lines(CALLER)[-1] == "SIP/2.0 400 Bad Refer-To Header"
    assert b2b.callmap.ncalls_active == 1 and "BYE" not in b2b.wire.lines(CALLEE)[-1]
    b2b.feed(caller_request("BYE", "c1", 3, "b4", to_tag=tag), CALLER)
    b2b.feed(callee_answer(b2b.wire.last("BYE"), 200, "OK"), CALLEE)
    assert b2b.wire.lines(CALLER)[-1] == "SIP/2.0 200 OK"
    for _ in range(3):
        b2b.clock.advance(40)
    assert not any(b2b.held().values()), b2b.held()
