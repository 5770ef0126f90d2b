"""Calls through b2bua_radius -f -u with --tcp_socket: SIPp over TCP (-t t1) on one side, SIPp over
UDP on the other, BYE from either side."""

from __future__ import annotations

import re
import socket
import ssl
import uuid
from pathlib import Path
from typing import Optional

import pytest

from tests.conftest import free_port, has_ipv6
from tests.sipp_util import SCENARIO_DIR, Sipp
from tests.test_b2bua_radius_ops import B2bua, cli_command, wait_for
from tests.test_b2bua_radius_routes import first_line, hunt
from tests.test_tls_calls import SDP, TlsUA, _answer, _hdr, _request
from tests.wss_util import make_cert


def _tcp_scenario(tmp: Path, name: str) -> str:
    """A scenario whose Contact says the transport (a peer reached back over TCP needs it)."""
    text = (Path(SCENARIO_DIR) / name).read_text()
    text = re.sub(r"Contact: <sip:([^>;]*)>", r"Contact: <sip:\1;transport=[transport]>", text)
    path = tmp / name
    path.write_text(text)
    return str(path)


def _run(
    tmp: Path,
    caller_tcp: bool,
    callee_bye: bool,
    reinvite: Optional[str] = None,
    contact_transport: bool = True,
) -> None:
    """One call, TCP on the caller's or the callee's side; `reinvite`: 'caller' or 'callee' sends
    a hold and a resume re-INVITE (the caller hangs up); `contact_transport`: the TCP side's Contact
    says ;transport=tcp (else SIPp's own Contact, without it)."""
    callee_port = free_port()
    tport = free_port()
    b2b = B2bua(tmp, callee_port, extra=("--tcp_socket", f"127.0.0.1:{tport}"))
    if not caller_tcp:
        i = b2b.args.index("-s") + 1
        b2b.args[i] += ";transport=tcp"
    t_callee = ("-t", "t1") if not caller_tcp else ()
    t_caller = ("-key", "cli", "alice", *(("-t", "t1") if caller_tcp else ()))
    uas_name = "simple_uas_bye.xml" if callee_bye else "simple_uas.xml"
    uac_name = "simple_uac_wait_bye.xml" if callee_bye else "simple_uac.xml"
    if reinvite == "caller":
        uac_name, uas_name = "simple_uac_reinvite.xml", "simple_uas_answer_reinvite.xml"
    elif reinvite == "callee":
        uac_name, uas_name = "simple_uac_answer_reinvite.xml", "simple_uas_reinvite.xml"
    uas = _tcp_scenario(tmp, uas_name) if not caller_tcp else uas_name
    uac = _tcp_scenario(tmp, uac_name) if caller_tcp and contact_transport else uac_name
    # The callee that hangs up first holds the call 1.5 s: long enough to look at `l`.
    hold = ("-d", "1500") if callee_bye else ()
    callee = Sipp(uas, local_port=callee_port, calls=1, timeout=15, extra=(*t_callee, *hold))
    b2b.start()
    try:
        callee.start()
        remote = ("127.0.0.1", tport) if caller_tcp else b2b.address
        caller = Sipp(uac, remote=remote, calls=1, timeout=15, extra=t_caller).start()
        try:
            if callee_bye:
                # `l` names the TCP leg's transport.
                leg = "tcp:127.0.0.1:" if caller_tcp else f"tcp:127.0.0.1:{callee_port} "
                assert wait_for(lambda: leg in b2b.calls()), b2b.calls()
            res = caller.wait()
        finally:
            caller.cleanup()
        cres = callee.wait()
        log = b2b.log.read_text()
        assert res.returncode == 0 and res.stat("SuccessfulCall") == 1, res.describe() + log
        assert cres.returncode == 0, cres.describe() + log
        tcp_side = caller.result if caller_tcp else cres
        assert "TCP message received" in tcp_side.trace and "UDP message" not in tcp_side.trace
        assert tcp_side.received("SIP/2.0 200") or tcp_side.received("BYE"), tcp_side.trace
        if not caller_tcp:
            # Our Via and Contact on the INVITE the TCP callee got say TCP.
            invite = cres.received("INVITE")[0]
            assert re.search(rf"^Via: SIP/2.0/TCP 127.0.0.1:{tport};", invite, re.M), invite
            assert "transport=tcp" in re.search(r"^Contact:.*$", invite, re.M | re.I).group(0), invite
        if callee_bye:
            assert (caller.result if caller_tcp else res).received("BYE"), log
        if reinvite is not None:
            # Both re-INVITEs (hold, resume) crossed to the other side and were answered.
            far = cres if reinvite == "caller" else res
            assert len(far.received("INVITE ")) == (3 if reinvite == "caller" else 2), log
    finally:
        callee.cleanup()
        b2b.kill()


