"""The SDP side of a WebRTC <-> SIP media gateway on RTPproxy (pure functions, no I/O).

A browser's media section (``UDP/TLS/RTP/SAVPF``) carries ICE (RFC 8839: ``ice-ufrag``,
``ice-pwd``, candidates), DTLS-SRTP (RFC 5763: ``fingerprint``, ``setup``), ``rtcp-mux``
(RFC 5761) and BUNDLE mids (RFC 9143). RTPproxy's ``ice_lite`` and ``dtls_gw`` modules terminate
all of that on the proxy, so:

- ``browser_media`` reads what the proxy must be told about the browser (its ICE credentials and
  usable candidates, its certificate fingerprint and DTLS role), refusing a section that lacks any;
- ``to_plain_rtp`` turns such a section into the plain ``RTP/AVP`` one a SIP phone understands;
- ``to_webrtc`` dresses a SIP party's section with the proxy's ICE-lite credentials and
  candidates, its fingerprint and role, ``rtcp-mux`` and the browser's mid, and ``set_bundle``
  puts the session-level ``a=group:BUNDLE`` / ``a=ice-lite`` lines on the body;
- ``dtls_result`` / ``ice_result`` read the proxy's answers to the modules' ``S`` command.
"""

from __future__ import annotations

from typing import Any, NamedTuple, Optional
from urllib.parse import unquote

from sippy.Exceptions.SipParseError import SdpParseError
from sippy.misc import is_ip
from sippy.SdpMediaDescription import a_header

__all__ = (
    "DTLS_TRANSPORTS",
    "BrowserMedia",
    "Candidates",
    "browser_media",
    "filter_candidates",
    "is_webrtc",
    "to_plain_rtp",
    "to_webrtc",
    "set_bundle",
    "dtls_result",
    "ice_result",
    "DtlsParams",
    "IceParams",
)

DTLS_TRANSPORTS = ("udp/tls/rtp/savp", "udp/tls/rtp/savpf")
# Attributes that describe the browser's transport (ICE, DTLS, mux, BUNDLE, its own stream ids,
# header extensions and feedback): meaningless, or harmful, to a plain RTP/AVP peer. Session-level
# ones go too.
WEBRTC_ATTRS = frozenset(
    (
        "ice-ufrag",
        "ice-pwd",
        "ice-options",
        "ice-lite",
        "ice-mismatch",
        "candidate",
        "remote-candidates",
        "end-of-candidates",
        "fingerprint",
        "setup",
        "tls-id",
        "connection",
        "rtcp",
        "rtcp-mux",
        "rtcp-mux-only",
        "rtcp-rsize",
        "rtcp-fb",
        "mid",
        "group",
        "extmap",
        "extmap-allow-mixed",
        "msid",
        "msid-semantic",
        "ssrc",
        "ssrc-group",
        "rid",
        "simulcast",
        "crypto",
    )
)
_DTLS_ROLES = {"active": "A", "actpass": "A", "passive": "P"}


def is_webrtc(sect: Any) -> bool:
    """A DTLS-SRTP media section (what a browser offers)."""
    return sect.m_header.transport.lower() in DTLS_TRANSPORTS


class Candidates(NamedTuple):
    """The browser's candidates split into those the proxy can use and those it cannot, each
    dropped one with why."""

    kept: list[str]
    dropped: list[tuple[str, str]]


def filter_candidates(values: list[str]) -> Candidates:
    """Keep every candidate RTPproxy can reach: UDP with an IP address literal, whatever the
    address (no prefix filtering: a 192.0.2.x or 100.64.x host is as good as any). Dropped: other
    transports (TCP candidates), names (mDNS ``.local`` names that hide a browser's address; the
    proxy does not resolve names) and lines that do not parse (RFC 8839 5.1 grammar)."""
    kept: list[str] = []
    dropped: list[tuple[str, str]] = []
    for value in values:
        parts = value.split()
        if len(parts) < 8 or parts[6] != "typ" or not parts[1].isdigit() or not parts[5].isdigit():
            dropped.append((value, "malformed"))
        elif parts[2].lower() != "udp":
            dropped.append((value, f"transport {parts[2]}"))
        elif not is_ip(parts[4]):
            why = "mDNS name" if parts[4].lower().endswith(".local") else "not an IP address"
            dropped.append((value, why))
        else:
            kept.append(value)
    return Candidates(kept, dropped)


class BrowserMedia(NamedTuple):
    """What the proxy needs to know about the browser's side of one media section."""

    ufrag: str
    pwd: str
    fingerprint: str  # "<hash> <value>" as in a=fingerprint
    setup: str
    ssrc: Optional[str]
    mid: Optional[str]
    candidates: Candidates
    # Where to send before ICE completes: the c=/m= address, or the first usable candidate's
    # when c= is the "no address yet" 0.0.0.0 of an offer without gathered candidates.
    address: str
    port: int

    def commands(self, dtls_mod: str, ice_mod: str) -> list[str]:
        """The ``&&`` subcommands that give the proxy the browser's DTLS and ICE parameters."""
        # The browser's role: active or actpass means it may connect, so we are passive ("A");
        # passive means we must connect ("P").
        dtls = f"{dtls_mod} {_DTLS_ROLES[self.setup]} {self.fingerprint}"
        if self.ssrc is not None:
            dtls += f" {self.ssrc}"
        cmds = [dtls, f"{ice_mod} A {self.ufrag} {self.pwd}"]
        cmds.extend(f"{ice_mod} C {c}" for c in self.candidates.kept)
        return cmds


