"""UA call flows driven by a Clock, against an in-memory transaction manager.

The fake manager serialises everything the UA asks it to send (so what is asserted is the wire text,
re-parsed) and lets a test feed responses and requests back the way the real one would.
"""

from __future__ import annotations

from typing import Any, Optional

import pytest
from twisted.internet.task import Clock

from sippy.CCEvents import (
    CCEventConnect,
    CCEventDisconnect,
    CCEventFail,
    CCEventInfo,
    CCEventPreConnect,
    CCEventRing,
    CCEventTry,
    CCEventUpdate,
)
from sippy.MsgBody import MsgBody
from sippy.SipAddress import SipAddress
from sippy.SipCallId import SipCallId
from sippy.SipContact import SipContact
from sippy.SipRequest import SipRequest
from sippy.SipResponse import SipResponse
from sippy.Time.MonoTime import MonoTime
from sippy.UA import UA

LOCAL = ("127.0.0.1", 5060)
CALLEE = ("127.0.0.2", 5070)


def sdp(port: int, host: str = "127.0.0.2", direction: str = "sendrecv") -> MsgBody:
    return MsgBody(
        f"v=0\r\no=- 1 1 IN IP4 {host}\r\ns=-\r\nc=IN IP4 {host}\r\nt=0 0\r\n"
        f"m=audio {port} RTP/AVP 0\r\na={direction}\r\n"
    )


def wire(msg: Any) -> str:
    return msg.localStr(*LOCAL)


class FakeTr:
    """A client transaction: the request as sent, and what the UA did with it afterwards."""

    def __init__(self, req: Any, resp_cb: Any) -> None:
        self.req = SipRequest(buf=wire(req))
        self.resp_cb = resp_cb
        self.acks: list[Any] = []
        # The ACK's bytes, resent when the UA asks again without one (as SipTransaction's).
        self.ack_data: Any = None
        self.cancelled = False
        self.cancel_headers: Any = None

    @property
    def method(self) -> str:
        return self.req.getMethod()


class FakeServerTr:
    def __init__(self, req: Any) -> None:
        self.req = req
        self.responses: list[Any] = []
        self.ack_cb: Any = None
        self.compact = False


class FakeTM:
    """Records what the UA sends; delivers requests to registered consumers as the real one does."""

    def __init__(self) -> None:
        self.client: list[FakeTr] = []
        self.consumers: dict[str, list[Any]] = {}

    # --- the API the UA uses ---
    def newTransaction(self, msg: Any, resp_cb: Any = None, **kwargs: Any) -> FakeTr:
        assert kwargs.get("cb_ifver", 1) == 2 or resp_cb is None
        tr = FakeTr(msg, resp_cb)
        self.client.append(tr)
        return tr

    def cancelTransaction(self, tr: FakeTr, extra_headers: Any = None) -> None:
        tr.cancelled = True
        tr.cancel_headers = extra_headers

    def sendACK(self, tr: FakeTr, ack: Any = None) -> None:
        if ack is not None:
            tr.ack_data = wire(ack)
        tr.acks.append(SipRequest(buf=tr.ack_data))

    def sendResponse(
        self, resp: Any, t: FakeServerTr = None, retrans: bool = False, ack_cb: Any = None
    ) -> None:
        t.responses.append(SipResponse(buf=wire(resp)))
        if ack_cb is not None:
            t.ack_cb = ack_cb

    def regConsumer(self, consumer: Any, call_id: str, compact: bool = False) -> None:
        self.consumers.setdefault(call_id, []).append(consumer)

    def unregConsumer(self, consumer: Any, call_id: str) -> None:
        self.consumers[call_id].remove(consumer)

    # --- test helpers ---
    def sent(self, method: str) -> list[FakeTr]:
        return [t for t in self.client if t.method == method]

    def deliver(self, text: str, ua: Optional[UA] = None) -> tuple[FakeServerTr, Any]:
        """A request from the network: to the consumer registered for its Call-ID (or ua)."""
        req = SipRequest(buf=text)
        req.rtime = MonoTime()
        req.setSource(CALLEE)
        t = FakeServerTr(req)
        if ua is None:
            for cons in self.consumers.get(str(req.getHFBody("call-id")), ()):
                if cons.isYours(req) is not None:
                    ua = cons
                    break
            else:
                raise AssertionError("no consumer for the request")
        rval = ua.recvRequest(req, t)
        if rval is not None and rval[0] is not None:
            self.sendResponse(rval[0], t)
        return t, rval


