"""Transaction layer driven by a Clock and an in-memory transport: what crosses the wire, when."""

from __future__ import annotations

import sys
from typing import Any, Optional

import pytest
from twisted.internet.task import Clock

from sippy.SipAddress import SipAddress
from sippy.SipCallId import SipCallId
from sippy.SipFrom import SipFrom
from sippy.SipHeader import SipHeader
from sippy.SipLogger import SIPLOG_DBUG, SIPLOG_INFO
from sippy.SipRequest import SipRequest
from sippy.SipResponse import SipResponse
from sippy.SipTransactionManager import ACCEPTED, SipTransactionManager
from sippy.SipURL import SipURL
from sippy.Time.MonoTime import MonoTime

LOCAL = ("127.0.0.1", 5060)
PEER = ("127.0.0.1", 5062)


class FakeTransport:
    """The Transport contract, recording every datagram."""

    def __init__(self, transport: str = "udp") -> None:
        self.transport = transport
        self.sent: list[tuple[bytes, tuple[str, int]]] = []

    def send_to(self, data: bytes, address: tuple[str, int]) -> None:
        self.sent.append((data, address))

    def getSIPaddr(self, raddress: Any = None) -> tuple[str, int]:
        return LOCAL

    def shutdown(self) -> None:
        pass

    def first_lines(self) -> list[str]:
        return [d.split(b"\r\n", 1)[0].decode() for d, _ in self.sent]

    def count(self, start: str) -> int:
        return sum(1 for line in self.first_lines() if line.startswith(start))

    def msgs(self, start: str) -> list[Any]:
        out = []
        for d, _ in self.sent:
            if d.startswith(start.encode()):
                out.append(SipResponse(buf=d) if d.startswith(b"SIP/2.0") else SipRequest(buf=d))
        return out


class FakeLogger:
    def __init__(self, level: int = SIPLOG_INFO) -> None:
        self.level = level
        self.lines: list[tuple[int, str]] = []

    def isEnabledFor(self, level: int) -> bool:
        return level >= self.level

    def write(self, *args: Any, ltime: Any = None, level: Optional[int] = None, **kw: Any) -> None:
        self.lines.append((SIPLOG_INFO if level is None else level, "".join(str(a) for a in args)))


class Consumer:
    """req_cb that records requests and answers with whatever `answer(req, t)` returns."""

    def __init__(self, answer: Any = None) -> None:
        self.reqs: list[tuple[Any, Any]] = []
        self.answer = answer
        self.cancels: list[tuple[Any, Any]] = []
        self.noacks: list[Any] = []

    def __call__(self, req: Any, t: Any) -> Any:
        self.reqs.append((req, t))
        if t is None or self.answer is None:
            return None
        resp = self.answer(req, t)
        return (resp, self.cancel_cb, self.noack_cb)

    def cancel_cb(self, rtime: Any, req: Any) -> None:
        self.cancels.append((rtime, req))

    def noack_cb(self, rtime: Any) -> None:
        self.noacks.append(rtime)

    def methods(self) -> list[str]:
        return [r.getMethod() for r, _ in self.reqs]


def mk(
    consumer: Any = None, transport: str = "udp", logger: Any = None
) -> tuple[SipTransactionManager, FakeTransport, Clock]:
    clock = Clock()
    ft = FakeTransport(transport)
    gc: dict[str, Any] = {}
    if logger is not None:
        gc["_sip_logger"] = logger
    tm = SipTransactionManager(gc, consumer, transport=ft, reactor=clock)
    return tm, ft, clock


def request(
    method: str = "INVITE",
    branch: Optional[str] = "z9hG4bK-b1",
    via: str = "127.0.0.1:5062",
    rport: bool = False,
    cseq: int = 1,
    cseq_method: Optional[str] = None,
    callid: str = "call-1@test",
    to_tag: Optional[str] = None,
    mf: Optional[int] = 70,
    skip: tuple[str, ...] = (),
) -> bytes:
    vparams = (f";branch={branch}" if branch else "") + (";rport" if rport else "")
    hdrs = [
        ("Via", f"SIP/2.0/UDP {via}{vparams}"),
        ("Max-Forwards", str(mf) if mf is not None else None),
        ("From", "<sip:alice@127.0.0.1>;tag=ftag1"),
        ("To", "<sip:bob@127.0.0.1>" + (f";tag={to_tag}" if to_tag else "")),
        ("Call-ID", callid),
        ("CSeq", f"{cseq} {cseq_method or method}"),
        ("Contact", "<sip:alice@127.0.0.1:5062>"),
        ("Content-Length", "0"),
    ]
    lines = [f"{method} sip:bob@127.0.0.1:5060 SIP/2.0"]
    lines += [f"{n}: {v}" for n, v in hdrs if v is not None and n not in skip]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def feed(tm: SipTransactionManager, data: bytes, src: tuple[str, int] = PEER) -> None:
    tm.handleIncoming(data, src, tm.transport, MonoTime())


