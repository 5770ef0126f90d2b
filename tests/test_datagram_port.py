"""sippy.DatagramPort against real loopback sockets: datagrams arrive whole and each one keeps its
own bytes although one buffer is read into, and reading one no longer asks for a 64 KiB block
(what made a soak's heap grow, bench/soak.py)."""

from __future__ import annotations

import select
import socket
import time
import tracemalloc
from typing import Any

import pytest
from twisted.internet import error, reactor, udp
from twisted.internet.protocol import DatagramProtocol
from twisted.internet.task import Clock

from sippy.DatagramPort import DatagramPort, adopt_udp, listen_udp
from tests.conftest import has_ipv6

BIG = 65535


class Keep(DatagramProtocol):
    def __init__(self) -> None:
        self.got: list[tuple[bytes, Any]] = []

    def datagramReceived(self, datagram: bytes, addr: Any) -> None:
        self.got.append((datagram, addr))


def pump(cond: Any, timeout: float = 3.0) -> bool:
    """Run the (not started) global reactor until cond() holds or timeout passes."""
    deadline = time.monotonic() + timeout
    while not cond() and time.monotonic() < deadline:
        reactor.iterate(0.01)
    return cond()


def close(port: Any) -> None:
    port.stopListening()
    reactor.iterate(0)


@pytest.mark.parametrize("host", ["127.0.0.1", "::1"])
def test_datagrams_arrive_whole_and_keep_their_own_bytes(host: str) -> None:
    if ":" in host and not has_ipv6():
        pytest.skip("no IPv6 loopback")
    proto = Keep()
    port = listen_udp(reactor, 0, proto, host, BIG)
    assert isinstance(port, DatagramPort)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    peer = socket.socket(family, socket.SOCK_DGRAM)
    try:
        peer.bind((host, 0))
        # The largest a loopback datagram can be, then shorter ones read into the same buffer.
        sizes = [65000 if family == socket.AF_INET6 else 65507, 900, 1]
        sent = [bytes([65 + i]) * n for i, n in enumerate(sizes)]
        for data in sent:
            peer.sendto(data, (host, port.getHost().port))
        assert pump(lambda: len(proto.got) == len(sent))
        assert [d for d, _ in proto.got] == sent
        assert all(type(d) is bytes for d, _ in proto.got)
        assert {a for _, a in proto.got} == {peer.getsockname()[:2]}
    finally:
        peer.close()
        close(port)


def read_one(port_class: Any, size: int) -> int:
    """Bytes allocated at the peak while a port of port_class reads one datagram of `size`."""
    proto = Keep()
    port = port_class(0, proto, "127.0.0.1", BIG, reactor)
    port.startListening()
    peer = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        peer.sendto(b"x" * size, ("127.0.0.1", port.getHost().port))
        select.select([port.socket], [], [], 2.0)
        tracemalloc.start()
        try:
            base = tracemalloc.get_traced_memory()[0]
            port.doRead()
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert [len(d) for d, _ in proto.got] == [size]
        return peak - base
    finally:
        peer.close()
        close(port)


def test_reading_a_datagram_allocates_its_size_not_the_largest() -> None:
    # The measure sees Twisted's port ask for a whole 64 KiB for a 900-byte message ...
    assert read_one(udp.Port, 900) >= BIG
    # ... and this one only about the message itself.
    assert read_one(DatagramPort, 900) < 4096


def test_adopted_socket_is_read_the_same_way() -> None:
    skt = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    skt.bind(("127.0.0.1", 0))
    skt.setblocking(False)
    proto = Keep()
    port = adopt_udp(reactor, skt.fileno(), socket.AF_INET, proto, BIG)
    skt.close()  # the port holds its own descriptor
    peer = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        assert isinstance(port, DatagramPort)
        peer.sendto(b"hello", ("127.0.0.1", port.getHost().port))
        assert pump(lambda: len(proto.got) == 1)
        assert proto.got[0][0] == b"hello"
    finally:
        peer.close()
        close(port)


def test_a_reactor_without_descriptors_is_asked_itself() -> None:
    """A test double (a Clock given a listenUDP) keeps getting the calls."""
    clock: Any = Clock()
    calls: list[tuple[Any, ...]] = []
    clock.listenUDP = lambda *a, **kw: calls.append((a, kw)) or "fake"
    proto = Keep()
    assert listen_udp(clock, 5060, proto, "127.0.0.1", BIG) == "fake"
    assert calls == [((5060, proto), {"interface": "127.0.0.1", "maxPacketSize": BIG})]


@pytest.mark.parametrize("host", ["127.0.0.1", "::1"])
def test_writes_reach_an_address_of_the_family_and_refuse_others_as_twisted_does(host: str) -> None:
    if ":" in host and not has_ipv6():
        pytest.skip("no IPv6 loopback")
    port = listen_udp(reactor, 0, Keep(), host)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    peer = socket.socket(family, socket.SOCK_DGRAM)
    try:
        peer.bind((host, 0))
        peer.settimeout(3)
        port.write(b"hello", peer.getsockname()[:2])
        assert peer.recv(100) == b"hello"
        # A name, the other family's address: udp.Port's own errors, nothing sent.
        other = "::1" if family == socket.AF_INET else "127.0.0.1"
        for bad in ("localhost", other):
            with pytest.raises(error.InvalidAddressError):
                port.write(b"no", (bad, peer.getsockname()[1]))
        with pytest.raises(error.MessageLengthError):
            port.write(b"x" * 70000, peer.getsockname()[:2])
    finally:
        peer.close()
        close(port)
