"""RFC 3261 18.3 framing of a SIP byte stream (sippy.Tcp_server.StreamFramer): pure, no sockets."""

from __future__ import annotations

from sippy.Tcp_server import PING, FrameError, StreamFramer


def _req(body: str = "", cl: str | None = None, name: str = "Content-Length") -> bytes:
    length = str(len(body.encode())) if cl is None else cl
    return (
        "OPTIONS sip:bob@127.0.0.1 SIP/2.0\r\n"
        "Via: SIP/2.0/TCP 127.0.0.1:5070;branch=z9hG4bK1\r\n"
        "From: <sip:a@127.0.0.1>;tag=1\r\nTo: <sip:bob@127.0.0.1>\r\n"
        "Call-ID: c1\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\n"
        f"{name}: {length}\r\n\r\n{body}"
    ).encode()


def test_two_messages_in_one_read() -> None:
    a, b = _req("hello"), _req("x" * 30)
    assert StreamFramer().feed(a + b) == [a, b]


def test_one_message_across_three_reads() -> None:
    msg = _req("v=0\r\n" * 20)
    f = StreamFramer()
    assert f.feed(msg[:10]) == []
    assert f.feed(msg[10:150]) == []
    assert f.feed(msg[150:]) == [msg]
    assert f.buffered == 0


def test_body_longer_than_data_sent_waits() -> None:
    msg = _req("short", cl="500")
    f = StreamFramer()
    assert f.feed(msg) == []
    assert f.buffered == len(msg)


def test_compact_content_length_and_bytes_after_kept() -> None:
    msg = _req("abc", name="l")
    f = StreamFramer()
    assert f.feed(msg + b"INV") == [msg]
    assert f.buffered == 3


def test_crlf_ping_and_stray_crlfs() -> None:
    msg = _req()
    f = StreamFramer()
    assert f.feed(b"\r\n\r\n") == [PING]
    assert f.feed(b"\r\n") == []  # half a ping, or a CRLF before a start line
    assert f.feed(b"\r\n" + msg) == [PING, msg]
    assert f.feed(b"\r\n" + msg) == [msg]


def test_missing_content_length_is_400_then_nothing() -> None:
    f = StreamFramer()
    frames = f.feed(_req(name="X-Length") + _req())
    assert len(frames) == 1 and isinstance(frames[0], FrameError)
    assert (frames[0].scode, frames[0].reason) == (400, "Missing Content-Length")
    assert frames[0].head is not None and frames[0].head.startswith(b"OPTIONS ")
    assert f.failed and f.feed(_req()) == []


def test_bad_and_conflicting_content_length() -> None:
    (err,) = StreamFramer().feed(_req(cl="ten"))
    assert isinstance(err, FrameError) and err.scode == 400
    two = _req().replace(b"Content-Length: 0\r\n", b"Content-Length: 0\r\nl: 5\r\n")
    (err,) = StreamFramer().feed(two)
    assert isinstance(err, FrameError) and err.reason == "Conflicting Content-Length"


def test_too_large_is_413() -> None:
    f = StreamFramer(max_message_size=300)
    (err,) = f.feed(_req("x" * 400)[: len(_req()) + 10])  # the head says so before the body arrives
    assert isinstance(err, FrameError) and (err.scode, err.head is not None) == (413, True)
    # A head that never ends is cut at the limit too, with nothing to answer from.
    (err,) = StreamFramer(max_message_size=300).feed(b"INVITE sip:x SIP/2.0\r\nX: " + b"y" * 400)
    assert isinstance(err, FrameError) and (err.scode, err.head) == (413, None)


def test_garbage_without_head_end_waits_within_limit() -> None:
    f = StreamFramer()
    assert f.feed(b"garbage\r\n") == []
    assert not f.failed