def gaps(times: list[float]) -> list[float]:
    return [round(b - a, 3) for a, b in zip(times, times[1:])]


def send_times(ft: FakeTransport, clock: Clock, start: str, until: float, step: float = 0.0) -> list[float]:
    """Run the clock timer by timer up to `until`, noting when datagrams starting with `start` left."""
    times: list[float] = []
    n = ft.count(start)
    while True:
        due = [c.getTime() for c in clock.getDelayedCalls()]
        nxt = min(due) if due else until
        if nxt > until:
            nxt = until
        clock.advance(max(0.0, nxt - clock.seconds()))
        m = ft.count(start)
        times.extend([round(clock.seconds(), 3)] * (m - n))
        n = m
        if nxt >= until:
            return times


# ---------------------------------------------------------------------------------------------
# Server INVITE


def test_invite_gets_100_trying_and_retransmission_absorbed() -> None:
    cons = Consumer()
    tm, ft, clock = mk(cons)
    feed(tm, request())
    assert ft.first_lines() == ["SIP/2.0 100 Trying"]
    feed(tm, request())
    assert cons.methods() == ["INVITE"], "a retransmission must not reach the consumer"
    assert ft.first_lines() == ["SIP/2.0 100 Trying"] * 2, "the retransmission gets the last response"
    t = cons.reqs[0][1]
    assert t.method == "INVITE" and t.tid in tm.tserver and t.rtime is not None


def test_no_100_when_consumer_answers_at_once() -> None:
    tm, ft, _ = mk(Consumer(lambda req, t: req.genResponse(404, "Not Here")))
    feed(tm, request())
    assert ft.first_lines() == ["SIP/2.0 404 Not Here"]


def test_timer_G_retransmits_non2xx_and_H_gives_up() -> None:
    cons = Consumer(lambda req, t: req.genResponse(486, "Busy Here"))
    tm, ft, clock = mk(cons)
    feed(tm, request())
    times = send_times(ft, clock, "SIP/2.0 486", 40.0)
    # T1 doubling, capped at T2, until timer H (64*T1 = 32 s).
    assert times[:6] == [0.5, 1.5, 3.5, 7.5, 11.5, 15.5]
    assert max(gaps(times)) == 4.0
    assert times[-1] <= 32.0
    assert tm.tserver == {}
    assert cons.noacks == [], "noack_cb is for a 2xx that was never ACKed"


def test_ack_of_non2xx_absorbed_stops_G_and_timer_I_ends_it() -> None:
    cons = Consumer(lambda req, t: req.genResponse(486, "Busy Here"))
    tm, ft, clock = mk(cons)
    feed(tm, request())
    clock.advance(0.6)
    assert ft.count("SIP/2.0 486") == 2
    resp = ft.msgs("SIP/2.0 486")[0]
    ack = request("ACK", to_tag=resp.getHFBody("to").getTag(), cseq_method="ACK")
    feed(tm, ack)
    feed(tm, ack)
    assert cons.methods() == ["INVITE"], "the ACK of a non-2xx stays in the transaction layer"
    clock.advance(10)
    assert ft.count("SIP/2.0 486") == 2, "timer G stopped by the ACK"
    assert tm.tserver == {}, "timer I (T4) ended the transaction"


def test_timer_I_absorbs_late_ack_then_ends() -> None:
    cons = Consumer(lambda req, t: req.genResponse(603, "Decline"))
    tm, ft, clock = mk(cons)
    feed(tm, request())
    tag = ft.msgs("SIP/2.0 603")[0].getHFBody("to").getTag()
    feed(tm, request("ACK", to_tag=tag))
    clock.advance(tm.T4 - 0.1)
    assert len(tm.tserver) == 1
    clock.advance(0.2)
    assert tm.tserver == {}