def test_tcp_caller_udp_callee_caller_hangs_up(tmp_path: Path) -> None:
    _run(tmp_path, caller_tcp=True, callee_bye=False)


def test_tcp_caller_udp_callee_callee_hangs_up(tmp_path: Path) -> None:
    _run(tmp_path, caller_tcp=True, callee_bye=True)


def test_tcp_caller_contact_without_transport_gets_bye_on_its_connection(tmp_path: Path) -> None:
    """SIPp over TCP with a Contact that does not say TCP: `l` shows the leg as TCP and the
    callee's BYE reaches the caller on its connection (by the Contact alone it would go by UDP)."""
    _run(tmp_path, caller_tcp=True, callee_bye=True, contact_transport=False)


def test_udp_caller_tcp_callee_caller_hangs_up(tmp_path: Path) -> None:
    _run(tmp_path, caller_tcp=False, callee_bye=False)


def test_udp_caller_tcp_callee_callee_hangs_up(tmp_path: Path) -> None:
    _run(tmp_path, caller_tcp=False, callee_bye=True)


def _tcp_caller_call(tmp: Path, close_after_ack: bool, contact_listener: bool = False) -> None:
    """A caller written here over TCP; the SIPp callee (UDP) hangs up. The caller's Contact is its
    connection's own address, or (`contact_listener`) another port, where the test listens. Open
    connection: the BYE toward the caller comes on it (the Contact's port gets no connection).
    Closed after the ACK: the B2BUA keeps serving and the BYE goes to the Contact: refused at once
    (its own port: nothing listens there any more), or on a new connection to the listener.
    Either way nothing is left waiting; after the drop (own port) new connections are served and
    once the timers ran out (64*T1) no call or transaction is left."""
    callee_port, tport = free_port(), free_port()
    contact = socket.socket()
    contact.bind(("127.0.0.1", free_port()))
    contact.listen(4)
    contact.settimeout(10)
    b2b = B2bua(tmp, callee_port, extra=("--tcp_socket", f"127.0.0.1:{tport}"))
    callee = Sipp("simple_uas_bye.xml", local_port=callee_port, calls=1, timeout=15, extra=("-d", "1000"))
    b2b.start()
    try:
        callee.start()
        sock = socket.create_connection(("127.0.0.1", tport), timeout=10)
        cport = contact.getsockname()[1] if contact_listener else sock.getsockname()[1]
        ua = TlsUA(sock)
        call_id, to = uuid.uuid4().hex, f"<sip:1234@127.0.0.1:{tport}>"
        ruri = f"sip:1234@127.0.0.1:{tport};transport=tcp"
        ua.send(_request("INVITE", ruri, call_id, 1, to, cport, SDP, transport="tcp"))
        ok = ua.recv_final()
        assert ok.startswith("SIP/2.0 200 "), ok
        target = re.search(r"<([^>]*)>", _hdr(ok, "Contact")).group(1)
        ua.send(_request("ACK", target, call_id, 1, _hdr(ok, "To"), cport, transport="tcp"))
        if close_after_ack:
            sock.close()
            if contact_listener:
                ua = TlsUA(contact.accept()[0])
        if not close_after_ack or contact_listener:
            bye = ua.recv()
            assert bye.startswith(f"BYE sip:alice@127.0.0.1:{cport};transport=tcp "), bye
            ua.send(_answer(bye, "200 OK"))
        if not close_after_ack:
            contact.settimeout(0.2)
            with pytest.raises(socket.timeout):
                contact.accept()
        res = callee.wait()
        assert res.returncode == 0 and res.received("SIP/2.0 200"), res.describe() + b2b.log.read_text()
        # Both legs end (the call lingers Disconnected a while, as over UDP) and no transaction is
        # left waiting (a BYE toward a gone caller ended at once, not after 64*T1).
        assert wait_for(lambda: re.search(r"\(Disconnected tcp:\S+ .* -> Disconnected ", b2b.calls())), (
            b2b.calls()
        )

        def client_transactions() -> str:
            return cli_command(b2b.sock, "lt\n").partition("client transactions:")[2]

        assert wait_for(lambda: "BYE" not in client_transactions()), client_transactions()
        ua.sock.close()
        if close_after_ack and not contact_listener:
            # A new connection is served as ever; once the timers ran out (the call lingers
            # godead_timeout, 32 s; the callee's INVITE transaction Timer M, 64*T1) nothing is
            # left: no call, no transaction.
            with socket.create_connection(("127.0.0.1", tport), timeout=10) as ping:
                ping.sendall(b"\r\n\r\n")
                assert ping.recv(10) == b"\r\n"

            def nothing_left() -> bool:
                listing = cli_command(b2b.sock, "lt\n")
                return "Total: 0\n" in b2b.calls() and not any(
                    x for x in listing.splitlines() if not x.startswith("In-memory")
                )

            assert wait_for(nothing_left, 64 * 0.5 + 10), b2b.calls() + cli_command(b2b.sock, "lt\n")
    finally:
        contact.close()
        callee.cleanup()
        b2b.kill()


