"""Regressions found under load (bench/b2bua.py): retention, reference cycles, the late 408.

Calls run in-process through b2bua_simple's controller, the call map and the transaction manager on
an in-memory transport, with a Clock for time: what each test checks is what crossed the wire and
what the B2BUA still holds afterwards.
"""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator
from typing import Any

import pytest
from twisted.internet.task import Clock

from sippy.B2BConfig import parse_args
from sippy.b2bua_simple import CallController
from sippy.CallController import cc_factory
from sippy.CallMap import CallMap
from sippy.MsgBody import MsgBody
from sippy.Radius_client import RESULT_ACCEPT, RESULT_NO_ANSWER
from sippy.RadiusAcctSpool import AcctSpool
from sippy.SipHeader import SipHeader
from sippy.SipMsg import SipMsg
from sippy.SipRequest import SipRequest
from sippy.SipResponse import SipResponse
from sippy.SipTransactionManager import SipTransactionManager
from sippy.Time.MonoTime import MonoTime

CALLER = ("127.0.0.1", 5062)
CALLEE = ("127.0.0.1", 5070)
SDP = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n"


class Wire:
    """The transport contract; keeps every datagram the B2BUA sent, with its destination."""

    transport = "udp"

    def __init__(self) -> None:
        self.sent: list[tuple[bytes, tuple[str, int]]] = []

    def send_to(self, data: bytes, address: tuple[str, int]) -> None:
        self.sent.append((data, address))

    def getSIPaddr(self, raddress: Any = None) -> tuple[str, int]:
        return ("127.0.0.1", 5060)

    def shutdown(self) -> None:
        pass

    def lines(self, address: tuple[str, int]) -> list[str]:
        """First lines of what went to address, in order."""
        return [d.split(b"\r\n", 1)[0].decode() for d, a in self.sent if a == address]

    def last(self, start: str) -> Any:
        for data, _ in reversed(self.sent):
            if data.startswith(start.encode()):
                return SipResponse(buf=data) if start.startswith("SIP/") else SipRequest(buf=data)
        raise AssertionError(f"nothing sent starting with {start!r}")


class B2B:
    """The call machinery of b2bua_simple, or of b2bua_radius -u -s (static route, no RADIUS), on a
    Wire and a Clock."""

    def __init__(self, kind: str = "simple", flags: tuple[str, ...] = ("-A", "0")) -> None:
        self.clock = Clock()
        self.wire = Wire()
        gconf: dict[str, Any]
        if kind == "simple":
            gconf = {"nh_addr": CALLEE, "_sip_address": "127.0.0.1", "_sip_port": 5060}
            self.callmap = CallMap(
                gconf, lambda g, req, t: CallController(g, self.callmap, reactor=self.clock)
            )
        else:
            gconf = parse_args(["-f", "-u", *flags, "-s", f"{CALLEE[0]}:{CALLEE[1]}", "-l", "127.0.0.1"])
            self.callmap = CallMap(
                gconf, lambda g, req, t: cc_factory(g, req, t, callmap=self.callmap, reactor=self.clock)
            )
        self.tm = SipTransactionManager(
            gconf, self.callmap.recvRequest, transport=self.wire, reactor=self.clock
        )
        gconf["_sip_tm"] = self.tm

    def feed(self, data: str, source: tuple[str, int]) -> None:
        self.tm.handleIncoming(data.encode(), source, self.wire, MonoTime())

    def held(self) -> dict[str, int]:
        """Everything the manager and the call map still keep, by kind."""
        tm = self.tm
        return {
            "client transactions": len(tm.tclient),
            "server transactions": len(tm.tserver),
            "2xx ACK matches": len(tm.tserver_ack),
            "retransmission keys": len(tm._retrans),
            "consumers": len(tm.req_consumers),
            "calls": len(self.callmap.ccmap),
            "pending timers": len(self.clock.getDelayedCalls()),
        }


