"""The WSS listener (sippy.Wss_server) alone, with a real WebSocket client over TLS: the `sip`
subprotocol is required, one message is one SIP message and the answer comes back on the same
connection, limits close with a code and a reason (logged once), bad PEM files stop start-up."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from websockets.exceptions import ConnectionClosedError, InvalidStatus

from tests.conftest import stop_process
from tests.wss_util import make_cert, ws_connect


class EchoServer:
    """tests/programs/wss_echo.py in a subprocess: its port and what it printed."""

    def __init__(self, certfile: str, keyfile: str, *limits: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tests.programs.wss_echo", certfile, keyfile, *limits],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        first = self.proc.stdout.readline().split()
        assert first and first[0] == "listening", first
        self.port = int(first[1])

    def output(self) -> str:
        stop_process(self.proc)
        return self.proc.stdout.read()


@pytest.fixture
def cert(tmp_path: Path) -> tuple[str, str]:
    return make_cert(tmp_path)


@pytest.fixture
def echo(cert):
    servers = []

    def start(*limits: str) -> EchoServer:
        servers.append(EchoServer(*cert, *limits))
        return servers[-1]

    yield start
    for s in servers:
        stop_process(s.proc)


def test_messages_echoed_on_their_connection_and_close_reported(echo):
    srv = echo()
    with ws_connect(srv.port) as a, ws_connect(srv.port) as b:
        assert a.subprotocol == "sip"
        a.send("OPTIONS sip:a SIP/2.0\r\n\r\n")
        b.send(b"\x00binary\xff")
        assert a.recv(timeout=5) == "echo:OPTIONS sip:a SIP/2.0\r\n\r\n"  # text stays text
        assert b.recv(timeout=5) == b"echo:\x00binary\xff"  # not UTF-8: binary
    out = srv.output()
    names = {line.split()[1] for line in out.splitlines() if line.startswith("message ")}
    assert len(names) == 2 and all(n.endswith(".invalid") for n in names)
    closed = [line.split()[1] for line in out.splitlines() if line.startswith("closed ")]
    assert sorted(closed) == sorted(names)


def test_callback_exception_logged_and_connection_goes_on(echo):
    srv = echo()
    with ws_connect(srv.port) as ws:
        ws.send("raise")
        ws.send("after")
        assert ws.recv(timeout=5) == "echo:after"
    out = srv.output()
    assert "Wss_server: unhandled exception when processing a message from wss:127.0.0.1:" in out, out
    assert "RuntimeError: the SIP layer failed" in out and "Unhandled Error" not in out, out


def test_handshake_without_sip_subprotocol_refused(echo):
    srv = echo()
    for protocols in ([], ["chat"]):
        with pytest.raises(InvalidStatus) as exc:
            ws_connect(srv.port, subprotocols=protocols)
        assert exc.value.response.status_code == 400
        assert "sip subprotocol" in exc.value.response.reason_phrase
    with ws_connect(srv.port) as ws:  # and the server goes on
        ws.send("x")
        assert ws.recv(timeout=5) == "echo:x"
    assert srv.output().count("handshake without the sip subprotocol") == 2


def closed_by_server(port: int, *messages: tuple) -> int:
    """Send messages ((data, text)) on a new connection until the server closes it; its close
    code. Then a new connection is still served."""
    with ws_connect(port) as ws:
        for data, text in messages:
            ws.send(data, text=text)
        with pytest.raises(ConnectionClosedError) as exc:
            while True:  # echoes of the messages before the bad one
                ws.recv(timeout=5)
    with ws_connect(port) as ws:
        ws.send("next")
        assert ws.recv(timeout=5) == "echo:next"
    return exc.value.rcvd.code


def test_message_too_big_closed_1009_logged_once(echo):
    srv = echo("max_message_size=2000")
    # 2000 bytes are taken (their echo, 2005 bytes, is over the limit too: not sent, logged);
    # 2001 close the connection.
    assert closed_by_server(srv.port, ("y" * 2000, True), ("z" * 2001, True)) == 1009
    out = srv.output()
    assert [line.split()[2] for line in out.splitlines() if line.startswith("message ")] == ["2000", "4"]
    assert "a message of 2005 bytes to 127.0.0.1:" in out and "Traceback" not in out, out
    assert (
        out.count("closed 1009 (received WebSocket message size 2001 exceeds payload limit of 2000") == 1
    ), out


def test_text_message_not_utf8_closed_1007_and_server_keeps_serving(echo):
    srv = echo()
    # A text frame whose payload is not UTF-8.
    assert closed_by_server(srv.port, (b"INVITE \xff\xfe", True)) == 1007
    out = srv.output()
    assert out.count(": closed 1007 (") == 1, out
    assert [line.split()[2] for line in out.splitlines() if line.startswith("message ")] == ["4"], out


def test_connections_per_address_limit(echo):
    srv = echo("max_connections_per_address=2")
    with ws_connect(srv.port), ws_connect(srv.port) as second:
        with pytest.raises(InvalidStatus) as exc:
            ws_connect(srv.port)
        assert exc.value.response.status_code == 503
        second.send("ok")
        assert second.recv(timeout=5) == "echo:ok"
    with ws_connect(srv.port) as ws:  # the slots are free again
        ws.send("again")
        assert ws.recv(timeout=5) == "echo:again"
    out = srv.output()
    assert out.count("more than 2 connections from 127.0.0.1") == 1, out


def test_idle_handshake_closed(echo):
    srv = echo("handshake_timeout=0.5")
    with socket.create_connection(("127.0.0.1", srv.port), timeout=5) as s:
        start = time.monotonic()
        try:
            assert s.recv(100) == b""  # closed by the server, nothing sent
        except ConnectionResetError:
            pass  # aborted: that is closed too
        assert 0.4 < time.monotonic() - start < 8  # bound: a loaded machine
    out = srv.output()
    assert out.count("no WebSocket handshake within 0.5 s") == 1, out


def test_bad_certificate_or_key_named(tmp_path, cert):
    certfile, keyfile = cert
    other_cert, other_key = make_cert(tmp_path, "other")
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("not a certificate\n")
    cases = [
        (
            (str(tmp_path / "missing.crt"), keyfile),
            f"cannot read certificate file {tmp_path / 'missing.crt'}",
        ),
        ((certfile, str(tmp_path / "missing.key")), f"cannot read key file {tmp_path / 'missing.key'}"),
        ((str(garbage), keyfile), f"certificate file {garbage}: no PEM certificate"),
        ((certfile, str(garbage)), f"key file {garbage}: not an unencrypted PEM private key"),
        ((certfile, other_key), f"key file {other_key} does not match certificate file {certfile}"),
    ]
    for (c, k), expected in cases:
        proc = subprocess.run(
            [sys.executable, "-m", "tests.programs.wss_echo", c, k],
            capture_output=True,
            text=True,
            timeout=20,
        )
        assert proc.returncode == 2
        lines = proc.stdout.splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: " + expected), (expected, proc.stdout)


def test_status_line_counts_websocket_connections():
    from twisted.internet.task import Clock

    from sippy.B2BOperations import B2BOperations
    from sippy.CallMap import CallMap
    from sippy.Wss_server import Wss_stats

    class Listener:
        def __init__(self, opened: int, total: int, **closed: int) -> None:
            self.wss_stats = Wss_stats()
            self.wss_stats.open, self.wss_stats.total = opened, total
            self.wss_stats.closed.update(closed)

    cfg: dict = {}
    ops = B2BOperations(cfg, CallMap(cfg, lambda *a: None), reactor=Clock())
    assert "WebSocket" not in ops.statusLine()  # no --wss_socket, no part
    cfg["_wss_servers"] = [Listener(2, 7, ended=3, limit=1), Listener(1, 2, ended=1, refused=4)]
    assert ops.statusLine().endswith(
        "; WebSocket connections: 3 open, 9 since start, closed: ended 4, limit 1, refused 4"
    ), ops.statusLine()
