"""Rtp_proxy_session's commands and SDP rewriting, with a stand-in client that answers at once
(the real RTPproxy is in tests/test_b2bua_radius_rtpproxy.py)."""

from __future__ import annotations

from typing import Any, Optional

import pytest

from sippy.Exceptions.RtpProxyError import RtpProxyError
from sippy.MsgBody import MsgBody
from sippy.Rtp_proxy.session import Rtp_proxy_session


class Client:
    """Answers every U with a port and address, records every command."""

    def __init__(
        self, name: str = "p1", online: bool = True, answer: Optional[str] = "40000 198.51.100.7"
    ) -> None:
        self.name = name
        self.online = online
        self.answer = answer
        self.tnot_supported = True
        self.notify_socket: Optional[str] = "unix:/run/b2bua.sock"
        self.proxy_address = "198.51.100.1"
        self.sent: list[str] = []

    def send_command(self, cmd: str, cb: Any = None, *params: Any) -> None:
        self.sent.append(cmd)
        if cb is not None:
            cb(self.answer if cmd.startswith("U") else "0", *params)

    def __str__(self) -> str:
        return self.name


OFFER = (
    "v=0\r\no=alice 7 1 IN IP4 192.0.2.10\r\ns=-\r\nc=IN IP4 192.0.2.10\r\nt=0 0\r\n"
    "m=audio 5004 RTP/AVP 0\r\na=rtcp:5005 IN IP4 192.0.2.10\r\n"
    "m=video 5006 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\n"
)


def relay(session: Rtp_proxy_session, side: str, text: str) -> str:
    out: list[Any] = []
    getattr(session, f"on_{side}_sdp_change")(MsgBody(text), out.append)
    assert len(out) == 1 and out[0] is not None
    return str(out[0])


def test_u_per_media_line_for_each_side_then_d_with_the_creating_tag() -> None:
    client = Client()
    s = Rtp_proxy_session({"_rtp_proxy_clients": [client]}, "cid", "ft", "tt", notify_tag="r 12")
    out = relay(s, "caller", OFFER)
    assert client.sent == [
        "U cid-0 192.0.2.10 5004 ft unix:/run/b2bua.sock r%2012%200",
        "U cid-1 192.0.2.10 5006 ft unix:/run/b2bua.sock r%2012%201",
    ]
    assert "c=IN IP4 198.51.100.7\r\n" in out and "192.0.2.10" not in out
    assert "m=audio 40000 RTP/AVP 0\r\n" in out and "a=rtcp:40001 IN IP4 198.51.100.7\r\n" in out
    assert "o=alice" not in out  # our own origin line
    client.sent.clear()
    relay(s, "callee", OFFER.replace("192.0.2.10", "203.0.113.5"))
    assert client.sent[0] == "U cid-0 203.0.113.5 5004 tt ft unix:/run/b2bua.sock r%2012%200"
    client.sent.clear()
    s.media_timeout_index = 0  # the proxy ended line 0 itself
    s.delete()
    s.delete()
    assert client.sent == ["D cid-1 ft"]


def test_late_offer_creates_from_the_callee_side_and_deletes_with_its_tag() -> None:
    client = Client()
    s = Rtp_proxy_session({"_rtp_proxy_clients": [client]}, "cid", "ft", "tt")
    client.notify_socket = None
    s.notify_socket = None
    relay(s, "callee", OFFER)
    client.sent.clear()
    s.delete()
    assert client.sent == ["D cid-0 tt", "D cid-1 tt"]


def test_ipv6_hold_and_failover_reset() -> None:
    client = Client(answer="40000 2001:db8::7 6")
    s = Rtp_proxy_session({"_rtp_proxy_clients": [client]}, "cid", "ft", "tt")
    s.notify_socket = None
    v6 = (
        "v=0\r\no=- 1 1 IN IP6 ::1\r\ns=-\r\nc=IN IP6 ::\r\nt=0 0\r\nm=audio 5004 RTP/AVP 0\r\na=sendrecv\r\n"
    )
    out = relay(s, "callee", v6)
    assert client.sent == ["U6 cid-0 :: 5004 tt"]
    assert "c=IN IP6 2001:db8::7\r\n" in out and "a=sendonly" in out and "a=sendrecv" not in out
    client.sent.clear()
    s.callee_reset()
    assert client.sent == ["U6 cid-0 ::1 0 tt ft"]


def test_an_error_or_silence_fails_the_update() -> None:
    for answer in ("E71", None, "0"):
        client = Client(answer=answer)
        s = Rtp_proxy_session({"_rtp_proxy_clients": [client]}, "cid")
        out: list[Any] = []
        s.on_caller_sdp_change(MsgBody(OFFER), out.append)
        assert out == [None]  # once, though two lines failed
        assert s.last_error == ("no answer" if answer is None else repr(answer))


def test_only_online_proxies_are_chosen() -> None:
    up = Client("up")
    chosen = {
        str(Rtp_proxy_session({"_rtp_proxy_clients": [Client("down", online=False), up]}).rtp_proxy_client)
        for _ in range(20)
    }
    assert chosen == {"up"}
    assert Rtp_proxy_session({"rtp_proxy_client": up}).rtp_proxy_client is up  # Sippy's single proxy
    with pytest.raises(RtpProxyError, match=r"no RTPproxy online \(a, b\)"):
        Rtp_proxy_session({"_rtp_proxy_clients": [Client("a", online=False), Client("b", online=False)]})
