"""Transports as a layer (issue 9): the transaction manager choosing a transport per message, Via and
Contact saying it, RFC 3261 timers over reliable ones, failed sends ending as 503. A UDP fake and a
connection fake (a Network_server subclass, as Wss_server is) on a Clock."""

from __future__ import annotations

from typing import Any, Union

from twisted.internet.task import Clock

from sippy.Network_server import Network_server, Network_server_opts, Remote_address
from sippy.SipAddress import SipAddress
from sippy.SipCallId import SipCallId
from sippy.SipContact import SipContact
from sippy.SipFrom import SipFrom
from sippy.SipHeader import SipHeader
from sippy.SipRequest import SipRequest
from sippy.SipResponse import SipResponse
from sippy.SipRoute import SipRoute
from sippy.SipTransactionManager import SipTransactionManager
from sippy.SipURL import SipURL
from sippy.Time.MonoTime import MonoTime
from sippy.Udp_server import Udp_server_opts

UDP_LOCAL = ("127.0.0.1", 5060)
WSS_LOCAL = ("127.0.0.1", 8443)
UDP_PEER = ("127.0.0.1", 5062)
BROWSER = ("127.0.0.1", 40000)
CONN = "c1.invalid"


class FakeUdp:
    transport = "udp"

    def __init__(self) -> None:
        self.sent: list[tuple[bytes, Any]] = []

    def send_to(self, data: bytes, address: Any) -> bool:
        self.sent.append((data, address))
        return True

    def getSIPaddr(self, raddress: Any = None) -> tuple[str, int]:
        return UDP_LOCAL

    def shutdown(self) -> None:
        pass


class FakeWss(Network_server):
    """A connection transport as Wss_server is one: peers known by their connection's name."""

    transport = "wss"
    is_reliable = True
    uri_transport = "ws"
    names_connections = True

    def __init__(self, tm_cb: Any = None, error_cb: Any = None) -> None:
        super().__init__({}, Network_server_opts(WSS_LOCAL, tm_cb, error_callback=error_cb), Clock())
        self.sent: list[tuple[bytes, Any]] = []
        self.connections = {CONN}

    def send_to(self, data: Union[bytes, str], address: Any) -> bool:
        name = address.received if isinstance(address, Remote_address) else address[0]
        if name not in self.connections:
            return False
        self.sent.append((data if isinstance(data, bytes) else data.encode(), address))
        return True

    def shutdown(self) -> None:
        self.connections.clear()

    def ra(self) -> Remote_address:
        ra = Remote_address(BROWSER, "wss")
        ra.received = CONN
        return ra


def mk() -> tuple[SipTransactionManager, FakeUdp, FakeWss, Clock]:
    clock = Clock()
    udp = FakeUdp()
    wss = FakeWss()
    tm = SipTransactionManager({}, None, transport=udp, reactor=clock, servers=(wss,))
    wss.uopts.data_callback = tm.handleIncoming
    wss.uopts.error_callback = tm.transportError
    return tm, udp, wss, clock


class Responses:
    def __init__(self) -> None:
        self.got: list[Any] = []

    def __call__(self, resp: Any, t: Any = None) -> None:
        self.got.append(resp)

    def codes(self) -> list[int]:
        return [r.getSCodeNum() for r in self.got]


def out_request(
    method: str = "INVITE",
    ruri: str = "sip:bob@127.0.0.1:5062",
    routes: tuple[str, ...] = (),
    target: Any = None,
) -> SipRequest:
    fr0m = SipFrom(address=SipAddress(url=SipURL(username="alice", host="127.0.0.1")))
    fr0m.genTag()
    req = SipRequest(
        method=method,
        ruri=SipURL(url=ruri),
        fr0m=fr0m,
        callid=SipCallId(),
        cseq=1,
        contact=SipContact(),
        routes=[SipRoute(address=SipAddress(url=SipURL(url=r))) for r in routes],
        target=target,
    )
    return req