def respond(
    tr: FakeTr,
    code: int,
    reason: str,
    body: Any = None,
    tag: str = "calleetag",
    contact: str = "<sip:callee@127.0.0.2:5070>",
    extra: str = "",
) -> Any:
    """The callee's response to tr, as parsed from the wire, fed to the UA."""
    resp = tr.req.genResponse(code, reason, body)
    text = wire(resp)
    head, sep, rest = text.partition("\r\n")
    lines = rest.split("\r\n")
    out = []
    for line in lines:
        if line.lower().startswith("to:") and tag is not None and code > 100:
            line += ";tag=" + tag
        out.append(line)
    rest = "\r\n".join(out)
    add = ""
    if contact is not None and 100 < code < 300:
        add += f"Contact: {contact}\r\n"
    add += extra
    resp = SipResponse(buf=head + sep + add + rest)
    resp.rtime = MonoTime()
    tr.resp_cb(resp, tr)
    return resp


class Recorder:
    def __init__(self) -> None:
        self.events: list[Any] = []
        self.calls: list[tuple] = []

    def event_cb(self, event: Any, ua: Any) -> None:
        self.events.append(event)

    def cb(self, name: str) -> Any:
        return lambda *args: self.calls.append((name,) + args[1:])

    def names(self) -> list[str]:
        return [e.name for e in self.events]


def new_env() -> tuple[Clock, FakeTM, Recorder, dict[str, Any]]:
    """A fake clock, transaction manager and call-control recorder, with the global config."""
    tm = FakeTM()
    return Clock(), tm, Recorder(), {"_sip_tm": tm}


@pytest.fixture
def env() -> Any:
    return new_env()


def make_uac(env: Any, **kw: Any) -> UA:
    clock, tm, rec, gc = env
    return UA(
        gc,
        rec.event_cb,
        nh_address=kw.pop("nh_address", CALLEE),
        conn_cbs=(rec.cb("conn"),),
        disc_cbs=(rec.cb("disc"),),
        fail_cbs=(rec.cb("fail"),),
        ring_cbs=(rec.cb("ring"),),
        dead_cbs=(rec.cb("dead"),),
        reactor=clock,
        **kw,
    )


def try_event(body: Any = None) -> CCEventTry:
    return CCEventTry((SipCallId("c1@test"), "alice", "bob", body, None, "Alice A"))


def dialing_uac(env: Any, body: Any = None, **kw: Any) -> tuple[UA, FakeTr]:
    """A UAC that call control has told to dial (offer: body), and its INVITE transaction."""
    ua = make_uac(env, **kw)
    ua.recvEvent(try_event(body))
    return ua, env[1].sent("INVITE")[0]


def connected_uac(env: Any, **kw: Any) -> tuple[UA, FakeTr]:
    ua, inv = dialing_uac(env, sdp(10000, "127.0.0.1"), **kw)
    respond(inv, 200, "OK", sdp(20000))
    return ua, inv


# ---------------------------------------------------------------- UAC


def test_uac_invite_wire_and_early_media(env: Any) -> None:
    clock, tm, rec, gc = env
    ua = make_uac(env)
    ua.recvEvent(try_event(sdp(10000, "127.0.0.1")))
    (inv,) = tm.sent("INVITE")
    req = inv.req
    assert str(req.getRURI()).startswith("sip:bob@127.0.0.2:5070")
    assert req.getHFBody("from").getUrl().username == "alice"
    assert req.getHFBody("from").getUri().name == "Alice A"
    assert req.getHFBody("from").getTag() == ua.lTag
    assert req.getHFBody("to").getTag() is None
    assert str(req.getHFBody("call-id")) == "c1@test"
    assert req.getHFBody("contact").getUrl().username == "alice"
    assert "m=audio 10000" in str(req.getBody())
    respond(inv, 100, "Trying")
    respond(inv, 183, "Session Progress", sdp(20000))
    assert [(e.name, e.scode) for e in rec.events] == [("CCEventRing", 100), ("CCEventRing", 183)]
    assert "m=audio 20000" in str(rec.events[-1].body)
    assert ("ring", None, "callee", 183) in [(c[0], None, c[2], c[3]) for c in rec.calls]
    assert ua.state.sname == "Ringing(UAC)"
    respond(inv, 200, "OK", sdp(20000), extra="Record-Route: <sip:proxy.example;lr>\r\n")
    assert rec.events[-1].name == "CCEventConnect" and rec.events[-1].scode == 200
    (ack,) = inv.acks
    assert ack.getMethod() == "ACK"
    assert ack.getHFBody("cseq").getCSeq() == (req.getHFBody("cseq").getCSeqNum(), "ACK")
    assert str(ack.getRURI()) == "sip:callee@127.0.0.2:5070"
    assert ack.getHFBody("to").getTag() == "calleetag"
    assert str(ack.getHFBody("route").getUrl()) == "sip:proxy.example;lr"
    assert ua.isConnected() and [c[0] for c in rec.calls][-1] == "conn"
    assert ua.getCLI() == "alice" and ua.getCLD() == "bob"


def test_uac_retransmitted_2xx_is_acked_again(env: Any) -> None:
    clock, tm, rec, gc = env
    ua, inv = connected_uac(env)
    respond(inv, 200, "OK", sdp(20000))
    assert len(inv.acks) == 2
    assert str(inv.acks[0]) == str(inv.acks[1])
    assert rec.names().count("CCEventConnect") == 1


