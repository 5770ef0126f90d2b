"""The transaction layer over real UDP (Udp_server) against SIPp on loopback."""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from typing import Any, Callable

import pytest
from twisted.internet.selectreactor import SelectReactor

from sippy.SipAddress import SipAddress
from sippy.SipCallId import SipCallId
from sippy.SipFrom import SipFrom
from sippy.SipHeader import SipHeader
from sippy.SipRequest import SipRequest
from sippy.SipTransactionManager import SipTransactionManager
from sippy.SipURL import SipURL
from sippy.Udp_server import Udp_server, Udp_server_opts
from tests.sipp_util import Sipp, SippResult

pytestmark = pytest.mark.skipif(shutil.which("sipp") is None, reason="sipp is not installed")


class Stack:
    """A private reactor with Udp_server + SipTransactionManager on a free loopback port."""

    def __init__(self, req_cb: Any = None) -> None:
        self.reactor = SelectReactor()
        opts = Udp_server_opts(("127.0.0.1", 0), lambda *args: self.tm.handleIncoming(*args))
        self.userv = Udp_server({}, opts, reactor=self.reactor)
        self.tm = SipTransactionManager({}, req_cb, transport=self.userv, reactor=self.reactor)
        self.address = self.userv.getSIPaddr()

    def run_until(self, done: Callable[[], bool], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not done() and time.monotonic() < deadline:
            # Wake for the next timer, not up to 10 ms after it: the retransmission timers re-arm
            # from when they fire, so polling lateness would add up over a transaction (the last
            # INVITE retransmission comes only T1 before timer B).
            nxt = self.reactor.timeout()
            self.reactor.iterate(0.01 if nxt is None else min(0.01, nxt))

    def run_with(self, sipp: Sipp, timeout: float = 15.0) -> SippResult:
        """Pump our reactor while SIPp runs, then collect SIPp's result."""
        self.run_until(lambda: sipp.poll() is not None, timeout)
        return sipp.wait(timeout=1.0)

    def close(self) -> None:
        self.tm.shutdown()
        self.userv.shutdown()
        self.reactor.iterate(0)
        self.reactor.disconnectAll()
        waker = getattr(self.reactor, "waker", None)
        if waker is not None:
            self.reactor.removeReader(waker)
            waker.connectionLost(None)


@pytest.fixture
def stack() -> Iterator[Stack]:
    st = Stack()
    yield st
    st.close()


class TinyUAS:
    """A consumer answering INVITE with 180 then 200 a little later, BYE and OPTIONS with 200."""

    def __init__(self, stack: Stack) -> None:
        self.stack = stack
        self.tm = stack.tm
        self.methods: list[str] = []
        self.acks: list[Any] = []
        self.noacks: list[Any] = []

    def __call__(self, req: Any, t: Any) -> Any:
        method = req.getMethod()
        self.methods.append(method)
        if method == "INVITE":
            self.stack.reactor.callLater(0.05, self.answer, req, t)
            return (None, None, self.noacks.append)
        if method in ("BYE", "OPTIONS"):
            return (req.genResponse(200, "OK"), None, None)
        return (req.genResponse(501, "Not Implemented"), None, None)

    def answer(self, req: Any, t: Any) -> None:
        tag = "uas" + str(len(self.methods))
        r180 = req.genResponse(180, "Ringing")
        r180.getHFBody("to").setTag(tag)
        self.tm.sendResponse(r180, t)
        r200 = req.genResponse(200, "OK")
        r200.getHFBody("to").setTag(tag)
        host, port = self.stack.address
        r200.appendHeader(SipHeader(f"Contact: <sip:uas@{host}:{port}>"))
        self.tm.sendResponse(r200, t, ack_cb=self.acks.append)


def test_sipp_uac_calls_complete(stack: Stack) -> None:
    uas = TinyUAS(stack)
    stack.tm.req_cb = uas
    with Sipp("uac", remote=stack.address, calls=3, rate=10, timeout=10) as sipp:
        res = stack.run_with(sipp)
    assert res.returncode == 0, res.describe()
    assert res.stat("SuccessfulCall") == 3
    assert res.stat("FailedCall") == 0
    assert uas.methods.count("INVITE") == 3 and uas.methods.count("BYE") == 3
    assert len(uas.acks) == 3, "each ACK of a 2xx reaches the ack_cb"
    assert len(res.received("SIP/2.0 100 Trying")) == 3
    assert len(res.received("SIP/2.0 180")) == 3
    assert uas.noacks == []
    states = {t.method: t.state.__name__ for t in stack.tm.tserver.values()}
    assert states == {"INVITE": "CONFIRMED", "BYE": "COMPLETED"}, "only absorbing retransmissions now"


def test_sipp_options_and_max_forwards_zero(stack: Stack) -> None:
    uas = TinyUAS(stack)
    stack.tm.req_cb = uas
    with Sipp("options_uac.xml", remote=stack.address, calls=1, timeout=10) as sipp:
        res = stack.run_with(sipp)
    assert res.returncode == 0, res.describe()
    assert uas.methods == ["OPTIONS"], "the Max-Forwards: 0 request never reaches the consumer"
    (r200,) = res.received("SIP/2.0 200")
    # rport asked for: the answer says where it came from.
    assert f"rport={res_port(res)}" in r200
    assert len(res.received("SIP/2.0 483 Too Many Hops")) == 1


def res_port(res: SippResult) -> str:
    via = next(line for line in res.sent("OPTIONS")[0].splitlines() if line.lower().startswith("via:"))
    return via.split()[2].split(";")[0].rsplit(":", 1)[1]


def out_request(method: str, target: tuple[str, int]) -> SipRequest:
    ruri = SipURL(username="service", host=target[0], port=target[1])
    fr0m = SipFrom(address=SipAddress(url=SipURL(username="tm", host="127.0.0.1")))
    fr0m.genTag()
    return SipRequest(method=method, ruri=ruri, fr0m=fr0m, callid=SipCallId(), cseq=1, target=target)


@pytest.mark.parametrize("method", ["INVITE", "OPTIONS"])
def test_client_retransmits_to_silent_sipp_then_408(stack: Stack, method: str) -> None:
    tm = stack.tm
    tm.T1, tm.T2 = 0.05, 0.2  # timer B/F at 64*T1 = 3.2 s, inside SIPp's 4 s pause
    got: list[Any] = []
    with Sipp("uas_silent.xml", calls=1, timeout=10) as sipp:
        assert sipp.wait_bound(), "SIPp did not start listening"
        tm.newTransaction(out_request(method, sipp.address), got.append)
        stack.run_until(lambda: bool(got), 5.0)
        sent = stack.userv.stats.dgrams_out
        res = stack.run_with(sipp)
    assert [r.getSCodeNum() for r in got] == [408], "the timeout reaches resp_cb as a local 408"
    received = res.received(method)
    assert len(received) == sent, res.describe()
    if method == "INVITE":
        # Timer A: 0.05, 0.15, 0.35, 0.75, 1.55, 3.15 s, then timer B at 3.2 s.
        assert sent == 7
    else:
        # Timer E: doubling to T2 (0.2 s), then every T2 until timer F.
        assert sent >= 15
    assert len(set(received)) == 1, "retransmissions are the very same datagram"


def test_sipp_losing_the_ack_gets_200_again(stack: Stack) -> None:
    uas = TinyUAS(stack)
    stack.tm.req_cb = uas
    with Sipp("uac_lost_ack.xml", remote=stack.address, calls=1, timeout=10) as sipp:
        res = stack.run_with(sipp)
    assert res.returncode == 0, res.describe()
    r200s = [m for m in res.received("SIP/2.0 200") if "CSeq: 1 INVITE" in m]
    # 0.5 s and 1.5 s into the 1.8 s pause: two retransmissions, then the ACK stops them.
    assert len(r200s) == 3, res.describe()
    assert len(uas.acks) == 1 and uas.noacks == []
    assert uas.methods == ["INVITE", "BYE"]


def test_sipp_never_acking_triggers_noack_cb(stack: Stack) -> None:
    uas = TinyUAS(stack)
    stack.tm.req_cb = uas
    stack.tm.T1 = 0.05  # 64*T1 = 3.2 s, inside SIPp's 4 s pause
    with Sipp("uac_no_ack.xml", remote=stack.address, calls=1, timeout=10) as sipp:
        res = stack.run_with(sipp)
    assert res.returncode == 0, res.describe()
    assert len(uas.noacks) == 1 and uas.acks == []
    r200s = res.received("SIP/2.0 200")
    # 2xx retransmitted at T1 doubling up to T2 (4 s) during 64*T1: 0.05 .. 3.15 s.
    assert len(r200s) == 7, res.describe()
