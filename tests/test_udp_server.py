"""Udp_server against real loopback sockets: both directions, IPv4/IPv6, names, error paths."""

from __future__ import annotations

import socket
import subprocess
import sys
import time

import pytest
from twisted.internet import defer, reactor
from twisted.internet.error import DNSLookupError

from sippy import Udp_server as Udp_server_mod
from sippy.SipLogger import SipLogger
from sippy.Time.MonoTime import MonoTime
from sippy.Udp_server import Udp_server, Udp_server_opts
from tests.conftest import has_ipv6


def pump(cond, timeout=3.0):
    """Run the (not started) global reactor until cond() holds or timeout passes."""
    deadline = time.monotonic() + timeout
    while not cond() and time.monotonic() < deadline:
        reactor.iterate(0.01)
    return cond()


class Peer:
    def __init__(self, host="127.0.0.1"):
        fam = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.sock = socket.socket(fam, socket.SOCK_DGRAM)
        self.sock.bind((host, 0))
        self.sock.setblocking(False)
        self.addr = self.sock.getsockname()[:2]
        self.got = []

    def poll(self):
        try:
            while True:
                data, addr = self.sock.recvfrom(65535)
                self.got.append((data, addr[:2]))
        except BlockingIOError:
            pass
        return self.got

    def close(self):
        self.sock.close()


@pytest.fixture
def logger(monkeypatch, tmp_path):
    monkeypatch.setenv("SIPLOG_BEND", "logfile")
    monkeypatch.setenv("SIPLOG_LVL", "INFO")
    path = tmp_path / "sip.log"
    monkeypatch.setenv("SIPLOG_LOGFILE_FILE", str(path))
    lg = SipLogger("test")
    lg.path = path
    yield lg
    lg.shutdown()


@pytest.fixture
def servers():
    made = []
    yield made
    for s in made:
        s.shutdown()
    pump(lambda: False, 0.05)


def make(servers, logger, host="127.0.0.1", cb=None, fake_reactor=None):
    got = []

    def data_cb(data, address, server, rtime):
        got.append((data, address, server, rtime))
        if cb is not None:
            cb(data, address, server, rtime)

    srv = Udp_server({"_sip_logger": logger}, Udp_server_opts((host, 0), data_cb), reactor=fake_reactor)
    servers.append(srv)
    return srv, got


@pytest.mark.parametrize("host", ["127.0.0.1", "::1"])
def test_receive_and_reply(servers, logger, host):
    if ":" in host and not has_ipv6():
        pytest.skip("no IPv6 loopback")
    srv, got = make(servers, logger, host, cb=lambda d, a, s, t: s.send_to(b"echo:" + d, a))
    laddr = srv.getSIPaddr()
    assert laddr[0] == host and laddr[1] != 0
    assert srv.transport == "udp"
    peer = Peer(host)
    try:
        before = MonoTime()
        peer.sock.sendto(b"OPTIONS sip:x SIP/2.0\r\n\r\n", laddr)
        assert pump(lambda: peer.poll())
        data, address, server, rtime = got[0]
        assert data == b"OPTIONS sip:x SIP/2.0\r\n\r\n"
        assert (address.address, address.transport, address.received) == (peer.addr, "udp", peer.addr[0])
        assert server is srv
        assert isinstance(rtime, MonoTime) and rtime >= before
        assert peer.got == [(b"echo:OPTIONS sip:x SIP/2.0\r\n\r\n", laddr)]
        assert (srv.stats.dgrams_in, srv.stats.dgrams_out, srv.stats.errors) == (1, 1, 0)
    finally:
        peer.close()


def test_send_str_and_bracketed_ipv6(servers, logger):
    if not has_ipv6():
        pytest.skip("no IPv6 loopback")
    srv, _ = make(servers, logger, "[::1]")
    assert srv.getSIPaddr()[0] == "::1"
    peer = Peer("::1")
    try:
        srv.send_to("BYE sip:x SIP/2.0\r\n", ("[::1]", peer.addr[1]))
        srv.send_to(b"two", ("::1", peer.addr[1]))
        assert pump(lambda: len(peer.poll()) == 2)
        assert [d for d, _ in peer.got] == [b"BYE sip:x SIP/2.0\r\n", b"two"]
    finally:
        peer.close()


