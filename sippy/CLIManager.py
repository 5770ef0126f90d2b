"""The control socket: newline-terminated text commands for a running B2BUA.

``CLIConnectionManager(command_cb, address)`` listens on a unix socket path (default
``/var/run/b2bua.sock``), ``udp:host:port`` or ``tcp:host:port`` and calls
``command_cb(clim, cmd_line)`` for each non-empty line, on the reactor. The callback answers with
``clim.send(text)`` and may ``clim.close()``. The manager itself handles ``q`` (close) and turns an
``UnknownCommand`` raised by the callback into ``ERROR: unknown command``.
"""

from __future__ import annotations

import os
import stat
import sys
import traceback
from typing import Any, Callable, Optional, Union

from twisted.internet import protocol, tcp, unix

__all__ = ("CLIConnectionManager", "CLIManager", "UnknownCommand", "parse_cli_address", "CLIAddressError")

DEFAULT_ADDRESS = "/var/run/b2bua.sock"
MAX_LINE = 64 * 1024

CommandCallback = Callable[["CLIManager", str], Any]


class UnknownCommand(Exception):
    """Raised by a command callback for a command it does not know."""


class CLIAddressError(ValueError):
    """A control socket address that does not parse."""


def parse_cli_address(address: str) -> tuple[str, Union[str, tuple[str, int]]]:
    """``path``/``unix:path`` -> ('unix', path); ``udp:``/``tcp:host:port`` -> (kind, (host, port)).

    IPv6 hosts may be written in brackets: ``tcp:[::1]:2222``.
    """
    if not address:
        raise CLIAddressError("empty control socket address")
    kind, sep, rest = address.partition(":")
    if not sep or kind not in ("udp", "tcp", "unix"):
        return "unix", address
    if kind == "unix":
        if not rest:
            raise CLIAddressError(f"no path in {address!r}")
        return "unix", rest
    if rest.startswith("["):
        host, sep, sport = rest[1:].partition("]")
        sport = sport[1:] if sport.startswith(":") else ""
    else:
        host, _, sport = rest.rpartition(":")
    if not host or not sport.isdigit() or not 0 < int(sport) < 65536:
        raise CLIAddressError(f"expected {kind}:host:port, got {address!r}")
    return kind, (host, int(sport))


class CLIManager:
    """One client: a stream connection, or one UDP peer (answers go back as datagrams)."""

    def __init__(self, command_cb: CommandCallback, raddr: Any, writer: Callable[[bytes], None]) -> None:
        self.command_cb = command_cb
        self.raddr = raddr
        self._writer = writer
        self.closed = False
        self._close_cb: Optional[Callable[[], None]] = None

    def send(self, data: Union[str, bytes]) -> None:
        """Queue an answer; it is written out by the reactor, never blocking the caller."""
        if self.closed:
            return
        self._writer(data.encode() if isinstance(data, str) else data)

    write = send

    def close(self) -> None:
        """Close after everything already sent has been written (no-op for UDP)."""
        if self.closed:
            return
        self.closed = True
        if self._close_cb is not None:
            self._close_cb()

    def handle_cmd(self, cmd: str) -> None:
        if cmd.split(None, 1)[0].lower() == "q":
            self.close()
            return
        try:
            self.command_cb(self, cmd)
        except UnknownCommand:
            self.send("ERROR: unknown command\n")
        except Exception:
            # the daemon's stderr is its log file
            print(f"CLIManager: unhandled exception processing {cmd!r}", file=sys.stderr)
            traceback.print_exc(file=sys.stderr)
            self.close()


def _split_lines(buf: bytes) -> tuple[list[str], bytes]:
    *lines, rest = buf.split(b"\n")
    cmds = [x.decode("utf-8", "replace").strip() for x in lines]
    return [x for x in cmds if x], rest


