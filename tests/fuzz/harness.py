"""What the fuzzers (hypothesis in tests/test_fuzz_sip.py, atheris in tests/fuzz/fuzz_sip.py)
feed and check: seed messages, mutations of them, and the properties every input must keep.

Properties: the parsers raise nothing but SipParseError (SdpParseError for SDP), whatever part is
read; the transaction manager, handed any datagram, raises nothing, logs no exception, answers or
drops it, and once its timers ran holds no transaction.
"""

from __future__ import annotations

from typing import Any, Callable

from twisted.internet.task import Clock

from sippy.CallMap import CallMap
from sippy.CCEvents import CCEventFail
from sippy.Exceptions.SipParseError import SdpParseError, SipParseError
from sippy.SdpBody import SdpBody
from sippy.SipRequest import SipRequest
from sippy.SipResponse import SipResponse
from sippy.SipTransactionManager import SipTransactionManager
from sippy.Time.MonoTime import MonoTime
from sippy.UaStateGeneric import contact_url, copy_reason
from tests.test_load_regressions import B2B, CALLER
from tests.test_transactions import FakeLogger, FakeTransport

SDP = (
    "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\n"
    "m=audio 4000 RTP/AVP 0 8 101\r\na=rtpmap:101 telephone-event/8000\r\na=sendrecv\r\n"
    "m=video 4002 RTP/AVP 96\r\nc=IN IP6 2001:db8::1\r\na=rtpmap:96 H264/90000\r\n"
)


def _msg(*lines: str, body: str = "") -> bytes:
    return ("\r\n".join((*lines, f"Content-Length: {len(body.encode())}")) + "\r\n\r\n" + body).encode()


def _req(method: str, *extra: str, body: str = "", cseq: str = "") -> bytes:
    return _msg(
        f"{method} sip:bob@127.0.0.1:5060;transport=udp SIP/2.0",
        "Via: SIP/2.0/UDP 127.0.0.1:5062;branch=z9hG4bK-seed1;rport",
        "Max-Forwards: 70",
        'From: "Alice" <sip:alice@127.0.0.1>;tag=ftag1',
        "To: <sip:bob@127.0.0.1>",
        "Call-ID: seed-call-1@127.0.0.1",
        f"CSeq: {cseq or '1 ' + method}",
        "Contact: <sip:alice@127.0.0.1:5062>",
        *extra,
        body=body,
    )


SEEDS: list[bytes] = [
    _req("INVITE", "Content-Type: application/sdp", "Expires: 120", "Supported: timer", body=SDP),
    _req("OPTIONS", "Accept: application/sdp", "Require: foo"),
    _req("ACK", cseq="1 ACK"),
    _req("CANCEL", cseq="1 CANCEL"),
    _req("BYE", 'Authorization: Digest username="a", realm="r", nonce="n", uri="sip:b", response="x"'),
    _req("INFO", "Content-Type: application/dtmf-relay", body="Signal=1\r\nDuration=100\r\n"),
    _msg(
        "SIP/2.0 200 OK",
        "Via: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK-ours;received=127.0.0.1;rport=5060",
        "From: <sip:alice@127.0.0.1>;tag=ftag1",
        "To: <sip:bob@127.0.0.1>;tag=ttag1",
        "Call-ID: seed-call-1@127.0.0.1",
        "CSeq: 1 INVITE",
        "Record-Route: <sip:10.0.0.1;lr>, <sip:[2001:db8::1]:5070;lr>",
        'WWW-Authenticate: Digest realm="r", nonce="n", qop="auth", algorithm=MD5',
        "Content-Type: application/sdp",
        body=SDP,
    ),
    _msg(
        "SIP/2.0 407 Proxy Authentication Required",
        "Via: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK-ours",
        "From: <sip:alice@127.0.0.1>;tag=ftag1",
        "To: <sip:bob@127.0.0.1>;tag=ttag2",
        "Call-ID: seed-call-1@127.0.0.1",
        "CSeq: 1 INVITE",
        'Proxy-Authenticate: Digest realm="r", nonce="n2", qop="auth,auth-int", stale=true',
        'Reason: Q.850;cause=21;text="Call rejected"',
    ),
    _msg(
        "SIP/2.0 183 Session Progress",
        "Via: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK-ours",
        "From: <sip:alice@127.0.0.1>;tag=ftag1",
        "To: <sip:bob@127.0.0.1>;tag=ttag3",
        "Call-ID: seed-call-1@127.0.0.1",
        "CSeq: 1 INVITE",
        "Contact: <sip:bob@[2001:db8::2]:5070;transport=udp>",
        "Content-Type: application/sdp",
        body=SDP,
    ),
    (
        b"INVITE sip:u@[2001:db8::10]:5070 SIP/2.0\r\nv: SIP/2.0/UDP [2001:db8::9:1];branch=z9hG4bK1,"
        b"\r\n SIP/2.0/TCP h.example.com;received=192.0.2.1\r\nf: u <sip:u@example.com>;tag=1\r\n"
        b"t: sip:u@example.com\r\ni: c@h\r\nCSeq: 0009\r\n  INVITE\r\nm: <sip:u@[::ffff:192.0.2.1]>\r\n"
        b"c: multipart/mixed;boundary=b1\r\nl: 48\r\n\r\n"
        b"--b1\r\nContent-Type: text/plain\r\n\r\n\xff\x00\r\n--b1--\r\n"
    ),
]


