"""SIP message model: parsing, lazy headers, serialisation, derived messages and parse errors."""

from __future__ import annotations

import pytest

from sippy.Exceptions.SipParseError import SipParseError
from sippy.MsgBody import MsgBody
from sippy.SipCallId import SipCallId
from sippy.SipCiscoGUID import SipCiscoGUID
from sippy.SipContentType import SipContentType
from sippy.SipCSeq import SipCSeq
from sippy.SipHeader import SipHeader
from sippy.SipMaxForwards import SipMaxForwards
from sippy.SipRAck import SipRAck
from sippy.SipReason import SipReason
from sippy.SipRequest import SipRequest
from sippy.SipResponse import SipResponse
from sippy.SipSupported import SipSupported
from sippy.SipURL import SipURL
from sippy.SipVia import SipVia
from sippy.SipWarning import SipWarning

SDP = "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n"


def invite(
    extra: str = "", body: str = SDP, via: str = "Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKabc;rport"
) -> str:
    return (
        "INVITE sip:bob@192.0.2.2 SIP/2.0\r\n"
        f"{via}\r\n"
        "Max-Forwards: 70\r\n"
        "From: Alice <sip:alice@192.0.2.1>;tag=ftag\r\n"
        "To: <sip:bob@192.0.2.2>\r\n"
        "Call-ID: cid-1@192.0.2.1\r\n"
        "CSeq: 7 INVITE\r\n"
        f"{extra}"
        "Content-Type: application/sdp\r\n"
        f"Content-Length: {len(body.encode())}\r\n"
        "\r\n" + body
    )


def test_untouched_message_round_trips_byte_for_byte() -> None:
    text = invite(extra="x-ODD-Header:   keep  this  \r\nv: SIP/2.0/TCP h2;branch=z9hG4bKq\r\n")
    req = SipRequest(text.encode())
    assert str(req) == text
    # Touching one header re-renders that header only; the others stay as received.
    req.getHFBody("cseq").incCSeqNum()
    out = str(req)
    assert "CSeq: 8 INVITE\r\n" in out
    assert "x-ODD-Header:   keep  this  \r\n" in out
    assert "v: SIP/2.0/TCP h2;branch=z9hG4bKq\r\n" in out


def test_accepts_str_and_bytes_and_bare_lf() -> None:
    text = invite()
    head, _, body = text.partition("\r\n\r\n")
    lf = head.replace("\r\n", "\n") + "\n\n" + body
    for buf in (text, text.encode(), lf.encode()):
        req = SipRequest(buf)
        assert req.getMethod() == "INVITE"
        assert req.getHFBody("cseq").getCSeq() == (7, "INVITE")
        assert str(req.getBody()) == SDP
    assert str(SipRequest(lf)).startswith("INVITE sip:bob@192.0.2.2 SIP/2.0\r\nVia: ")


def test_folded_lines_are_unfolded() -> None:
    text = invite(extra="Subject: first part,\r\n  second part\r\n\tthird\r\n").replace(
        "To: <sip:bob@192.0.2.2>\r\n", "To:\r\n <sip:bob@192.0.2.2>\r\n"
    )
    req = SipRequest(text)
    assert str(req.getHFBody("subject")) == "first part, second part third"
    assert req.getHFBody("to").getUrl().host == "192.0.2.2"
    assert "\r\n " not in str(req)


def test_compact_and_case_insensitive_names() -> None:
    text = (
        "OPTIONS sip:b@h SIP/2.0\r\nv: SIP/2.0/UDP h:5062;branch=z9hG4bK1\r\nf: <sip:a@h>;tag=1\r\n"
        "t: <sip:b@h>\r\ni: abc\r\nCSEQ: 1 OPTIONS\r\nm: <sip:a@h>\r\nk: timer\r\nl: 0\r\n\r\n"
    )
    req = SipRequest(text)
    assert req.getHFBody("v") is req.getHFBody("VIA")
    assert req.getHFBody("via").getTAddr() == ("h", 5062)
    assert str(req.getHFBody("Call-ID")) == "abc"
    assert req.getHFBody("supported").caps == ["timer"]
    assert req.getHFBody("cseq").getCSeqNum() == 1
    assert req.countHFs("contact") == 1
    assert req.getHF("i").name == "call-id"
    # Untouched headers keep their compact names; Content-Length is always written afresh.
    assert str(SipRequest(text)) == text.replace("l: 0\r\n", "Content-Length: 0\r\n")
    assert "\r\nVia: SIP/2.0/UDP h:5062;branch=z9hG4bK1\r\n" in str(req)
    assert SipRequest(text).localStr(compact=True).endswith("l: 0\r\n\r\n")