def browser_invite(branch: str = "z9hG4bK-w1") -> bytes:
    """What JsSIP sends: Via and Contact with a made-up *.invalid host (RFC 7118 section 5)."""
    return (
        "INVITE sip:bob@127.0.0.1 SIP/2.0\r\n"
        f"Via: SIP/2.0/WSS abc123.invalid;branch={branch}\r\n"
        "Max-Forwards: 69\r\n"
        "From: <sip:alice@example.org>;tag=ft1\r\n"
        "To: <sip:bob@127.0.0.1>\r\n"
        "Call-ID: wss-call-1\r\n"
        "CSeq: 1 INVITE\r\n"
        "Contact: <sip:xyz@abc123.invalid;transport=ws;ob>\r\n"
        "Content-Length: 0\r\n\r\n"
    ).encode()


def test_remote_address_reads_as_a_pair() -> None:
    ra = Remote_address(("::1", 5060), "udp")
    assert (ra.address, ra.transport, ra.received) == (("::1", 5060), "udp", "::1")
    host, port = ra
    assert (host, port, ra[0], len(ra)) == ("::1", 5060, "::1", 2)
    assert str(ra) == "udp:[::1]:5060"
    assert ra == Remote_address(("::1", 5060), "udp") and ra != Remote_address(("::1", 5060), "wss")


def test_udp_server_opts_is_a_network_server_opts_copied_whole() -> None:
    opts = Udp_server_opts(("127.0.0.1", 0), None, ploss_out_rate=0.5, impair_seed=3)
    copy = opts.getCopy()
    assert isinstance(copy, Network_server_opts) and copy is not opts
    assert (copy.laddress, copy.ploss_out_rate, copy.impair_seed, copy.direct_dispatch) == (
        ("127.0.0.1", 0),
        0.5,
        3,
        False,
    )


def test_request_leaves_by_the_transport_its_target_asks_for() -> None:
    tm, udp, wss, _ = mk()
    tm.newTransaction(out_request("OPTIONS"), Responses())
    tm.newTransaction(out_request("OPTIONS", ruri=f"sip:xyz@{CONN};transport=ws"), Responses())
    tm.newTransaction(
        out_request("OPTIONS", ruri="sip:bob@127.0.0.1:5062", routes=(f"sip:{CONN};transport=ws;lr",)),
        Responses(),
    )
    assert len(udp.sent) == 1 and len(wss.sent) == 2
    plain = SipRequest(buf=udp.sent[0][0])
    assert plain.getHFBody("via").transport == "UDP"
    assert plain.getHFBody("contact").getUrl().transport is None
    for data, address in wss.sent:
        req = SipRequest(buf=data)
        via = req.getHFBody("via")
        assert via.transport == "WSS" and via.getAddr() == WSS_LOCAL
        curl = req.getHFBody("contact").getUrl()
        assert (curl.host, curl.port, curl.transport) == ("127.0.0.1", 8443, "ws"), "reachable Contact"
        assert address[0] == CONN


def test_explicit_target_other_than_the_uri_goes_by_udp() -> None:
    """A B2BUA route's destination is an address, not the URI: the URI's transport= does not apply."""
    tm, udp, wss, _ = mk()
    tm.newTransaction(out_request("OPTIONS", ruri=f"sip:xyz@{CONN};transport=ws", target=UDP_PEER), None)
    assert len(udp.sent) == 1 and wss.sent == []


def test_remote_address_target_picks_its_transport() -> None:
    tm, udp, wss, _ = mk()
    tm.newTransaction(out_request("OPTIONS", target=wss.ra()), None)
    assert len(wss.sent) == 1 and udp.sent == []


def test_sips_asks_for_tls_and_no_tls_transport_is_a_503() -> None:
    tm, udp, wss, clock = mk()
    got = Responses()
    t = tm.newTransaction(out_request("OPTIONS", ruri="sips:bob@127.0.0.1:5061"), got)
    assert got.codes() == [], "not from inside newTransaction"
    clock.advance(0)
    assert got.codes() == [503] and udp.sent == wss.sent == [] and tm.tclient == {} and t.tid is not None
    assert clock.getDelayedCalls() == []


