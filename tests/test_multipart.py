"""multipart/mixed bodies: parsed into parts (an SDP part is an SdpBody), written back as they
came, built by programs, and garbled ones refused with SdpParseError (a 488, not a traceback)."""

from __future__ import annotations

import pytest

from sippy.Exceptions.SipParseError import SdpParseError
from sippy.MsgBody import MsgBody
from sippy.MultipartMixBody import MultipartMixBody
from sippy.SdpBody import SdpBody
from sippy.SipContentType import SipContentType
from sippy.SipRequest import SipRequest

# RFC 8147 (eCall) style: the part's Content-Type is not its first header.
ECALL_PART = (
    '<?xml version="1.0" encoding="UTF-8"?>\r\n'
    '<EmergencyCallData.Control xmlns="urn:ietf:params:xml:ns:EmergencyCallData:control">\r\n'
    '<request action="send-data" datatype="eCall.MSD"/>\r\n'
    "</EmergencyCallData.Control>\r\n"
)
ECALL = (
    "--boundaryZZZ\r\n"
    "Content-Disposition: by-reference\r\n"
    "Content-Type: application/EmergencyCallData.Control+xml\r\n"
    "Content-ID: <3456789012@atlanta.example.com>\r\n"
    "\r\n" + ECALL_PART + "--boundaryZZZ--\r\n"
)

SDP = "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0 8\r\n"
# SDP beside ISUP (SIP-I), with a preamble the parser must keep.
SIPI = (
    "This is a multipart message.\r\n"
    "--unique-boundary-1\r\n"
    "Content-Type: application/sdp\r\n"
    "\r\n" + SDP + "\r\n"
    "--unique-boundary-1\r\n"
    "Content-Type: application/ISUP;version=itu-t92+\r\n"
    "Content-Disposition: signal;handling=optional\r\n"
    "\r\n"
    "\x01\x00\x49\x00\x00\x03\x02\x00\x07\x04\x10\x00\x33\x63\x21\x43\x00\x00\x03\r\n"
    "--unique-boundary-1--\r\n"
)


@pytest.mark.parametrize(
    "ctype",
    [
        "multipart/mixed;boundary=boundaryZZZ",
        'multipart/mixed; boundary="boundaryZZZ"',
        SipContentType("multipart/mixed;boundary=boundaryZZZ"),
    ],
)
def test_parts_and_their_headers(ctype):
    body = MsgBody(ECALL, mtype=ctype)
    assert body.getType() == "multipart/mixed"
    mp = body.getContent()
    assert type(mp) is MultipartMixBody
    assert len(mp.parts) == 1 and len(mp.part_headers) == 1
    part = mp.parts[0]
    assert type(part) is MsgBody
    assert str(part.mtype) == "application/EmergencyCallData.Control+xml"
    assert [h.name for h in mp.part_headers[0]] == ["content-disposition", "content-id"]
    assert part.content == ECALL_PART
    assert str(mp) == ECALL and mp.localStr() == ECALL


def test_sdp_part_is_an_sdp_body_and_edits_show_in_the_message():
    req = SipRequest(
        (
            "INVITE sip:bob@192.0.2.2 SIP/2.0\r\n"
            "Via: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK1\r\n"
            "From: <sip:alice@192.0.2.1>;tag=1\r\nTo: <sip:bob@192.0.2.2>\r\n"
            "Call-ID: mp1@192.0.2.1\r\nCSeq: 1 INVITE\r\nMax-Forwards: 70\r\n"
            "Content-Type: multipart/mixed;boundary=unique-boundary-1\r\n"
            f"Content-Length: {len(SIPI.encode())}\r\n\r\n" + SIPI
        ).encode("latin-1")
    )
    before = str(req)
    mp = req.getBody().getContent()
    assert str(req) == before and before.endswith(SIPI)  # parsed, still the same text
    sdp, isup = mp.parts
    assert sdp.getType() == "application/sdp" and isup.getType() == "application/isup"
    assert isinstance(sdp.getContent(), SdpBody)
    assert sdp.getContent().sections[0].m_header.port == 4000
    assert mp.preamble == "This is a multipart message.\r\n"
    sdp.getContent().sections[0].setConnection("203.0.113.5", 6000)
    out = str(req)
    assert "c=IN IP4 203.0.113.5\r\nt=0 0\r\nm=audio 6000 RTP/AVP 0 8\r\n" in out
    assert out.endswith(SIPI[SIPI.index("\r\n--unique-boundary-1\r\nContent-Type: application/ISUP") :])
    copy = req.getCopy()
    copy.getBody().getContent().parts[0].getContent().sections[0].m_header.port = 7000
    assert "m=audio 6000" in str(req)  # the copy is deep


