"""Calls between a SIP-over-WebSocket client (a real WebSocket client over TLS, speaking SIP by
hand as a browser would: `*.invalid` Via and Contact hosts, RFC 7118) and a SIPp UAS over UDP,
through b2bua_radius -f -u -s with --wss_socket."""

from __future__ import annotations

import os
import re
import socket
import time
import uuid
from pathlib import Path
from typing import Any, Optional

import pytest

from tests.conftest import free_tcp_port
from tests.sipp_util import Sipp
from tests.test_b2bua_radius_ops import B2bua, cli_command, read_text, wait_for
from tests.test_hostile_flood import T1, leftovers
from tests.wss_util import make_cert, ws_connect

SDP = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n"


def _header(msg: str, name: str) -> Optional[str]:
    m = re.search(rf"^{name}:\s*(.*?)\r?$", msg, re.M | re.I)
    return m.group(1) if m else None


class WsPhone:
    """A SIP UA on one WebSocket connection, written the way JsSIP writes its messages."""

    def __init__(self, ws: Any, b2b_port: int) -> None:
        self.ws = ws
        self.b2b_port = b2b_port
        self.host = uuid.uuid4().hex[:12] + ".invalid"
        self.call_id = uuid.uuid4().hex
        self.tag = uuid.uuid4().hex[:8]
        self.to = f"<sip:1234@127.0.0.1:{b2b_port}>"
        self.remote_target: Optional[str] = None
        self.received: list[str] = []

    def _request(self, method: str, ruri: str, cseq: int, body: str = "") -> str:
        lines = [
            f"{method} {ruri} SIP/2.0",
            f"Via: SIP/2.0/WSS {self.host};branch=z9hG4bK{uuid.uuid4().hex[:10]}",
            "Max-Forwards: 70",
            f"From: <sip:alice@example.com>;tag={self.tag}",
            f"To: {self.to}",
            f"Call-ID: {self.call_id}",
            f"CSeq: {cseq} {method}",
            f"Contact: <sip:alice@{self.host};transport=ws>",
        ]
        if body:
            lines.append("Content-Type: application/sdp")
        lines.append(f"Content-Length: {len(body)}")
        return "\r\n".join(lines) + "\r\n\r\n" + body

    def recv(self, timeout: float = 10.0) -> str:
        msg = self.ws.recv(timeout=timeout)
        msg = msg.decode() if isinstance(msg, bytes) else msg
        self.received.append(msg)
        if not msg.startswith("SIP/2.0"):
            self._answer(msg)
        return msg

    def _answer(self, req: str) -> None:
        """200 OK to an in-dialog request (re-INVITE with our SDP, BYE)."""
        heads = [
            f"{n}: {v}"
            for n in ("Via", "From", "To", "Call-ID", "CSeq")
            for v in re.findall(rf"^{n}:\s*(.*?)\r?$", req, re.M | re.I)
        ]
        body = SDP if req.startswith("INVITE") else ""
        extra = (
            [f"Contact: <sip:alice@{self.host};transport=ws>", "Content-Type: application/sdp"]
            if body
            else []
        )
        self.ws.send(
            "\r\n".join(["SIP/2.0 200 OK", *heads, *extra, f"Content-Length: {len(body)}"])
            + "\r\n\r\n"
            + body
        )

    def wait(self, start: str, timeout: float = 10.0) -> str:
        deadline = time.monotonic() + timeout
        while True:
            msg = self.recv(max(0.1, deadline - time.monotonic()))
            if msg.startswith(start):
                return msg

    def call(self) -> list[str]:
        """INVITE until 200, then ACK; the status lines seen."""
        self.ws.send(self._request("INVITE", f"sip:1234@127.0.0.1:{self.b2b_port}", 1, SDP))
        codes = []
        while True:
            msg = self.recv()
            if msg.startswith("SIP/2.0"):
                codes.append(msg.split("\r\n", 1)[0])
                if int(msg.split()[1]) >= 200:
                    break
        assert codes[-1].startswith("SIP/2.0 200"), codes
        final = self.received[-1]
        self.to = _header(final, "To")
        self.remote_target = re.search(r"<([^>]*)>", _header(final, "Contact")).group(1)
        self.ws.send(self._request("ACK", self.remote_target, 1))
        return codes

    def bye(self) -> str:
        self.ws.send(self._request("BYE", self.remote_target, 2))
        return self.wait("SIP/2.0")


@pytest.fixture
def setup(tmp_path):
    """(start b2bua with a UAS scenario) -> (b2bua, sipp, wss port); all killed at the end."""
    started: list = []
    certfile, keyfile = make_cert(tmp_path)

    def start(scenario: str, **sipp_kwargs: Any) -> tuple[B2bua, Sipp, int]:
        uas = Sipp(scenario, None, timeout=20.0, **sipp_kwargs)
        started.append(uas)
        uas.start()
        wss_port = free_tcp_port()
        home = tmp_path / f"b2bua{len(started)}"  # a test may run more than one
        home.mkdir()
        b2b = B2bua(home, uas.local_port, extra=(f"--wss_socket=127.0.0.1:{wss_port}:{certfile}:{keyfile}",))
        started.append(b2b)
        b2b.start()
        return b2b, uas, wss_port

    yield start
    for item in started:
        if isinstance(item, Sipp):
            item.cleanup()
        else:
            item.kill()