def test_several_vias_on_one_line_and_on_many_lines() -> None:
    vias = (
        "Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK1;rport, "
        "SIP/2.0/TCP [2001:db8::7]:5070;branch=z9hG4bK2\r\n"
        "Via: SIP/2.0/UDP p3.example.com;branch=z9hG4bK3;received=198.51.100.3"
    )
    text = invite(via=vias)
    req = SipRequest(text)
    assert str(req) == text  # untouched: the two-value line goes out as it came
    bodies = req.getHFBodys("via")
    assert [v.getBranch() for v in bodies] == ["z9hG4bK1", "z9hG4bK2", "z9hG4bK3"]
    assert bodies[1].getAddr() == ("2001:db8::7", 5070)
    assert bodies[1].transport == "TCP"
    assert bodies[2].getTAddr() == ("198.51.100.3", 5060)
    # The transaction layer stamps received/rport on the top Via only.
    top = req.getHFBody("via")
    top.setParam("received", "203.0.113.9")
    top.setParam("rport", "40000")
    assert top.getTAddr() == ("203.0.113.9", 40000)
    out = str(req)
    assert "Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK1;rport=40000;received=203.0.113.9\r\n" in out
    assert "Via: SIP/2.0/TCP [2001:db8::7]:5070;branch=z9hG4bK2\r\n" in out
    assert out.count("received=") == 2
    assert req.getTIds()[1][4] == "z9hG4bK2"


def test_via_forms() -> None:
    v = SipVia("SIP / 2.0 / UDP\texample.com:5080 ; branch=z9hG4bKx ; rport ; maddr=1.2.3.4")
    v.parse()
    assert (v.sipver, v.transport, v.hostname, v.port) == ("SIP/2.0", "UDP", "example.com", 5080)
    assert v.params == {"branch": "z9hG4bKx", "rport": None, "maddr": "1.2.3.4"}
    v.delParam("maddr")
    v.setBranch("z9hG4bKy")
    assert str(v) == "SIP/2.0/UDP example.com:5080;branch=z9hG4bKy;rport"
    ip6 = SipVia("SIP/2.0/UDP [::1];branch=z9hG4bK6;received=::2;rport=7000")
    ip6.parse()
    assert ip6.getAddr() == ("::1", 5060)
    assert ip6.getTAddr() == ("::2", 7000)
    # A new Via has a placeholder host filled in with the sending transport's address.
    new = SipVia()
    branch = new.genBranch()
    assert branch.startswith("z9hG4bK") and len(branch) > 20 and branch != SipVia().genBranch()
    assert new.localStr("198.51.100.1", 5099) == f"SIP/2.0/UDP 198.51.100.1:5099;rport;branch={branch}"
    assert new.localStr("2001:db8::1", 5060).startswith("SIP/2.0/UDP [2001:db8::1]:5060;")
    for bad in (
        "SIP/2.0/UDP",
        "SIP/2.0 host",
        "SIP/2.0/UDP host:99999",
        "SIP/2.0/UDP [::1",
        "SIP/2.0/UDP h;;x",
    ):
        with pytest.raises(SipParseError):
            SipVia(bad).parse()


def test_content_length_cuts_extra_bytes_and_is_rewritten() -> None:
    text = invite() + "garbage after the body"
    req = SipRequest(text.encode())
    assert str(req.getBody()) == SDP
    assert str(req) == invite()
    req.setBody(MsgBody("hello é", "text/plain"))
    out = str(req)
    assert out.endswith("Content-Type: text/plain\r\nContent-Length: 8\r\n\r\nhello é")


def test_missing_content_length_takes_the_rest() -> None:
    text = invite().replace(f"Content-Length: {len(SDP)}\r\n", "")
    req = SipRequest(text)
    assert str(req.getBody()) == SDP
    assert f"Content-Length: {len(SDP)}\r\n" in str(req)