@pytest.mark.parametrize("close_after_ack", [False, True], ids=["open", "closed"])
def test_in_dialog_request_on_dialog_connection_else_to_contact(
    tmp_path: Path, close_after_ack: bool
) -> None:
    """The caller's Contact names a port that is not its connection's."""
    _tcp_caller_call(tmp_path, close_after_ack, contact_listener=True)


@pytest.mark.parametrize("caller_tcp", [True, False], ids=["tcp_caller", "tcp_callee"])
@pytest.mark.parametrize("reinvite", ["caller", "callee"])
def test_reinvite_both_ways(tmp_path: Path, caller_tcp: bool, reinvite: str) -> None:
    _run(tmp_path, caller_tcp=caller_tcp, callee_bye=False, reinvite=reinvite)


def test_bye_to_tcp_caller_goes_over_its_connection(tmp_path: Path) -> None:
    _tcp_caller_call(tmp_path, close_after_ack=False)


def test_tcp_caller_connection_closed_mid_call(tmp_path: Path) -> None:
    _tcp_caller_call(tmp_path, close_after_ack=True)


def test_200_concurrent_tcp_connections_each_with_a_call(tmp_path: Path) -> None:
    """SIPp -t tn: one TCP connection per call, 200 calls up at once (3 s each at 100 calls/s)."""
    callee_port, tport = free_port(), free_port()
    b2b = B2bua(tmp_path, callee_port, extra=("--tcp_socket", f"127.0.0.1:{tport}"))
    callee = Sipp("uas", local_port=callee_port, calls=200, timeout=40)
    b2b.start()
    try:
        callee.start()
        caller = Sipp(
            "uac",
            remote=("127.0.0.1", tport),
            calls=200,
            rate=100,
            timeout=40,
            trace_msg=False,
            extra=("-t", "tn", "-d", "3000", "-l", "200", "-max_socket", "300"),
        )
        try:
            caller.start()
            # At the peak every call has its own connection at the B2BUA.
            assert wait_for(lambda: re.search(r"^Total: 200$", b2b.calls(), re.M), 20), b2b.calls()[-300:]
            res = caller.wait()
        finally:
            caller.cleanup()
        assert res.returncode == 0 and res.stat("SuccessfulCall") == 200, res.describe()[-3000:]
        assert callee.wait().stat("SuccessfulCall") == 200
    finally:
        callee.cleanup()
        b2b.kill()


