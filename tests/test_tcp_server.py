"""Tcp_server's connections (no sockets: Twisted's MemoryReactorClock and StringTransport) with a
real transaction manager: responses on the request's connection, a connection opened on demand
and reused, a failed connect -> 503, pings, bad framing -> 400 and close, idle close."""

from __future__ import annotations

from typing import Any

from twisted.internet.error import ConnectionRefusedError
from twisted.internet.testing import MemoryReactorClock, StringTransport
from twisted.python.failure import Failure

from sippy.SipTransactionManager import SipTransactionManager
from sippy.Tcp_server import Tcp_server, Tcp_server_opts
from tests.test_transports import FakeUdp, Responses, out_request

PEER = ("127.0.0.1", 40000)
CALLEE = ("127.0.0.1", 5080)


def request(method: str = "OPTIONS", body: str = "", branch: str = "z9hG4bK-t1", cl: bool = True) -> bytes:
    text = (
        f"{method} sip:bob@127.0.0.1 SIP/2.0\r\n"
        f"Via: SIP/2.0/TCP 127.0.0.1:40000;branch={branch}\r\n"
        "Max-Forwards: 70\r\nFrom: <sip:a@127.0.0.1>;tag=f1\r\nTo: <sip:bob@127.0.0.1>\r\n"
        f"Call-ID: tcp-1\r\nCSeq: 1 {method}\r\n"
    )
    if cl:
        text += f"Content-Length: {len(body)}\r\n"
    return (text + "\r\n" + body).encode()


def mk(**opts: Any) -> tuple[Tcp_server, SipTransactionManager, MemoryReactorClock, list[Any]]:
    reactor = MemoryReactorClock()
    got: list[Any] = []

    def req_cb(req: Any, t: Any) -> tuple:
        got.append(req)
        return (req.genResponse(200, "OK"), None, None)

    tm = SipTransactionManager({}, req_cb, transport=FakeUdp(), reactor=reactor)
    server = Tcp_server(
        {},
        Tcp_server_opts(("127.0.0.1", 5060), tm.handleIncoming, error_callback=tm.transportError, **opts),
        reactor,
    )
    tm.registerTransport(server)
    return server, tm, reactor, got


def accept(
    server: Tcp_server, reactor: MemoryReactorClock, peer: tuple[str, int] = PEER
) -> tuple[Any, StringTransport]:
    factory = reactor.tcpServers[0][1]
    proto = factory.buildProtocol(type("A", (), {"host": peer[0], "port": peer[1]})())
    tr = StringTransport(peerAddress=None)
    proto.makeConnection(tr)
    return proto, tr


def test_request_answered_on_its_connection_two_in_one_segment() -> None:
    server, _tm, reactor, got = mk()
    proto, tr = accept(server, reactor)
    proto.dataReceived(request(branch="z9hG4bK-a") + request(branch="z9hG4bK-b")[:50])
    proto.dataReceived(request(branch="z9hG4bK-b")[50:])
    assert len(got) == 2
    out = tr.value().decode()
    assert out.count("SIP/2.0 200 OK") == 2


def test_message_larger_than_a_datagram_bound_is_taken() -> None:
    server, tm, reactor, got = mk()
    proto, tr = accept(server, reactor)
    body = "a=x-pad:" + "y" * 20000 + "\r\n"
    assert len(body) > tm.max_message_size
    proto.dataReceived(request(body=body))
    assert len(got) == 1 and tr.value().startswith(b"SIP/2.0 200 OK")


def test_ping_answered_with_crlf() -> None:
    server, _tm, reactor, got = mk()
    proto, tr = accept(server, reactor)
    proto.dataReceived(b"\r\n\r\n")
    assert tr.value() == b"\r\n" and not got


def test_missing_content_length_400_and_close_then_new_connection_works() -> None:
    server, _tm, reactor, got = mk()
    proto, tr = accept(server, reactor)
    proto.dataReceived(request(cl=False))
    assert tr.value().startswith(b"SIP/2.0 400 Missing Content-Length\r\n") and tr.disconnecting
    assert not got and server.conn_stats.closed["framing"] == 1
    proto.connectionLost()
    assert server.connections == {}
    proto2, tr2 = accept(server, reactor, ("127.0.0.1", 40001))
    proto2.dataReceived(request())
    assert len(got) == 1 and tr2.value().startswith(b"SIP/2.0 200 OK")


def test_too_large_413_and_close() -> None:
    server, _tm, reactor, got = mk(max_message_size=400)
    proto, tr = accept(server, reactor)
    proto.dataReceived(request(body="x" * 500)[:300])
    assert tr.value().startswith(b"SIP/2.0 413 ") and tr.disconnecting and not got