def test_uac_bye_from_callee_via_consumer(env: Any) -> None:
    clock, tm, rec, gc = env
    ua, inv = connected_uac(env)
    bye = (
        "BYE sip:alice@127.0.0.1:5060 SIP/2.0\r\n"
        "Via: SIP/2.0/UDP 127.0.0.2:5070;branch=z9hG4bKbye1\r\n"
        "From: <sip:bob@127.0.0.2>;tag=calleetag\r\n"
        f"To: <sip:alice@127.0.0.1>;tag={ua.lTag}\r\n"
        "Call-ID: c1@test\r\nCSeq: 1 BYE\r\nReason: Q.850;cause=16\r\nContent-Length: 0\r\n\r\n"
    )
    t, _ = tm.deliver(bye)
    assert [r.getSCodeNum() for r in t.responses] == [200]
    assert rec.events[-1].name == "CCEventDisconnect"
    assert rec.events[-1].reason is not None and "cause=16" in str(rec.events[-1].reason)
    assert ua.state.sname == "Disconnected"
    clock.advance(ua.godead_timeout + 1)
    assert ua.isDead() and rec.calls[-1] == ("dead",)
    assert tm.consumers["c1@test"] == []


def test_uac_hangup_sends_bye_in_dialog(env: Any) -> None:
    clock, tm, rec, gc = env
    ua, inv = connected_uac(env)
    ua.recvEvent(CCEventDisconnect())
    (bye,) = tm.sent("BYE")
    assert bye.req.getHFBody("to").getTag() == "calleetag"
    assert bye.req.getHFBody("cseq").getCSeqNum() > inv.req.getHFBody("cseq").getCSeqNum()
    assert str(bye.req.getRURI()) == "sip:callee@127.0.0.2:5070"
    assert ua.state.sname == "Disconnected"
    duration, delay, connected, disconnected = ua.getAcct()
    assert connected and disconnected and duration >= 0


def test_uac_error_response_fails_the_call(env: Any) -> None:
    clock, tm, rec, gc = env
    ua, inv = dialing_uac(env)
    respond(inv, 486, "Busy Here", extra="Reason: SIP;cause=486\r\n")
    ev = rec.events[-1]
    assert ev.name == "CCEventFail" and (ev.scode, ev.scode_reason) == (486, "Busy Here")
    assert ev.getData()[:2] == (486, "Busy Here")
    assert ev.reason is not None
    assert rec.calls[-1][0] == "fail" and rec.calls[-1][-1] == 486
    assert ua.state.sname == "Failed"


def test_uac_redirect(env: Any) -> None:
    clock, tm, rec, gc = env
    ua, inv = dialing_uac(env)
    respond(inv, 302, "Moved", extra="Contact: <sip:carol@10.0.0.9>\r\n")
    ev = rec.events[-1]
    assert ev.name == "CCEventRedirect" and ev.scode == 302
    assert str(ev.contacts[0].url) == "sip:carol@10.0.0.9"


def test_uac_digest_retry(env: Any) -> None:
    clock, tm, rec, gc = env
    ua, inv1 = dialing_uac(env, sdp(10000, "127.0.0.1"), username="alice", password="secret")
    respond(
        inv1,
        407,
        "Proxy Authentication Required",
        extra='Proxy-Authenticate: Digest realm="example.com", nonce="abc123"\r\n',
    )
    assert rec.events == []
    inv2 = tm.sent("INVITE")[1]
    auth = inv2.req.getHFBody("proxy-authorization")
    assert auth.username == "alice" and auth.realm == "example.com" and auth.nonce == "abc123"
    assert auth.uri == str(inv2.req.getRURI())
    assert auth.verify("secret", "INVITE", check_nonce=False)
    assert inv2.req.getHFBody("cseq").getCSeqNum() == inv1.req.getHFBody("cseq").getCSeqNum() + 1
    assert "m=audio 10000" in str(inv2.req.getBody())
    # A second challenge is not answered again: the call fails.
    respond(
        inv2,
        407,
        "Proxy Authentication Required",
        extra='Proxy-Authenticate: Digest realm="example.com", nonce="def"\r\n',
    )
    assert rec.events[-1].name == "CCEventFail" and rec.events[-1].scode == 407
    assert len(tm.sent("INVITE")) == 2


def test_uac_cancel_while_ringing_and_crossing_200(env: Any) -> None:
    clock, tm, rec, gc = env
    ua, inv = dialing_uac(env, sdp(10000, "127.0.0.1"))
    respond(inv, 180, "Ringing")
    ev = CCEventDisconnect()
    ua.recvEvent(ev)
    assert inv.cancelled
    assert ua.state.sname == "Cancelling(UAC)"
    assert rec.calls[-1][0] == "disc"
    # The callee answered before it saw the CANCEL: ACK, then BYE.
    respond(inv, 200, "OK", sdp(20000))
    assert len(inv.acks) == 1
    (bye,) = tm.sent("BYE")
    assert bye.req.getHFBody("to").getTag() == "calleetag"
    assert ua.state.sname == "Disconnected"
    assert "CCEventConnect" not in rec.names()


