"""The control socket over a real unix socket, TCP and UDP on loopback, with a fake command handler."""

from __future__ import annotations

import os
import socket
import time

import pytest
from twisted.internet import reactor
from twisted.internet.error import CannotListenError

from sippy.CLIManager import (
    CLIAddressError,
    CLIConnectionManager,
    CLISocketInUse,
    UnknownCommand,
    parse_cli_address,
)
from sippy.Security.AddressList import AddressList
from tests.conftest import free_tcp_port, free_udp_port


def pump(cond, timeout=3.0):
    """Run the (not started) global reactor until cond() holds or timeout passes."""
    deadline = time.monotonic() + timeout
    while not cond() and time.monotonic() < deadline:
        reactor.iterate(0.01)
    return cond()


class FakeController:
    """Stands in for CallMap.recvCommand."""

    def __init__(self):
        self.seen = []

    def __call__(self, clim, cmd):
        self.seen.append(cmd)
        verb, _, arg = cmd.partition(" ")
        if verb == "ping":
            clim.send("pong\n")
        elif verb == "echo":
            clim.send(arg + "\n")
        elif verb == "bye":
            clim.send(b"bye\n")
            clim.close()
        elif verb == "boom":
            raise RuntimeError("handler bug")
        else:
            raise UnknownCommand(verb)


class Client:
    def __init__(self, family, address):
        self.sock = socket.socket(family, socket.SOCK_STREAM)
        self.sock.setblocking(False)
        try:
            self.sock.connect(address)
        except BlockingIOError:
            pass
        self.data = b""
        self.eof = False

    def send(self, data: bytes):
        pump(lambda: self._writable())
        self.sock.sendall(data)

    def _writable(self):
        try:
            return self.sock.getpeername() is not None
        except OSError:
            return False

    def _poll(self):
        try:
            while True:
                chunk = self.sock.recv(4096)
                if not chunk:
                    self.eof = True
                    return
                self.data += chunk
        except BlockingIOError:
            pass
        except ConnectionResetError:
            self.eof = True

    def wait_for(self, text: bytes) -> bool:
        return pump(lambda: self._poll() or text in self.data)

    def wait_eof(self) -> bool:
        return pump(lambda: self._poll() or self.eof)

    def close(self):
        self.sock.close()


@pytest.fixture
def handler():
    return FakeController()


@pytest.fixture
def unix_cli(tmp_path, handler):
    path = str(tmp_path / "b2bua.sock")
    clim = CLIConnectionManager(handler, path)
    yield clim, path
    d = clim.shutdown()
    pump(lambda: d.called)


@pytest.fixture
def tcp_cli(handler):
    port = free_tcp_port()
    clim = CLIConnectionManager(handler, f"tcp:127.0.0.1:{port}", reactor=reactor)
    yield clim, ("127.0.0.1", port)
    d = clim.shutdown()
    pump(lambda: d.called)


def test_unix_commands_answers_and_quit(unix_cli, handler):
    _, path = unix_cli
    c = Client(socket.AF_UNIX, path)
    try:
        c.send(b"ping\n")
        assert c.wait_for(b"pong\n")
        c.send(b"echo one\necho two\n\n  \n")  # two commands in one write, blank lines skipped
        assert c.wait_for(b"two\n")
        c.send(b"ec")  # a command split across writes
        c.send(b"ho three\r\n")
        assert c.wait_for(b"three\n")
        c.send(b"frobnicate\n")
        assert c.wait_for(b"ERROR: unknown command\n")
        c.send(b"q\nping\n")
        assert c.wait_eof()
        assert c.data == b"pong\none\ntwo\nthree\nERROR: unknown command\n"
        assert handler.seen == [
            "ping",
            "echo one",
            "echo two",
            "echo three",
            "frobnicate",
        ]  # q never reaches it
    finally:
        c.close()


def test_handler_close_flushes_answer_first(unix_cli):
    _, path = unix_cli
    c = Client(socket.AF_UNIX, path)
    try:
        c.send(b"bye\n")
        assert c.wait_eof()
        assert c.data == b"bye\n"
    finally:
        c.close()


def test_handler_exception_closes_only_that_connection(unix_cli, capsys):
    _, path = unix_cli
    bad, good = Client(socket.AF_UNIX, path), Client(socket.AF_UNIX, path)
    try:
        bad.send(b"boom\n")
        assert bad.wait_eof()
        good.send(b"ping\n")
        assert good.wait_for(b"pong\n")
    finally:
        bad.close()
        good.close()
    assert "handler bug" in capsys.readouterr().err