def test_outgoing_connection_opened_on_demand_reused_and_answers_read() -> None:
    server, tm, reactor, _got = mk()
    responses = Responses()
    tm.newTransaction(out_request("OPTIONS", ruri="sip:bob@127.0.0.1:5080;transport=tcp"), responses)
    tm.newTransaction(out_request("OPTIONS", ruri="sip:bob@127.0.0.1:5080;transport=tcp"), responses)
    assert [(h, p) for h, p, *_ in reactor.tcpClients] == [CALLEE]
    factory = reactor.tcpClients[0][2]
    proto = factory.buildProtocol(None)
    tr = StringTransport()
    proto.makeConnection(tr)
    sent = tr.value().decode()
    assert sent.count("OPTIONS sip:bob@127.0.0.1:5080;transport=tcp SIP/2.0") == 2
    assert "Via: SIP/2.0/TCP 127.0.0.1:5060;" in sent
    # The answer to the first comes back on that connection.
    head, _, _ = sent.partition("\r\n\r\n")
    resp = "SIP/2.0 200 OK\r\n" + "\r\n".join(
        h for h in head.split("\r\n")[1:] if h.split(":")[0] in ("Via", "From", "To", "Call-ID", "CSeq")
    )
    proto.dataReceived((resp + "\r\nContent-Length: 0\r\n\r\n").encode())
    assert responses.codes() == [200]


def test_failed_connect_is_a_503_at_once() -> None:
    server, tm, reactor, _got = mk()
    responses = Responses()
    tm.newTransaction(out_request("INVITE", ruri="sip:bob@127.0.0.1:5080;transport=tcp"), responses)
    _host, _port, factory, *_ = reactor.tcpClients[0]
    factory.clientConnectionFailed(None, Failure(ConnectionRefusedError()))
    reactor.advance(0)
    assert responses.codes() == [503]
    assert server.connections == {} and not tm.tclient


def test_idle_connection_closed() -> None:
    server, _tm, reactor, _got = mk(idle_timeout=30.0)
    proto, tr = accept(server, reactor)
    reactor.advance(20)
    proto.dataReceived(b"\r\n\r\n")
    reactor.advance(20)
    assert not tr.disconnecting
    reactor.advance(11)
    assert tr.disconnecting and server.conn_stats.closed["idle"] == 1


def test_connections_per_address_limit() -> None:
    server, _tm, reactor, _got = mk(max_connections_per_address=2)
    factory = reactor.tcpServers[0][1]
    addr = type("A", (), {"host": "127.0.0.1", "port": 1})
    assert factory.buildProtocol(addr()) is not None
    addr.port = 2
    assert factory.buildProtocol(addr()) is not None
    addr.port = 3
    assert factory.buildProtocol(addr()) is None


def test_status_line_counts_connections_by_transport() -> None:
    from sippy.B2BOperations import B2BOperations

    server, _tm, reactor, _got = mk()
    proto, _tr = accept(server, reactor)
    accept(server, reactor, ("127.0.0.1", 40001))
    proto.dataReceived(request(cl=False))
    proto.connectionLost()
    status = B2BOperations({"_stream_servers": [server]}, None, reactor=reactor)._streamStatus()
    assert status == "; TCP connections: 1 open, 2 since start, closed: framing 1"


class Lines:
    """A SipLogger's write(), keeping the lines."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def write(self, text: str, level: int = 0) -> None:
        self.lines.append(text)


def test_each_limit_logged_once_counted_and_summarised() -> None:
    """Total and per-address connections, message size: the first refusal of each limit is logged
    (named as its flag), the next ones of the minute only counted, then summarised."""
    log = Lines()
    server, _tm, reactor, _got = mk(max_connections=3, max_connections_per_address=2, max_message_size=400)
    server.global_config = {"_sip_logger": log}
    factory = reactor.tcpServers[0][1]

    def connect(host: str, port: int) -> Any:
        return factory.buildProtocol(type("A", (), {"host": host, "port": port})())

    taken = [connect("127.0.0.1", 1), connect("127.0.0.1", 2)]
    assert connect("127.0.0.1", 3) is None and connect("127.0.0.1", 4) is None  # per address
    taken.append(connect("127.0.0.2", 1))
    assert None not in taken
    assert connect("127.0.0.3", 1) is None and connect("127.0.0.4", 1) is None  # in all
    for proto in taken:
        proto.connectionLost()
    for port in (10, 11):
        proto, tr = accept(server, reactor, ("127.0.0.9", port))
        proto.dataReceived(request(body="x" * 500))
        assert tr.value().startswith(b"SIP/2.0 413 ") and tr.disconnecting
    assert log.lines == [
        "Tcp_server: tcp:127.0.0.1:3: limit tcp_max_connections_per_address: "
        "2 connections open from 127.0.0.1, refused",
        "Tcp_server: tcp:127.0.0.3:1: limit tcp_max_connections: 3 connections open, refused",
        "Tcp_server: tcp:127.0.0.9:10: limit tcp_max_message_size: over 400 bytes: "
        "413 Message Too Large, connection closed",
    ]
    assert server.conn_stats.closed["limit"] == 6
    reactor.advance(60)
    assert sorted(log.lines[3:]) == [
        "tcp_max_connections: 1 more like this in the last 60 s",
        "tcp_max_connections_per_address: 1 more like this in the last 60 s",
        "tcp_max_message_size: 1 more like this in the last 60 s",
    ]