def test_2xx_retransmitted_until_ack_then_ack_cb_once() -> None:
    acks: list[Any] = []
    cons = Consumer()
    tm, ft, clock = mk(cons)
    feed(tm, request())
    t = cons.reqs[0][1]
    resp = cons.reqs[0][0].genResponse(200, "OK")
    resp.getHFBody("to").setTag("totag1")
    tm.sendResponse(resp, t, ack_cb=acks.append)
    assert t.state is ACCEPTED
    times = send_times(ft, clock, "SIP/2.0 200", 10.0)
    assert times == [0.5, 1.5, 3.5, 7.5]
    # The ACK of a 2xx is its own transaction: new branch.
    ack = request("ACK", branch="z9hG4bK-ack", to_tag="totag1")
    feed(tm, ack)
    feed(tm, ack)
    assert len(acks) == 1 and acks[0].getMethod() == "ACK"
    clock.advance(30)
    assert ft.count("SIP/2.0 200") == 5, "no retransmission after the ACK"
    assert cons.noacks == []
    assert cons.methods() == ["INVITE"]


def test_2xx_ack_goes_to_req_cb_without_ack_cb() -> None:
    cons = Consumer(lambda req, t: None)
    tm, ft, clock = mk(cons)
    feed(tm, request())
    t = cons.reqs[0][1]
    resp = cons.reqs[0][0].genResponse(200, "OK")
    resp.getHFBody("to").setTag("tt")
    tm.sendResponse(resp, t)
    feed(tm, request("ACK", branch="z9hG4bK-other", to_tag="tt"))
    assert cons.methods() == ["INVITE", "ACK"]
    assert cons.reqs[1][1] is None


def test_2xx_without_ack_calls_noack_cb_after_64T1() -> None:
    cons = Consumer(lambda req, t: req.genResponse(200, "OK"))
    tm, ft, clock = mk(cons)
    feed(tm, request())
    times = send_times(ft, clock, "SIP/2.0 200", 33.0)
    assert times[:4] == [0.5, 1.5, 3.5, 7.5] and max(gaps(times)) == 4.0
    assert len(cons.noacks) == 1 and isinstance(cons.noacks[0], MonoTime)
    assert tm.tserver == {} and tm.tserver_ack == {}
    n = len(ft.sent)
    clock.advance(10)
    assert len(ft.sent) == n


def test_2xx_gets_same_to_tag_as_earlier_provisional() -> None:
    cons = Consumer()
    tm, ft, clock = mk(cons)
    feed(tm, request())
    req, t = cons.reqs[0]
    tm.sendResponse(req.genResponse(180, "Ringing"), t)
    tm.sendResponse(req.genResponse(200, "OK"), t)
    r180, r200 = ft.msgs("SIP/2.0 180")[0], ft.msgs("SIP/2.0 200")[0]
    assert r180.getHFBody("to").getTag() is not None
    assert r180.getHFBody("to").getTag() == r200.getHFBody("to").getTag()


def test_server_over_reliable_transport_has_no_retransmission_timer() -> None:
    cons = Consumer(lambda req, t: req.genResponse(486, "Busy Here"))
    tm, ft, clock = mk(cons, transport="ws")
    feed(tm, request())
    clock.advance(20)
    assert ft.count("SIP/2.0 486") == 1, "no timer G over a reliable transport"
    assert len(tm.tserver) == 1, "timer H still waits for the ACK"
    tag = ft.msgs("SIP/2.0 486")[0].getHFBody("to").getTag()
    feed(tm, request("ACK", to_tag=tag))
    assert tm.tserver == {}, "timer I is zero over a reliable transport"


# ---------------------------------------------------------------------------------------------
# Server non-INVITE


def test_timer_J_absorbs_retransmissions_then_forgets() -> None:
    cons = Consumer(lambda req, t: req.genResponse(200, "OK"))
    tm, ft, clock = mk(cons)
    feed(tm, request("OPTIONS"))
    feed(tm, request("OPTIONS"))
    assert cons.methods() == ["OPTIONS"]
    assert ft.first_lines() == ["SIP/2.0 200 OK"] * 2
    clock.advance(20)
    assert ft.count("SIP/2.0 200") == 2, "non-INVITE responses are not retransmitted by the server"
    clock.advance(12.5)
    assert tm.tserver == {}, "timer J (64*T1) over"
    feed(tm, request("OPTIONS"))
    assert cons.methods() == ["OPTIONS", "OPTIONS"]


def test_emptied_tables_give_their_hash_tables_back() -> None:
    cons = Consumer(lambda req, t: req.genResponse(200, "OK"))
    tm, ft, clock = mk(cons)
    empty = sys.getsizeof({})
    for n in range(300):
        feed(tm, request("OPTIONS", branch=f"z9hG4bK-{n}", callid=f"call-{n}@test"))
    tm.regConsumer(object(), "still-here@test")
    clock.advance(33)
    assert tm.tserver == {}
    grown = sys.getsizeof(tm.tserver)
    assert grown > empty
    tm.releaseEmptyTables()
    assert sys.getsizeof(tm.tserver) == empty
    assert list(tm.req_consumers) == ["still-here@test"]  # a table in use is left alone
    feed(tm, request("OPTIONS", branch="z9hG4bK-after"))
    assert cons.methods()[-1] == "OPTIONS" and len(tm.tserver) == 1