@pytest.mark.parametrize("transport", ["udp", "tcp", "tls"])
def test_lt_names_each_transactions_call_id_and_peer(tmp_path: Path, transport: str) -> None:
    """`lt` on the control socket while a call rings (the callee, a UDP socket, never answers):
    the caller's INVITE (server side) with its Call-ID and the connection or address it came from,
    ours to the callee (client side) likewise, whatever the caller's transport."""
    callee = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    callee.bind(("127.0.0.1", free_port()))
    callee_port = callee.getsockname()[1]
    lport = free_port()
    extra: tuple = ()
    if transport == "tcp":
        extra = ("--tcp_socket", f"127.0.0.1:{lport}")
    elif transport == "tls":
        cert = make_cert(tmp_path)
        extra = ("--tls_socket", f"127.0.0.1:{lport}:{cert[0]}:{cert[1]}")
    b2b = B2bua(tmp_path, callee_port, extra=extra)
    b2b.start()
    try:
        if transport == "udp":
            sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            sock.bind(("127.0.0.1", 0))
            sock.connect(b2b.address)
            lport = b2b.port
            send = sock.send
        else:
            sock = socket.create_connection(("127.0.0.1", lport), timeout=10)
            if transport == "tls":
                sock = ssl.create_default_context(cafile=cert[0]).wrap_socket(
                    sock, server_hostname="localhost"
                )
            send = sock.sendall
        own = sock.getsockname()[1]
        call_id = f"lt-{uuid.uuid4().hex}"
        invite = _request(
            "INVITE", f"sip:1234@127.0.0.1:{lport}", call_id, 1, "<sip:1234@127.0.0.1>", own, SDP
        )
        send(invite.replace("tls", transport).replace("TLS", transport.upper()).encode())
        callee.settimeout(10)
        callee.recv(65536)  # our INVITE reached the callee
        server, _, client = cli_command(b2b.sock, "lt\n").partition("In-memory client transactions:\n")
        assert re.search(
            rf"^{call_id} \(.*\) INVITE (TRYING|RINGING) {transport}:127.0.0.1:{own}$", server, re.M
        ), server
        # The outgoing leg's Call-ID is the caller's with -b2b_<route number>.
        assert re.search(
            rf"^{call_id}-b2b_1 \(.*\) INVITE TRYING udp:127.0.0.1:{callee_port}$", client, re.M
        ), client
        sock.close()
    finally:
        callee.close()
        b2b.kill()


def test_connection_limit_flags(tmp_path: Path) -> None:
    """--tcp_max_connections_per_address=1: a second connection from the same address is closed at
    once; --tcp_max_message_size=2000: a larger INVITE gets 413 and its connection is closed. Each
    limit is logged once, named as its flag."""
    tport = free_port()
    b2b = B2bua(
        tmp_path,
        free_port(),
        extra=(
            "--tcp_socket",
            f"127.0.0.1:{tport}",
            "--tcp_max_connections_per_address=1",
            "--tcp_max_message_size=2000",
        ),
    )
    b2b.start()
    try:
        first = socket.create_connection(("127.0.0.1", tport), timeout=10)
        lport = first.getsockname()[1]
        for _ in range(2):
            second = socket.create_connection(("127.0.0.1", tport), timeout=10)
            assert second.recv(100) == b""  # closed by the B2BUA
            second.close()
        to = f"<sip:1234@127.0.0.1:{tport}>"
        big = _request(
            "INVITE", f"sip:1234@127.0.0.1:{tport}", "big-1", 1, to, lport, SDP + "a=x:" + "y" * 2000 + "\r\n"
        )
        ua = TlsUA(first)
        ua.send(big.replace("TLS", "TCP").replace("=tls", "=tcp"))
        assert ua.recv().startswith("SIP/2.0 413 "), "no 413"
        assert first.recv(100) == b""
        first.close()
        per_address = "limit tcp_max_connections_per_address: 1 connections open from 127.0.0.1"
        size = "limit tcp_max_message_size: over 2000 bytes: 413"
        assert wait_for(lambda: size in b2b.log.read_text()), b2b.log.read_text()
        log = b2b.log.read_text()
        assert log.count(per_address) == 1 and log.count(size) == 1, log
    finally:
        b2b.kill()