def test_uac_cancel_then_487_goes_dead(env: Any) -> None:
    clock, tm, rec, gc = env
    ua, inv = dialing_uac(env)
    ua.recvEvent(CCEventFail((503, "Service Unavailable")))
    assert inv.cancelled
    respond(inv, 487, "Request Terminated")
    assert ua.isDead() and rec.calls[-1] == ("dead",)
    assert tm.sent("BYE") == []


def test_uac_expire_time_cancels_and_fails(env: Any) -> None:
    clock, tm, rec, gc = env
    ua, inv = dialing_uac(env, expire_time=30)
    respond(inv, 180, "Ringing")
    clock.advance(29)
    assert not inv.cancelled
    clock.advance(2)
    assert inv.cancelled
    assert rec.events[-1].name == "CCEventFail" and rec.events[-1].scode == 408


def test_uac_no_progress_time(env: Any) -> None:
    clock, tm, rec, gc = env
    ua, inv = dialing_uac(env, no_progress_time=5, expire_time=60)
    respond(inv, 100, "Trying")
    clock.advance(6)
    assert inv.cancelled and rec.events[-1].name == "CCEventFail"

    env2 = new_env()
    clock2 = env2[0]
    ua2, inv2 = dialing_uac(env2, no_progress_time=5, expire_time=60)
    respond(inv2, 180, "Ringing")
    clock2.advance(6)
    assert not inv2.cancelled
    clock2.advance(60)
    assert inv2.cancelled


def test_credit_time_sends_bye(env: Any) -> None:
    clock, tm, rec, gc = env
    ua, inv = connected_uac(env, credit_time=10)
    clock.advance(9)
    assert tm.sent("BYE") == []
    clock.advance(2)
    assert len(tm.sent("BYE")) == 1
    assert rec.events[-1].name == "CCEventDisconnect"


def test_keepalive_reinvite_and_481_disconnects(env: Any) -> None:
    clock, tm, rec, gc = env
    ua, inv = connected_uac(env)
    ua.kaInterval = 0  # default: no keepalives
    clock.advance(100)
    assert len(tm.sent("INVITE")) == 1

    clock, tm, rec, gc = env = (Clock(), FakeTM(), Recorder(), None)
    env = (clock, tm, rec, {"_sip_tm": tm})
    ua = make_uac(env)
    ua.kaInterval = 5
    ua.recvEvent(try_event(sdp(10000, "127.0.0.1")))
    respond(tm.sent("INVITE")[0], 200, "OK", sdp(20000))
    clock.advance(5)
    ka = tm.sent("INVITE")[1]
    assert ka.req.getHFBody("to").getTag() == "calleetag"
    assert "m=audio 10000" in str(ka.req.getBody())
    respond(ka, 200, "OK", sdp(20000))
    assert len(ka.acks) == 1
    clock.advance(5)
    ka2 = tm.sent("INVITE")[2]
    respond(ka2, 481, "Call Leg/Transaction Does Not Exist")
    assert len(tm.sent("BYE")) == 1
    assert rec.events[-1].name == "CCEventDisconnect"


def test_uac_reinvite_hold_and_resume(env: Any) -> None:
    clock, tm, rec, gc = env
    ua, inv = connected_uac(env)
    ua.recvEvent(CCEventUpdate(sdp(10000, "127.0.0.1", "sendonly")))
    reinv = tm.sent("INVITE")[1]
    assert reinv.req.getHFBody("to").getTag() == "calleetag"
    assert "a=sendonly" in str(reinv.req.getBody())
    assert ua.state.sname == "Updating(UAC)"
    # Glare: the callee re-INVITEs at the same time.
    t, _ = tm.deliver(_callee_request(ua, "INVITE", 5, sdp(20000)))
    assert [r.getSCodeNum() for r in t.responses] == [491]
    respond(reinv, 200, "OK", sdp(20000, direction="recvonly"))
    assert len(reinv.acks) == 1
    assert rec.events[-1].name == "CCEventConnect" and "recvonly" in str(rec.events[-1].body)
    assert ua.state.sname == "Connected"
    # Resume, refused by the callee: the old SDP stays in force, the call stays up.
    ua.recvEvent(CCEventUpdate(sdp(10000, "127.0.0.1")))
    respond(tm.sent("INVITE")[2], 488, "Not Acceptable Here")
    assert rec.events[-1].name == "CCEventFail" and ua.state.sname == "Connected"
    assert "sendonly" in str(ua.lSDP)