def touch_message(msg: Any) -> None:
    """Read every part of a message, the way the layers above would."""
    for hf in list(msg.headers):
        try:
            msg.getHFBodys(hf.name)
        except SipParseError:
            pass
    if isinstance(msg, SipRequest):
        msg.getRURI()
    msg.getTId(True, True, True)
    body = msg.getBody()
    if body is not None:
        str(body)
        body.getCopy()
    str(msg)
    msg.getCopy()


def check_parsers(data: bytes) -> None:
    """Parse data as request, response and SDP and read everything; only parse errors may escape."""
    for cls in (SipRequest, SipResponse):
        try:
            touch_message(cls(buf=data))
        except SipParseError as e:
            if e.sip_response is not None:
                # The answer to a bad request is itself a good response.
                str(SipResponse(buf=str(e.sip_response).encode()))
    check_sdp(data.decode("utf-8", "surrogateescape"))


def check_sdp(text: str) -> None:
    try:
        sdp = SdpBody(text)
        str(sdp)
        sdp.localStr("127.0.0.1", 5060)
        copy = sdp.getCopy()
        for sect in copy.sections:
            str(sect)
        copy.getDirection()
        copy.isOnHold()
    except SipParseError:
        pass


def _read_like_a_ua(resp: Any) -> None:
    """What the UA reads of a response to its INVITE (UacStateTrying, processChallenge)."""
    resp.getHFBody("to").getTag()
    contact_url(resp)
    resp.getHFBodys("record-route")
    code = resp.getSCodeNum()
    ch_name = {401: "www-authenticate", 407: "proxy-authenticate"}.get(code)
    if ch_name is not None and resp.countHFs(ch_name) > 0:
        resp.getHFBody(ch_name).supportedAlgorithm()
    copy_reason(resp, CCEventFail((code, resp.getSCodeReason())))
    body = resp.getBody()
    if body is not None:
        try:
            body.getContent()
        except SdpParseError:
            pass


def check_manager(data: bytes, fail: Callable[[str], None]) -> None:
    """Hand data to a transaction manager with an INVITE of its own pending (branch z9hG4bK-ours)
    and a call map answering every new call 486: it must answer or drop the datagram without an
    exception, pass a response on only when what the UA reads of it parses, and keep no
    transaction once its timers ran."""
    clock = Clock()
    ft = FakeTransport()
    lg = FakeLogger()
    cmap = CallMap({}, lambda gc, req, t: req.genResponse(486, "Busy Here"))
    tm = SipTransactionManager({"_sip_logger": lg}, cmap.recvRequest, transport=ft, reactor=clock)
    ours = SipRequest(buf=_OURS)
    ours.setTarget(("127.0.0.1", 5062))
    tm.newTransaction(ours, _read_like_a_ua)
    sent = len(ft.sent)
    tm.handleIncoming(data, ("127.0.0.1", 5062), ft, MonoTime())
    bugs = [line for _, line in lg.lines if "exception" in line or "Traceback" in line]
    if bugs:
        fail(f"exception in the transaction manager: {bugs[0][:2000]}")
    answered = [d for d, _ in ft.sent[sent:] if d.startswith(b"SIP/2.0 ")]
    if data.startswith(b"SIP/2.0 ") or data.startswith(b"ACK ") or len(data) < 32:
        if answered:
            fail("a response or an ACK was answered")
    elif not answered and not tm.bad_counts:
        fail("a request neither answered nor counted as dropped")
    for _ in range(10):
        clock.advance(40)
    if tm.tserver or tm.tclient or tm.tserver_ack or tm._retrans:
        fail("transactions left behind")
    tm.shutdown()


_OURS = _msg(
    "INVITE sip:bob@127.0.0.1:5062 SIP/2.0",
    "Via: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK-ours",
    "Max-Forwards: 70",
    "From: <sip:alice@127.0.0.1>;tag=ftag1",
    "To: <sip:bob@127.0.0.1>",
    "Call-ID: seed-call-1@127.0.0.1",
    "CSeq: 1 INVITE",
    "Contact: <sip:alice@127.0.0.1:5060>",
)


def check_b2b(data: bytes, fail: Callable[[str], None]) -> None:
    """Hand data to the call machinery of b2bua_simple and of b2bua_radius (static route, no
    RADIUS) as if from a caller, the callee silent: once every timer ran, no transaction, call,
    consumer or timer may be left."""
    for kind in ("simple", "radius"):
        b2b = B2B(kind)
        b2b.tm.handleIncoming(data, CALLER, b2b.wire, MonoTime())
        for _ in range(12):
            b2b.clock.advance(40)
        held = {k: v for k, v in b2b.held().items() if v}
        if held:
            fail(f"b2bua_{kind} keeps {held}")
