"""The control socket: newline-terminated text commands for a running B2BUA.

``CLIConnectionManager(command_cb, address)`` listens on a unix socket path (default
``/var/run/b2bua.sock``), ``udp:[host:]port`` or ``tcp:[host:]port`` and calls
``command_cb(clim, cmd_line)`` for each non-empty line, on the reactor. The callback answers with
``clim.send(text)`` and may ``clim.close()``; one that answers later returns a Deferred (the
client's next lines wait for it). The manager itself handles ``q`` (close) and turns an
``UnknownCommand`` raised by the callback into ``ERROR: unknown command``.

Whoever reaches the socket can list and hang up every call, so it is locked down by default: the
unix socket is created owner-only (``sock_mode``, default 0600, set through the umask so there is
no moment with wider permissions), a live socket of another process at the path is left alone
(``CLISocketInUse``), a ``tcp:``/``udp:`` socket without a host listens on loopback, and only
peers in ``allow`` (default loopback) get an answer: a spoofed UDP ``l`` would otherwise reflect
the call list at the address it claims to come from.
"""

from __future__ import annotations

import errno
import os
import socket
import stat
import sys
import traceback
from typing import Any, Callable, Optional, Union

from twisted.internet import protocol, tcp, unix
from twisted.internet.defer import Deferred

from sippy.Security.AddressList import AddressList

__all__ = (
    "CLIConnectionManager",
    "CLIManager",
    "UnknownCommand",
    "parse_cli_address",
    "unix_socket_in_use",
    "CLIAddressError",
    "CLISocketInUse",
)

DEFAULT_ADDRESS = "/var/run/b2bua.sock"
DEFAULT_MODE = 0o600
# A tcp:/udp: address without a host, and the peers answered unless told otherwise.
LOOPBACK = "127.0.0.1"
DEFAULT_ALLOW = ("127.0.0.0/8", "::1")
MAX_LINE = 64 * 1024


CommandCallback = Callable[["CLIManager", str], Any]


class UnknownCommand(Exception):
    """Raised by a command callback for a command it does not know."""


class CLIAddressError(ValueError):
    """A control socket address that does not parse."""


class CLISocketInUse(Exception):
    """The unix socket path belongs to a process that is listening on it (another B2BUA)."""

    def __init__(self, path: str) -> None:
        super().__init__(f"control socket {path} is in use by a running process")
        self.path = path