def test_unix_stale_socket_replaced_and_removed_on_shutdown(tmp_path, handler):
    path = str(tmp_path / "ctl.sock")
    leftover = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    leftover.bind(path)  # what a killed daemon leaves behind
    leftover.close()
    clim = CLIConnectionManager(handler, "unix:" + path)
    c = Client(socket.AF_UNIX, path)
    try:
        c.send(b"ping\n")
        assert c.wait_for(b"pong\n")
    finally:
        c.close()
    d = clim.shutdown()
    assert pump(lambda: d.called)
    assert not os.path.exists(path)


def test_unix_shutdown_removes_the_file_before_it_returns(tmp_path, handler):
    """No reactor turn after shutdown(): a B2BUA stopping right away leaves no socket file."""
    path = str(tmp_path / "ctl.sock")
    clim = CLIConnectionManager(handler, path)
    assert os.path.exists(path)
    d = clim.shutdown()
    assert not os.path.exists(path)
    assert pump(lambda: d.called)
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    with pytest.raises(OSError):
        probe.connect(path)
    probe.close()


def test_unix_shutdown_leaves_a_successors_socket_alone(tmp_path, handler):
    path = str(tmp_path / "ctl.sock")
    clim = CLIConnectionManager(handler, path)
    os.unlink(path)  # someone removed our file and started another B2BUA on the path
    successor = CLIConnectionManager(handler, path)
    try:
        d = clim.shutdown()
        assert pump(lambda: d.called)
        assert os.path.exists(path)
        c = Client(socket.AF_UNIX, path)
        try:
            c.send(b"ping\n")
            assert c.wait_for(b"pong\n")
        finally:
            c.close()
    finally:
        d = successor.shutdown()
        pump(lambda: d.called)
    assert not os.path.exists(path)


def test_live_unix_socket_is_not_stolen(unix_cli, handler):
    clim, path = unix_cli
    inode = os.stat(path).st_ino
    with pytest.raises(CLISocketInUse, match="in use by a running process"):
        CLIConnectionManager(handler, path)
    assert os.stat(path).st_ino == inode
    c = Client(socket.AF_UNIX, path)
    try:
        c.send(b"ping\n")
        assert c.wait_for(b"pong\n")
    finally:
        c.close()


@pytest.mark.parametrize("mode", [None, 0o660, 0o666])
def test_unix_socket_mode_owner_only_by_default(tmp_path, handler, mode):
    path = str(tmp_path / "ctl.sock")
    umask = os.umask(0)  # a careless parent: the socket must not be created wide open
    try:
        clim = CLIConnectionManager(handler, path, sock_mode=mode)
        assert os.umask(0) == 0  # the umask is back as it was
    finally:
        os.umask(umask)
    try:
        assert os.stat(path).st_mode & 0o777 == (0o600 if mode is None else mode)
    finally:
        d = clim.shutdown()
        pump(lambda: d.called)


def test_unix_path_that_is_a_regular_file_is_not_clobbered(tmp_path, handler):
    path = tmp_path / "precious.txt"
    path.write_text("keep me")
    with pytest.raises(CannotListenError):
        CLIConnectionManager(handler, str(path))
    assert path.read_text() == "keep me"


def test_tcp_loopback(tcp_cli, handler):
    clim, addr = tcp_cli
    assert clim.getAddress().port == addr[1]
    c1, c2 = Client(socket.AF_INET, addr), Client(socket.AF_INET, addr)
    try:
        c1.send(b"echo first\n")
        c2.send(b"echo second\n")
        assert c1.wait_for(b"first\n") and c2.wait_for(b"second\n")
        assert b"second" not in c1.data and b"first" not in c2.data  # answers go to the asker
        c2.send(b"nope\n")
        assert c2.wait_for(b"ERROR: unknown command\n")
        c1.send(b"Q\n")
        assert c1.wait_eof()
        c2.send(b"ping\n")
        assert c2.wait_for(b"pong\n")
    finally:
        c1.close()
        c2.close()


def udp_ask(port: int, src: str, data: bytes, wait: float) -> list[bytes]:
    """Send data to the control socket from src; every answer that came within wait seconds."""
    got = []
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as peer:
        peer.bind((src, 0))
        peer.setblocking(False)
        peer.sendto(data, ("127.0.0.1", port))

        def poll():
            try:
                while True:
                    got.append(peer.recv(4096))
            except BlockingIOError:
                return False

        pump(poll, timeout=wait)
    return got


