"""IPv6 in SIP text (RFC 3261 25.1 IPv6reference, RFC 5118): every writer brackets an IPv6 host,
sockets and SDP get it bare; the local address facing a peer (local4remote)."""

from __future__ import annotations

import socket
from typing import Any

import pytest

from sippy import misc
from sippy.B2BConfig import B2BConfig
from sippy.B2BOperations import _hostport as ops_hostport
from sippy.B2BRoute import B2BRoute, RouteError
from sippy.SipConf import SipConf
from sippy.SipContact import SipContact
from sippy.SipRequest import SipRequest
from sippy.SipResponse import SipResponse
from sippy.SipURL import SipURL
from sippy.SipVia import SipVia
from tests.test_transactions import Consumer, feed, mk, request
from tests.test_ua import FakeTr, make_uac, new_env, respond, try_event


@pytest.mark.parametrize(
    "host, text",
    [("::1", "[::1]"), ("[::1]", "[::1]"), ("2001:db8::9:1", "[2001:db8::9:1]"), ("192.0.2.1", "192.0.2.1")],
)
def test_sip_host_brackets_ipv6_only(host: str, text: str) -> None:
    assert misc.sip_host(host) == text
    assert misc.sip_host("example.com") == "example.com"
    assert misc.bare_host(text) == host.strip("[]")


def test_sip_hostport() -> None:
    assert misc.sip_hostport("::1", 5070) == "[::1]:5070"
    assert misc.sip_hostport("[::1]", None) == "[::1]"
    assert misc.sip_hostport("10.0.0.1", 5060) == "10.0.0.1:5060"


@pytest.mark.parametrize(
    "text, addr",
    [
        ("[::1]:5070", ("::1", 5070)),
        ("[::1]", ("::1", 5060)),
        ("::1", ("::1", 5060)),
        ("2001:db8::1", ("2001:db8::1", 5060)),
        ("host.example:5080", ("host.example", 5080)),
        ("10.0.0.1", ("10.0.0.1", 5060)),
    ],
)
def test_parse_hostport(text: str, addr: tuple) -> None:
    assert misc.parse_hostport(text, 5060) == addr


@pytest.mark.parametrize(
    "text, why", [("[::1", "missing ']'"), ("[::1]5", "junk"), ("[zz::1]:5", "bad IPv6"), (":5", "no host")]
)
def test_parse_hostport_refuses(text: str, why: str) -> None:
    with pytest.raises(ValueError, match=why):
        misc.parse_hostport(text, 5060)


# ----- the writers ------------------------------------------------------------------------------


def test_url_built_from_a_socket_address_is_bracketed() -> None:
    u = SipURL(username="service", host="::1", port=5070)
    assert str(u) == "sip:service@[::1]:5070"
    assert u.getAddr() == ("::1", 5070)
    assert str(SipURL(host="[::1]")) == "sip:[::1]"
    u.setAddr(("2001:db8::2", 5080))
    assert str(u) == "sip:service@[2001:db8::2]:5080"


def test_placeholder_host_takes_the_local_address_bracketed() -> None:
    assert SipURL(username="a").localStr("::1", 5062) == "sip:a@[::1]:5062"
    assert SipContact().localStr("fd00::2", 5060).endswith("<sip:[fd00::2]:5060>")
    assert SipVia().localStr("::1", 5062).startswith("SIP/2.0/UDP [::1]:5062;")


def test_via_built_from_a_socket_address_and_received_forms() -> None:
    assert str(SipVia(hostname="::1", port=5060)) == "SIP/2.0/UDP [::1]:5060"
    # RFC 3261's ABNF writes received bare; RFC 5118 4.5 asks receivers to take brackets too.
    for received in ("2001:db8::9:255", "[2001:db8::9:255]"):
        via = SipVia(f"SIP/2.0/UDP [2001:db8::9:1]:6050;received={received};branch=z9hG4bKas3")
        via.parse()
        assert via.getTAddr() == ("2001:db8::9:255", 6050)


def test_received_added_by_us_is_a_bare_ipv6address() -> None:
    cons = Consumer(lambda req, t: req.genResponse(200, "OK"))
    tm, ft, _ = mk(cons)
    feed(tm, request("OPTIONS", via="[2001:db8::5]:5062"), ("::1", 5062))
    ((data, address),) = ft.sent
    via = SipResponse(buf=data).getHFBody("via")
    assert "received=::1;" in str(via) + ";"
    assert address == ("::1", 5062)


