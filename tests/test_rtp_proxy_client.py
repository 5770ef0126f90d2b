"""Rtp_proxy_client against the real RTPproxy: every contact kind, capabilities, the heartbeat
taking a proxy offline and back online, commands that get no answer failing, stream reconnects,
and the per-session command order."""

from __future__ import annotations

import socket
from typing import Any, Optional

import pytest
from twisted.internet.task import Clock

from sippy.Rtp_proxy.client import Rtp_proxy_client, parse_contact
from sippy.Rtp_proxy.Client.udp import Rtp_proxy_client_udp
from sippy.Rtp_proxy.Cmd.sequencer import Rtp_proxy_cmd_sequencer
from tests.radius_util import run_reactor_until
from tests.rtpproxy_util import RtpProxy


class FastClient(Rtp_proxy_client):
    hrtb_ival = 0.2
    hrtb_retr_ival = 0.3


def _answers(client: Rtp_proxy_client, *cmds: str, timeout: float = 5.0) -> list[Optional[str]]:
    got: dict[int, Optional[str]] = {}
    for i, cmd in enumerate(cmds):
        client.send_command(cmd, lambda r, i=i: got.__setitem__(i, r))
    run_reactor_until(lambda: len(got) == len(cmds), timeout)
    return [got[i] for i in range(len(cmds))]


@pytest.mark.parametrize("ctrl", ["udp", "udp6", "unix", "cunix", "tcp", "tcp6"])
def test_every_contact_kind_comes_online_and_relays_commands(ctrl: str) -> None:
    with RtpProxy(ctrl, ipv6=True) as proxy:
        client = FastClient({"_sip_address": "127.0.0.1"}, spath=proxy.contact)
        try:
            run_reactor_until(lambda: client.online)
            assert client.tnot_supported and client.wdnt_supported and client.caps_done
            assert client.caps == {
                "copy_supported": True,
                "stat_supported": True,
                "tnot_supported": True,
                "sbind_supported": True,
                "wdnt_supported": True,
            }
            port, created = _answers(client, "U cid-1 127.0.0.1 4000 ft1", "U cid-2 127.0.0.1 4002 ft2")
            assert port is not None and int(port.split()[0]) >= proxy.rtp_low
            assert proxy.active_sessions() == 2
            assert _answers(client, "D cid-1 ft1", "D cid-2 ft2") == ["0", "0"]
            assert proxy.active_sessions() == 0
            # The heartbeat's stats query saw the sessions come and go.
            run_reactor_until(lambda: client.sessions_created == 2 and client.active_sessions == 0)
        finally:
            client.shutdown()


def test_a_proxy_that_stops_answering_goes_offline_and_comes_back() -> None:
    proxy = RtpProxy("udp").start()
    client = FastClient({}, spath=proxy.contact)
    client.transport.retr_ivals = (0.1, 0.1)
    try:
        run_reactor_until(lambda: client.online)
        proxy.stop()
        run_reactor_until(lambda: not client.online)
        proxy.start()
        run_reactor_until(lambda: client.online)
    finally:
        client.shutdown()
        proxy.stop()


def test_a_unix_proxy_restarted_is_reconnected() -> None:
    proxy = RtpProxy("cunix").start()
    client = FastClient({}, spath=proxy.contact)
    try:
        run_reactor_until(lambda: client.online)
        proxy.stop()
        run_reactor_until(lambda: not client.online)
        assert _answers(client, "V") == [None]
        proxy.start()
        run_reactor_until(lambda: client.online)
        assert _answers(client, "V") == ["20040107"]
    finally:
        client.shutdown()
        proxy.stop()


def test_nobody_listening_never_goes_online_and_commands_fail() -> None:
    with RtpProxy("udp") as proxy:
        pass  # a port where nobody answers any more
    client = FastClient({}, spath=proxy.contact)
    client.transport.retr_ivals = (0.1, 0.1)
    try:
        assert _answers(client, "V") == [None]
        assert not client.online
    finally:
        client.shutdown()