def caller_request(method: str, cid: str, cseq: int, branch: str, to_tag: str = "", body: str = "") -> str:
    to = "<sip:bob@127.0.0.1>" + (f";tag={to_tag}" if to_tag else "")
    hdrs = [
        f"{method} sip:bob@127.0.0.1:5060 SIP/2.0",
        f"Via: SIP/2.0/UDP 127.0.0.1:5062;branch=z9hG4bK-{branch}",
        f"From: <sip:alice@127.0.0.1:5062>;tag=a-{cid}",
        f"To: {to}",
        f"Call-ID: {cid}",
        f"CSeq: {cseq} {method}",
        "Contact: <sip:alice@127.0.0.1:5062>",
        "Max-Forwards: 70",
    ]
    if body:
        hdrs.append("Content-Type: application/sdp")
    return "\r\n".join(hdrs) + "\r\n\r\n" + body


def callee_answer(req: Any, code: int, reason: str, to_tag: str = "bob-1") -> str:
    resp = req.genResponse(code, reason)
    if code > 100:
        resp.getHFBody("to").setTag(to_tag)
    if 200 <= code < 300 and req.getMethod() == "INVITE":
        resp.appendHeader(SipHeader(name="contact", bodys="<sip:bob@127.0.0.1:5070>"))
    return str(resp)


def full_call(b2b: B2B, cid: str) -> list[weakref.ref]:
    """Caller INVITE, callee 180 and 200, caller ACK, caller BYE, callee 200 to the BYE; returns
    weak references to the call's controller and UAs."""
    b2b.feed(caller_request("INVITE", cid, 1, f"{cid}-1", body=SDP), CALLER)
    cc = b2b.callmap.getCall(cid)
    refs = [weakref.ref(x) for x in (cc, cc.uaA, cc.uaO)]
    refs += [
        weakref.ref(x) for x in (getattr(cc, "acctA", None), getattr(cc, "acctO", None)) if x is not None
    ]
    del cc
    egress = b2b.wire.last("INVITE")
    b2b.feed(callee_answer(egress, 180, "Ringing"), CALLEE)
    b2b.feed(callee_answer(egress, 200, "OK"), CALLEE)
    tag = b2b.wire.last("SIP/2.0 200").getHFBody("to").getTag()
    b2b.feed(caller_request("ACK", cid, 1, f"{cid}-2", to_tag=tag), CALLER)
    b2b.feed(caller_request("BYE", cid, 2, f"{cid}-3", to_tag=tag), CALLER)
    b2b.feed(callee_answer(b2b.wire.last("BYE"), 200, "OK"), CALLEE)
    return refs


@pytest.fixture
def no_cyclic_gc() -> Iterator[None]:
    """Only reference counting frees objects while the test runs."""
    was = gc.isenabled()
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


@pytest.mark.parametrize("kind", ["simple", "radius"])
def test_finished_call_leaves_nothing_behind_and_is_freed_without_the_cyclic_gc(
    no_cyclic_gc: None, kind: str
) -> None:
    b2b = B2B(kind)
    refs = full_call(b2b, "c1")
    assert b2b.wire.lines(CALLER) == [
        "SIP/2.0 100 Trying",
        "SIP/2.0 180 Ringing",
        "SIP/2.0 200 OK",
        "SIP/2.0 200 OK",
    ]
    assert b2b.wire.lines(CALLEE)[0].startswith("INVITE ")
    assert [x.split()[0] for x in b2b.wire.lines(CALLEE)[1:]] == ["ACK", "BYE"]
    # 64*T1 for the transactions, 32 s of lingering for the UAs.
    b2b.clock.advance(33)
    b2b.clock.advance(33)
    assert all(n == 0 for n in b2b.held().values()), b2b.held()
    # No reference cycle keeps the controller or its UAs: they went with their last reference.
    assert [r() for r in refs] == [None, None, None]


