"""The pure SDP side of the WebRTC gateway (sippy.Rtp_proxy.Session.webrtc_sdp): what the proxy is
told about a browser's media section, what the SIP side sees of it, what the browser sees of a
SIP party's, and the proxy modules' answers."""

from __future__ import annotations

import pytest

from sippy.Exceptions.SipParseError import SdpParseError
from sippy.Rtp_proxy.Session.webrtc_sdp import (
    DtlsParams,
    IceParams,
    browser_media,
    dtls_result,
    filter_candidates,
    ice_result,
    is_webrtc,
    set_bundle,
    to_plain_rtp,
    to_webrtc,
)
from sippy.SdpBody import SdpBody

FP = "sha-256 70:99:AE:6F:C1:DF:FA:D1:14:84:EE:6D:28:43:37:A1:F6:00:19:BC:E1:3F:04:4B:48:23:E7:12:E5:51:95:2C"
# What Chromium 1xx offers for an audio-only JsSIP call (its own addresses replaced).
CHROME_OFFER = (
    "v=0\r\no=- 1716260273638043041 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n"
    "a=group:BUNDLE 0\r\na=extmap-allow-mixed\r\na=msid-semantic: WMS bcae8c1d\r\n"
    "m=audio 49730 UDP/TLS/RTP/SAVPF 111 63 9 0 8 13 110 126\r\n"
    "c=IN IP4 192.0.2.2\r\na=rtcp:9 IN IP4 0.0.0.0\r\n"
    "a=candidate:2545838154 1 udp 2122194687 192.0.2.2 49730 typ host generation 0 network-id 1\r\n"
    "a=candidate:2429289722 1 udp 2122265343 fd00::2 44016 typ host generation 0 network-id 2\r\n"
    "a=candidate:3916532434 1 tcp 1518214911 192.0.2.2 9 typ host tcptype active generation 0\r\n"
    "a=candidate:1 1 udp 2122194687 4b0d2f2e-36b7-4b7e-9b62-8a0c4e0d6b1f.local 51000 typ host\r\n"
    "a=ice-ufrag:XToB\r\na=ice-pwd:AbndINYhA4b2570CZ76KDLgD\r\na=ice-options:trickle\r\n"
    f"a=fingerprint:{FP}\r\na=setup:actpass\r\na=mid:0\r\n"
    "a=extmap:1 urn:ietf:params:rtp-hdrext:ssrc-audio-level\r\na=sendrecv\r\n"
    "a=msid:bcae8c1d cef0591d\r\na=rtcp-mux\r\na=rtcp-rsize\r\n"
    "a=rtpmap:111 opus/48000/2\r\na=rtcp-fb:111 transport-cc\r\na=fmtp:111 minptime=10;useinbandfec=1\r\n"
    "a=rtpmap:63 red/48000/2\r\na=fmtp:63 111/111\r\na=rtpmap:9 G722/8000\r\na=rtpmap:0 PCMU/8000\r\n"
    "a=rtpmap:8 PCMA/8000\r\na=rtpmap:13 CN/8000\r\na=rtpmap:110 telephone-event/48000\r\n"
    "a=rtpmap:126 telephone-event/8000\r\n"
    "a=ssrc:780308358 cname:akjmaXPnRr1OJPSt\r\na=ssrc:780308358 msid:bcae8c1d cef0591d\r\n"
)
SIP_ANSWER = (
    "v=0\r\no=callee 7 1 IN IP4 198.51.100.9\r\ns=-\r\nc=IN IP4 198.51.100.9\r\nt=0 0\r\n"
    "m=audio 30000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\na=rtcp:30001 IN IP4 198.51.100.9\r\n"
    "a=ptime:20\r\na=sendrecv\r\n"
)