def test_body_shorter_than_content_length_is_an_error_with_a_400() -> None:
    text = invite().replace(f"Content-Length: {len(SDP)}", f"Content-Length: {len(SDP) + 10}")
    with pytest.raises(SipParseError) as ei:
        SipRequest(text)
    resp = ei.value.sip_response
    assert resp.getSCode()[0] == 400
    assert "Content-Length" in resp.getSCodeReason()
    assert resp.getHFBody("via").getBranch() == "z9hG4bKabc"
    assert resp.getHFBody("cseq").getCSeq() == (7, "INVITE")
    assert str(resp.getHFBody("call-id")) == "cid-1@192.0.2.1"


@pytest.mark.parametrize(
    "startline",
    [
        "",
        "INVITE",
        "INVITE sip:b@h",
        "INVITE sip:b@h SIP/2.0 extra",
        "INV<ITE sip:b@h SIP/2.0",
        "INVITE sip:b@h HTTP/1.1",
    ],
)
def test_malformed_request_lines(startline: str) -> None:
    text = invite().replace("INVITE sip:bob@192.0.2.2 SIP/2.0", startline, 1)
    with pytest.raises(SipParseError):
        SipRequest(text)


def test_unsupported_version_gets_505() -> None:
    with pytest.raises(SipParseError) as ei:
        SipRequest(invite().replace(" SIP/2.0\r\n", " SIP/3.0\r\n", 1))
    assert ei.value.sip_response.getSCode() == (505, "Version Not Supported")
    assert ei.value.sip_response.getSL().startswith("SIP/2.0 505")


@pytest.mark.parametrize(
    "statusline",
    ["SIP/2.0", "SIP/2.0 20 OK", "SIP/2.0 2000 OK", "SIP/2.0 OK 200", "SIP/3.0 200 OK", "SIP/2.0 700 X"],
)
def test_malformed_status_lines(statusline: str) -> None:
    text = invite().replace("INVITE sip:bob@192.0.2.2 SIP/2.0", statusline, 1)
    with pytest.raises(SipParseError) as ei:
        SipResponse(text)
    assert ei.value.sip_response is None


def test_status_line_without_reason() -> None:
    resp = SipResponse(invite().replace("INVITE sip:bob@192.0.2.2 SIP/2.0", "SIP/2.0 183", 1))
    assert resp.getSCode() == (183, "")
    assert resp.getSCodeNum() == 183
    resp.setSCode(200, "OK")
    assert str(resp).startswith("SIP/2.0 200 OK\r\n")


@pytest.mark.parametrize(
    "line,reason",
    [
        ("NoColonHere", "Colon"),
        (": empty name", "Name"),
        ("Bad Name: x", "Name"),
        ("Na<me: x", "Name"),
    ],
)
def test_malformed_header_lines_give_400(line: str, reason: str) -> None:
    with pytest.raises(SipParseError) as ei:
        SipRequest(invite(extra=line + "\r\n"))
    assert reason in ei.value.reason
    assert ei.value.sip_response.getSCodeNum() == 400
    assert reason in ei.value.sip_response.getSCodeReason()


def test_bad_content_length_and_bad_cseq() -> None:
    with pytest.raises(SipParseError):
        SipRequest(invite().replace(f"Content-Length: {len(SDP)}", "Content-Length: 12a"))
    req = SipRequest(invite().replace("CSeq: 7 INVITE", "CSeq: seven INVITE"))
    with pytest.raises(SipParseError) as ei:
        req.getHFBody("cseq")
    # Answered all the same: the CSeq goes back as received, unparsed.
    assert ei.value.sip_response.getSCode() == (400, "Bad CSeq Header")
    assert "CSeq: seven INVITE\r\n" in str(ei.value.sip_response)
    with pytest.raises(SipParseError):
        req.getTId()


def test_missing_header_at_access_time_gives_400() -> None:
    req = SipRequest(invite())
    with pytest.raises(SipParseError) as ei:
        req.getHFBody("rseq")
    assert ei.value.reason == "Missing RSeq Header"
    assert ei.value.sip_response.getSCode() == (400, "Missing RSeq Header")
    no_callid = SipRequest(invite().replace("Call-ID: cid-1@192.0.2.1\r\n", ""))
    with pytest.raises(SipParseError) as ei:
        no_callid.getHFBody("call-id")
    # Only the Via is needed to answer (RFC 4475 3.3.1): the rest is copied when there.
    assert ei.value.sip_response.getSCode() == (400, "Missing Call-ID Header")
    assert ei.value.sip_response.countHFs("call-id") == 0