def test_non_invite_answered_later_and_retransmission_before_answer_is_silent() -> None:
    cons = Consumer()
    tm, ft, clock = mk(cons)
    feed(tm, request("OPTIONS"))
    feed(tm, request("OPTIONS"))
    assert ft.sent == [], "no 100 Trying for non-INVITE, nothing yet to repeat"
    req, t = cons.reqs[0]
    tm.sendResponse(req.genResponse(200, "OK"))  # found from the response's Via and CSeq
    assert ft.first_lines() == ["SIP/2.0 200 OK"]
    assert cons.methods() == ["OPTIONS"]


# ---------------------------------------------------------------------------------------------
# CANCEL


def test_cancel_gets_200_consumer_told_and_invite_gets_487() -> None:
    cons = Consumer(lambda req, t: None)
    tm, ft, clock = mk(cons)
    feed(tm, request())
    feed(tm, request("CANCEL"))
    assert ft.first_lines() == ["SIP/2.0 100 Trying", "SIP/2.0 200 OK", "SIP/2.0 487 Request Terminated"]
    assert ft.msgs("SIP/2.0 200")[0].getHFBody("cseq").getCSeqMethod() == "CANCEL"
    assert len(cons.cancels) == 1 and cons.cancels[0][1].getMethod() == "CANCEL"
    assert isinstance(cons.cancels[0][0], MonoTime)
    feed(tm, request("CANCEL"))
    assert len(cons.cancels) == 1, "a retransmitted CANCEL is absorbed"
    assert ft.count("SIP/2.0 200") == 2
    tag = ft.msgs("SIP/2.0 487")[0].getHFBody("to").getTag()
    feed(tm, request("ACK", to_tag=tag))
    clock.advance(40)
    assert ft.count("SIP/2.0 487") == 1, "ACK stopped timer G"
    assert cons.methods() == ["INVITE"]


def test_cancel_when_consumer_answers_in_cancel_cb_no_extra_487() -> None:
    tm, ft, clock = mk()

    def req_cb(req: Any, t: Any) -> Any:
        def cancel_cb(rtime: Any, creq: Any) -> None:
            tm.sendResponse(req.genResponse(487, "Cancelled By Consumer"), t)

        return (None, cancel_cb, None)

    tm.req_cb = req_cb
    feed(tm, request())
    feed(tm, request("CANCEL"))
    assert ft.first_lines()[1:] == ["SIP/2.0 200 OK", "SIP/2.0 487 Cancelled By Consumer"]


def test_cancel_after_final_gets_200_only() -> None:
    cons = Consumer(lambda req, t: req.genResponse(486, "Busy Here"))
    tm, ft, clock = mk(cons)
    feed(tm, request())
    feed(tm, request("CANCEL"))
    assert ft.first_lines() == ["SIP/2.0 486 Busy Here", "SIP/2.0 200 OK"]
    assert cons.cancels == []


def test_invite_expires_unanswered_gets_487() -> None:
    cons = Consumer(lambda req, t: None)
    tm, ft, clock = mk(cons)
    feed(tm, request().replace(b"Content-Length: 0", b"Expires: 2\r\nContent-Length: 0"))
    clock.advance(1.9)
    assert ft.first_lines() == ["SIP/2.0 100 Trying"]
    clock.advance(0.2)
    assert ft.first_lines() == ["SIP/2.0 100 Trying", "SIP/2.0 487 Request Expired"]
    assert len(cons.cancels) == 1 and cons.cancels[0][1] is None


def test_invite_answered_before_expires_is_left_alone() -> None:
    cons = Consumer(lambda req, t: None)
    tm, ft, clock = mk(cons)
    feed(tm, request().replace(b"Content-Length: 0", b"Expires: 2\r\nContent-Length: 0"))
    req, t = cons.reqs[0]
    tm.sendResponse(req.genResponse(180, "Ringing"), t)
    clock.advance(1)
    tm.sendResponse(req.genResponse(486, "Busy Here"), t)
    tag = ft.msgs("SIP/2.0 486")[0].getHFBody("to").getTag()
    feed(tm, request("ACK", to_tag=tag))
    clock.advance(5)
    assert ft.count("SIP/2.0 487") == 0 and cons.cancels == []