def test_browser_media_reads_ice_dtls_mid_and_usable_candidates() -> None:
    sdp = SdpBody(CHROME_OFFER)
    sect = sdp.sections[0]
    assert is_webrtc(sect)
    media = browser_media(sdp, sect)
    assert (media.ufrag, media.pwd, media.setup, media.mid) == (
        "XToB",
        "AbndINYhA4b2570CZ76KDLgD",
        "actpass",
        "0",
    )
    assert media.fingerprint == FP and media.ssrc == "780308358"
    assert [c.split()[4] for c in media.candidates.kept] == ["192.0.2.2", "fd00::2"]
    assert [why for _, why in media.candidates.dropped] == ["transport tcp", "mDNS name"]
    assert (media.address, media.port) == ("192.0.2.2", 49730)
    fp_hash, fp_value = FP.split()
    assert media.commands("M4:1", "M5:1") == [
        f"M4:1 A {fp_hash} {fp_value} 780308358",
        "M5:1 A XToB AbndINYhA4b2570CZ76KDLgD",
        "M5:1 C 2545838154 1 udp 2122194687 192.0.2.2 49730 typ host generation 0 network-id 1",
        "M5:1 C 2429289722 1 udp 2122265343 fd00::2 44016 typ host generation 0 network-id 2",
    ]


def test_no_prefix_filtering_only_what_cannot_work_is_dropped() -> None:
    # Sippy 2.5 dropped every 192.x outside 192.168/16: 192.0.2.x, 192.88.99.x hosts lost their
    # candidates. Here an address is an address; CGNAT 100.64/10 too.
    cands = [
        "1 1 UDP 2122194687 192.0.2.77 5000 typ host",
        "2 1 udp 2122194687 192.88.99.1 5000 typ host",
        "3 1 udp 1686052607 100.64.0.9 6000 typ srflx raddr 10.0.0.2 rport 5000",
        "4 1 udp 2122194687 10.1.2.3 5000 typ host",
        "5 1 tcp 1518214911 192.0.2.77 9 typ host tcptype active",
        "6 1 udp 2122194687 printer.local 5000 typ host",
        "7 1 udp 2122194687 media.example.com 5000 typ host",
        "8 1 udp 2122194687 192.0.2.77",
        "9 1 udp 2122194687 192.0.2.77 x typ host",
    ]
    kept, dropped = filter_candidates(cands)
    assert kept == cands[:4]
    assert dropped == [
        (cands[4], "transport tcp"),
        (cands[5], "mDNS name"),
        (cands[6], "not an IP address"),
        (cands[7], "malformed"),
        (cands[8], "malformed"),
    ]


def test_address_from_a_candidate_when_c_says_no_address_yet() -> None:
    offer = CHROME_OFFER.replace("c=IN IP4 192.0.2.2", "c=IN IP4 0.0.0.0").replace(
        "m=audio 49730", "m=audio 9"
    )
    sdp = SdpBody(offer)
    media = browser_media(sdp, sdp.sections[0])
    assert (media.address, media.port) == ("192.0.2.2", 49730)
    # The IPv6 candidate first: still the first one of c='s family.
    v4 = "a=candidate:2545838154 1 udp 2122194687 192.0.2.2 49730 typ host generation 0 network-id 1\r\n"
    v6_first = offer.replace(v4, "").replace("a=candidate:3916532434", v4 + "a=candidate:3916532434")
    assert v6_first.index("fd00::2") < v6_first.index("192.0.2.2 49730")
    sdp = SdpBody(v6_first)
    assert browser_media(sdp, sdp.sections[0])[-2:] == ("192.0.2.2", 49730)
    sdp = SdpBody(v6_first.replace("c=IN IP4 0.0.0.0", "c=IN IP6 ::"))
    assert browser_media(sdp, sdp.sections[0])[-2:] == ("fd00::2", 44016)


@pytest.mark.parametrize(
    "cut, why",
    [
        ("a=ice-ufrag:XToB\r\n", "ice-ufrag"),
        ("a=ice-pwd:AbndINYhA4b2570CZ76KDLgD\r\n", "ice-pwd"),
        (f"a=fingerprint:{FP}\r\n", "fingerprint"),
    ],
)
def test_a_browser_section_without_ice_or_dtls_parameters_is_refused(cut: str, why: str) -> None:
    sdp = SdpBody(CHROME_OFFER.replace(cut, ""))
    with pytest.raises(SdpParseError, match=why):
        browser_media(sdp, sdp.sections[0])


def test_setup_roles() -> None:
    for setup, role in (("active", "A"), ("actpass", "A"), ("passive", "P")):
        sdp = SdpBody(CHROME_OFFER.replace("a=setup:actpass", f"a=setup:{setup}"))
        assert browser_media(sdp, sdp.sections[0]).commands("M4:1", "M5:1")[0].startswith(f"M4:1 {role} ")
    sdp = SdpBody(CHROME_OFFER.replace("a=setup:actpass", "a=setup:holdconn"))
    with pytest.raises(SdpParseError, match="holdconn"):
        browser_media(sdp, sdp.sections[0])