def test_ack_never_gets_an_error_response() -> None:
    text = invite().replace("INVITE sip:", "ACK sip:", 1).replace("7 INVITE", "7 ACK")
    with pytest.raises(SipParseError) as ei:
        SipRequest(text.replace(f"Content-Length: {len(SDP)}", "Content-Length: 999"))
    assert ei.value.sip_response is None


def test_bad_request_uri_is_reported_at_access() -> None:
    req = SipRequest(invite().replace("sip:bob@192.0.2.2", "sip:bob@[::1", 1))
    with pytest.raises(SipParseError) as ei:
        req.getRURI()
    assert ei.value.sip_response.getSCodeNum() == 400


def test_genresponse_copies_headers_and_record_route() -> None:
    rr = "Record-Route: <sip:p1.example.com;lr>, <sip:p2.example.com;lr>\r\n"
    req = SipRequest(invite(extra=rr))
    ok = req.genResponse(200, "OK", server="TestServer/1")
    out = str(ok)
    assert out.startswith("SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKabc;rport\r\n")
    assert out.count("Record-Route:") == 2
    assert "From: Alice <sip:alice@192.0.2.1>;tag=ftag\r\n" in out
    assert "To: <sip:bob@192.0.2.2>\r\n" in out  # To tag is the UA's business
    assert "Server: TestServer/1\r\n" in out
    assert "Content-Length: 0\r\n\r\n" in out
    assert "Record-Route" not in str(req.genResponse(100, "Trying"))
    assert "Record-Route" not in str(req.genResponse(486, "Busy Here"))
    bye = SipRequest(invite(extra=rr).replace("INVITE sip:", "BYE sip:", 1).replace("7 INVITE", "8 BYE"))
    assert "Record-Route" not in str(bye.genResponse(200, "OK"))
    # The response is independent of the request.
    ok.getHFBody("to").setTag("ttag")
    assert req.getHFBody("to").getTag() is None


def test_genack_and_gencancel() -> None:
    req = SipRequest(invite(extra="Route: <sip:p1.example.com;lr>\r\n"))
    resp = SipResponse(str(req.genResponse(486, "Busy Here")))
    resp.getHFBody("to").setTag("remote")
    ack = req.genACK(resp.getHFBody("to").getCopy())
    assert ack.getMethod() == "ACK"
    assert str(ack.getRURI()) == "sip:bob@192.0.2.2"
    assert ack.countHFs("via") == 1 and ack.getHFBody("via").getBranch() == "z9hG4bKabc"
    assert ack.getHFBody("cseq").getCSeq() == (7, "ACK")
    assert ack.getHFBody("to").getTag() == "remote"
    assert ack.countHFs("route") == 1
    assert ack.getBody() is None
    cancel = SipRequest(str(req.genCANCEL()))
    assert cancel.getHFBody("cseq").getCSeq() == (7, "CANCEL")
    assert cancel.getHFBody("to").getTag() is None
    assert cancel.getHFBody("via").getBranch() == "z9hG4bKabc"
    assert str(cancel.getHFBody("route").getUrl()) == "sip:p1.example.com;lr"
    assert cancel.getTId(wCSM=True, wBRN=True) == ("cid-1@192.0.2.1", "ftag", 7, "CANCEL", "z9hG4bKabc")


def test_new_request_from_parts_fills_placeholders_at_send_time() -> None:
    from sippy.SipAddress import SipAddress
    from sippy.SipFrom import SipFrom

    ruri = SipURL("sip:bob@198.51.100.2:5070")
    fr0m = SipFrom(address=SipAddress(url=SipURL("sip:alice@192.0.2.1")))
    fr0m.genTag()
    req = SipRequest(
        method="INVITE", ruri=ruri, fr0m=fr0m, callid=SipCallId("abc@h"), cseq=3, body=MsgBody(SDP)
    )
    assert req.getTarget() == ("198.51.100.2", 5070)
    wire = req.localStr("192.0.2.99", 5088)
    parsed = SipRequest(wire.encode())
    via = parsed.getHFBody("via")
    assert via.getAddr() == ("192.0.2.99", 5088)
    assert via.getBranch().startswith("z9hG4bK")
    assert "rport" in via.params
    assert parsed.getHFBody("max-forwards").getNum() == 70
    assert parsed.getHFBody("cseq").getCSeq() == (3, "INVITE")
    assert str(parsed.getHFBody("to").getUrl()) == "sip:bob@198.51.100.2:5070"
    assert parsed.getHFBody("expires").getNum() == 300
    assert parsed.countHFs("user-agent") == 1
    assert str(parsed.getBody()) == SDP
    assert f"Content-Length: {len(SDP)}\r\n" in wire