@pytest.mark.parametrize("kind", ["simple", "radius"])
def test_ended_call_frees_its_messages_but_still_answers_retransmissions(
    no_cyclic_gc: None, kind: str
) -> None:
    """For 32 s after a call the B2BUA still absorbs retransmissions (RFC 3261 timers H, J, M, the
    UAs' lingering), but with the bytes it sent: it keeps no parsed message or SDP of the call."""
    b2b = B2B(kind)
    b2b.feed(caller_request("INVITE", "c2", 1, "c2-1", body=SDP), CALLER)
    egress = b2b.wire.last("INVITE")
    b2b.feed(callee_answer(egress, 180, "Ringing"), CALLEE)
    b2b.feed(callee_answer(egress, 200, "OK"), CALLEE)
    ack = b2b.wire.sent[-2]
    assert ack[0].startswith(b"ACK ")
    tag = b2b.wire.last("SIP/2.0 200").getHFBody("to").getTag()
    b2b.feed(caller_request("ACK", "c2", 1, "c2-2", to_tag=tag), CALLER)
    cc = b2b.callmap.getCall("c2")
    # The caller's offer as received and as passed on (the callee's 200 here has no SDP).
    sdps = [weakref.ref(cc.uaA.rSDP), weakref.ref(cc.uaO.lSDP)]
    del cc
    b2b.feed(caller_request("BYE", "c2", 2, "c2-3", to_tag=tag), CALLER)
    b2b.feed(callee_answer(b2b.wire.last("BYE"), 200, "OK"), CALLEE)
    answer200 = callee_answer(egress, 200, "OK")
    del egress
    b2b.clock.advance(1)
    assert [o for o in gc.get_objects() if isinstance(o, (SipMsg, MsgBody))] == []
    assert [r() for r in sdps] == [None, None]
    # The caller's BYE comes again (our 200 was lost): the same 200 goes out again.
    before = len(b2b.wire.sent)
    b2b.feed(caller_request("BYE", "c2", 2, "c2-3", to_tag=tag), CALLER)
    assert (
        b2b.wire.sent[before:] == [x for x in b2b.wire.sent[:before] if x[0].startswith(b"SIP/2.0 200")][-1:]
    )
    # Within timer M the callee's 200 comes again (our ACK was lost): the same ACK again.
    before = len(b2b.wire.sent)
    b2b.feed(answer200, CALLEE)
    assert b2b.wire.sent[before:] == [ack]


@pytest.mark.parametrize("kind", ["simple", "radius"])
def test_callee_answers_lost_caller_gets_408_from_timer_b_after_64_t1(kind: str) -> None:
    """The late 408s under load: when the callee's 180 and 200 are lost (datagrams dropped by the
    kernel while the B2BUA stalled in a full GC pass), the B2BUA retransmits its INVITE (SIPp's uas
    then aborts its call on the "unexpected" INVITE and never answers again) and, 64*T1 after the
    INVITE, timer B answers the caller 408 itself. Nothing earlier: no timer fires before its time."""
    b2b = B2B(kind)
    b2b.feed(caller_request("INVITE", "c3", 1, "c3-1", body=SDP), CALLER)
    assert b2b.wire.lines(CALLER) == ["SIP/2.0 100 Trying"]
    # What SIPp's uas would have answered at once is lost; 31.9 s pass.
    for _ in range(319):
        b2b.clock.advance(0.1)
    invites = [x for x in b2b.wire.lines(CALLEE) if x.startswith("INVITE ")]
    # Timer A: the first INVITE and retransmissions 0.5, 1.5, 3.5, 7.5, 15.5 and 31.5 s after it.
    assert len(invites) == 7
    assert b2b.wire.lines(CALLER) == ["SIP/2.0 100 Trying"]
    b2b.clock.advance(0.2)
    assert b2b.wire.lines(CALLER) == ["SIP/2.0 100 Trying", "SIP/2.0 408 Request Timeout"]
    assert b2b.wire.lines(CALLEE)[-1].startswith("INVITE ")