def test_uac_reinvite_408_ends_call(env: Any) -> None:
    clock, tm, rec, gc = env
    ua, inv = connected_uac(env)
    ua.recvEvent(CCEventUpdate(sdp(10002, "127.0.0.1")))
    respond(tm.sent("INVITE")[1], 408, "Request Timeout")
    assert len(tm.sent("BYE")) == 1
    assert rec.names()[-2:] == ["CCEventFail", "CCEventDisconnect"]


def test_info_passes_both_ways(env: Any) -> None:
    clock, tm, rec, gc = env
    ua, inv = connected_uac(env)
    ua.recvEvent(CCEventInfo(MsgBody("Signal=5\r\nDuration=160\r\n", mtype="application/dtmf-relay")))
    (info,) = tm.sent("INFO")
    assert "Signal=5" in str(info.req.getBody())
    t, _ = tm.deliver(_callee_request(ua, "INFO", 7, MsgBody("Signal=1\r\n", mtype="application/dtmf-relay")))
    assert [r.getSCodeNum() for r in t.responses] == [200]
    assert rec.events[-1].name == "CCEventInfo" and "Signal=1" in str(rec.events[-1].body)


def test_unknown_in_dialog_method_gets_501_with_allow(env: Any) -> None:
    clock, tm, rec, gc = env
    ua, inv = connected_uac(env)
    t, _ = tm.deliver(_callee_request(ua, "PUBLISH", 8))
    (resp,) = t.responses
    assert resp.getSCodeNum() == 501
    assert "BYE" in resp.getHFBody("allow").methods and "PUBLISH" not in resp.getHFBody("allow").methods
    assert ua.state.sname == "Connected"


def test_uac_late_media(env: Any) -> None:
    clock, tm, rec, gc = env
    ua, inv = dialing_uac(env)
    assert inv.req.getBody() is None
    respond(inv, 200, "OK", sdp(20000))
    assert rec.events[-1].name == "CCEventPreConnect"
    assert inv.acks == []
    ua.recvEvent(CCEventConnect((200, "OK", sdp(10000, "127.0.0.1"))))
    (ack,) = inv.acks
    assert "m=audio 10000" in str(ack.getBody())
    assert rec.calls[-1][0] == "conn"


def test_local_and_remote_sdp_hooks(env: Any) -> None:
    clock, tm, rec, gc = env
    ua = make_uac(env)
    pending: list[Any] = []
    ua.on_local_sdp_change = lambda body, done: pending.append((body, done))
    ua.on_remote_sdp_change = lambda body, done: done(sdp(30000, "10.1.1.1"))
    ua.recvEvent(try_event(sdp(10000, "127.0.0.1")))
    assert tm.sent("INVITE") == []
    body, done = pending.pop()
    done(sdp(40000, "127.0.0.1"))
    inv = tm.sent("INVITE")[0]
    assert "m=audio 40000" in str(inv.req.getBody())
    respond(inv, 200, "OK", sdp(20000))
    assert "m=audio 30000" in str(rec.events[-1].body)
    assert "m=audio 30000" in str(ua.rSDP)


# ---------------------------------------------------------------- UAS


def _invite(call_id: str = "uas1@test", body: Optional[MsgBody] = None, extra: str = "") -> str:
    b = str(body) if body is not None else ""
    ctype = "Content-Type: application/sdp\r\n" if body is not None else ""
    return (
        "INVITE sip:bob@127.0.0.1:5060 SIP/2.0\r\n"
        "Via: SIP/2.0/UDP 127.0.0.2:5070;branch=z9hG4bKinv1\r\n"
        "Record-Route: <sip:rr.example;lr>\r\n"
        'From: "Alice" <sip:alice@127.0.0.2>;tag=callertag\r\n'
        "To: <sip:bob@127.0.0.1>\r\n"
        f"Call-ID: {call_id}\r\nCSeq: 10 INVITE\r\nMax-Forwards: 69\r\n"
        f"Contact: <sip:alice@127.0.0.2:5070>\r\n{extra}{ctype}Content-Length: {len(b)}\r\n\r\n{b}"
    )


def _caller_request(ua: UA, method: str, cseq: int, body: Any = None, call_id: str = "uas1@test") -> str:
    b = str(body) if body is not None else ""
    ctype = f"Content-Type: {body.mtype}\r\n" if body is not None else ""
    return (
        f"{method} sip:bob@127.0.0.1:5060 SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP 127.0.0.2:5070;branch=z9hG4bK{method.lower()}{cseq}\r\n"
        "From: <sip:alice@127.0.0.2>;tag=callertag\r\n"
        f"To: <sip:bob@127.0.0.1>;tag={ua.lTag}\r\n"
        f"Call-ID: {call_id}\r\nCSeq: {cseq} {method}\r\n{ctype}Content-Length: {len(b)}\r\n\r\n{b}"
    )