def test_nat_traversal_rewrites_an_ipv6_contact_with_brackets() -> None:
    cons = Consumer(lambda req, t: req.genResponse(200, "OK"))
    tm, ft, _ = mk(cons)
    tm.nat_traversal = True
    data = request("OPTIONS", via="[::1]:5062").replace(b"alice@127.0.0.1:5062", b"alice@[::1]:0")
    feed(tm, data, ("::1", 40000))
    contact = cons.reqs[0][0].getHFBody("contact")
    assert str(contact.getUrl()) == "sip:alice@[::1]:40000"


def test_uac_to_an_ipv6_next_hop_writes_ruri_to_and_in_dialog_requests_bracketed() -> None:
    env = new_env()
    clock, tm, rec, gc = env
    ua = make_uac(env, nh_address=("::1", 5070))
    ua.recvEvent(try_event())
    inv: FakeTr = tm.sent("INVITE")[0]
    text = str(inv.req)
    assert text.startswith("INVITE sip:bob@[::1]:5070 SIP/2.0\r\n")
    assert "\r\nTo: <sip:bob@[::1]>\r\n" in text
    # The callee echoes our To and gives an IPv6 Contact: our parser takes both back.
    respond(inv, 200, "OK", contact="<sip:callee@[::1]:5072>")
    ua.disconnect()
    (bye,) = tm.sent("BYE")
    assert str(bye.req).startswith("BYE sip:callee@[::1]:5072 SIP/2.0\r\n")
    assert SipRequest(buf=str(bye.req)).getHFBody("to").getUrl().getAddr() == ("::1", 5060)


def test_routes_and_proxies_written_bracketed() -> None:
    r = B2BRoute("100@[::1]:5070;op=[2001:db8::1]:5080")
    assert (r.host, r.port, r.hostonly) == ("::1", 5070, "[::1]")
    assert "op=[2001:db8::1]:5080" in str(r)
    assert r.getNHAddr(("::1", 5060)) == (("::1", 5070), True)
    with pytest.raises(RouteError, match="bad IPv6"):
        B2BRoute("[::zz]:5070")
    assert ops_hostport(("::1", 5060)) == "[::1]:5060"
    cfg = B2BConfig()
    cfg.check_and_set("sip_proxy", "[::1]:5080")
    assert cfg["_sip_proxy"] == ("::1", 5080)
    cfg.check_and_set("sip_address", "[::1]")
    assert cfg["_sip_address"] == "::1"
    cfg.check_and_set("accept_ips", "2001:DB8::0:1,[::1],127.0.0.1")
    assert cfg["_accept_ips"] == ["2001:db8::1", "::1", "127.0.0.1"]


# ----- local4remote -----------------------------------------------------------------------------


def test_local4remote_names_the_facing_address_bare_and_caches() -> None:
    assert misc.local4remote("127.0.0.1") == "127.0.0.1"
    assert misc.local4remote("::1", socket.AF_INET6) == "::1"
    assert misc.local4remote("[::1]", socket.AF_INET6) == "::1"
    assert ("::1", socket.AF_INET6) in misc._l4r_cache
    with pytest.raises(ValueError):
        misc.local4remote("localhost")


def test_local4remote_cache_is_bounded(monkeypatch: Any) -> None:
    monkeypatch.setattr(misc, "LOCAL4REMOTE_CACHE_SIZE", 3)
    monkeypatch.setattr(misc, "_l4r_cache", misc.OrderedDict())
    for i in range(1, 6):
        misc.local4remote(f"127.0.0.{i}")
    assert list(misc._l4r_cache) == [(f"127.0.0.{i}", socket.AF_INET) for i in (3, 4, 5)]