def _attr(sdp: Any, sect: Any, name: str) -> Optional[str]:
    """The value of attribute ``name`` in the section, else at session level (RFC 8839/8842
    allow either), else None."""
    for headers in (sect.a_headers, sdp.a_headers):
        for a in headers:
            if a.name == name:
                return a.value
    return None


def browser_media(sdp: Any, sect: Any) -> BrowserMedia:
    """Read a browser's media section; SdpParseError names what is missing or wrong."""
    ufrag, pwd = _attr(sdp, sect, "ice-ufrag"), _attr(sdp, sect, "ice-pwd")
    if not ufrag or not pwd:
        raise SdpParseError("WebRTC media section without ice-ufrag/ice-pwd")
    fingerprint = _attr(sdp, sect, "fingerprint")
    if fingerprint is None or len(fingerprint.split()) != 2:
        raise SdpParseError("WebRTC media section without a usable a=fingerprint")
    setup = (_attr(sdp, sect, "setup") or "actpass").strip().lower()
    if setup not in _DTLS_ROLES:
        raise SdpParseError(f"WebRTC media section with a=setup:{setup}")
    ssrc_line = _attr(sdp, sect, "ssrc")
    ssrc = ssrc_line.split(None, 1)[0] if ssrc_line else None
    if ssrc is not None and not ssrc.isdigit():
        ssrc = None
    candidates = filter_candidates([a.value or "" for a in sect.a_headers if a.name == "candidate"])
    if not candidates.kept and sect.m_header.port != 0:
        # The ICE-lite proxy pairs only with candidates it was given: without one the call would
        # connect and carry no audio.
        why = "; ".join(f"{c!r} ({w})" for c, w in candidates.dropped) or "none offered"
        raise SdpParseError(f"WebRTC media section without an ICE candidate the proxy can use: {why}")
    address, port = sect.c_header.addr, sect.m_header.port
    if address in ("0.0.0.0", "::"):
        # The first candidate of c='s family (the U command says the family as the c= line does).
        v6 = sect.c_header.atype == "IP6"
        for cand in candidates.kept:
            parts = cand.split()
            if (":" in parts[4]) == v6:
                address, port = parts[4], int(parts[5])
                break
    return BrowserMedia(
        ufrag.strip(),
        pwd.strip(),
        " ".join(fingerprint.split()),
        setup,
        ssrc,
        _attr(sdp, sect, "mid"),
        candidates,
        address,
        port,
    )


def _strip(headers: list[str]) -> list[str]:
    return [a for a in headers if a.name not in WEBRTC_ATTRS]


def to_plain_rtp(sdp: Any, sect: Any) -> None:
    """What the SIP side sees of a browser's section: ``RTP/AVP`` (the proxy decrypts and
    demultiplexes RTCP to port + 1), none of the ICE/DTLS/BUNDLE attributes, here or at session
    level."""
    sect.m_header.transport = "RTP/AVP"
    sect.a_headers = _strip(sect.a_headers)
    sdp.a_headers = _strip(sdp.a_headers)


class DtlsParams(NamedTuple):
    setup: str
    fingerprint: str


class IceParams(NamedTuple):
    ufrag: str
    pwd: str
    candidates: list[str]


def dtls_result(text: str) -> DtlsParams:
    """``dtls_gw`` ``S`` answer: ``<setup> <hash> <fingerprint>``; ValueError if it is not."""
    parts = text.split()
    if len(parts) != 3 or parts[0] not in ("active", "passive", "actpass"):
        raise ValueError(f"unexpected dtls_gw answer {text!r}")
    return DtlsParams(parts[0], f"{parts[1]} {parts[2]}")


def ice_result(text: str) -> IceParams:
    """``ice_lite`` ``S`` answer: ``<ufrag> <pwd> c:<url-quoted candidate> ...``."""
    parts = text.split()
    if len(parts) < 3 or not all(p.startswith("c:") for p in parts[2:]):
        raise ValueError(f"unexpected ice_lite answer {text!r}")
    return IceParams(parts[0], parts[1], [unquote(p[2:]) for p in parts[2:]])


def to_webrtc(
    sdp: Any, sect: Any, transport: str, mid: Optional[str], dtls: DtlsParams, ice: IceParams
) -> None:
    """What the browser sees of a SIP party's section: the browser's own transport profile, the
    proxy's ICE-lite credentials and candidates, its certificate and DTLS role, ``rtcp-mux`` (RTCP
    comes on the RTP port) and the browser's mid. Whatever ICE/DTLS lines the SIP side had go."""
    sect.m_header.transport = transport
    headers = _strip(sect.a_headers)
    if mid is not None:
        headers.append(a_header(f"mid:{mid}"))
    headers.extend(
        a_header(x)
        for x in (
            f"ice-ufrag:{ice.ufrag}",
            f"ice-pwd:{ice.pwd}",
            f"fingerprint:{dtls.fingerprint}",
            f"setup:{dtls.setup}",
            "rtcp-mux",
        )
    )
    headers.extend(a_header(f"candidate:{c}") for c in ice.candidates)
    headers.append(a_header("end-of-candidates"))
    sect.a_headers = headers


def set_bundle(sdp: Any, mids: list[str]) -> None:
    """Session level of a body for the browser: ``a=ice-lite`` (the proxy only answers checks,
    RFC 8445 2.5) and ``a=group:BUNDLE`` with the mids, as the browser offered them."""
    headers = _strip(sdp.a_headers)
    headers.insert(0, a_header("ice-lite"))
    if mids:
        headers.insert(0, a_header("group:BUNDLE " + " ".join(mids)))
    sdp.a_headers = headers