def parse_cli_address(address: str) -> tuple[str, Union[str, tuple[str, int]]]:
    """``path``/``unix:path`` -> ('unix', path); ``udp:``/``tcp:[host:]port`` -> (kind, (host, port)).

    IPv6 hosts may be written in brackets: ``tcp:[::1]:2222``. Without a host (``tcp:2222``,
    ``tcp::2222``) the socket listens on loopback only.
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
        host = host or LOOPBACK
    if not host or not sport.isdigit() or not 0 < int(sport) < 65536:
        raise CLIAddressError(f"expected {kind}:host:port, got {address!r}")
    return kind, (host, int(sport))


def unix_socket_in_use(path: str) -> bool:
    """True when a process listens on the unix socket at path (a connection attempt gets through
    or is queued); False for no file, a file that is not a socket, or a stale socket."""
    try:
        if not stat.S_ISSOCK(os.lstat(path).st_mode):
            return False
    except OSError:
        return False
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        probe.setblocking(False)
        try:
            probe.connect(path)
        except (BlockingIOError, PermissionError):
            # Backlog full, or another user's socket we may not touch: someone's, live.
            return True
        except OSError as exc:
            return exc.errno not in (errno.ECONNREFUSED, errno.ENOENT)
    return True


class CLIManager:
    """One client: a stream connection, or one UDP peer (answers go back as datagrams)."""

    def __init__(self, command_cb: CommandCallback, raddr: Any, writer: Callable[[bytes], None]) -> None:
        self.command_cb = command_cb
        self.raddr = raddr
        self._writer = writer
        self.closed = False
        self._close_cb: Optional[Callable[[], None]] = None
        # Lines waiting for the answer a callback gives later (see handle_cmd); None: none pending.
        self._pending: Optional[list[str]] = None

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
        """Run one command line. A callback that answers later returns a Deferred: the lines
        after it (`q` too) wait until it fires, so that answers keep the order of the commands."""
        if self._pending is not None:
            self._pending.append(cmd)
            return
        if cmd.split(None, 1)[0].lower() == "q":
            self.close()
            return
        try:
            answer = self.command_cb(self, cmd)
        except UnknownCommand:
            self.send("ERROR: unknown command\n")
        except Exception:
            self._unhandled(cmd, traceback.format_exc())
        else:
            if isinstance(answer, Deferred):
                self._pending = []
                answer.addErrback(lambda failure: self._unhandled(cmd, failure.getTraceback()))
                answer.addBoth(self._resume)

    def _unhandled(self, cmd: str, trace: str) -> None:
        # the daemon's stderr is its log file
        print(f"CLIManager: unhandled exception processing {cmd!r}\n{trace}", end="", file=sys.stderr)
        self.close()

    def _resume(self, _result: Any) -> None:
        """The answer that held the queue is out: run the lines that came meanwhile."""
        waiting, self._pending = self._pending or [], None
        while waiting and not self.closed:
            self.handle_cmd(waiting.pop(0))
            if self._pending is not None:
                self._pending.extend(waiting)
                return


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
    def __init__(self, command_cb: CommandCallback, allow: Optional[AddressList] = None) -> None:
        self.command_cb = command_cb
        self.allow = allow

    def buildProtocol(self, addr: Any) -> Optional[_StreamProtocol]:
        if self.allow is not None and addr.host not in self.allow:
            return None  # Twisted closes the connection
        return _StreamProtocol(self.command_cb)


class _DatagramProtocol(protocol.DatagramProtocol):
    def __init__(self, command_cb: CommandCallback, allow: AddressList) -> None:
        self.command_cb = command_cb
        self.allow = allow
        self.refused = 0

    def datagramReceived(self, data: bytes, addr: Any) -> None:
        if addr[0] not in self.allow:
            # The source of a datagram is whatever the sender wrote: answer no stranger.
            self.refused += 1
            return
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
        allow: Optional[AddressList] = None,
    ) -> None:
        """``sock_mode``: permissions of a unix socket (default 0600); ``allow``: the peers a
        tcp:/udp: socket answers (default loopback). Raises ``CLISocketInUse`` when a process
        listens on the unix socket path already."""
        if reactor is None:
            from twisted.internet import reactor
        self.command_cb = command_cb
        self.address = address or DEFAULT_ADDRESS
        self.kind, target = parse_cli_address(self.address)
        self.allow = allow if allow is not None else AddressList(DEFAULT_ALLOW)
        self._unix_path: Optional[str] = None
        # (st_dev, st_ino) of our socket file: shutdown() removes that file and no other
        self._unix_id: Optional[tuple[int, int]] = None
        if self.kind == "unix":
            assert isinstance(target, str)
            self._listen_unix(target, DEFAULT_MODE if sock_mode is None else sock_mode, backlog, reactor)
        elif self.kind == "tcp":
            host, port = target
            factory = _StreamFactory(command_cb, self.allow)
            self.port = reactor.listenTCP(port, factory, backlog=backlog, interface=host)
        else:
            host, port = target
            self.port = reactor.listenUDP(port, _DatagramProtocol(command_cb, self.allow), interface=host)

    def _listen_unix(self, path: str, mode: int, backlog: int, reactor: Any) -> None:
        abstract = path.startswith("\0")  # Linux abstract namespace: no file
        if not abstract:
            if unix_socket_in_use(path):
                raise CLISocketInUse(path)
            self._remove_stale_socket(path)
        self.port = _UnixPort(path, _StreamFactory(self.command_cb), backlog, mode, reactor)
        # bind() creates the file with 0777 & ~umask: with this umask it never has more than mode.
        umask = os.umask(0o777 & ~mode)
        try:
            self.port.startListening()
        finally:
            os.umask(umask)
        if not abstract:
            st = os.lstat(path)
            self._unix_path, self._unix_id = path, (st.st_dev, st.st_ino)

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