def test_local4remote_answer_expires(monkeypatch: Any) -> None:
    """A changed address or route is seen once the cached answer is LOCAL4REMOTE_TTL old."""
    monkeypatch.setattr(misc, "_l4r_cache", misc.OrderedDict())
    monkeypatch.setattr(misc, "LOCAL4REMOTE_TTL", 10.0)
    now = [1000.0]
    monkeypatch.setattr(misc.time, "monotonic", lambda: now[0])
    assert misc.local4remote("127.0.0.7") == "127.0.0.1"
    misc._l4r_cache[("127.0.0.7", socket.AF_INET)] = ("192.0.2.9", 1010.0)  # as if routed elsewhere
    now[0] = 1009.0
    assert misc.local4remote("127.0.0.7") == "192.0.2.9"
    now[0] = 1010.0
    assert misc.local4remote("127.0.0.7") == "127.0.0.1"


# ----- -l '*': a socket per family, the facing address in Via/Contact ----------------------------


def test_wildcard_config_from_flags() -> None:
    from sippy.B2BConfig import load_config

    for listen in ("*", "0.0.0.0", "::", "[::]"):
        cfg = load_config(["-u", "-s", "127.0.0.1", "-l", listen])
        assert cfg["_sip_wildcard"] is True, listen
    assert load_config(["-u", "-s", "127.0.0.1"])["_sip_wildcard"] is True
    cfg = load_config(["-u", "-s", "127.0.0.1", "-l", "::1", "-p", "5070"])
    assert (cfg["_sip_wildcard"], cfg["_sip_address"]) == (False, "::1")
    assert misc.listen_address(cfg) == "[::1]:5070"
    assert misc.listen_address({"_sip_wildcard": True, "_sip_address": "x", "_sip_port": 5060}) == "*:5060"


def test_wildcard_transaction_manager_sends_by_family_with_the_facing_address(monkeypatch: Any) -> None:
    from twisted.internet import reactor

    from sippy.SipTransactionManager import SipTransactionManager
    from tests.conftest import free_udp_port

    port = free_udp_port()
    monkeypatch.setattr(SipConf, "my_address", "192.0.2.1")
    gc: dict[str, Any] = {"_sip_wildcard": True, "_sip_address": "192.0.2.1", "_sip_port": port}
    tm = SipTransactionManager(gc, None, reactor=reactor)
    try:
        v4, v6 = tm.transports[socket.AF_INET], tm.transports[socket.AF_INET6]
        assert tm.transport is v4
        assert v4.uopts.laddress == ("0.0.0.0", port) and v6.uopts.laddress == ("::", port)
        assert tm._transportFor(("::1", 5060)) is v6 and tm._transportFor(("127.0.0.1", 5060)) is v4
        assert v6.getSIPaddr(("::1", 5060)) == ("::1", port)
        assert v4.getSIPaddr(("127.0.0.1", 5060)) == ("127.0.0.1", port)
        # No usable peer (a name not resolved yet): this host's configured address.
        assert v4.getSIPaddr(("sip.example.test", 5060)) == ("192.0.2.1", port)
        with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as s:
            # The IPv6 socket is IPv6-only: an IPv4-mapped peer cannot reach it.
            assert v6._port.socket.getsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY) == 1
            s.bind(("::1", 0))
    finally:
        tm.shutdown()


class _TableReactor:
    """The real reactor with both resolvers answering from tables: `resolve` (IPv4, as
    reactor.resolve) and `nameResolver` (getaddrinfo, asked for IPv6 only)."""

    def __init__(self, v4: dict[str, str], v6: dict[str, str]) -> None:
        from twisted.internet import reactor

        self._reactor = reactor
        self.v4, self.v6 = v4, v6
        self.asked: list[tuple[str, str]] = []
        self.nameResolver = self

    def __getattr__(self, name: str) -> Any:
        return getattr(self._reactor, name)

    def resolve(self, name: str) -> Any:
        from twisted.internet import defer
        from twisted.internet.error import DNSLookupError

        self.asked.append(("A", name))
        return defer.succeed(self.v4[name]) if name in self.v4 else defer.fail(DNSLookupError(name))

    def resolveHostName(self, receiver: Any, name: str, portNumber: int = 0, **kw: Any) -> Any:
        from twisted.internet.address import IPv6Address

        assert kw["addressTypes"] == [IPv6Address]
        self.asked.append(("AAAA", name))
        receiver.resolutionBegan(None)
        if name in self.v6:
            receiver.addressResolved(IPv6Address("UDP", self.v6[name], portNumber))
        receiver.resolutionComplete()
        return receiver


def _udp_peer(host: str) -> socket.socket:
    s = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((host, 0))
    s.settimeout(3)
    return s