def test_callback_exception_logged_and_server_keeps_serving(servers, logger):
    def cb(data, address, server, rtime):
        if data == b"bad":
            raise RuntimeError("handler blew up")
        server.send_to(b"ok", address)

    srv, got = make(servers, logger, cb=cb)
    peer = Peer()
    try:
        peer.sock.sendto(b"bad", srv.getSIPaddr())
        peer.sock.sendto(b"good", srv.getSIPaddr())
        assert pump(lambda: peer.poll())
        assert [d for d, _ in peer.got] == [b"ok"]
        assert len(got) == 2
        text = logger.path.read_text()
        assert "RuntimeError: handler blew up" in text and "Traceback" in text
    finally:
        peer.close()


def test_send_errors_counted_not_raised(servers, logger):
    srv, _ = make(servers, logger)
    srv.send_to(b"x" * 70000, ("127.0.0.1", 9))  # larger than any UDP datagram
    srv.send_to(b"x", ("::1", 9))  # IPv6 peer on an IPv4 socket
    assert srv.stats.errors == 2 and srv.stats.dgrams_out == 0
    assert "failed" in logger.path.read_text()


class ResolvingReactor:
    """The real reactor, but with a resolver that answers from a table (no DNS on test hosts)."""

    def __init__(self, table):
        self.table = table
        self.queries = []
        self.pending = []

    def __getattr__(self, name):
        return getattr(reactor, name)

    def resolve(self, name):
        self.queries.append(name)
        d = defer.Deferred()
        self.pending.append((d, name))
        return d

    def answer(self):
        pending, self.pending = self.pending, []
        for d, name in pending:
            if name in self.table:
                d.callback(self.table[name])
            else:
                d.errback(DNSLookupError(name))


def test_names_resolved_once_and_cached(servers, logger):
    fake = ResolvingReactor({"sip.example.test": "127.0.0.1"})
    srv, _ = make(servers, logger, fake_reactor=fake)
    peer = Peer()
    try:
        srv.send_to(b"1", ("sip.example.test", peer.addr[1]))
        srv.send_to(b"2", ("sip.example.test", peer.addr[1]))
        pump(lambda: False, 0.05)
        assert peer.poll() == []
        assert fake.queries == ["sip.example.test"]
        fake.answer()
        srv.send_to(b"3", ("sip.example.test", peer.addr[1]))
        assert pump(lambda: len(peer.poll()) == 3)
        assert [d for d, _ in peer.got] == [b"1", b"2", b"3"]
        assert fake.queries == ["sip.example.test"]
        srv.send_to(b"4", ("nowhere.invalid", peer.addr[1]))
        fake.answer()
        assert srv.stats.errors == 1 and srv.stats.dgrams_out == 3
        assert "cannot resolve 'nowhere.invalid'" in logger.path.read_text()
    finally:
        peer.close()


def test_name_cache_and_pending_resolutions_are_bounded(servers, logger, monkeypatch):
    monkeypatch.setattr(Udp_server_mod, "RESOLVE_CACHE_SIZE", 3)
    monkeypatch.setattr(Udp_server_mod, "RESOLVE_PENDING_HOSTS", 2)
    monkeypatch.setattr(Udp_server_mod, "RESOLVE_PENDING_DATAGRAMS", 2)
    names = [f"h{i}.example.test" for i in range(6)]
    fake = ResolvingReactor({name: "127.0.0.1" for name in names})
    srv, _ = make(servers, logger, fake_reactor=fake)
    peer = Peer()
    try:
        port = peer.addr[1]
        for data in (b"a", b"b", b"c"):
            srv.send_to(data, (names[0], port))
        srv.send_to(b"d", (names[1], port))
        srv.send_to(b"e", (names[2], port))
        assert fake.queries == names[:2], "two names in resolution at most"
        assert srv.stats.errors == 2, "h0's third datagram and h2's one dropped"
        fake.answer()
        assert pump(lambda: len(peer.poll()) == 3)
        assert sorted(d for d, _ in peer.got) == [b"a", b"b", b"d"]
        for name in names[2:5]:
            srv.send_to(b"x", (name, port))
            fake.answer()
        # Resolved in the order h0, h1, h2, h3, h4: a cache of three keeps the last three.
        assert list(srv._resolved) == names[2:5]
        srv.send_to(b"y", (names[2], port))
        assert fake.queries == names[:5], "h2 still cached"
        srv.send_to(b"z", (names[0], port))
        assert fake.queries == [*names[:5], names[0]], "h0 was evicted, asked again"
        fake.answer()
        assert list(srv._resolved) == [names[3], names[4], names[0]], "oldest (h2) went"
        text = logger.path.read_text()
        assert "datagram to 'h0.example.test' dropped: datagrams wait for it already" in text
        assert "datagram to 'h2.example.test' dropped: names are being resolved already" in text
    finally:
        peer.close()


