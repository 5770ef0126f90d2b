"""SIP over TCP (RFC 3261 section 18) on the Twisted reactor: a listener plus the outgoing
connections opened on demand, one per peer address and reused by every message to it.

A byte stream carries no message boundaries: `StreamFramer` (pure, no sockets) cuts it into SIP
messages by Content-Length (RFC 3261 18.3), answers CRLFCRLF keep-alive pings (RFC 5626 4.4.1)
and says when the stream cannot be read any further (no Content-Length, message too large): the
connection then gets a 400 / 413 built from the head when that parses, and is closed.

A peer is reached by its address: a message to (host, port) goes on the open connection to or
from that address, else on a new one (connect on demand). Responses go to the Remote_address the
request came by, i.e. on the connection it came on. A connect that fails, or a connection that
goes, is reported to `uopts.error_callback` (the transaction manager's transportError: the
transactions on it end, client ones with a 503). A connection silent for `idle_timeout` seconds
is closed. A connection that drops mid-call does not end the call (the peer may reconnect).
"""

from __future__ import annotations

import re
from collections import Counter
from typing import Any, Optional, Union

from twisted.internet.interfaces import IPushProducer
from twisted.internet.protocol import ClientFactory, Protocol, ServerFactory
from zope.interface import implementer

from sippy.Exceptions.SipParseError import SipParseError
from sippy.LogLimiter import LogLimiter
from sippy.misc import bare_host
from sippy.Network_server import Address, Network_server, Network_server_opts, Remote_address
from sippy.SipLogger import SIPLOG_WARN
from sippy.SipRequest import SipRequest
from sippy.Time.MonoTime import MonoTime

# Defaults of Tcp_server_opts. Over a stream a message is not bound by a datagram: large INVITEs
# (many codecs, long Via chains, multipart bodies) are the reason to use TCP at all.
MAX_MESSAGE_SIZE = 65536
# A connection with nothing in either direction for this long is closed (a keep-alive ping counts).
IDLE_TIMEOUT = 600.0
MAX_CONNECTIONS = 4096
# Per source address: room for an SBC or test tool opening one connection per call (SIPp -t tn),
# while one host still cannot take every connection.
MAX_CONNECTIONS_PER_ADDRESS = 256
# Bytes queued for a peer that does not read (or an outgoing connection not yet up).
MAX_BUFFERED = 1 << 20
CONNECT_TIMEOUT = 10.0

_PING = b"\r\n\r\n"
_PONG = b"\r\n"
_HEAD_END = b"\r\n\r\n"
# Content-Length or its compact form l (RFC 3261 7.3.3), at the start of a header line.
_CONTENT_LENGTH = re.compile(rb"\r\n(?:content-length|l)[ \t]*:[ \t]*([^\r\n]*)", re.I)


class FrameError:
    """The stream cannot be read past this point: answer `scode` `reason` (when `head`, the
    message's start line and headers, parses as a request) and close."""

    __slots__ = ("scode", "reason", "head")

    def __init__(self, scode: int, reason: str, head: Optional[bytes]) -> None:
        self.scode = scode
        self.reason = reason
        self.head = head

    def __repr__(self) -> str:
        return f"FrameError({self.scode}, {self.reason!r})"


# What StreamFramer.feed yields: a whole message, PING (answer with CRLF), or a FrameError (last).
PING = "ping"
Frame = Union[bytes, str, FrameError]