def _callee_request(ua: UA, method: str, cseq: int, body: Any = None) -> str:
    b = str(body) if body is not None else ""
    ctype = f"Content-Type: {body.mtype}\r\n" if body is not None else ""
    return (
        f"{method} sip:alice@127.0.0.1:5060 SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP 127.0.0.2:5070;branch=z9hG4bK{method.lower()}{cseq}\r\n"
        "From: <sip:bob@127.0.0.2>;tag=calleetag\r\n"
        f"To: <sip:alice@127.0.0.1>;tag={ua.lTag}\r\n"
        f"Call-ID: c1@test\r\nCSeq: {cseq} {method}\r\n{ctype}Content-Length: {len(b)}\r\n\r\n{b}"
    )


def make_uas(env: Any, **kw: Any) -> tuple[UA, FakeServerTr, Any]:
    clock, tm, rec, gc = env
    ua = make_uac(env, **kw)
    t, rval = tm.deliver(_invite(body=sdp(20000)), ua)
    return ua, t, rval


def test_uas_try_ring_connect_ack(env: Any) -> None:
    clock, tm, rec, gc = env
    ua, t, rval = make_uas(env)
    (ev,) = rec.events
    assert ev.name == "CCEventTry"
    assert (ev.cli, ev.cld, ev.caller_name) == ("alice", "bob", "Alice")
    assert str(ev.call_id) == "uas1@test" and ev.max_forwards == 69
    assert "m=audio 20000" in str(ev.body)
    assert ev.origin == "caller"
    assert ua.state.sname == "Trying(UAS)"
    assert rval[1] is not None and rval[2] is not None
    ua.recvEvent(CCEventRing((100, "Trying", None)))
    assert t.responses == []
    ua.recvEvent(CCEventRing((183, "Session Progress", sdp(10000, "127.0.0.1"))))
    r183 = t.responses[-1]
    assert r183.getSCode() == (183, "Session Progress") and "m=audio 10000" in str(r183.getBody())
    assert r183.getHFBody("to").getTag() == ua.lTag
    assert ua.state.sname == "Ringing(UAS)"
    ua.recvEvent(CCEventConnect((200, "OK", sdp(10000, "127.0.0.1"))))
    r200 = t.responses[-1]
    assert r200.getSCodeNum() == 200
    assert r200.getHFBody("to").getTag() == ua.lTag
    assert r200.countHFs("contact") == 1
    assert str(r200.getHFBody("record-route").getUrl()) == "sip:rr.example;lr"
    assert ua.isConnected() and rec.calls[-1][0] == "conn"
    # In-dialog requests towards the caller follow the route set and target its Contact.
    ua.recvEvent(CCEventDisconnect())
    (bye,) = tm.sent("BYE")
    assert str(bye.req.getRURI()) == "sip:alice@127.0.0.2:5070"
    assert str(bye.req.getHFBody("route").getUrl()) == "sip:rr.example;lr"
    assert bye.req.getHFBody("from").getTag() == ua.lTag
    assert bye.req.getHFBody("to").getTag() == "callertag"


def test_connected_dialog_keeps_no_invite_nor_transaction(env: Any) -> None:
    """Memory per held call: once the INVITE is answered (and ACKed), neither leg keeps the
    request, its transaction or the ACK; a re-INVITE is still answered, a 2xx still re-ACKed."""
    clock, tm, rec, gc = env
    uas, t, rval = make_uas(env)
    uas.recvEvent(CCEventConnect((200, "OK", sdp(10000, "127.0.0.1"))))
    uac, inv = connected_uac(env)
    for ua in (uas, uac):
        assert (ua.uasReq, ua.uas_t, ua.tr) == (None, None, None)
    assert not isinstance(uac.last_ack, SipRequest)
    respond(inv, 200, "OK", sdp(20000))
    assert len(inv.acks) == 2 and str(inv.acks[0]) == str(inv.acks[1])
    t2, _ = tm.deliver(_caller_request(uas, "INVITE", 11, sdp(20000, direction="sendonly")))
    uas.recvEvent(CCEventConnect((200, "OK", sdp(10000, "127.0.0.1", "recvonly"))))
    assert t2.responses[-1].getSCodeNum() == 200 and uas.uasReq is None


def test_uas_cancel_while_ringing(env: Any) -> None:
    clock, tm, rec, gc = env
    ua, t, rval = make_uas(env)
    ua.recvEvent(CCEventRing())
    assert t.responses[-1].getSCodeNum() == 180
    cancel_cb = rval[1]
    cancel_cb(MonoTime(), None)
    assert rec.events[-1].name == "CCEventDisconnect"
    assert ua.state.sname == "Disconnected" and rec.calls[-1][0] == "disc"
    # Call control's late answer changes nothing on the wire.
    ua.recvEvent(CCEventConnect((200, "OK", sdp(10000, "127.0.0.1"))))
    assert [r.getSCodeNum() for r in t.responses] == [180]