def test_cancel_without_transaction_gets_481() -> None:
    cons = Consumer()
    tm, ft, clock = mk(cons)
    feed(tm, request("CANCEL", branch="z9hG4bK-nothing"))
    assert ft.first_lines() == ["SIP/2.0 481 Call Leg/Transaction Does Not Exist"]
    assert cons.reqs == []


# ---------------------------------------------------------------------------------------------
# Errors, routing of responses


def test_max_forwards_zero_gets_483() -> None:
    cons = Consumer()
    tm, ft, _ = mk(cons)
    feed(tm, request("OPTIONS", mf=0))
    assert ft.first_lines() == ["SIP/2.0 483 Too Many Hops"]
    assert cons.reqs == []
    feed(tm, request("OPTIONS", mf=1, branch="z9hG4bK-2"))
    assert cons.methods() == ["OPTIONS"]


@pytest.mark.parametrize("missing", ["From", "To", "Call-ID", "CSeq"])
def test_missing_mandatory_header_gets_400_with_reason(missing: str) -> None:
    cons = Consumer()
    tm, ft, _ = mk(cons)
    feed(tm, request("OPTIONS", skip=(missing,)))
    assert len(ft.sent) == 1, ft.first_lines()
    line = ft.first_lines()[0]
    assert line.startswith("SIP/2.0 400 ") and missing in line
    assert ft.sent[0][1] == PEER
    assert cons.reqs == []


def test_400_goes_to_rport_and_bad_ack_is_not_answered() -> None:
    cons = Consumer()
    tm, ft, _ = mk(cons)
    feed(tm, request("OPTIONS", via="10.0.0.1:5070", rport=True, skip=("Call-ID",)), ("127.0.0.1", 40000))
    assert [a for _, a in ft.sent] == [("127.0.0.1", 40000)]
    assert ft.first_lines()[0].startswith("SIP/2.0 400")
    feed(tm, request("ACK", skip=("Call-ID",)))
    assert len(ft.sent) == 1 and cons.reqs == []


def test_unparsable_but_answerable_gets_400() -> None:
    cons = Consumer()
    tm, ft, _ = mk(cons)
    data = request("OPTIONS").replace(b"CSeq: 1 OPTIONS", b"CSeq: one OPTIONS")
    feed(tm, data)
    assert len(ft.sent) == 1 and ft.first_lines()[0].startswith("SIP/2.0 400")
    assert cons.reqs == []


def test_garbage_and_no_via_dropped_with_one_log_line() -> None:
    lg = FakeLogger()
    cons = Consumer()
    tm, ft, _ = mk(cons, logger=lg)
    feed(tm, b"\x00\xff garbage garbage garbage garbage garbage \r\n\r\n")
    assert len(lg.lines) == 1
    feed(tm, request("OPTIONS", skip=("Via",)))
    assert len(lg.lines) == 2
    assert ft.sent == [] and cons.reqs == []
    feed(tm, b"\r\n\r\n")  # keep-alive
    assert len(lg.lines) == 2


def test_consumer_exception_gives_500_and_stays_inside() -> None:
    lg = FakeLogger()

    def boom(req: Any, t: Any) -> Any:
        raise RuntimeError("consumer bug")

    tm, ft, _ = mk(boom, logger=lg)
    feed(tm, request())
    assert ft.first_lines() == ["SIP/2.0 500 Server Internal Error"]
    assert any("consumer bug" in text for _, text in lg.lines), "traceback logged"


@pytest.mark.parametrize(
    "via,rport,src,dest,received,rport_val",
    [
        ("10.0.0.1:5070", True, ("127.0.0.1", 40000), ("127.0.0.1", 40000), "127.0.0.1", "40000"),
        ("10.0.0.1:5070", False, ("127.0.0.1", 40000), ("127.0.0.1", 5070), "127.0.0.1", None),
        ("127.0.0.1:5070", False, ("127.0.0.1", 40000), ("127.0.0.1", 5070), None, None),
        ("127.0.0.1", True, ("127.0.0.1", 40000), ("127.0.0.1", 40000), None, "40000"),
        ("host.invalid", False, ("127.0.0.1", 40000), ("127.0.0.1", 5060), "127.0.0.1", None),
    ],
)
def test_response_goes_to_received_and_rport(
    via: str, rport: bool, src: Any, dest: Any, received: Any, rport_val: Any
) -> None:
    tm, ft, _ = mk(Consumer(lambda req, t: req.genResponse(200, "OK")))
    feed(tm, request("OPTIONS", via=via, rport=rport), src)
    ((data, address),) = ft.sent
    assert address == dest
    v = SipResponse(buf=data).getHFBody("via")
    assert v.getParam("received") == received
    assert v.params.get("rport") == rport_val