def test_ws_caller_hangs_up(setup):
    b2b, uas, wss_port = setup("uas")
    with ws_connect(wss_port) as ws:
        phone = WsPhone(ws, b2b.port)
        codes = phone.call()
        assert [c.split()[1] for c in codes] == ["100", "180", "200"]
        calls = b2b.calls()
        assert re.search(r"wss:127\.0\.0\.1:\d+ ", calls), calls
        assert phone.bye().startswith("SIP/2.0 200")
    res = uas.wait()
    assert res.returncode == 0, res.describe()


def test_udp_side_reinvite_and_bye_reach_ws_client(setup):
    b2b, uas, wss_port = setup(os.path.join("simple_uas_reinvite.xml"))
    with ws_connect(wss_port) as ws:
        phone = WsPhone(ws, b2b.port)
        phone.call()
        reinvite = phone.wait("INVITE ")
        # To our Contact, its host replaced by the name of our connection (RFC 7118 section 5).
        assert re.fullmatch(r"sip:alice@[0-9a-f]+\.invalid;transport=ws", reinvite.split()[1]), reinvite
        assert "a=sendonly" in reinvite
        phone.wait("ACK ")
        assert "a=sendrecv" in phone.wait("INVITE ")  # and back off hold
        phone.wait("ACK ")
        assert phone.bye().startswith("SIP/2.0 200")
    res = uas.wait()
    assert res.returncode == 0, res.describe()


def test_ws_closed_mid_call_sends_bye_to_udp_peer(setup):
    b2b, uas, wss_port = setup("aaa_uas.xml")
    with ws_connect(wss_port) as ws:
        WsPhone(ws, b2b.port).call()
        assert "Connected" in b2b.calls()
    # The connection is gone: the UAS gets BYE and its scenario (which waits for it) completes.
    res = uas.wait()
    assert res.returncode == 0, res.describe()
    assert uas.result.received("BYE")
    # Nothing waits on the dead connection: no server transaction, no BYE left (the UDP one ends
    # by Timer K), only the UDP INVITE's in its RFC 6026 Timer M; both legs Disconnected (the
    # call lingers godead_timeout, as any other).
    assert wait_for(lambda: _only_udp_invites_left(b2b), 10), cli_command(b2b.sock, "lt\n")
    calls = b2b.calls()
    assert re.search(r": \S+ \(Disconnected wss:\S+ alice 1234 -> Disconnected ", calls), calls


def _only_udp_invites_left(b2b: B2bua) -> bool:
    """`lt`: no server transaction, and no client one but the INVITE to the UDP callee (whose
    Timer M / D, 32 s over UDP, keeps it to absorb retransmissions)."""
    server, client = cli_command(b2b.sock, "lt\n").split("In-memory client transactions:\n")
    return server == "In-memory server transactions:\n" and all(
        " INVITE " in line for line in client.splitlines()
    )


def _drop(ws: Any) -> None:
    """Close the connection as a crashed browser or a lost network would: no close frame."""
    ws.socket.shutdown(socket.SHUT_RDWR)
    ws.socket.close()


def _server_connections(port: int) -> list[str]:
    """The B2BUA's own TCP sockets on its WSS port that are not its listener (the kernel's table;
    TIME_WAIT is the client's side)."""
    found = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            local, state = fields[1], fields[3]
            if int(local.rsplit(":", 1)[1], 16) == port and state not in ("0A", "06"):
                found.append(line)
    return found


def test_ws_closed_calls_leave_nothing_once_timers_end(setup):
    """A connection dropped mid-call and one dropped while ringing (two B2BUAs, side by side):
    once the lingering ends (the finished call's godead_timeout, 32 s; the UDP INVITE client
    transaction's Timer M / D, 64*T1) `l` and `lt` list nothing and no connection is left open."""
    b2b, uas, wss_port = setup("aaa_uas.xml")
    b2b_ring, uas_ring, wss_ring = setup("aaa_uas_ring.xml")
    with ws_connect(wss_port) as ws, ws_connect(wss_ring) as ws_ring:
        WsPhone(ws, b2b.port).call()
        assert "Connected" in b2b.calls()
        phone = WsPhone(ws_ring, b2b_ring.port)
        ws_ring.send(phone._request("INVITE", f"sip:1234@127.0.0.1:{b2b_ring.port}", 1, SDP))
        phone.wait("SIP/2.0 180")
        assert _server_connections(wss_port) and _server_connections(wss_ring)
        _drop(ws)
        _drop(ws_ring)
    dropped = time.monotonic()
    res = uas.wait()
    assert res.returncode == 0 and res.received("BYE"), res.describe()
    res = uas_ring.wait()
    assert res.returncode == 0 and res.received("CANCEL"), res.describe()
    # Both processes hold the call and the UDP INVITE until now (nothing ends early) ...
    assert "Total: 1\n" in b2b.calls() and "Total: 1\n" in b2b_ring.calls()
    left: dict[str, Any] = {}

    def empty() -> bool:
        for name, b, port in (("mid-call", b2b, wss_port), ("ringing", b2b_ring, wss_ring)):
            left[name] = (*leftovers(b), _server_connections(port))
        return all(v == ("", "", []) for v in left.values())

    # ... and nothing once 64*T1 has passed (plus a margin for a loaded machine).
    assert wait_for(empty, 64 * T1 + 13 - (time.monotonic() - dropped)), left
    waited = time.monotonic() - dropped
    assert waited > 30, waited  # the lingering is real: the poll did not pass on a half-filled table
    for b in (b2b, b2b_ring):
        assert "Traceback" not in read_text(b.log), read_text(b.log)


