"""SDP bodies whose c= lines sit in unusual places go out as they came, and edits still land."""

from __future__ import annotations

from sippy.MsgBody import MsgBody
from sippy.SdpBody import SdpBody


def crlf(text: str) -> str:
    return text.replace("\n", "\r\n")


# H.323 style (RFC 4566 examples of that era): a session-level c= (multicast) for most sections,
# and the last section with a c= of its own after its m= line.
H323 = crlf(
    """v=0
o=H.323 45678 901234 IN IP4 192.0.2.2
s=H.323 SIP Call
c=IN IP4 224.5.6.7
t=0 0
a=type:H332
m=audio 49230 RTP/AVP 0
m=video 49232 RTP/AVP 31
m=application 12349 udp wb
m=control 49234 H323 mc
c=IN IP4 198.51.100.81
"""
)

# Every section with its own c= and none at session level.
PER_SECTION = crlf(
    """v=0
o=- 1 1 IN IP4 192.0.2.1
s=-
t=0 0
m=audio 4000 RTP/AVP 0
c=IN IP4 192.0.2.1
m=video 4002 RTP/AVP 31
c=IN IP4 192.0.2.1
"""
)

# A session-level c= that no section uses (each has its own).
UNUSED_SESSION_C = crlf(
    """v=0
o=- 1 1 IN IP4 192.0.2.1
s=-
c=IN IP4 192.0.2.1
t=0 0
m=audio 4000 RTP/AVP 0
c=IN IP4 192.0.2.7
"""
)


def test_unusual_c_placements_serialise_unchanged():
    for text in (H323, PER_SECTION, UNUSED_SESSION_C):
        sdp = SdpBody(text)
        assert str(sdp) == text
        assert str(sdp.getCopy()) == text
        assert str(MsgBody(text).getContent()) == text


def test_h323_sections_see_their_connection_and_edits_come_out():
    sdp = SdpBody(H323)
    assert [s.c_header.addr for s in sdp.sections] == ["224.5.6.7"] * 3 + ["198.51.100.81"]
    for s in sdp.sections[:3]:  # e.g. an RTPproxy moving the media that used the session c=
        s.c_header.addr = "203.0.113.9"
    out = str(sdp)
    assert out == H323.replace("224.5.6.7", "203.0.113.9")
    reparsed = SdpBody(out)
    assert [s.c_header.addr for s in reparsed.sections] == ["203.0.113.9"] * 3 + ["198.51.100.81"]


def test_sections_moved_apart_each_get_their_own_line():
    sdp = SdpBody(H323)
    sdp.sections[0].setConnection("203.0.113.1", 5000)
    sdp.sections[1].c_header.addr = "203.0.113.2"
    reparsed = SdpBody(str(sdp))
    got = [(s.c_header.addr, s.m_header.port) for s in reparsed.sections]
    assert got == [
        ("203.0.113.1", 5000),
        ("203.0.113.2", 49232),
        ("224.5.6.7", 12349),
        ("198.51.100.81", 49234),
    ]
    assert "c=IN IP4 224.5.6.7" in str(sdp)  # the unchanged section still says where it goes