def test_nat_traversal_fixes_private_contact_and_answers_at_source() -> None:
    cons = Consumer(lambda req, t: req.genResponse(200, "OK"))
    tm, ft, _ = mk(cons)
    tm.nat_traversal = True
    data = request("OPTIONS", via="192.168.1.10:5060").replace(b"alice@127.0.0.1:5062", b"alice@192.168.1.10")
    feed(tm, data, ("127.0.0.1", 40000))
    req = cons.reqs[0][0]
    assert req.nated
    assert req.getHFBody("contact").getUrl().getAddr() == ("127.0.0.1", 40000)
    assert ft.sent[0][1] == ("127.0.0.1", 40000)
    # Off (the default): the Contact stays, the answer goes to received + sent-by port.
    tm.nat_traversal = False
    feed(tm, data.replace(b"z9hG4bK-b1", b"z9hG4bK-b2"), ("127.0.0.1", 40000))
    req = cons.reqs[1][0]
    assert not req.nated and req.getHFBody("contact").getUrl().host == "192.168.1.10"
    assert ft.sent[1][1] == ("127.0.0.1", 5060)


def test_rfc2543_peer_matched_without_branch() -> None:
    cons = Consumer(lambda req, t: req.genResponse(486, "Busy Here"))
    tm, ft, clock = mk(cons)
    feed(tm, request(branch=None))
    feed(tm, request(branch=None))
    assert cons.methods() == ["INVITE"]
    assert ft.count("SIP/2.0 486") == 2
    tag = ft.msgs("SIP/2.0 486")[0].getHFBody("to").getTag()
    feed(tm, request("ACK", branch=None, to_tag=tag))
    clock.advance(10)
    assert ft.count("SIP/2.0 486") == 2, "the ACK matched: no retransmission"
    assert cons.methods() == ["INVITE"]
    # Another INVITE (new CSeq) is a new transaction.
    feed(tm, request(branch=None, cseq=2))
    assert cons.methods() == ["INVITE", "INVITE"]


def test_dbug_logging_only_when_enabled() -> None:
    lg = FakeLogger(SIPLOG_INFO)
    tm, ft, _ = mk(Consumer(lambda req, t: req.genResponse(200, "OK")), logger=lg)
    feed(tm, request("OPTIONS"))
    assert lg.lines == [] and len(ft.sent) == 1
    lg.level = SIPLOG_DBUG
    feed(tm, request("OPTIONS", branch="z9hG4bK-2"))
    texts = [text for lvl, text in lg.lines if lvl == SIPLOG_DBUG]
    assert any(t.startswith("RECEIVED message from 127.0.0.1:5062") and "OPTIONS sip:" in t for t in texts)
    assert any(t.startswith("SENDING message to 127.0.0.1:5062") and "SIP/2.0 200 OK" in t for t in texts)


# ---------------------------------------------------------------------------------------------
# Client side


def out_request(method: str = "INVITE", target: tuple[str, int] = PEER, cseq: int = 1) -> SipRequest:
    ruri = SipURL(username="bob", host=target[0], port=target[1])
    fr0m = SipFrom(address=SipAddress(url=SipURL(username="alice", host=LOCAL[0], port=LOCAL[1])))
    fr0m.genTag()
    return SipRequest(method=method, ruri=ruri, fr0m=fr0m, callid=SipCallId(), cseq=cseq, target=target)


def answer(
    ft: FakeTransport, req_bytes: bytes, code: int, reason: str, to_tag: str = "rt1", contact: str = ""
) -> bytes:
    """A response a peer would send to the request in req_bytes."""
    req = SipRequest(buf=req_bytes)
    resp = req.genResponse(code, reason)
    if code > 100:
        resp.getHFBody("to").setTag(to_tag)
    text = str(resp)
    if contact:
        text = text.replace("\r\nContent-Length", f"\r\nContact: {contact}\r\nContent-Length", 1)
    return text.encode()


class Responses:
    def __init__(self) -> None:
        self.got: list[tuple[Any, Any]] = []

    def __call__(self, resp: Any, t: Any = None) -> None:
        self.got.append((resp, t))

    def codes(self) -> list[int]:
        return [r.getSCodeNum() for r, _ in self.got]