class AcctServer:
    """Stands in for Radius_client in the accounting path: answers each request 10 ms later, or
    says after 1 s that no server answered."""

    def __init__(self, clock: Clock, answers: bool) -> None:
        self.clock = clock
        self.answers = answers
        self.records: list[dict[str, Any]] = []

    def do_acct(self, attributes: list[tuple[str, Any]], cb: Any, *params: Any) -> None:
        self.records.append(dict(attributes))
        rcode, delay = (RESULT_ACCEPT, 0.01) if self.answers else (RESULT_NO_ANSWER, 1.0)
        self.clock.callLater(delay, cb, ((), rcode), *params)


@pytest.mark.parametrize("answers", [True, False], ids=["server-answers", "server-silent"])
def test_accounted_call_is_freed_whether_or_not_the_server_answers(
    no_cyclic_gc: None, answers: bool, tmp_path: Any
) -> None:
    """b2bua_radius -A 2 with Alive records: the controller, both UAs and both legs' accounting
    go with their last reference once the call is over, also when the records wait in the spool."""
    b2b = B2B("radius", ("-A", "2", "--alive_acct_int=10"))
    server = AcctServer(b2b.clock, answers)
    gconf = b2b.callmap.global_config
    gconf["_radius_client"] = server
    spool = AcctSpool(server, str(tmp_path / "spool"), reactor=b2b.clock, retry_interval=600)  # type: ignore[arg-type]
    gconf["_acct_spool"] = spool
    refs = full_call(b2b, "c5")
    assert len(refs) == 5  # controller, two UAs, two accountings
    # In small steps: each record of the call goes out when the one before it is answered.
    for _ in range(660):
        b2b.clock.advance(0.1)
    held = b2b.held()
    # The spool's next try (no server) is the only timer left.
    assert held.pop("pending timers") == (0 if answers else 1)
    assert all(n == 0 for n in held.values()), held
    assert [r() for r in refs] == [None] * 5
    statuses = [r["Acct-Status-Type"] for r in server.records]
    if answers:
        assert sorted(statuses) == ["Start", "Start", "Stop", "Stop"] and spool.waiting == 0
    else:
        # The first record got no answer; the call's others joined it in the spool untried.
        assert statuses == ["Start"] and spool.waiting == 4 and spool.unsaved() == 0


def test_held_call_keeps_its_dialog_data_as_text() -> None:
    """Memory per held call (bench/call_cpu.py --hold): an answered call keeps its plain From, To,
    remote targets and Request-URI as text, and no Contact or credit table it has no use for;
    each still reads as the object it stands for."""
    b2b = B2B("radius")
    cid = "held-1"
    b2b.feed(caller_request("INVITE", cid, 1, f"{cid}-1", body=SDP), CALLER)
    egress = b2b.wire.last("INVITE")
    b2b.feed(callee_answer(egress, 200, "OK"), CALLEE)
    tag = b2b.wire.last("SIP/2.0 200").getHFBody("to").getTag()
    b2b.feed(caller_request("ACK", cid, 1, f"{cid}-2", to_tag=tag), CALLER)
    cc = b2b.callmap.getCall(cid)
    a, o = cc.uaA, cc.uaO
    assert a.isConnected() and o.isConnected()
    for hf in (a.lUri, a.rUri, o.rUri):
        assert not hf.parsed, hf
    assert (a._lContact, o._lContact, a._credit_times, o._credit_times) == (None, None, None, None)
    assert type(cc._req_target) is str and str(cc.req_target) == "sip:bob@127.0.0.1:5060"
    assert cc.req_target.username == "bob" and a.getCLD() == "alice" and o.getCLD() == "bob"
    assert a.rUri.getTag() == f"a-{cid}" and o.rUri.getTag() == "bob-1"
    # The callee's Contact is where the INVITE went: one address tuple; no accounting, no callback.
    assert o.rAddr is o.rAddr0 and o.conn_cbs == ()
    assert (a._rTarget, o._rTarget) == ("sip:alice@127.0.0.1:5062", "sip:bob@127.0.0.1:5070")
    assert a.getTransport() == "" and o.rTarget.port == 5070 and o._rTarget is o.rTarget