def test_shutdown_closes_socket(servers, logger):
    srv, _ = make(servers, logger)
    laddr = srv.getSIPaddr()
    srv.shutdown()
    pump(lambda: False, 0.05)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(laddr)  # the port is free again
    srv.send_to(b"x", ("127.0.0.1", 9))
    assert srv.stats.dgrams_out == 0


def test_localhost_resolved_by_real_reactor(tmp_path):
    """With the running global reactor, a name goes through reactor.resolve() for real."""
    peer = Peer()
    prog = (
        "import sys\n"
        "from twisted.internet import reactor\n"
        "from sippy.Udp_server import Udp_server, Udp_server_opts\n"
        "s = Udp_server({}, Udp_server_opts(('127.0.0.1', 0), lambda *a: None))\n"
        f"reactor.callWhenRunning(s.send_to, b'via-name', ('localhost', {peer.addr[1]}))\n"
        "reactor.callLater(1.0, reactor.stop)\n"
        "reactor.run()\n"
    )
    try:
        subprocess.run([sys.executable, "-c", prog], timeout=10, check=True)
        assert [d for d, _ in peer.poll()] == [b"via-name"]
    finally:
        peer.close()


def test_socket_buffers_are_enlarged() -> None:
    """A short reactor stall must not overflow the kernel's default receive buffer."""
    import socket as _socket

    from twisted.internet import reactor

    from sippy.Udp_server import Udp_server, Udp_server_opts

    srv = Udp_server({}, Udp_server_opts(("127.0.0.1", 0), lambda *a: None), reactor=reactor)
    try:
        skt = srv._port.socket
        default = _socket.socket(_socket.AF_INET, _socket.SOCK_DGRAM)
        try:
            base = default.getsockopt(_socket.SOL_SOCKET, _socket.SO_RCVBUF)
        finally:
            default.close()
        assert skt.getsockopt(_socket.SOL_SOCKET, _socket.SO_RCVBUF) > base
    finally:
        srv.shutdown()


class _ClockWithSockets:
    """A Clock for the timers, the real reactor for the socket: impairment delays under test
    control while the datagrams really cross loopback."""

    def __init__(self):
        from twisted.internet.task import Clock

        self.clock = Clock()
        self.callLater = self.clock.callLater
        self.seconds = self.clock.seconds
        self.listenUDP = reactor.listenUDP


def _impaired(servers, logger, seed, got, **knobs):
    def data_cb(data, address, server, rtime):
        got.append(data)

    fake = _ClockWithSockets()
    opts = Udp_server_opts(("127.0.0.1", 0), data_cb, impair_seed=seed, **knobs)
    srv = Udp_server({"_sip_logger": logger}, opts, reactor=fake)
    servers.append(srv)
    return srv, fake.clock


def _send_impaired(servers, logger, payloads):
    """Send payloads through a seeded lossy/delaying server: (what arrived, losses)."""
    srv, clock = _impaired(servers, logger, 7, [], ploss_out_rate=0.2, pdelay_out_max=0.5)
    peer = Peer()
    try:
        for p in payloads:
            srv.send_to(p, peer.addr)
        pump(lambda: False, 0.1)
        assert peer.poll() == []  # every survivor is held back
        clock.advance(0.5)
        n = len(payloads) - srv.stats.emulated_losses
        assert pump(lambda: len(peer.poll()) >= n)
        assert srv.stats.dgrams_out == n
        return {d for d, _ in peer.got}, srv.stats.emulated_losses
    finally:
        peer.close()


def test_ploss_out_rate_and_pdelay_out_max_drop_and_delay_what_is_sent(servers, logger):
    payloads = [b"dgram %d" % i for i in range(200)]
    first, losses = _send_impaired(servers, logger, payloads)
    assert 20 <= losses <= 60 and len(first) == 200 - losses
    # Seeded: the same datagrams are lost each run.
    assert _send_impaired(servers, logger, payloads) == (first, losses)


def test_ploss_in_rate_and_pdelay_in_max_drop_and_delay_what_arrives(servers, logger):
    got = []
    srv, clock = _impaired(servers, logger, 3, got, ploss_in_rate=0.2, pdelay_in_max=0.3)
    peer = Peer()
    try:
        for i in range(200):
            peer.sock.sendto(b"dgram %d" % i, srv.getSIPaddr())
        assert pump(lambda: srv.stats.emulated_losses + len(clock.getDelayedCalls()) == 200)
        assert got == []
        clock.advance(0.3)
        assert len(got) == 200 - srv.stats.emulated_losses and 20 <= srv.stats.emulated_losses <= 60
        assert srv.stats.dgrams_in == len(got)
    finally:
        peer.close()