class _StreamProtocol(protocol.Protocol):
    def __init__(self, command_cb: CommandCallback) -> None:
        self.command_cb = command_cb
        self.buf = b""
        self.clim: Optional[CLIManager] = None

    def connectionMade(self) -> None:
        self.clim = CLIManager(self.command_cb, self.transport.getPeer(), self.transport.write)
        self.clim._close_cb = self.transport.loseConnection

    def dataReceived(self, data: bytes) -> None:
        cmds, self.buf = _split_lines(self.buf + data)
        if len(self.buf) > MAX_LINE:
            self.transport.loseConnection()
            return
        for cmd in cmds:
            if self.clim.closed:
                break
            self.clim.handle_cmd(cmd)

    def connectionLost(self, reason: Any = None) -> None:
        if self.clim is not None:
            self.clim.closed = True


class _StreamFactory(protocol.Factory):
    def __init__(self, command_cb: CommandCallback) -> None:
        self.command_cb = command_cb

    def buildProtocol(self, addr: Any) -> _StreamProtocol:
        return _StreamProtocol(self.command_cb)


class _DatagramProtocol(protocol.DatagramProtocol):
    def __init__(self, command_cb: CommandCallback) -> None:
        self.command_cb = command_cb

    def datagramReceived(self, data: bytes, addr: Any) -> None:
        cmds, _ = _split_lines(data + b"\n")
        clim = CLIManager(self.command_cb, addr, lambda d: self.transport.write(d, addr))
        for cmd in cmds:
            clim.handle_cmd(cmd)


class _UnixPort(unix.Port):
    """A listening unix socket whose path CLIConnectionManager.shutdown() removes, synchronously.

    Twisted's own Port unlinks the path only when the close it schedules for the next reactor
    iteration runs, which a stopping B2BUA may never reach; and by then a successor may own a file
    at that path. So the close here only closes the socket.
    """

    def connectionLost(self, reason: Any) -> None:
        tcp.Port.connectionLost(self, reason)


class CLIConnectionManager:
    """Listens on the control socket; ``shutdown()`` stops listening (and removes the unix path)."""

    def __init__(
        self,
        command_cb: CommandCallback,
        address: Optional[str] = None,
        reactor: Any = None,
        sock_mode: Optional[int] = None,
        backlog: int = 16,
    ) -> None:
        if reactor is None:
            from twisted.internet import reactor
        self.command_cb = command_cb
        self.address = address or DEFAULT_ADDRESS
        self.kind, target = parse_cli_address(self.address)
        self._unix_path: Optional[str] = None
        # (st_dev, st_ino) of our socket file: shutdown() removes that file and no other
        self._unix_id: Optional[tuple[int, int]] = None
        if self.kind == "unix":
            assert isinstance(target, str)
            self._remove_stale_socket(target)
            mode = 0o666 if sock_mode is None else sock_mode
            self.port = _UnixPort(target, _StreamFactory(command_cb), backlog, mode, reactor)
            self.port.startListening()
            if not target.startswith("\0"):  # Linux abstract namespace: no file to remove
                st = os.lstat(target)
                self._unix_path, self._unix_id = target, (st.st_dev, st.st_ino)
        elif self.kind == "tcp":
            host, port = target
            self.port = reactor.listenTCP(port, _StreamFactory(command_cb), backlog=backlog, interface=host)
        else:
            host, port = target
            self.port = reactor.listenUDP(port, _DatagramProtocol(command_cb), interface=host)

    @staticmethod
    def _remove_stale_socket(path: str) -> None:
        """A socket file left by a previous run would make bind() fail; other files are kept."""
        try:
            if stat.S_ISSOCK(os.lstat(path).st_mode):
                os.unlink(path)
        except FileNotFoundError:
            pass

    def getAddress(self) -> Any:
        """The bound address (useful with port 0)."""
        return self.port.getHost()

    def shutdown(self) -> Any:
        """Stop listening; the unix socket file is gone when this returns (a process that stops
        right after leaves nothing behind). Returns the Deferred of ``stopListening``, which fires
        once the listening socket itself is closed."""
        closed = self.port.stopListening()
        path, self._unix_path = self._unix_path, None
        if path is not None:
            try:
                st = os.lstat(path)
            except FileNotFoundError:
                return closed
            if (st.st_dev, st.st_ino) == self._unix_id:
                os.unlink(path)
        return closed