def test_uas_fail_and_second_invite(env: Any) -> None:
    clock, tm, rec, gc = env
    ua, t, rval = make_uas(env)
    # A second INVITE in the same dialog before the first is answered: 500 + Retry-After.
    t2, _ = tm.deliver(_caller_request(ua, "INVITE", 11, sdp(20002)).replace(";tag=" + ua.lTag, ""), ua)
    assert t2.responses[0].getSCodeNum() == 500
    assert t2.responses[0].countHFs("retry-after") == 1
    fail = CCEventFail((503, "Service Unavailable"))
    fail.setWarning("no route")
    ua.recvEvent(fail)
    r = t.responses[-1]
    assert r.getSCode() == (503, "Service Unavailable")
    assert r.countHFs("warning") == 1
    assert ua.state.sname == "Failed"
    t3, _ = tm.deliver(_caller_request(ua, "BYE", 12))
    assert t3.responses[0].getSCodeNum() == 481


def test_uas_out_of_order_cseq_and_no_dialog(env: Any) -> None:
    clock, tm, rec, gc = env
    ua, t, rval = make_uas(env)
    ua.recvEvent(CCEventConnect((200, "OK", sdp(10000, "127.0.0.1"))))
    t2, rv = tm.deliver(_caller_request(ua, "INFO", 9))
    assert rv[0].getSCodeNum() == 500
    # A BYE to a UA that has no dialog at all.
    fresh = make_uac(env)
    t3, rv3 = tm.deliver(_caller_request(ua, "BYE", 1, call_id="other@test"), fresh)
    assert rv3[0].getSCodeNum() == 481


def test_uas_reinvite_from_caller(env: Any) -> None:
    clock, tm, rec, gc = env
    ua, t, rval = make_uas(env)
    ua.recvEvent(CCEventConnect((200, "OK", sdp(10000, "127.0.0.1"))))
    t2, rv = tm.deliver(_caller_request(ua, "INVITE", 11, sdp(20000, direction="sendonly")))
    assert rv[1] is not None
    ev = rec.events[-1]
    assert ev.name == "CCEventUpdate" and "sendonly" in str(ev.body)
    assert ua.state.sname == "Updating(UAS)"
    # Another re-INVITE before we answered: 500 with Retry-After (RFC 3261 14.2).
    t3, _ = tm.deliver(_caller_request(ua, "INVITE", 12, sdp(20000)))
    assert t3.responses[0].getSCodeNum() == 500 and t3.responses[0].countHFs("retry-after") == 1
    ua.recvEvent(CCEventConnect((200, "OK", sdp(10000, "127.0.0.1", "recvonly"))))
    assert t2.responses[-1].getSCodeNum() == 200 and "recvonly" in str(t2.responses[-1].getBody())
    assert ua.state.sname == "Connected"
    # An identical re-INVITE (session refresh) is answered here without bothering call control.
    n = len(rec.events)
    t4, _ = tm.deliver(_caller_request(ua, "INVITE", 13, sdp(20000, direction="sendonly")))
    assert t4.responses[-1].getSCodeNum() == 200 and len(rec.events) == n


def test_uas_noack_disconnects(env: Any) -> None:
    clock, tm, rec, gc = env
    ua, t, rval = make_uas(env)
    ua.recvEvent(CCEventConnect((200, "OK", sdp(10000, "127.0.0.1"))))
    noack_cb = rval[2]
    noack_cb(MonoTime())
    assert len(tm.sent("BYE")) == 1
    assert rec.events[-1].name == "CCEventDisconnect"
    n = len(rec.events)
    noack_cb(MonoTime())
    assert len(tm.sent("BYE")) == 1 and len(rec.events) == n


def test_uas_late_media_ack_brings_answer(env: Any) -> None:
    clock, tm, rec, gc = env
    ua = make_uac(env)
    t, rval = tm.deliver(_invite(), ua)
    assert rec.events[-1].body is None
    ua.recvEvent(CCEventPreConnect((200, "OK", sdp(10000, "127.0.0.1"))))
    assert t.responses[-1].getSCodeNum() == 200
    assert not [c for c in rec.calls if c[0] == "conn"]
    ack = _caller_request(ua, "ACK", 10, sdp(20000)).replace("z9hG4bKack10", "z9hG4bKack")
    req = SipRequest(buf=ack)
    req.rtime = MonoTime()
    t.ack_cb(req)
    assert rec.events[-1].name == "CCEventConnect" and "m=audio 20000" in str(rec.events[-1].body)
    assert rec.calls[-1][0] == "conn"


def test_uas_expire_time_answers_408(env: Any) -> None:
    clock, tm, rec, gc = env
    ua, t, rval = make_uas(env, expire_time=20)
    clock.advance(21)
    assert t.responses[-1].getSCodeNum() == 408
    assert rec.events[-1].name == "CCEventDisconnect"
    assert ua.state.sname == "Failed"