class StreamFramer:
    """RFC 3261 18.3 framing of one connection's bytes (pure: no I/O, no time). `feed(data)` returns
    the frames completed by data: several messages in one read, one message over many reads.
    CRLFs before a start line are ignored (RFC 3261 7.5) except CRLFCRLF, a ping (RFC 5626 4.4.1).
    After a FrameError the framer takes nothing more."""

    __slots__ = ("max_message_size", "_buf", "_need", "failed")

    def __init__(self, max_message_size: int = MAX_MESSAGE_SIZE) -> None:
        self.max_message_size = max_message_size
        self._buf = bytearray()
        # Length of the message at the start of _buf once its head has been read, else 0.
        self._need = 0
        self.failed = False

    @property
    def buffered(self) -> int:
        return len(self._buf)

    def feed(self, data: bytes) -> list[Frame]:
        if self.failed:
            return []
        buf = self._buf
        buf += data
        frames: list[Frame] = []
        while buf:
            if not self._need:
                if buf[:1] == b"\r" or buf[:1] == b"\n":
                    if buf.startswith(_PING):
                        frames.append(PING)
                        del buf[:4]
                        continue
                    if len(buf) < 4 and _PING.startswith(bytes(buf)):
                        break  # perhaps a ping in pieces
                    del buf[:1]
                    continue
                end = buf.find(_HEAD_END)
                if end < 0:
                    if len(buf) > self.max_message_size:
                        return self._fail(frames, 413, "Message Too Large", None)
                    break
                head = bytes(buf[: end + 4])
                length = self._contentLength(head)
                if isinstance(length, FrameError):
                    return self._fail(frames, length.scode, length.reason, head)
                self._need = end + 4 + length
                if self._need > self.max_message_size:
                    return self._fail(frames, 413, "Message Too Large", head)
            if len(buf) < self._need:
                break
            frames.append(bytes(buf[: self._need]))
            del buf[: self._need]
            self._need = 0
        return frames

    @staticmethod
    def _contentLength(head: bytes) -> Union[int, FrameError]:
        values = {m.group(1).strip() for m in _CONTENT_LENGTH.finditer(head)}
        if not values:
            return FrameError(400, "Missing Content-Length", head)
        if len(values) > 1:
            return FrameError(400, "Conflicting Content-Length", head)
        value = values.pop()
        if not value.isdigit():
            return FrameError(400, "Bad Content-Length", head)
        return int(value)

    def _fail(self, frames: list[Frame], scode: int, reason: str, head: Optional[bytes]) -> list[Frame]:
        self.failed = True
        self._buf = bytearray()
        frames.append(FrameError(scode, reason, head))
        return frames


class Tcp_server_opts(Network_server_opts):
    """`Network_server_opts` plus the limits and timers of the connections."""

    def __init__(
        self,
        laddress: tuple[Optional[str], int],
        data_callback: Any,
        *,
        max_message_size: int = MAX_MESSAGE_SIZE,
        idle_timeout: float = IDLE_TIMEOUT,
        max_connections: int = MAX_CONNECTIONS,
        max_connections_per_address: int = MAX_CONNECTIONS_PER_ADDRESS,
        max_buffered: int = MAX_BUFFERED,
        connect_timeout: float = CONNECT_TIMEOUT,
        **kwargs: Any,
    ) -> None:
        super().__init__(laddress, data_callback, **kwargs)
        self.max_message_size = max_message_size
        self.idle_timeout = idle_timeout
        self.max_connections = max_connections
        self.max_connections_per_address = max_connections_per_address
        self.max_buffered = max_buffered
        self.connect_timeout = connect_timeout


class Tcp_stats:
    """Connections for the status line: open now, opened since start (both ways), and closes we
    made by reason (`idle`, `limit`, `framing`)."""

    __slots__ = ("open", "total", "closed")

    def __init__(self) -> None:
        self.open = 0
        self.total = 0
        self.closed: Counter[str] = Counter()


@implementer(IPushProducer)
class _SipStream(Protocol):
    """One connection, in or out. `key` is the peer's (host, port); until connectionMade the
    messages for an outgoing one wait in `pending`."""

    def __init__(self, server: Tcp_server, key: tuple[str, int], outgoing: bool) -> None:
        self.server = server
        self.key = key
        self.outgoing = outgoing
        self.ra = Remote_address(key, server.transport)
        self.framer = StreamFramer(server.uopts.max_message_size)
        self.pending: Optional[list[bytes]] = [] if outgoing else None
        self.pending_bytes = 0
        self.idle_timer: Any = None
        self.closing = False
        self.paused = False
        self.backlog = 0

    def connectionMade(self) -> None:
        # As a producer we hear when the transport's write buffer is full (pauseProducing) and
        # drained (resumeProducing): how much a peer that does not read makes us hold.
        self.transport.registerProducer(self, True)
        self.server._connected(self)

    def pauseProducing(self) -> None:
        self.paused = True

    def resumeProducing(self) -> None:
        self.paused = False
        self.backlog = 0

    def stopProducing(self) -> None:
        self.paused = False

    def dataReceived(self, data: bytes) -> None:
        self.server._received(self, data)

    def connectionLost(self, reason: Any = None) -> None:
        self.server._lost(self)

    def write(self, data: bytes) -> bool:
        """Send, or queue until connected; False over the buffered-bytes limit."""
        if self.pending is not None:
            if self.pending_bytes + len(data) > self.server.uopts.max_buffered:
                return False
            self.pending.append(data)
            self.pending_bytes += len(data)
            return True
        if self.paused:
            # The kernel and Twisted hold all they will take: what we write now waits in memory.
            if self.backlog + len(data) > self.server.uopts.max_buffered:
                return False
            self.backlog += len(data)
        self.transport.write(data)
        self.server._touch(self)
        return True