def test_timer_A_doubles_and_B_gives_408() -> None:
    tm, ft, clock = mk()
    got = Responses()
    t = tm.newTransaction(out_request(), got, cb_ifver=2)
    assert ft.count("INVITE") == 1 and ft.sent[0][1] == PEER
    times = send_times(ft, clock, "INVITE", 33)
    assert times == [0.5, 1.5, 3.5, 7.5, 15.5, 31.5], "timer A: T1 doubling, not capped"
    assert got.codes() == [408] and got.got[0][1] is t
    assert got.got[0][0].getSCodeReason() == "Request Timeout"
    assert tm.tclient == {}


def test_timer_E_caps_at_T2_and_F_gives_408() -> None:
    tm, ft, clock = mk()
    got = Responses()
    tm.newTransaction(out_request("OPTIONS"), got)
    times = send_times(ft, clock, "OPTIONS", 33)
    assert times[:5] == [0.5, 1.5, 3.5, 7.5, 11.5] and max(gaps(times)) == 4.0
    assert got.codes() == [408] and got.got[0][1] is None, "cb_ifver=1: resp_cb(resp)"


def test_timer_E_at_T2_once_proceeding() -> None:
    tm, ft, clock = mk()
    got = Responses()
    tm.newTransaction(out_request("OPTIONS"), got)
    feed(tm, answer(ft, ft.sent[0][0], 100, "Trying"))
    times = send_times(ft, clock, "OPTIONS", 10)
    # The retransmission already due at T1 still goes; from then on every T2.
    assert times == [0.5, 4.5, 8.5]
    assert got.codes() == [100]


def test_T1_is_configurable() -> None:
    tm, ft, clock = mk()
    tm.T1, tm.T2 = 0.1, 0.4
    tm.newTransaction(out_request("OPTIONS"), Responses())
    times = send_times(ft, clock, "OPTIONS", 2.0)
    assert times[:4] == [0.1, 0.3, 0.7, 1.1]


def test_provisional_stops_timer_A() -> None:
    tm, ft, clock = mk()
    got = Responses()
    tm.newTransaction(out_request(), got)
    feed(tm, answer(ft, ft.sent[0][0], 180, "Ringing"))
    clock.advance(60)
    assert ft.count("INVITE") == 1
    assert got.codes() == [180]


def test_non2xx_acked_here_and_timer_D_absorbs() -> None:
    tm, ft, clock = mk()
    got = Responses()
    tm.newTransaction(out_request(), got)
    inv = SipRequest(buf=ft.sent[0][0])
    r486 = answer(ft, ft.sent[0][0], 486, "Busy Here", to_tag="busy")
    feed(tm, r486)
    (ack,) = ft.msgs("ACK")
    assert ack.getHFBody("via").getBranch() == inv.getHFBody("via").getBranch()
    assert ack.getHFBody("to").getTag() == "busy"
    assert ack.getHFBody("cseq").getCSeq() == (1, "ACK")
    feed(tm, r486)
    assert ft.count("ACK") == 2, "a retransmitted final gets the ACK again"
    assert got.codes() == [486]
    clock.advance(31.9)
    assert len(tm.tclient) == 1
    clock.advance(0.2)
    assert tm.tclient == {}, "timer D (32 s) over"


def test_timer_K_absorbs_final_retransmissions() -> None:
    tm, ft, clock = mk()
    got = Responses()
    tm.newTransaction(out_request("OPTIONS"), got)
    r200 = answer(ft, ft.sent[0][0], 200, "OK")
    feed(tm, r200)
    feed(tm, r200)
    assert got.codes() == [200]
    clock.advance(tm.T4 + 0.1)
    assert tm.tclient == {}
    assert ft.count("OPTIONS") == 1


def test_2xx_retransmissions_reach_resp_cb_and_sendACK() -> None:
    tm, ft, clock = mk()
    got = Responses()
    t = tm.newTransaction(out_request(), got, cb_ifver=2)
    inv = SipRequest(buf=ft.sent[0][0])
    r200 = answer(ft, ft.sent[0][0], 200, "OK", to_tag="dlg", contact="<sip:bob@127.0.0.1:5099>")
    feed(tm, r200)
    assert got.codes() == [200] and ft.count("ACK") == 0, "the UA ACKs a 2xx"
    tm.sendACK(t)
    (data, address) = ft.sent[-1]
    ack = SipRequest(buf=data)
    assert ack.getMethod() == "ACK" and address == ("127.0.0.1", 5099)
    assert ack.getHFBody("to").getTag() == "dlg"
    assert ack.getHFBody("via").getBranch() != inv.getHFBody("via").getBranch()
    assert str(ack.getRURI()) == "sip:bob@127.0.0.1:5099"
    feed(tm, r200)
    assert got.codes() == [200, 200], "the retransmitted 2xx is passed up"
    tm.sendACK(t)
    assert ft.sent[-1][0] == data, "the same ACK again"
    clock.advance(40)
    assert tm.tclient == {}