def test_uas_bye_from_caller(env: Any) -> None:
    clock, tm, rec, gc = env
    ua, t, rval = make_uas(env)
    ua.recvEvent(CCEventConnect((200, "OK", sdp(10000, "127.0.0.1"))))
    t2, _ = tm.deliver(_caller_request(ua, "BYE", 11))
    assert [r.getSCodeNum() for r in t2.responses] == [200]
    assert rec.events[-1].name == "CCEventDisconnect"
    assert ua.getAcct()[2:] == (True, True)
    # A retransmitted/crossing BYE is still answered.
    t3, _ = tm.deliver(_caller_request(ua, "BYE", 12))
    assert [r.getSCodeNum() for r in t3.responses] == [200]


def test_default_contact_is_made_per_message_and_kept_once_read(env: Any) -> None:
    """Memory per held call: the default Contact is not kept per leg, each message gets its own,
    the same as before; once a program reads lContact it is kept, and what it changes is sent."""
    clock, tm, rec, gc = env
    uas, t, _ = make_uas(env)
    uas.recvEvent(CCEventConnect((200, "OK", sdp(10000, "127.0.0.1"))))
    uac, inv = connected_uac(env)
    assert uas._lContact is None and uac._lContact is None
    host = f"{LOCAL[0]}:{LOCAL[1]}"
    assert str(t.responses[-1].getHFBody("contact")) == f"Anonymous <sip:{host}>"
    assert str(inv.req.getHFBody("contact")) == f"Anonymous <sip:alice@{host}>"
    url = uac.lContact.getUrl()
    assert (url.username, url.host, uac.lContact.getUri().name) == ("alice", None, "Anonymous")
    uac.lContact.getUrl().username = "carol"
    uac.recvEvent(CCEventUpdate(sdp(10000, "127.0.0.1", "sendonly")))
    assert str(tm.sent("INVITE")[1].req.getHFBody("contact")) == f"Anonymous <sip:carol@{host}>"


def test_contact_set_by_a_program_is_used_with_the_callers_number(env: Any) -> None:
    clock, tm, rec, gc = env
    ua = make_uac(env)
    mine = SipContact(address=SipAddress("<sip:nat@192.0.2.7:5999>"))
    ua.lContact = mine
    ua.recvEvent(try_event())
    assert ua.lContact is mine
    assert str(tm.sent("INVITE")[0].req.getHFBody("contact")) == "<sip:alice@192.0.2.7:5999>"


def test_answered_invite_leaves_no_grown_request_table(env: Any) -> None:
    # Memory per held call: the INVITE kept for a digest retry goes with its final answer, and
    # the emptied table with it (a dict that grew keeps its table until cleared).
    ua, inv = connected_uac(env)
    assert ua.reqs is None


def test_states_keep_no_per_instance_dict(env: Any) -> None:
    # One per UA for the whole call (and its lingering): fields in slots.
    uas, t, _ = make_uas(env)
    uas.recvEvent(CCEventConnect((200, "OK", sdp(10000, "127.0.0.1"))))
    uac, inv = connected_uac(env)
    assert not hasattr(uas.state, "__dict__") and not hasattr(uac.state, "__dict__")
    uac.recvEvent(CCEventDisconnect())
    assert uac.state.sname == "Disconnected" and not hasattr(uac.state, "__dict__")


def test_remote_target_kept_as_text_reads_and_changes_as_a_url(env: Any) -> None:
    clock, tm, rec, gc = env
    ua, inv = connected_uac(env)
    assert type(ua._rTarget) is str  # the callee's plain Contact: only its text
    ua.recvEvent(CCEventUpdate(sdp(10000, "127.0.0.1", "sendonly")))
    target = str(tm.sent("INVITE")[1].req.getRURI())
    assert ua._rTarget == target
    ua.rTarget.port = 5999  # read: the URL is made and kept, and what is changed goes out
    ua.recvEvent(CCEventDisconnect())
    assert tm.sent("BYE")[0].req.getRURI().port == 5999


def test_uac_from_made_per_request_until_read(env: Any) -> None:
    """Memory per held call: the UAC keeps its From as the caller's number, name and tag (its host is
    only known when sent); every request carries the same From, and a From read is kept."""
    clock, tm, rec, gc = env
    ua, inv = connected_uac(env)
    assert ua._lUri == ("alice", "Alice A", ua.lTag)
    assert (ua.getCLI(), ua.getCallingName(), ua.getCID()[1]) == ("alice", "Alice A", ua.lTag)
    sent_from = str(inv.req.getHFBody("from"))
    assert sent_from == f"Alice A <sip:alice@{LOCAL[0]}:{LOCAL[1]}>;tag={ua.lTag}"
    ua.recvEvent(CCEventUpdate(sdp(10000, "127.0.0.1", "sendonly")))
    assert str(tm.sent("INVITE")[1].req.getHFBody("from")) == sent_from
    assert type(ua._lUri) is tuple
    ua.lUri.getUri().name = "Carol"
    ua.recvEvent(CCEventDisconnect())
    assert str(tm.sent("BYE")[0].req.getHFBody("from")).startswith("Carol <sip:alice@")
