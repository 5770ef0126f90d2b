"""Calls over TLS through b2bua_radius -f -u with --tls_socket: a small TLS SIP UA written here
(Python ssl, self-signed certificates made by the test) on one side, SIPp over UDP on the other.
A callee whose certificate does not verify is refused (the caller gets 503)."""

from __future__ import annotations

import re
import socket
import ssl
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Optional

import pytest

from sippy.Tcp_server import StreamFramer
from tests.conftest import free_port
from tests.sipp_util import Sipp
from tests.test_b2bua_radius_ops import SCRIPT, B2bua
from tests.wss_util import make_cert

SDP = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n"


class TlsUA:
    """One TLS (or plain TCP) connection speaking SIP: write a message, read whole messages
    (Content-Length)."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.sock.settimeout(10)
        self.framer = StreamFramer()
        self.queue: list[str] = []

    def send(self, text: str) -> None:
        self.sock.sendall(text.encode())

    def recv(self) -> str:
        while not self.queue:
            data = self.sock.recv(65536)
            assert data, "connection closed"
            self.queue += [f.decode() for f in self.framer.feed(data) if isinstance(f, bytes)]
        return self.queue.pop(0)

    def recv_final(self) -> str:
        while True:
            msg = self.recv()
            if not re.match(r"SIP/2.0 1\d\d ", msg):
                return msg


def _hdr(msg: str, name: str) -> str:
    m = re.search(rf"^{name}:\s*(.*?)\r?$", msg, re.M | re.I)
    assert m, (name, msg)
    return m.group(1)


def _answer(req: str, code: str, to_tag: Optional[str] = None, body: str = "", contact: str = "") -> str:
    lines = [f"SIP/2.0 {code}"]
    lines += [f"Via: {v}" for v in re.findall(r"^Via:\s*(.*?)\r?$", req, re.M | re.I)]
    to = _hdr(req, "To") + (f";tag={to_tag}" if to_tag and "tag=" not in _hdr(req, "To") else "")
    lines += [f"From: {_hdr(req, 'From')}", f"To: {to}", f"Call-ID: {_hdr(req, 'Call-ID')}"]
    lines += [f"CSeq: {_hdr(req, 'CSeq')}"]
    if contact:
        lines.append(f"Contact: {contact}")
    if body:
        lines.append("Content-Type: application/sdp")
    lines.append(f"Content-Length: {len(body)}")
    return "\r\n".join(lines) + "\r\n\r\n" + body


def _request(
    method: str,
    ruri: str,
    call_id: str,
    cseq: int,
    to: str,
    lport: int,
    body: str = "",
    transport: str = "tls",
) -> str:
    lines = [
        f"{method} {ruri} SIP/2.0",
        f"Via: SIP/2.0/{transport.upper()} 127.0.0.1:{lport};branch=z9hG4bK{uuid.uuid4().hex[:10]};rport",
        "Max-Forwards: 70",
        "From: <sip:alice@127.0.0.1>;tag=tlsua1",
        f"To: {to}",
        f"Call-ID: {call_id}",
        f"CSeq: {cseq} {method}",
        f"Contact: <sip:alice@127.0.0.1:{lport};transport={transport}>",
    ]
    if body:
        lines.append("Content-Type: application/sdp")
    lines.append(f"Content-Length: {len(body)}")
    return "\r\n".join(lines) + "\r\n\r\n" + body


def _b2bua(tmp: Path, callee_port: int, tls_port: int, cert: tuple[str, str], extra: tuple = ()) -> B2bua:
    spec = f"127.0.0.1:{tls_port}:{cert[0]}:{cert[1]}"
    return B2bua(tmp, callee_port, extra=("--tls_socket", spec, *extra))


def test_tls_caller_udp_callee_call_and_bye(tmp_path: Path) -> None:
    cert = make_cert(tmp_path)
    callee_port, tls_port = free_port(), free_port()
    b2b = _b2bua(tmp_path, callee_port, tls_port, cert)
    callee = Sipp("simple_uas.xml", local_port=callee_port, calls=1, timeout=15)
    b2b.start()
    try:
        callee.start()
        ctx = ssl.create_default_context(cafile=cert[0])
        raw = socket.create_connection(("127.0.0.1", tls_port), timeout=10)
        lport = raw.getsockname()[1]
        ua = TlsUA(ctx.wrap_socket(raw, server_hostname="localhost"))
        call_id = uuid.uuid4().hex
        to = f"<sip:1234@127.0.0.1:{tls_port}>"
        ua.send(
            _request("INVITE", f"sip:1234@127.0.0.1:{tls_port};transport=tls", call_id, 1, to, lport, SDP)
        )
        ok = ua.recv_final()
        assert ok.startswith("SIP/2.0 200 "), ok
        assert "SIP/2.0/TLS" in _hdr(ok, "Via")
        assert "transport=tls" in _hdr(ok, "Contact").lower()
        to = _hdr(ok, "To")
        target = re.search(r"<([^>]*)>", _hdr(ok, "Contact")).group(1)
        ua.send(_request("ACK", target, call_id, 1, to, lport))
        ua.send(_request("BYE", target, call_id, 2, to, lport))
        assert ua.recv_final().startswith("SIP/2.0 200 ")
        res = callee.wait()
        assert res.returncode == 0, res.describe() + b2b.log.read_text()
        assert res.received("BYE")
    finally:
        callee.cleanup()
        b2b.kill()


def _tls_listener(cert: tuple[str, str]) -> tuple[socket.socket, ssl.SSLContext, int]:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(*cert)
    port = free_port()
    lsock = socket.socket()
    lsock.bind(("127.0.0.1", port))
    lsock.listen(4)
    lsock.settimeout(10)
    return lsock, ctx, port


class TlsCallee:
    """A UDP SIPp caller calling through b2bua_radius -s '...;transport=tls' a TLS callee played
    by the test (its listening socket `lsock`, server context `ctx`). `trusted`: the B2BUA's
    --tls_ca is the callee's certificate, else only the B2BUA's own (the callee does not verify)."""

    def __init__(self, tmp: Path, scenario: str, trusted: bool) -> None:
        b2b_cert = self.b2b_cert = make_cert(tmp, "b2bua")
        callee_cert = make_cert(tmp, "callee")
        self.lsock, self.ctx, self.port = _tls_listener(callee_cert)
        self.tls_port = free_port()
        ca = callee_cert[0] if trusted else b2b_cert[0]
        self.b2b = _b2bua(tmp, self.port, self.tls_port, b2b_cert, ("--tls_ca", ca))
        self.b2b.args[self.b2b.args.index("-s") + 1] += ";transport=tls"
        self.scenario = scenario

    def __enter__(self) -> TlsCallee:
        self.b2b.start()
        self.caller = Sipp(
            self.scenario, remote=self.b2b.address, calls=1, timeout=15, extra=("-key", "cli", "a")
        )
        self.caller.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.caller.cleanup()
        self.lsock.close()
        self.b2b.kill()


def test_udp_caller_tls_callee_verified_call_and_callee_bye(tmp_path: Path) -> None:
    with TlsCallee(tmp_path, "simple_uac_wait_bye.xml", trusted=True) as c:
        conn, _ = c.lsock.accept()
        ua = TlsUA(c.ctx.wrap_socket(conn, server_side=True))
        invite = ua.recv()
        assert invite.startswith("INVITE sip:") and ";transport=tls" in invite.split("\r\n", 1)[0], invite
        assert re.search(rf"^Via: SIP/2.0/TLS 127.0.0.1:{c.tls_port};", invite, re.M), invite
        ua.send(_answer(invite, "200 OK", "callee1", SDP, f"<sip:bob@127.0.0.1:{c.port};transport=tls>"))
        ack = ua.recv()
        assert ack.startswith("ACK "), ack
        # The callee hangs up over the same connection.
        target = re.search(r"<([^>]*)>", _hdr(invite, "Contact")).group(1)
        bye = _request("BYE", target, _hdr(invite, "Call-ID"), 1, "", c.port)
        bye = bye.replace("From: <sip:alice@127.0.0.1>;tag=tlsua1", f"From: {_hdr(invite, 'To')};tag=callee1")
        bye = bye.replace("To: \r\n", f"To: {_hdr(invite, 'From')}\r\n")
        ua.send(bye)
        assert ua.recv_final().startswith("SIP/2.0 200 ")
        res = c.caller.wait()
        assert res.returncode == 0 and res.stat("SuccessfulCall") == 1, res.describe() + c.b2b.log.read_text()


def test_callee_certificate_not_verified_is_refused_with_503(tmp_path: Path) -> None:
    callee = TlsCallee(tmp_path, "simple_uac_fail.xml", trusted=False)
    callee.b2b.args.append("--tls_verify=on")
    with callee as c:
        conn, _ = c.lsock.accept()
        try:
            c.ctx.wrap_socket(conn, server_side=True)
        except (ssl.SSLError, OSError):
            pass  # the B2BUA aborts the handshake
        res = c.caller.wait()
        assert res.returncode == 0, res.describe() + c.b2b.log.read_text()
        assert res.received("SIP/2.0 503")


def test_tls_verify_off_takes_an_untrusted_callee(tmp_path: Path) -> None:
    """--tls_verify=off: the callee whose certificate does not verify gets the call."""
    callee = TlsCallee(tmp_path, "simple_uac.xml", trusted=False)
    callee.b2b.args.append("--tls_verify=off")
    with callee as c:
        conn, _ = c.lsock.accept()
        ua = TlsUA(c.ctx.wrap_socket(conn, server_side=True))
        invite = ua.recv()
        ua.send(_answer(invite, "200 OK", "callee1", SDP, f"<sip:bob@127.0.0.1:{c.port};transport=tls>"))
        assert ua.recv().startswith("ACK ")
        bye = ua.recv()
        assert bye.startswith("BYE "), bye
        ua.send(_answer(bye, "200 OK"))
        res = c.caller.wait()
        assert res.returncode == 0 and res.stat("SuccessfulCall") == 1, res.describe() + c.b2b.log.read_text()


def test_tls_callee_by_name_gets_it_as_sni_and_is_verified_by_it(tmp_path: Path) -> None:
    """A route to `localhost;transport=tls`: the B2BUA names the callee in its ClientHello (SNI)
    and checks the certificate against that name."""
    callee = TlsCallee(tmp_path, "simple_uac_fail.xml", trusted=True)
    i = callee.b2b.args.index("-s") + 1
    callee.b2b.args[i] = callee.b2b.args[i].replace("127.0.0.1", "localhost")
    names: list = []
    callee.ctx.sni_callback = lambda sock, name, ctx: names.append(name)
    with callee as c:
        conn, _ = c.lsock.accept()
        ua = TlsUA(c.ctx.wrap_socket(conn, server_side=True))
        invite = ua.recv()
        assert invite.startswith("INVITE sip:service@localhost:"), invite
        ua.send(_answer(invite, "486 Busy Here", "callee1"))
        assert ua.recv().startswith("ACK ")
        res = c.caller.wait()
        assert res.returncode == 0, res.describe() + c.b2b.log.read_text()
    assert names == ["localhost"]


@pytest.mark.parametrize("verify", ["on", "off"])
def test_mutual_tls_callee_asks_for_and_verifies_our_certificate(tmp_path: Path, verify: str) -> None:
    """A callee that requires a client certificate (signed by the B2BUA's, which it trusts) gets
    the listener's one, with --tls_verify on or off."""
    callee = TlsCallee(tmp_path, "simple_uac_fail.xml", trusted=True)
    callee.b2b.args.append(f"--tls_verify={verify}")
    callee.ctx.verify_mode = ssl.CERT_REQUIRED
    callee.ctx.load_verify_locations(callee.b2b_cert[0])
    with callee as c:
        conn, _ = c.lsock.accept()
        tls = c.ctx.wrap_socket(conn, server_side=True)
        assert tls.getpeercert()["subject"] == ((("commonName", "localhost"),),)
        ua = TlsUA(tls)
        ua.send(_answer(ua.recv(), "486 Busy Here", "callee1"))
        assert ua.recv().startswith("ACK ")
        res = c.caller.wait()
        assert res.returncode == 0 and res.received("SIP/2.0 486"), res.describe() + c.b2b.log.read_text()


def test_bad_certificate_file_one_line_exit_2(tmp_path: Path) -> None:
    bad = tmp_path / "nothing.pem"
    bad.write_text("not a certificate\n")
    cert = make_cert(tmp_path)
    args = [sys.executable, str(SCRIPT), "-f", "-u", "-s", "127.0.0.1:5060"]
    res = subprocess.run(
        [*args, "--tls_socket", f"127.0.0.1:{free_port()}:{bad}:{cert[1]}"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert res.returncode == 2
    assert res.stderr.count("\n") == 1 and str(bad) in res.stderr and "--tls_socket" in res.stderr, res.stderr


@pytest.mark.parametrize("target", ["contact_tcp", "contact_sips", "record_route_tls"])
def test_callee_contact_or_record_route_chooses_in_dialog_transport(tmp_path: Path, target: str) -> None:
    """A UDP callee (played here) answers the INVITE with a Contact `;transport=tcp`, a `sips:`
    Contact, or a Record-Route `;transport=tls;lr`: the ACK and the caller's BYE then go to that
    address over TCP or TLS (the callee's UDP socket sees neither); the BYE's answer on that
    connection completes the call."""
    b2b_cert, callee_cert = make_cert(tmp_path, "b2bua"), make_cert(tmp_path, "callee")
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    callee_port = free_port()
    udp.bind(("127.0.0.1", callee_port))
    udp.settimeout(10)
    lsock, ctx, port = _tls_listener(callee_cert)
    extra = ("--tls_ca", callee_cert[0], "--tcp_socket", f"127.0.0.1:{free_port()}")
    b2b = _b2bua(tmp_path, callee_port, free_port(), b2b_cert, extra)
    b2b.start()
    caller = Sipp(
        "simple_uac.xml", remote=b2b.address, calls=1, timeout=20, extra=("-key", "cli", "a", "-d", "500")
    )
    try:
        caller.start()
        data, src = udp.recvfrom(65536)
        while not data.startswith(b"INVITE "):
            data, src = udp.recvfrom(65536)  # a stray datagram (another B2BUA's) on this port
        invite = data.decode()
        contact, rr = f"<sip:bob@127.0.0.1:{callee_port}>", ""
        if target == "contact_tcp":
            contact = f"<sip:bob@127.0.0.1:{port};transport=tcp>"
        elif target == "contact_sips":
            contact = f"<sips:bob@127.0.0.1:{port}>"
        else:
            rr = f"Record-Route: <sip:127.0.0.1:{port};transport=tls;lr>\r\n"
        ok = _answer(invite, "200 OK", "callee1", SDP, contact).replace("Contact:", rr + "Contact:", 1)
        udp.sendto(ok.encode(), src)
        conn, _ = lsock.accept()
        ua = TlsUA(conn if target == "contact_tcp" else ctx.wrap_socket(conn, server_side=True))
        ack, bye = ua.recv(), ua.recv()
        transport = "TCP" if target == "contact_tcp" else "TLS"
        for req, method in ((ack, "ACK"), (bye, "BYE")):
            assert req.startswith(f"{method} "), req
            assert re.search(rf"^Via: SIP/2.0/{transport} ", req, re.M), req
        if target == "record_route_tls":
            assert re.search(rf"^Route: <sip:127.0.0.1:{port};transport=tls;lr>", bye, re.M), bye
        ua.send(_answer(bye, "200 OK"))
        res = caller.wait()
        assert res.returncode == 0 and res.stat("SuccessfulCall") == 1, res.describe() + b2b.log.read_text()
        udp.settimeout(0.2)
        with pytest.raises(socket.timeout):
            while True:  # retransmissions of our INVITE's 200 aside, nothing more over UDP
                assert not udp.recv(65536).startswith((b"ACK", b"BYE"))
        conn.close()
    finally:
        caller.cleanup()
        lsock.close()
        udp.close()
        b2b.kill()