def test_cancel_deferred_until_provisional() -> None:
    tm, ft, clock = mk()
    got = Responses()
    t = tm.newTransaction(out_request(), got)
    inv_bytes = ft.sent[0][0]
    tm.cancelTransaction(t)
    clock.advance(0.2)
    assert ft.count("CANCEL") == 0, "no CANCEL before a provisional (RFC 3261 9.1)"
    feed(tm, answer(ft, inv_bytes, 100, "Trying"))
    (cancel,) = ft.msgs("CANCEL")
    inv = SipRequest(buf=inv_bytes)
    assert cancel.getHFBody("via").getBranch() == inv.getHFBody("via").getBranch()
    assert cancel.getHFBody("cseq").getCSeq() == (1, "CANCEL")
    # The CANCEL is retransmitted on its own until answered.
    clock.advance(0.6)
    assert ft.count("CANCEL") == 2
    feed(tm, answer(ft, ft.msgs("CANCEL")[0].localStr().encode(), 200, "OK"))
    clock.advance(5)
    assert ft.count("CANCEL") == 2
    feed(tm, answer(ft, inv_bytes, 487, "Request Terminated"))
    assert got.codes() == [100, 487]
    assert ft.count("ACK") == 1


def test_cancel_after_provisional_is_sent_at_once_and_2xx_still_reaches_resp_cb() -> None:
    tm, ft, clock = mk()
    got = Responses()
    t = tm.newTransaction(out_request(), got)
    feed(tm, answer(ft, ft.sent[0][0], 180, "Ringing"))
    tm.cancelTransaction(t, extra_headers=[SipHeader("Reason: SIP;cause=200")])
    (cancel,) = ft.msgs("CANCEL")
    assert cancel.countHFs("reason") == 1
    feed(tm, answer(ft, ft.sent[0][0], 200, "OK"))
    assert got.codes() == [180, 200]


def test_cancel_after_final_does_nothing() -> None:
    tm, ft, clock = mk()
    t = tm.newTransaction(out_request(), Responses())
    feed(tm, answer(ft, ft.sent[0][0], 486, "Busy Here"))
    tm.cancelTransaction(t)
    assert ft.count("CANCEL") == 0


def test_unknown_response_ignored() -> None:
    tm, ft, clock = mk()
    got = Responses()
    tm.newTransaction(out_request("OPTIONS"), got)
    other = out_request("OPTIONS")
    feed(tm, answer(ft, other.localStr(*LOCAL).encode(), 200, "OK"))
    assert got.codes() == []


def test_client_over_reliable_transport_does_not_retransmit() -> None:
    tm, ft, clock = mk(transport="ws")
    got = Responses()
    tm.newTransaction(out_request(), got)
    tm.newTransaction(out_request("OPTIONS"), got)
    clock.advance(31)
    assert len(ft.sent) == 2
    clock.advance(2)
    assert got.codes() == [408, 408]


def test_own_request_looping_back_gets_482() -> None:
    tm, ft, clock = mk(Consumer())
    tm.newTransaction(out_request("OPTIONS", target=LOCAL), Responses())
    feed(tm, ft.sent[0][0], LOCAL)
    assert ft.first_lines()[1].startswith("SIP/2.0 482")


def test_shutdown_stops_every_timer() -> None:
    tm, ft, clock = mk(Consumer(lambda req, t: req.genResponse(486, "Busy Here")))
    feed(tm, request())
    tm.newTransaction(out_request(), Responses())
    tm.shutdown()
    n = len(ft.sent)
    clock.advance(60)
    assert len(ft.sent) == n and clock.getDelayedCalls() == []


def test_bad_input_counted_by_kind_and_logged_in_one_line_each() -> None:
    lg = FakeLogger()
    tm, ft, _ = mk(Consumer(), logger=lg)
    feed(tm, b"\x00\xff garbage garbage garbage garbage garbage \r\n\r\n")
    feed(tm, request("OPTIONS", skip=("Via",)))
    feed(tm, request("OPTIONS", skip=("Via",)))
    feed(tm, b"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 127.0.0.1:5062;branch=z9hG4bK-x\r\n\r\n")
    assert tm.bad_counts == {"unparsable": 1, "no_via": 2, "bad_response": 1}
    assert len(lg.lines) == 4 and all("\n" not in line for _, line in lg.lines)
