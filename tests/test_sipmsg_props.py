"""Property tests: parse(serialise(msg)) is stable, and damaged datagrams raise only SipParseError."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sippy.Exceptions.SipParseError import SipParseError
from sippy.SipRequest import SipRequest
from sippy.SipResponse import SipResponse

SDP = "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0 8\r\n"

# RFC 3261 token characters, less "%" (a URI user part would read it as an escape).
token = st.text(
    alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-.!*_+`'~",
    min_size=1,
    max_size=12,
)
host = st.one_of(
    st.from_regex(r"[a-z][a-z0-9]{0,8}(\.[a-z][a-z0-9]{0,8}){0,2}", fullmatch=True),
    st.ip_addresses(v=4).map(str),
    st.ip_addresses(v=6).map(lambda a: f"[{a}]"),
)
port = st.one_of(st.none(), st.integers(1, 65535))
display = st.one_of(
    st.none(), st.text(alphabet="abcdefghijklmnop XYZ", min_size=1, max_size=10).map(str.strip)
)
extra_value = st.text(alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1, max_size=20)


def hostport(h: str, p: int | None) -> str:
    return h if p is None else f"{h}:{p}"


@st.composite
def messages(draw: st.DrawFn) -> str:
    """A valid request or response with random hosts, tags, names, extra headers and Vias."""
    is_req = draw(st.booleans())
    method = draw(st.sampled_from(["INVITE", "BYE", "OPTIONS", "REGISTER", "INFO"]) | token)
    nvia = draw(st.integers(1, 3))
    vias = [
        f"SIP/2.0/{draw(st.sampled_from(['UDP', 'TCP', 'WSS']))} {hostport(draw(host), draw(port))}"
        f";branch=z9hG4bK{draw(token)}" + draw(st.sampled_from(["", ";rport", ";received=192.0.2.9"]))
        for _ in range(nvia)
    ]
    one_line = draw(st.booleans())
    via_lines = ["Via: " + ", ".join(vias)] if one_line else ["Via: " + v for v in vias]
    name = draw(display)
    fr0m = f"{name + ' ' if name else ''}<sip:{draw(token)}@{draw(host)}>;tag={draw(token)}"
    to = f"<sip:{draw(token)}@{hostport(draw(host), draw(port))}>"
    extras = draw(
        st.lists(st.tuples(st.from_regex(r"X-[A-Za-z]{1,8}", fullmatch=True), extra_value), max_size=3)
    )
    body = draw(st.sampled_from(["", SDP]))
    reason = draw(st.sampled_from(["OK", "Ringing", "Busy Here", ""]))
    lines = [
        f"{method} sip:{draw(token)}@{hostport(draw(host), draw(port))} SIP/2.0"
        if is_req
        else f"SIP/2.0 {draw(st.integers(100, 699))} {reason}",
        *via_lines,
        "Max-Forwards: 70",
        draw(st.sampled_from(["From", "f", "FROM"])) + ": " + fr0m,
        draw(st.sampled_from(["To", "t"])) + ": " + to,
        f"Call-ID: {draw(token)}@{draw(host)}",
        f"CSeq: {draw(st.integers(0, 2**31 - 1))} {method}",
        *(f"{k}: {v}" for k, v in extras),
    ]
    if body:
        lines.append("Content-Type: application/sdp")
    lines.append(f"Content-Length: {len(body)}")
    return "\r\n".join(lines) + "\r\n\r\n" + body


def parse(buf: bytes | str) -> SipRequest | SipResponse:
    text = buf if isinstance(buf, str) else buf.decode("utf-8", "replace")
    return SipResponse(buf) if text.startswith("SIP/2.0 ") else SipRequest(buf)


def touch_everything(msg: SipRequest | SipResponse) -> None:
    """Access every header, the start line and the body, the way layers above would."""
    for hf in list(msg.headers):
        msg.getHFBodys(hf.name)
    for name in ("via", "from", "to", "call-id", "cseq", "max-forwards", "contact", "route", "rseq"):
        try:
            msg.getHFBody(name)
        except SipParseError:
            pass
    if isinstance(msg, SipRequest):
        msg.getRURI()
        msg.getTIds()
    else:
        msg.getSCode()
    msg.getTId(True, True, True)
    if msg.getBody() is not None:
        str(msg.getBody())
    str(msg)
    msg.getCopy()


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(messages())
def test_parse_serialise_is_stable(text: str) -> None:
    msg = parse(text.encode())
    assert str(msg) == text  # untouched: byte for byte
    touch_everything(msg)
    once = str(msg)
    again = parse(once.encode())
    touch_everything(again)
    assert str(again) == once
    assert again.getTId(True, True, True) == msg.getTId(True, True, True)
    assert [str(v) for v in again.getHFBodys("via")] == [str(v) for v in msg.getHFBodys("via")]


@st.composite
def damaged(draw: st.DrawFn) -> bytes:
    """A valid message with bytes inserted, deleted, flipped, or lines dropped or duplicated."""
    data = bytearray(draw(messages()).encode())
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["insert", "delete", "flip", "dropline", "dupline", "truncate"]))
        pos = draw(st.integers(0, max(0, len(data) - 1)))
        if kind == "insert":
            data[pos:pos] = draw(
                st.sampled_from(
                    [
                        b":",
                        b",",
                        b";",
                        b"\r\n",
                        b"\n",
                        b" ",
                        b"\t",
                        b"<",
                        b">",
                        b'"',
                        b"[",
                        b"]",
                        b"\x00",
                        b"\xff",
                        b"=",
                        b"@",
                    ]
                )
            )
        elif kind == "delete" and data:
            del data[pos : pos + draw(st.integers(1, 5))]
        elif kind == "flip" and data:
            data[pos] = draw(st.integers(0, 255))
        elif kind in ("dropline", "dupline"):
            lines = bytes(data).split(b"\r\n")
            i = draw(st.integers(0, len(lines) - 1))
            if kind == "dropline":
                del lines[i]
            else:
                lines.insert(i, lines[i])
            data = bytearray(b"\r\n".join(lines))
        elif kind == "truncate":
            del data[pos:]
    return bytes(data)


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(damaged())
def test_damaged_messages_raise_only_sip_parse_error(buf: bytes) -> None:
    try:
        msg = parse(buf)
        touch_everything(msg)
    except SipParseError as e:
        assert e.reason
        if e.sip_response is not None:
            # An error answer must itself be a sendable, parseable response.
            resp = SipResponse(str(e.sip_response).encode())
            assert resp.getSCodeNum() in (400, 505)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300))
def test_random_bytes_raise_only_sip_parse_error(buf: bytes) -> None:
    for cls in (SipRequest, SipResponse):
        try:
            touch_everything(cls(buf))
        except SipParseError:
            pass