def test_header_api() -> None:
    req = SipRequest(invite())
    via = req.getHF("via")
    extra = SipHeader(name="X-Trace", bodys="42")
    req.insertHeaderAfter(via, extra)
    req.insertHeaderBefore(via, SipHeader("Via: SIP/2.0/UDP first;branch=z9hG4bK0"))
    assert req.getHFBody("via").getBranch() == "z9hG4bK0"
    req.replaceHeader(extra, SipHeader(name="x-trace", body="43"))
    assert "\r\nx-trace: 43\r\n" in str(req)
    req.removeHeader(req.getHF("x-trace"))
    assert req.countHFs("x-trace") == 0
    req.appendHeaders([SipHeader(name="reason", body=SipReason(protocol="Q.850", cause=16, reason="Normal"))])
    assert 'Reason: Q.850; cause=16; text="Normal"\r\n' in str(req)
    copy = req.getCopy()
    copy.getHFBody("cseq").incCSeqNum()
    copy.getHFBody("via").setBranch("z9hG4bKcopy")
    assert req.getHFBody("cseq").getCSeqNum() == 7
    assert req.getHFBody("via").getBranch() == "z9hG4bK0"
    req.delHFs("reason")
    assert req.countHFs("reason") == 0


def test_simple_header_classes() -> None:
    cseq = SipCSeq("  42   REGISTER ")
    cseq.parse()
    assert cseq.getCSeq() == (42, "REGISTER") and str(cseq) == "42 REGISTER"
    for bad in ("1", "x INVITE", "1 2 3", "4294967296 INVITE", "1 IN<VITE"):
        with pytest.raises(SipParseError):
            SipCSeq(bad).parse()
    mf = SipMaxForwards("70")
    mf.parse()
    assert mf.decNum() == 69 and str(mf) == "69"
    with pytest.raises(SipParseError):
        SipMaxForwards("-1").parse()
    ct = SipContentType("multipart/mixed;boundary=abc")
    ct.parse()
    assert ct.name == "multipart/mixed" and ct.params == {"boundary": "abc"}
    with pytest.raises(SipParseError):
        SipContentType("nonsense").parse()
    r = SipReason('SIP ;cause=200 ;text="Call completed; \\"elsewhere\\""')
    r.parse()
    assert (r.protocol, r.cause, r.reason) == ("SIP", 200, 'Call completed; "elsewhere"')
    r2 = SipReason(str(r))
    r2.parse()
    assert r2.reason == r.reason
    with pytest.raises(SipParseError):
        SipReason("Q.850;cause=abc").parse()
    rack = SipRAck("5 10 INVITE")
    rack.parse()
    assert rack.getRSeq() == (5, 10, "INVITE")
    guid = SipCiscoGUID("1-2-3-4")
    guid.parse()
    assert guid.hexForm() == "00000001 00000002 00000003 00000004"
    assert len(SipCiscoGUID().getCiscoGUID()) == 4
    w = SipWarning('399 host.example "Something odd"')
    w.parse()
    assert (w.code, w.agent, w.text) == (399, "host.example", "Something odd")
    sup = SipSupported("100rel, timer ,replaces")
    sup.parse()
    assert sup.caps == ["100rel", "timer", "replaces"] and sup.has("TIMER")
    cid = SipCallId()
    assert "@" in str(cid) and str(cid) != str(SipCallId())
    assert str(cid + "-b2b_1") == str(cid) + "-b2b_1"


def test_cisco_guid_spelling_follows_the_name() -> None:
    req = SipRequest(invite(extra="h323-conf-id: 1-2-3-4\r\ncisco-guid: 5-6-7-8\r\n"))
    for hf in req.getHFs("h323-conf-id") + req.getHFs("cisco-guid"):
        hf.getBody().ciscoGUID = (9, 9, 9, 9)
    out = str(req)
    assert "h323-conf-id: 9-9-9-9\r\n" in out and "cisco-GUID: 9-9-9-9\r\n" in out


def test_response_rtid() -> None:
    resp = SipResponse(
        invite(extra="RSeq: 11\r\n").replace("INVITE sip:bob@192.0.2.2 SIP/2.0", "SIP/2.0 183 P", 1)
    )
    assert resp.getRTId() == ("cid-1@192.0.2.1", "ftag", 11, 7, "INVITE")