def test_transport_we_do_not_have_falls_back_to_udp_but_ws_does_not() -> None:
    """tcp (no such listener yet) goes by UDP as before; ws without a WSS listener is a 503,
    whether or not other transports are registered."""
    clock = Clock()
    udp = FakeUdp()
    tm = SipTransactionManager({}, None, transport=udp, reactor=clock)
    got = Responses()
    tm.newTransaction(out_request("OPTIONS", ruri="sip:bob@127.0.0.1:5062;transport=tcp"), got)
    tm.newTransaction(out_request("OPTIONS", ruri=f"sip:xyz@{CONN};transport=ws"), got)
    clock.advance(0)
    assert len(udp.sent) == 1 and SipRequest(buf=udp.sent[0][0]).getHFBody("via").transport == "UDP"
    assert got.codes() == [503]


def test_request_to_a_closed_connection_ends_as_503() -> None:
    tm, udp, wss, clock = mk()
    wss.connections.clear()
    got = Responses()
    tm.newTransaction(out_request("BYE", ruri=f"sip:xyz@{CONN};transport=ws"), got)
    clock.advance(0)
    assert got.codes() == [503] and tm.tclient == {} and clock.getDelayedCalls() == []


def test_reliable_client_timers_rfc3261() -> None:
    """Over a reliable transport: no timer A/E, B/F still bound the wait, K and D are zero."""
    tm, udp, wss, clock = mk()
    inv, opt = Responses(), Responses()
    t1 = tm.newTransaction(out_request("INVITE", ruri=f"sip:xyz@{CONN};transport=ws"), inv)
    tm.newTransaction(out_request("OPTIONS", ruri=f"sip:xyz@{CONN};transport=ws"), opt)
    clock.advance(31)
    assert len(wss.sent) == 2, "no retransmission over a reliable transport"
    ra = wss.ra()
    # A 486 to the INVITE: ACKed once, transaction gone at once (timer D zero).
    req = SipRequest(buf=wss.sent[0][0])
    resp = req.genResponse(486, "Busy Here")
    resp.getHFBody("to").setTag("tt")
    tm.handleIncoming(str(resp).encode(), ra, wss, MonoTime())
    assert inv.codes() == [486] and t1.tid not in tm.tclient
    ack = SipRequest(buf=wss.sent[2][0])
    assert ack.getMethod() == "ACK" and ack.getHFBody("via").transport == "WSS"
    clock.advance(2)
    assert opt.codes() == [408], "timer F still ends an unanswered request"
    assert tm.tclient == {} and clock.getDelayedCalls() == []
    assert tm._by_connection == {}, "nothing left in the per-connection index"


def test_2xx_ack_over_connection_says_its_transport() -> None:
    """The ACK of a 2xx, made here or by the UA (with a fresh UDP-default Via), goes on the
    INVITE's transport and its Via says so."""
    for ua_ack in (False, True):
        tm, udp, wss, _ = mk()
        got = Responses()
        t = tm.newTransaction(out_request("INVITE", ruri=f"sip:xyz@{CONN};transport=ws"), got)
        resp = SipRequest(buf=wss.sent[0][0]).genResponse(200, "OK")
        resp.getHFBody("to").setTag("tt")
        text = str(resp).replace(
            "\r\nContent-Length", f"\r\nContact: <sip:xyz@{CONN};transport=ws>\r\nContent-Length"
        )
        tm.handleIncoming(text.encode(), wss.ra(), wss, MonoTime())
        assert got.codes() == [200]
        if ua_ack:
            ack = out_request("ACK", ruri=f"sip:xyz@{CONN};transport=ws")
            tm.sendACK(t, ack)
        else:
            tm.sendACK(t)
        sent = SipRequest(buf=wss.sent[-1][0])
        assert sent.getMethod() == "ACK" and sent.getHFBody("via").transport == "WSS"
        assert wss.sent[-1][1][0] == CONN and udp.sent == []