def test_udp_answers_only_the_allow_list(handler):
    port = free_udp_port()
    allow = AddressList(["127.0.0.2", "10.0.0.0/8"])
    clim = CLIConnectionManager(handler, f"udp:127.0.0.1:{port}", reactor=reactor, allow=allow)
    try:
        # A one-byte command with a forged source must not send the answer to that address.
        assert udp_ask(port, "127.0.0.1", b"ping", 0.3) == []
        assert udp_ask(port, "127.0.0.2", b"ping", 0.3) == [b"pong\n"]
        assert handler.seen == ["ping"]
        assert clim.port.protocol.refused == 1
    finally:
        d = clim.shutdown()
        pump(lambda: d is None or d.called)


def test_tcp_refuses_peers_outside_the_allow_list(handler):
    port = free_tcp_port()
    allow = AddressList(["127.0.0.2"])
    clim = CLIConnectionManager(handler, f"tcp:127.0.0.1:{port}", reactor=reactor, allow=allow)
    c = Client(socket.AF_INET, ("127.0.0.1", port))
    try:
        assert c.wait_eof() and c.data == b""
        assert handler.seen == []
    finally:
        c.close()
        d = clim.shutdown()
        pump(lambda: d.called)


def test_tcp_and_udp_without_host_listen_on_loopback(handler):
    port = free_udp_port()
    clim = CLIConnectionManager(handler, f"udp:{port}", reactor=reactor)
    try:
        assert clim.getAddress().host == "127.0.0.1"
    finally:
        d = clim.shutdown()
        pump(lambda: d is None or d.called)


def test_udp_datagram_commands(handler):
    port = free_udp_port()
    clim = CLIConnectionManager(handler, f"udp:127.0.0.1:{port}", reactor=reactor)
    peer = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    peer.bind(("127.0.0.1", 0))
    peer.setblocking(False)
    got = []

    def poll():
        try:
            while True:
                got.append(peer.recv(4096))
        except BlockingIOError:
            pass
        return got

    try:
        peer.sendto(b"ping", ("127.0.0.1", port))  # a datagram needs no trailing newline
        assert pump(lambda: poll() and got[-1] == b"pong\n")
        peer.sendto(b"echo a\necho b\n", ("127.0.0.1", port))
        assert pump(lambda: len(poll()) >= 3)
        assert got[1:] == [b"a\n", b"b\n"]
        peer.sendto(b"what\n", ("127.0.0.1", port))
        assert pump(lambda: poll() and got[-1] == b"ERROR: unknown command\n")
    finally:
        peer.close()
        d = clim.shutdown()
        pump(lambda: d is None or d.called)


@pytest.mark.parametrize(
    "address, parsed",
    [
        ("/var/run/b2bua.sock", ("unix", "/var/run/b2bua.sock")),
        ("unix:/tmp/x.sock", ("unix", "/tmp/x.sock")),
        ("relative.sock", ("unix", "relative.sock")),
        ("udp:127.0.0.1:2222", ("udp", ("127.0.0.1", 2222))),
        ("tcp:localhost:22", ("tcp", ("localhost", 22))),
        ("tcp:[::1]:2222", ("tcp", ("::1", 2222))),
        ("tcp:2222", ("tcp", ("127.0.0.1", 2222))),
        ("udp::2222", ("udp", ("127.0.0.1", 2222))),
        ("tcp:0.0.0.0:2222", ("tcp", ("0.0.0.0", 2222))),
    ],
)
def test_parse_cli_address(address, parsed):
    assert parse_cli_address(address) == parsed


@pytest.mark.parametrize(
    "address", ["", "unix:", "udp:", "tcp:x", "tcp:h:0", "udp:h:99999", "tcp:[::1]", "tcp:[]:5"]
)
def test_parse_cli_address_errors(address):
    with pytest.raises(CLIAddressError):
        parse_cli_address(address)


def test_address_list_networks_v6_and_mapped_v4() -> None:
    alist = AddressList(["127.0.0.0/8", "::1", " 192.0.2.7 "])
    assert all(
        h in alist for h in ("127.0.0.1", "127.9.9.9", "::1", "[::1]", "192.0.2.7", "::ffff:127.0.0.1")
    )
    assert not any(h in alist for h in ("192.0.2.8", "::2", "localhost", "", None))
    with pytest.raises(ValueError, match="'nowhere'"):
        AddressList(["127.0.0.1", "nowhere"])