@pytest.mark.skipif(not has_ipv6(), reason="no IPv6 loopback")
def test_tcp_sockets_from_config_file_one_ipv6_call_over_it(tmp_path: Path) -> None:
    """Two tcp_socket keys in a -C file, 127.0.0.1 and [::1]: both listen (a ping is answered on
    the first); a caller over TCP on ::1 gets a call through to the UDP callee and hangs up."""
    callee_port, port4, port6 = free_port(), free_port(), free_port("::1")
    conf = tmp_path / "b2bua.conf"
    conf.write_text(f"[general]\ntcp_socket = 127.0.0.1:{port4}\ntcp_socket = [::1]:{port6}\n")
    b2b = B2bua(tmp_path, callee_port, extra=("-C", str(conf)))
    callee = Sipp("simple_uas.xml", local_port=callee_port, calls=1, timeout=15)
    b2b.start()
    try:
        callee.start()
        with socket.create_connection(("127.0.0.1", port4), timeout=10) as ping:
            ping.sendall(b"\r\n\r\n")
            assert ping.recv(10) == b"\r\n"
        sock = socket.create_connection(("::1", port6), timeout=10)
        lport = sock.getsockname()[1]
        ua = TlsUA(sock)

        def v6(text: str) -> str:
            head, sep, body = text.partition("\r\n\r\n")  # the SDP (its length counted) stays
            return head.replace("127.0.0.1", "[::1]") + sep + body

        call_id, to = uuid.uuid4().hex, f"<sip:1234@[::1]:{port6}>"
        ruri = f"sip:1234@[::1]:{port6};transport=tcp"
        ua.send(v6(_request("INVITE", ruri, call_id, 1, to, lport, SDP, transport="tcp")))
        ok = ua.recv_final()
        assert ok.startswith("SIP/2.0 200 "), ok
        assert re.search(rf"^Via: SIP/2.0/TCP \[::1\]:{lport};.*rport={lport}", ok, re.M | re.I), ok
        target = re.search(r"<([^>]*)>", _hdr(ok, "Contact")).group(1)
        assert target.startswith("sip:") and f"[::1]:{port6}" in target and "transport=tcp" in target, ok
        to = _hdr(ok, "To")
        ua.send(v6(_request("ACK", target, call_id, 1, to, lport, transport="tcp")))
        ua.send(v6(_request("BYE", target, call_id, 2, to, lport, transport="tcp")))
        assert ua.recv_final().startswith("SIP/2.0 200 ")
        res = callee.wait()
        assert res.returncode == 0 and res.received("BYE"), res.describe() + b2b.log.read_text()
        sock.close()
    finally:
        callee.cleanup()
        b2b.kill()


def test_tcp_route_connect_refused_next_route_at_once() -> None:
    """Two routes, the first `;transport=tcp` to a port where nothing listens: the refused connect
    ends that attempt at once (503, not a timer) and the second route (UDP) takes the call."""
    dead, callee_port = free_port(), free_port()
    callee = Sipp("uas", local_port=callee_port, timeout=15)
    routes = [f"127.0.0.1:{dead};transport=tcp", f"127.0.0.1:{callee_port}"]
    args = ("--tcp_socket", f"127.0.0.1:{free_port()}")
    uac, (uas,), err, took = hunt(routes, [callee], uac="radius_uac.xml", timeout=15, args=args)
    assert uac.returncode == 0, uac.describe() + err
    assert uas.returncode == 0 and uas.received("INVITE"), uas.describe() + err
    assert [first_line(m) for m in uac.received("SIP/2.0") if not m.startswith("SIP/2.0 1")] == [
        "SIP/2.0 200 OK",
        "SIP/2.0 200 OK",  # the BYE's
    ]
    assert took < 5, took