def test_reliable_server_answers_on_its_connection_without_retransmission() -> None:
    """A request over the connection: Via received names the connection, answers go back on it,
    no timer G (no 2xx or non-2xx retransmission), J and I zero, the Contact host names the
    connection so that in-dialog requests find it."""
    seen: list[Any] = []

    def consumer(req: Any, t: Any) -> Any:
        seen.append(req)
        resp = req.genResponse(200, "OK")
        resp.appendHeader(SipHeader(name="contact", body=SipContact()))
        return (resp, None, None)

    tm, udp, wss, clock = mk()
    tm.req_cb = consumer
    ra = wss.ra()
    tm.handleIncoming(browser_invite(), ra, wss, MonoTime())
    invite = seen[0]
    via = invite.getHFBody("via")
    assert via.getParam("received") == CONN
    assert invite.getHFBody("contact").getUrl().host == CONN
    assert [SipResponse(buf=d).getSCodeNum() for d, _ in wss.sent] == [200]
    assert wss.sent[0][1] is ra and udp.sent == []
    curl = SipResponse(buf=wss.sent[0][0]).getHFBody("contact").getUrl()
    assert (curl.host, curl.port, curl.transport) == WSS_LOCAL + ("ws",), "a Contact the browser can use"
    clock.advance(20)
    assert len(wss.sent) == 1, "no 2xx retransmission over a reliable transport"
    # OPTIONS: answered, and gone at once (timer J zero).
    options = browser_invite("z9hG4bK-w2").replace(b"INVITE", b"OPTIONS")
    tm.handleIncoming(options, ra, wss, MonoTime())
    assert len(wss.sent) == 2 and all(t.method != "OPTIONS" for t in tm.tserver.values())
    clock.advance(40)  # timer H (the ACK never came)
    assert tm.tserver == {} and tm._by_connection == {}


def test_bad_request_over_connection_answered_on_it() -> None:
    tm, udp, wss, _ = mk()
    ra = wss.ra()
    bad = browser_invite().replace(b"CSeq: 1 INVITE", b"CSeq: x INVITE")
    tm.handleIncoming(bad, ra, wss, MonoTime())
    assert [SipResponse(buf=d).getSCodeNum() for d, _ in wss.sent] == [400] and wss.sent[0][1] is ra


def test_connection_lost_ends_its_transactions() -> None:
    tm, udp, wss, clock = mk()
    tm.req_cb = lambda req, t: None  # the consumer has not answered yet
    ra = wss.ra()
    tm.handleIncoming(browser_invite(), ra, wss, MonoTime())
    got = Responses()
    tm.newTransaction(out_request("OPTIONS", ruri=f"sip:xyz@{CONN};transport=ws"), got)
    udp_got = Responses()
    tm.newTransaction(out_request("OPTIONS"), udp_got)
    assert len(tm.tserver) == 1 and len(tm.tclient) == 2
    wss.reportFailed(ra)
    clock.advance(0)
    assert got.codes() == [503] and tm.tserver == {} and len(tm.tclient) == 1, "the UDP one goes on"
    assert wss.stats.errors == 1 and tm._by_connection == {}


def test_connection_lost_leaves_other_connections_alone() -> None:
    tm, udp, wss, clock = mk()
    wss.connections.add("c2.invalid")
    other = Responses()
    tm.newTransaction(out_request("OPTIONS", ruri="sip:xyz@c2.invalid;transport=ws"), other)
    wss.reportFailed(wss.ra())
    clock.advance(0)
    assert other.codes() == [] and len(tm.tclient) == 1


def test_registered_transport_from_global_config_and_udp_refused() -> None:
    wss = FakeWss()
    gc: dict[str, Any] = {"_wss_server": wss}
    tm = SipTransactionManager(gc, None, transport=FakeUdp(), reactor=Clock())
    assert tm.listeners == {"wss": wss}
    try:
        tm.registerTransport(FakeUdp())
    except ValueError:
        pass
    else:
        raise AssertionError("a UDP socket is the manager's own")