def test_udp_side_hangs_up(setup):
    b2b, uas, wss_port = setup("simple_uas_bye.xml")
    with ws_connect(wss_port) as ws:
        phone = WsPhone(ws, b2b.port)
        phone.call()
        bye = phone.wait("BYE ")  # answered 200 by the phone
        assert re.fullmatch(r"sip:alice@[0-9a-f]+\.invalid;transport=ws", bye.split()[1]), bye
    res = uas.wait()
    assert res.returncode == 0, res.describe()


def test_ws_closed_while_ringing_cancels_udp_leg(setup):
    b2b, uas, wss_port = setup("aaa_uas_ring.xml")
    with ws_connect(wss_port) as ws:
        phone = WsPhone(ws, b2b.port)
        ws.send(phone._request("INVITE", f"sip:1234@127.0.0.1:{b2b.port}", 1, SDP))
        phone.wait("SIP/2.0 180")
    # The caller is gone before the answer: the callee gets CANCEL, the INVITE server
    # transaction on the dead connection ends at once.
    res = uas.wait()
    assert res.returncode == 0, res.describe()
    assert res.received("CANCEL")
    assert wait_for(lambda: _only_udp_invites_left(b2b), 10), cli_command(b2b.sock, "lt\n")


def test_garbage_answered_or_dropped_and_server_keeps_serving(setup):
    b2b, uas, wss_port = setup("uas")
    with ws_connect(wss_port) as ws:
        ws.send(b"\x00\x01 not SIP at all \xff")  # nothing to answer: dropped
        # A request whose From is broken: 400 on the same connection.
        ws.send(
            "OPTIONS sip:1234@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/WSS x.invalid;branch=z9hG4bKbad1\r\n"
            "From: <<<\r\nTo: <sip:1234@127.0.0.1>\r\nCall-ID: bad1\r\nCSeq: 1 OPTIONS\r\n"
            "Max-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
        )
        answer = ws.recv(timeout=10)
        assert answer.startswith("SIP/2.0 400"), answer
        phone = WsPhone(ws, b2b.port)  # the same connection still carries a call
        assert phone.call()[-1].startswith("SIP/2.0 200")
        assert phone.bye().startswith("SIP/2.0 200")
    res = uas.wait()
    assert res.returncode == 0, res.describe()


def test_ws_closed_mid_call_accounting_stop_for_both_legs(tmp_path):
    """With RADIUS accounting (-A 1, a real FreeRADIUS): the call a closed connection ends is
    billed like any other, one Stop per leg, connected for the time it lasted."""
    from tests.radius_util import running_freeradius
    from tests.test_b2bua_radius_aaa import B2bua as AaaB2bua
    from tests.test_b2bua_radius_aaa import by_leg, radconf, wait_records

    certfile, keyfile = make_cert(tmp_path)
    wss_port = free_tcp_port()
    uas = Sipp("aaa_uas.xml", None, timeout=20.0)
    try:
        uas.start()
        with running_freeradius() as radius:
            flags = ["-u", "-s", f"127.0.0.1:{uas.local_port}", "-A", "1"]
            flags.append(f"--wss_socket=127.0.0.1:{wss_port}:{certfile}:{keyfile}")
            with AaaB2bua(tmp_path, radconf(radius, tmp_path), flags) as b2b:
                with ws_connect(wss_port) as ws:
                    phone = WsPhone(ws, b2b.port)
                    phone.call()
                    time.sleep(1.1)  # a call that lasted a second
                res = uas.wait()
                assert res.returncode == 0, res.describe()
                legs = by_leg(wait_records(radius, phone.call_id, 2))
    finally:
        uas.cleanup()
    assert sorted(legs) == [("answer", "Stop"), ("originate", "Stop")], legs
    for (_origin, _), (rec,) in legs.items():
        assert 1 <= int(rec["Acct-Session-Time"][0]) <= 3, rec