class _Accepting(ServerFactory):
    def __init__(self, server: Tcp_server) -> None:
        self.server = server

    def buildProtocol(self, addr: Any) -> Optional[_SipStream]:
        return self.server._accept((addr.host, addr.port))


class _Connecting(ClientFactory):
    def __init__(self, proto: _SipStream) -> None:
        self.proto = proto

    def buildProtocol(self, addr: Any) -> _SipStream:
        return self.proto

    def clientConnectionFailed(self, connector: Any, reason: Any) -> None:
        self.proto.server._connectFailed(self.proto, reason)


class Tcp_server(Network_server):
    """One listening TCP socket and every connection it has, accepted or opened
    (`connections`: peer (host, port) -> protocol)."""

    transport = "tcp"
    is_reliable = True
    uri_transport = "tcp"
    names_connections = False

    def __init__(self, global_config: Any, uopts: Tcp_server_opts, reactor: Any = None) -> None:
        super().__init__(global_config, uopts, reactor)
        o: Tcp_server_opts = self.uopts  # type: ignore[assignment]
        self.connections: dict[tuple[str, int], _SipStream] = {}
        self.per_address: Counter[str] = Counter()
        self.conn_stats = Tcp_stats()
        self.log_limiter = LogLimiter(self._log_args, self.reactor)
        # A limit reached is said once a minute (then how many more hit it): under a flood of
        # connections one line per refusal would say nothing more.
        self.limit_log = LogLimiter(self._log_args, self.reactor, burst=1)
        host = bare_host(o.laddress[0] or "0.0.0.0")
        self._port: Any = self._listen(int(o.laddress[1]), _Accepting(self), host)
        o.laddress = (host, self._port.getHost().port)

    # ----- what TLS changes -----

    def _listen(self, port: int, factory: Any, host: str) -> Any:
        return self.reactor.listenTCP(port, factory, interface=host)

    def _connect(self, host: str, port: int, factory: Any) -> Any:
        return self.reactor.connectTCP(host, port, factory, timeout=self.uopts.connect_timeout)

    # ----- the connections -----

    def _accept(self, key: tuple[str, int]) -> Optional[_SipStream]:
        o: Tcp_server_opts = self.uopts  # type: ignore[assignment]
        if len(self.connections) >= o.max_connections:
            self._limit("max_connections", key, f"{o.max_connections} connections open, refused")
            return None
        if self.per_address[key[0]] >= o.max_connections_per_address:
            self._limit(
                "max_connections_per_address",
                key,
                f"{o.max_connections_per_address} connections open from {key[0]}, refused",
            )
            return None
        return self._add(_SipStream(self, key, outgoing=False))

    def _add(self, proto: _SipStream) -> _SipStream:
        old = self.connections.get(proto.key)
        if old is not None:
            old.closing = True
        self.connections[proto.key] = proto
        self.per_address[proto.key[0]] += 1
        self.conn_stats.open += 1
        self.conn_stats.total += 1
        return proto

    def _connected(self, proto: _SipStream) -> None:
        self._touch(proto)
        pending, proto.pending, proto.pending_bytes = proto.pending, None, 0
        if pending:
            proto.transport.write(b"".join(pending))

    def _touch(self, proto: _SipStream) -> None:
        """Restart the idle timer: something crossed the connection."""
        if proto.idle_timer is not None and proto.idle_timer.active():
            proto.idle_timer.reset(self.uopts.idle_timeout)
        else:
            proto.idle_timer = self.reactor.callLater(self.uopts.idle_timeout, self._idle, proto)

    def _idle(self, proto: _SipStream) -> None:
        proto.idle_timer = None
        self.conn_stats.closed["idle"] += 1
        self._close(proto)

    def _close(self, proto: _SipStream) -> None:
        proto.closing = True
        if proto.transport is not None:
            proto.transport.loseConnection()

    def _received(self, proto: _SipStream, data: bytes) -> None:
        if proto.closing:
            return
        self._touch(proto)
        for frame in proto.framer.feed(data):
            if frame.__class__ is bytes:
                self.stats.dgrams_in += 1
                cb = self.uopts.data_callback
                if cb is not None:
                    cb(frame, proto.ra, self, MonoTime())
            elif frame is PING:
                proto.transport.write(_PONG)
            else:
                self._refuse(proto, frame)  # type: ignore[arg-type]
            if proto.closing:
                return

    def _refuse(self, proto: _SipStream, err: FrameError) -> None:
        """The stream cannot be framed any further: the answer when the head reads as a request,
        then close."""
        text = f"{err.scode} {err.reason}, connection closed"
        if err.scode == 413:
            self._limit("max_message_size", proto.key, f"over {self.uopts.max_message_size} bytes: {text}")
        else:
            self.conn_stats.closed["framing"] += 1
            self._closeReason("framing", proto.key, text)
        if err.head is not None and not err.head.startswith(b"SIP/"):
            try:
                # The head without its body and without the Content-Length that was the trouble.
                head = _CONTENT_LENGTH.sub(b"", err.head.split(_HEAD_END, 1)[0])
                req = SipRequest(buf=head + b"\r\nContent-Length: 0\r\n\r\n")
                if not req.isACK():
                    text = req.genErrorResponse(err.scode, err.reason).localStr(*self.getSIPaddr())
                    proto.transport.write(text.encode("utf-8", "surrogateescape"))
            except SipParseError:
                pass
        self._close(proto)

    def _connectFailed(self, proto: _SipStream, reason: Any) -> None:
        self._closeReason("connect", proto.key, f"cannot connect: {reason.getErrorMessage()}")
        self._lost(proto)

    def _lost(self, proto: _SipStream) -> None:
        if proto.idle_timer is not None and proto.idle_timer.active():
            proto.idle_timer.cancel()
        proto.idle_timer = None
        if self.connections.get(proto.key) is not proto:
            return
        del self.connections[proto.key]
        self.per_address[proto.key[0]] -= 1
        if self.per_address[proto.key[0]] <= 0:
            del self.per_address[proto.key[0]]
        self.conn_stats.open -= 1
        # Whatever transaction still waits on this connection ends now.
        self.reportFailed(proto.ra)

    def _limit(self, name: str, key: tuple[str, int], text: str, closed: bool = True) -> None:
        """A limit refused a connection (or closed it, or dropped a message: not `closed`): counted
        under `limit` in the status line when a connection went, logged once a minute per limit
        (named as its --tcp_ flag)."""
        if closed:
            self.conn_stats.closed["limit"] += 1
        self.limit_log.write(
            f"{self.transport}_{name}",
            SIPLOG_WARN,
            f"{type(self).__name__}: {self.addr2str(key)}: limit tcp_{name}: ",
            text,
        )

    def _closeReason(self, kind: str, key: tuple[str, int], text: str) -> None:
        self.log_limiter.write(
            f"{self.transport}_{kind}", SIPLOG_WARN, f"{type(self).__name__}: {self.addr2str(key)}: ", text
        )

    def isOpen(self, address: Remote_address) -> bool:
        """Whether the connection address (a Remote_address a message came from) is still open:
        a dialog's requests go on it while it is (UA.noteConnection)."""
        proto = self.connections.get(address.address)
        return proto is not None and proto.ra is address and not proto.closing

    # ----- Network_server -----

    def send_to(self, data: Union[bytes, str], address: Address) -> bool:
        """Write one message on the connection to address (opened now when there is none and
        address is a (host, port) pair). False when it cannot be sent: the connection a
        Remote_address names is gone, or too much is queued for the peer."""
        if isinstance(data, str):
            data = data.encode("utf-8")
        if isinstance(address, Remote_address):
            key = address.address
            proto = self.connections.get(key)
            if proto is None:
                self.stats.errors += 1
                return False
        else:
            key = (bare_host(address[0]), int(address[1]))
            proto = self.connections.get(key)
            if proto is None:
                proto = self._add(_SipStream(self, key, outgoing=True))
                self._connect(key[0], key[1], _Connecting(proto))
        if proto.closing or not proto.write(data):
            self.stats.errors += 1
            if not proto.closing:
                self._limit(
                    "max_buffered",
                    key,
                    f"over {self.uopts.max_buffered} bytes queued, message dropped",
                    False,
                )
            return False
        self.stats.dgrams_out += 1
        return True

    def shutdown(self) -> Any:
        """Stop listening and close every connection."""
        for proto in tuple(self.connections.values()):
            self._close(proto)
        port, self._port = self._port, None
        return port.stopListening() if port is not None else None


__all__ = ("Tcp_server", "Tcp_server_opts", "StreamFramer", "FrameError", "PING")