def test_session_level_ice_and_dtls_attributes_count() -> None:
    moved = CHROME_OFFER.replace(f"a=fingerprint:{FP}\r\n", "").replace(
        "a=group:BUNDLE 0\r\n", f"a=group:BUNDLE 0\r\na=fingerprint:{FP}\r\n"
    )
    sdp = SdpBody(moved)
    assert browser_media(sdp, sdp.sections[0]).fingerprint == FP


def test_plain_rtp_for_the_sip_side() -> None:
    sdp = SdpBody(CHROME_OFFER)
    to_plain_rtp(sdp, sdp.sections[0])
    text = str(sdp)
    assert "m=audio 49730 RTP/AVP 111 63 9 0 8 13 110 126\r\n" in text
    for gone in (
        "candidate",
        "ice-",
        "fingerprint",
        "setup",
        "mid",
        "BUNDLE",
        "rtcp",
        "msid",
        "ssrc",
        "extmap",
    ):
        assert f"a={gone}" not in text and gone not in text.replace("rtpmap", ""), gone
    assert "a=rtpmap:0 PCMU/8000\r\n" in text and "a=fmtp:111 minptime=10;useinbandfec=1\r\n" in text
    assert "a=sendrecv\r\n" in text


def test_webrtc_answer_for_the_browser() -> None:
    sdp = SdpBody(SIP_ANSWER)
    dtls = DtlsParams("passive", "SHA-256 08:6A")
    ice = IceParams(
        "ouZo", "udBbD0vIrueK4WvSPLGAkhOF", ["7f000001 1 UDP 2113929471 127.0.0.1 27154 typ host"]
    )
    to_webrtc(sdp, sdp.sections[0], "UDP/TLS/RTP/SAVPF", "0", dtls, ice)
    set_bundle(sdp, ["0"])
    text = str(sdp)
    assert text.index("a=group:BUNDLE 0\r\n") < text.index("a=ice-lite\r\n") < text.index("m=audio")
    assert "m=audio 30000 UDP/TLS/RTP/SAVPF 0\r\n" in text
    for line in (
        "a=mid:0",
        "a=ice-ufrag:ouZo",
        "a=ice-pwd:udBbD0vIrueK4WvSPLGAkhOF",
        "a=fingerprint:SHA-256 08:6A",
        "a=setup:passive",
        "a=rtcp-mux",
        "a=candidate:7f000001 1 UDP 2113929471 127.0.0.1 27154 typ host",
        "a=end-of-candidates",
        "a=rtpmap:0 PCMU/8000",
        "a=sendrecv",
    ):
        assert line + "\r\n" in text, line
    assert "a=rtcp:" not in text


def test_module_answers() -> None:
    assert dtls_result("passive SHA-256 08:6A:DB") == DtlsParams("passive", "SHA-256 08:6A:DB")
    got = ice_result(
        "ouZo udBbD0vIrueK4WvSPLGAkhOF c:7f000001%201%20UDP%202113929471%20127.0.0.1%2027154%20typ%20host"
    )
    assert got == IceParams(
        "ouZo", "udBbD0vIrueK4WvSPLGAkhOF", ["7f000001 1 UDP 2113929471 127.0.0.1 27154 typ host"]
    )
    for bad in ("", "-1", "passive SHA-256", "sideways SHA-256 08"):
        with pytest.raises(ValueError):
            dtls_result(bad)
    for bad in ("", "ouZo pwd", "ouZo pwd x:y"):
        with pytest.raises(ValueError):
            ice_result(bad)


def test_no_usable_candidate_is_refused_unless_the_stream_is_rejected() -> None:
    # Only names and TCP: the proxy could pair with none of them, the call would carry no audio.
    lines = [
        x
        for x in CHROME_OFFER.split("\r\n")
        if not x.startswith("a=candidate:") or " tcp " in x or ".local" in x
    ]
    sdp = SdpBody("\r\n".join(lines))
    with pytest.raises(SdpParseError, match=r"without an ICE candidate the proxy can use: .*mDNS name"):
        browser_media(sdp, sdp.sections[0])
    sdp.sections[0].m_header.port = 0  # a stream the browser takes away needs none
    assert browser_media(sdp, sdp.sections[0]).candidates.kept == []