def test_a_program_builds_a_multipart_body():
    mp = MultipartMixBody()
    ct = mp.getContentType()
    assert ct.name == "multipart/mixed" and len(ct.params["boundary"]) == 32
    mp.setBoundary("b1")
    assert str(mp.getContentType()) == "multipart/mixed;boundary=b1"
    mp.parts.append(MsgBody(SdpBody(SDP)))
    mp.parts.append(MsgBody("hello", mtype="text/plain"))
    text = str(mp)
    assert text == (
        "--b1\r\nContent-Type: application/sdp\r\n\r\n" + SDP
        + "--b1\r\nContent-Type: text/plain\r\n\r\nhello\r\n--b1--\r\n"
    )  # fmt: skip
    again = MsgBody(text, mtype=mp.getContentType()).getContent()
    assert [p.getType() for p in again.parts] == ["application/sdp", "text/plain"]
    assert str(again.parts[0].getContent()) == SDP
    copy = mp.getCopy()
    copy.parts[1].content = "changed"
    assert "hello" in str(mp) and "changed" in str(copy)


@pytest.mark.parametrize(
    "text, ctype",
    [
        (ECALL, "multipart/mixed"),  # no boundary parameter
        (ECALL, "multipart/mixed;boundary=other"),  # boundary not in the body
        (ECALL.replace("--boundaryZZZ--", "--boundaryZZZ"), "multipart/mixed;boundary=boundaryZZZ"),
        ("--b\r\nContent-Type: text/plain\r\nno empty line\r\n--b--\r\n", "multipart/mixed;boundary=b"),
        ("--b\r\nContent-Type text/plain\r\n\r\nx\r\n--b--\r\n", "multipart/mixed;boundary=b"),
        ("--b", "multipart/mixed;boundary=b"),
        (ECALL, "multipart/mixed;=boundaryZZZ"),
    ],
)
def test_garbled_multipart_is_an_sdp_parse_error(text, ctype):
    body = MsgBody(text, mtype=ctype)
    with pytest.raises(SdpParseError):
        body.getContent()


def test_a_part_without_headers_is_text_plain():
    mp = MsgBody("--b\r\n\r\nplain\r\n--b--\r\n", "multipart/mixed;boundary=b").getContent()
    assert mp.parts[0].getType() == "text/plain" and mp.parts[0].content == "plain\r\n"


def test_a_binary_part_goes_out_byte_for_byte_after_parsing():
    body = (
        b"--b\r\nContent-Type: application/sdp\r\n\r\n" + SDP.encode() +
        b"--b\r\nContent-Type: application/ISUP;version=itu-t92+\r\n\r\n"
        b"\x01\x80\xff\xfe\x00\r\n\x90\xc3\r\n--b--\r\n"
    )  # fmt: skip
    req = SipRequest(
        b"INVITE sip:bob@192.0.2.2 SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK1\r\n"
        b"From: <sip:a@192.0.2.1>;tag=1\r\nTo: <sip:bob@192.0.2.2>\r\nCall-ID: bin@192.0.2.1\r\n"
        b"CSeq: 1 INVITE\r\nMax-Forwards: 70\r\nContent-Type: multipart/mixed;boundary=b\r\n"
        b"Content-Length: %d\r\n\r\n" % len(body) + body
    )
    mp = req.getBody().getContent()
    assert [p.getType() for p in mp.parts] == ["application/sdp", "application/isup"]
    mp.parts[0].getContent().sections[0].m_header.port = 4002  # same length: same Content-Length
    out = str(req).encode("utf-8", "surrogateescape")
    assert out.endswith(body.replace(b"m=audio 4000", b"m=audio 4002"))
    assert f"Content-Length: {len(body)}\r\n".encode() in out
