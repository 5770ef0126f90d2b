"""RFC 5118 (SIP torture tests for IPv6), message by message through a transaction manager: the
valid ones are processed, the invalid ones answered 400. (Writing brackets is tested elsewhere.)"""

from __future__ import annotations

from typing import Optional

from sippy.MsgBody import MsgBody
from tests.sip_torture import accepted, msg, refused


def request(
    start: str,
    via: str = "SIP/2.0/UDP [2001:db8::9:1];branch=z9hG4bKas3-111",
    cseq: str = "98176 REGISTER",
    extra: tuple[str, ...] = (),
    body: bytes = b"",
    to_tag: Optional[str] = None,
) -> bytes:
    return msg(
        start,
        "To: sip:user@example.com" + (f";tag={to_tag}" if to_tag else ""),
        "From: sip:user@example.com;tag=81x2",
        f"Via: {via}",
        "Call-ID: SSG9559905523997077@hlau_4100",
        "Max-Forwards: 70",
        'Contact: "Caller" <sip:caller@[2001:db8::1]>',
        f"CSeq: {cseq}",
        *extra,
        f"Content-Length: {len(body)}",
        body=body,
    )


def test_4_1_valid_ipv6_reference() -> None:
    req, resp = accepted(request("REGISTER sip:[2001:db8::10] SIP/2.0"))
    assert req.getRURI().getAddr() == ("2001:db8::10", 5060)
    assert req.getHFBody("via").getAddr()[0] in ("2001:db8::9:1", "[2001:db8::9:1]")
    assert req.getHFBody("contact").getUrl().getAddr() == ("2001:db8::1", 5060)
    assert resp.getSCodeNum() == 501  # no registrar here


def test_4_2_ipv6_reference_without_brackets() -> None:
    refused(request("REGISTER sip:2001:db8::10 SIP/2.0"), 400, "Bad Request-URI")


def test_4_3_port_ambiguous() -> None:
    req, _ = accepted(request("REGISTER sip:[2001:db8::10:5070] SIP/2.0"))
    assert req.getRURI().getAddr() == ("2001:db8::10:5070", 5060)


def test_4_4_port_unambiguous() -> None:
    req, _ = accepted(request("REGISTER sip:[2001:db8::10]:5070 SIP/2.0"))
    assert req.getRURI().getAddr() == ("2001:db8::10", 5070)


def test_4_5_via_received_with_and_without_brackets() -> None:
    for received in ("[2001:db8::9:255]", "2001:db8::9:255"):
        req, resp = accepted(
            request(
                "BYE sip:[2001:db8::10] SIP/2.0",
                via=f"SIP/2.0/UDP [2001:db8::9:1];received={received};branch=z9hG4bKas3-111",
                cseq="321 BYE",
                to_tag="bd76ya",
            )
        )
        assert resp.getSCodeNum() == 481  # no such dialog, but read and answered
        assert resp.getHFs("via")[0].getValue().startswith("SIP/2.0/UDP [2001:db8::9:1]")


def sdp6(*lines: str) -> bytes:
    base = ["v=0", "o=assistant 971731711378798081 0 IN IP6 2001:db8::20", "s=Live video feed", "t=0 0"]
    return ("\r\n".join(base + list(lines)) + "\r\n").encode()


def invite_with(body: bytes, via: str = "SIP/2.0/UDP [2001:db8::20];branch=z9hG4bKas3-111") -> bytes:
    return request(
        "INVITE sip:user@[2001:db8::10] SIP/2.0",
        via=via,
        cseq="8612 INVITE",
        extra=("Content-Type: application/sdp",),
        body=body,
    )


def test_4_6_ipv6_in_sdp() -> None:
    body = sdp6("c=IN IP6 2001:db8::20", "m=audio 6000 RTP/AVP 0", "a=rtpmap:0 PCMU/8000")
    req, resp = accepted(invite_with(body))
    sdp = MsgBody(str(req.getBody())).getContent()
    c = sdp.sections[0].c_header
    assert c.addr == "2001:db8::20" and c.atype == "IP6"


def test_4_7_multiple_ip_addresses_in_headers() -> None:
    data = msg(
        "BYE sip:user@host.example.net SIP/2.0",
        "Via: SIP/2.0/UDP [2001:db8::9:ffff]:5060;branch=z9hG4bKas3-111",
        "Via: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bKjhja8781hjuaij65144",
        "Via: SIP/2.0/TCP [2001:db8::9:255];branch=z9hG4bK451jj;received=192.0.2.200",
        "Call-ID: 997077@lau_4100",
        "Max-Forwards: 70",
        "CSeq: 89187 BYE",
        "To: sip:user@example.net;tag=9817--94",
        "From: sip:user@example.com;tag=81x2",
        "Content-Length: 0",
    )
    req, resp = accepted(data)
    assert [v.getAddr()[1] for v in req.getHFBodys("via")] == [5060, 5060, 5060]
    assert len(resp.getHFs("via")) == 3


def test_4_8_multiple_ip_addresses_in_sdp() -> None:
    body = sdp6(
        "c=IN IP4 192.0.2.1",
        "m=audio 6000 RTP/AVP 0",
        "a=rtpmap:0 PCMU/8000",
        "m=audio 6002 RTP/AVP 0",
        "c=IN IP6 2001:db8::20",
        "a=rtpmap:0 PCMU/8000",
    )
    req, _ = accepted(invite_with(body))
    sdp = MsgBody(str(req.getBody())).getContent()
    # The session-level c= is the first stream's, the second has its own.
    assert [s.c_header.addr for s in sdp.sections] == ["192.0.2.1", "2001:db8::20"]


def test_4_9_ipv4_mapped_ipv6_addresses() -> None:
    body = sdp6("c=IN IP6 ::ffff:192.0.2.2", "m=audio 3456 RTP/AVP 0", "a=rtpmap:0 PCMU/8000")
    req, _ = accepted(invite_with(body, via="SIP/2.0/UDP [::ffff:192.0.2.10]:19823;branch=z9hG4bKbh19"))
    assert req.getHFBody("via").getAddr()[1] == 19823


def test_4_10_ipv6_abnf_bug_three_colons_refused_two_accepted() -> None:
    bad = request("OPTIONS sip:user@[2001:db8:::192.0.2.1] SIP/2.0", cseq="18 OPTIONS")
    refused(bad, 400, "Bad Request-URI")
    req, resp = accepted(bad.replace(b":::", b"::"))
    assert resp.getSCodeNum() == 200
    assert req.getRURI().getAddr() == ("2001:db8::192.0.2.1", 5060)