def test_udp_retransmits_until_the_last_wait_then_fails() -> None:
    """Driven by a Clock: sendings at 0, 0.5, 1.0, 2.0 s, failure at 3.0 s."""
    clock = Clock()
    sent: list[float] = []

    class Port:
        def write(self, data: bytes, addr: Any) -> None:
            sent.append(clock.seconds())

        def stopListening(self) -> None:
            pass

    clock.listenUDP = lambda *a, **kw: Port()  # type: ignore[attr-defined]
    udp = Rtp_proxy_client_udp(("127.0.0.1", 9), reactor=clock)
    results: list[Optional[str]] = []
    udp.send_command("V", results.append)
    clock.pump([0.25] * 11)
    assert sent == [0.0, 0.5, 1.0, 2.0] and results == []
    clock.advance(0.25)
    assert results == [None]


def test_udp_answers_are_matched_by_cookie_in_any_order() -> None:
    clock = Clock()
    out: list[bytes] = []

    class Port:
        def write(self, data: bytes, addr: Any) -> None:
            out.append(data)

        def stopListening(self) -> None:
            pass

    clock.listenUDP = lambda *a, **kw: Port()  # type: ignore[attr-defined]
    udp = Rtp_proxy_client_udp(("127.0.0.1", 9), reactor=clock)
    results: list[tuple[Optional[str], str]] = []
    udp.send_command("V", lambda r: results.append((r, "first")))
    udp.send_command("VF 1", lambda r: results.append((r, "second")))
    c1, c2 = (x.split()[0] for x in out)
    udp._recv(c2 + b" 1\n", ("127.0.0.1", 9))
    udp._recv(c1 + b" 20040107\n", ("127.0.0.2", 9))  # not from the proxy: ignored
    udp._recv(c1 + b" 20040107\n", ("127.0.0.1", 9))
    udp._recv(c1 + b" 20040107\n", ("127.0.0.1", 9))  # a late duplicate: nobody waits
    assert results == [("1", "second"), ("20040107", "first")]


def test_a_session_s_commands_go_out_one_after_the_other() -> None:
    sent: list[tuple[str, Any]] = []

    class Client:
        def send_command(self, cmd: str, cb: Any, *params: Any) -> None:
            sent.append((cmd, lambda r: cb(r, *params)))

    results: list[Any] = []
    seq = Rtp_proxy_cmd_sequencer(Client())
    seq.send_command("U a", lambda r: results.append(("U", r)))
    seq.send_command("U b", lambda r: results.append(("U2", r)))
    seq.send_command("D c")
    assert [c for c, _ in sent] == ["U a"]
    sent[0][1]("1000")
    assert [c for c, _ in sent] == ["U a", "U b"]
    sent[1][1](None)
    assert [c for c, _ in sent] == ["U a", "U b", "D c"]
    assert results == [("U", "1000"), ("U2", None)]


@pytest.mark.parametrize(
    "spath, kind, address",
    [
        ("/var/run/rtpproxy.sock", "unix", "/var/run/rtpproxy.sock"),
        ("unix:/tmp/x", "unix", "/tmp/x"),
        ("cunix:/tmp/x", "cunix", "/tmp/x"),
        ("udp:127.0.0.1", "udp", ("127.0.0.1", 22222)),
        ("udp:127.0.0.1:1234", "udp", ("127.0.0.1", 1234)),
        ("udp6:[::1]:1234", "udp6", ("::1", 1234)),
        ("udp6:::1", "udp6", ("::1", 22222)),
        ("udp6:[::1]", "udp6", ("::1", 22222)),
        ("tcp:127.0.0.1:99", "tcp", ("127.0.0.1", 99)),
        ("tcp6:[::1]", "tcp6", ("::1", 22222)),
    ],
)
def test_contacts_parse(spath: str, kind: str, address: Any) -> None:
    contact = parse_contact(spath)
    assert (contact.kind, contact.address) == (kind, address)
    assert contact.family == {"unix": socket.AF_UNIX, "cunix": socket.AF_UNIX}.get(
        kind, socket.AF_INET6 if kind.endswith("6") else socket.AF_INET
    )


@pytest.mark.parametrize("spath", ["udp:", "udp:127.0.0.1:0", "udp:127.0.0.1:x", "tcp:[::1", "unix:"])
def test_bad_contacts_are_refused(spath: str) -> None:
    with pytest.raises(ValueError):
        parse_contact(spath)