def test_wildcard_names_resolve_to_ipv6_when_they_have_only_ipv6(monkeypatch: Any) -> None:
    """-l '*' and a route host name: IPv4 when the name has an A record, IPv6 when it has only
    AAAA (the request leaves by the IPv6 socket with the facing IPv6 address in Via), and a
    local 503 when it has neither."""
    from twisted.internet import reactor as real

    from sippy.SipTransactionManager import SipTransactionManager
    from tests.conftest import free_udp_port

    fake = _TableReactor({"both.test": "127.0.0.1"}, {"both.test": "::1", "v6only.test": "::1"})
    gc: dict[str, Any] = {"_sip_wildcard": True, "_sip_address": "192.0.2.1", "_sip_port": free_udp_port()}
    tm = SipTransactionManager(gc, None, reactor=fake)
    peer4, peer6 = _udp_peer("127.0.0.1"), _udp_peer("::1")
    answers: list[Any] = []
    try:
        for name, peer in (("v6only.test", peer6), ("both.test", peer4), ("nowhere.test", None)):
            req = SipRequest(
                method="OPTIONS",
                ruri=SipURL(username="x", host=name, port=peer.getsockname()[1] if peer else 9),
            )
            tm.newTransaction(req, answers.append)
            if peer is None:
                continue
            deadline = real.seconds() + 3
            peer.setblocking(False)
            data = b""
            while not data and real.seconds() < deadline:
                real.iterate(0.01)
                try:
                    data = peer.recv(65535)
                except BlockingIOError:
                    pass
            text = data.decode()
            local = "[::1]" if peer is peer6 else "127.0.0.1"
            assert text.startswith(f"OPTIONS sip:x@{name}:"), text
            assert f"\r\nVia: SIP/2.0/UDP {local}:{gc['_sip_port']};" in text, text
        assert fake.asked == [
            ("A", "v6only.test"),
            ("AAAA", "v6only.test"),
            ("A", "both.test"),
            ("A", "nowhere.test"),
            ("AAAA", "nowhere.test"),
        ]
        assert [r.getSCode() for r in answers] == [(503, "Service Unavailable")]
        assert len(tm.tclient) == 2
    finally:
        tm.shutdown()
        peer4.close()
        peer6.close()


def test_log_lines_write_ipv6_peers_bracketed() -> None:
    from sippy.SipLogger import SIPLOG_DBUG
    from tests.test_transactions import FakeLogger

    logger = FakeLogger(SIPLOG_DBUG)
    tm, ft, _ = mk(Consumer(lambda req, t: req.genResponse(200, "OK")), logger=logger)
    feed(tm, request("OPTIONS", via="[::1]:5062"), ("::1", 5062))
    lines = [text for _, text in logger.lines]
    assert any(text.startswith("RECEIVED message from [::1]:5062:") for text in lines), lines
    assert any(text.startswith("SENDING message to [::1]:5062:") for text in lines), lines


def test_sdp_placeholder_address_is_bare_ipv6_with_ip6() -> None:
    from sippy.SdpConnecton import SdpConnecton
    from sippy.SdpOrigin import SdpOrigin

    assert SdpConnecton().localStr("::1") == "IN IP6 ::1"
    assert SdpConnecton().localStr("127.0.0.1") == "IN IP4 127.0.0.1"
    assert SdpOrigin().localStr("::1").endswith(" IN IP6 ::1")


def test_is_ip_answers_from_its_table_as_from_ipaddress(monkeypatch: Any) -> None:
    """is_ip keeps its answers (every datagram sent asks about its peer), the same ones each
    time, and a peer naming ever new hosts cannot grow the table past its bound."""
    monkeypatch.setattr(misc, "IP_CACHE_SIZE", 8)
    for _ in range(2):
        assert misc.is_ip("192.0.2.1") and misc.is_ip("192.0.2.1", 4) and not misc.is_ip("192.0.2.1", 6)
        assert misc.is_ip("2001:db8::1", 6) and not misc.is_ip("[2001:db8::1]")
        assert not misc.is_ip("example.com") and not misc.is_ip("01.2.3.4")
    for n in range(100):
        assert not misc.is_ip(f"host{n}.example")
        assert len(misc._ip_versions) <= 8
    assert misc.is_ip("192.0.2.1", 4)
