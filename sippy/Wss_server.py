"""SIP over secure WebSocket (RFC 7118) on the Twisted reactor: the listener browsers call.

A `Network_server` whose peers are connections: TLS from PEM files (Twisted's TLS), WebSocket from
autobahn's Twisted flavour, on the one reactor. The handshake must offer the `sip` subprotocol
(RFC 7118 section 4) and each WebSocket message, text or binary, is one SIP message.

A browser cannot be reached by address (its Via and Contact hosts are `*.invalid`, RFC 7118
section 5), so every connection gets a name, `<random>.invalid`, carried as the `received` of the
`Remote_address` its messages come with. The transaction layer writes that name where the peer's
address would go (Via `received`, Contact host), and `send_to` to a (name, port) pair writes on
that connection. When a connection goes, `uopts.close_callback(ra, server)` is told, so that the
calls that used it end.

Limits (Wss_server_opts): the largest message, connections per source address, the time a
connection may take from TCP accept to a finished WebSocket handshake. Each is logged once per
connection with the close code or HTTP status the peer got.
"""

from __future__ import annotations

import os
from collections import Counter
from typing import Any, Callable, Optional, Union

from autobahn.exception import PayloadExceededError
from autobahn.twisted.websocket import WebSocketServerFactory, WebSocketServerProtocol
from autobahn.websocket.types import ConnectionDeny
from twisted.internet.interfaces import IOpenSSLContextFactory
from zope.interface import implementer

from sippy.LogLimiter import CurrentTraceback, LogLimiter
from sippy.misc import sip_hostport
from sippy.Network_server import (
    Address,
    Network_server,
    Network_server_opts,
    Remote_address,
)
from sippy.SipLogger import SIPLOG_ERR
from sippy.Time.MonoTime import MonoTime

# Defaults of the limits (Wss_server_opts). A SIP message with a large SDP offer from a browser is
# 3-6 KB; 64 KB leaves room for multipart bodies without letting one peer make us buffer megabytes.
MAX_MESSAGE_SIZE = 65536
MAX_CONNECTIONS_PER_ADDRESS = 64
HANDSHAKE_TIMEOUT = 10.0
# A connection that says nothing (no SIP, no pong) for this long is checked with a WebSocket ping
# and closed when no pong comes back in PING_TIMEOUT: a peer gone without FIN (laptop lid, NAT
# expiry) ends its calls instead of holding them until the credit runs out.
PING_INTERVAL = 30.0
PING_TIMEOUT = 10.0

SUBPROTOCOL = "sip"
# Suffix of connection names (RFC 7118 section 5: a name that resolves nowhere).
INVALID_DOMAIN = ".invalid"

# Close codes of an ordinary end (RFC 6455 7.4.1): normal, going away (our shutdown).
_ORDERLY_CLOSES = (1000, 1001)

# close_callback(ra, server): the connection ra came by is gone.
CloseCallback = Callable[[Remote_address, "Wss_server"], Any]


class WssConfigError(Exception):
    """A certificate or key that cannot be used; the message names the file (one line)."""


class Wss_server_opts(Network_server_opts):
    """`Network_server_opts` plus the PEM files (`certfile`: the certificate, optionally followed
    by its chain; `keyfile`: its private key), the limits, `close_callback` and `connections` (a
    dict the listeners of one process share; None: the server's own)."""

    def __init__(
        self,
        laddress: tuple[Optional[str], int],
        data_callback: Any,
        *,
        certfile: Optional[str] = None,
        keyfile: Optional[str] = None,
        max_message_size: int = MAX_MESSAGE_SIZE,
        max_connections_per_address: int = MAX_CONNECTIONS_PER_ADDRESS,
        handshake_timeout: float = HANDSHAKE_TIMEOUT,
        ping_interval: float = PING_INTERVAL,
        ping_timeout: float = PING_TIMEOUT,
        close_callback: Optional[CloseCallback] = None,
        connections: Optional[dict] = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(laddress, data_callback, **kwargs)
        self.certfile = certfile
        self.keyfile = keyfile
        self.max_message_size = max_message_size
        self.max_connections_per_address = max_connections_per_address
        self.handshake_timeout = handshake_timeout
        self.ping_interval = ping_interval
        self.ping_timeout = ping_timeout
        self.close_callback = close_callback
        self.connections = connections


def _read(path: str, what: str) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError as exc:
        raise WssConfigError(f"cannot read {what} file {path}: {exc.strerror}") from None


@implementer(IOpenSSLContextFactory)
class ServerTLS:
    """The server side of TLS for listenSSL: one OpenSSL context, TLS 1.2 and later, OpenSSL's
    default ciphers and groups. (Twisted's CertificateOptions narrows those in a way Chromium's
    TLS handshake fails on with the OpenSSL that pyOpenSSL bundles: internal_error alert.)"""

    def __init__(self, context: Any) -> None:
        self.context = context

    def getContext(self) -> Any:
        return self.context


def tls_options(certfile: str, keyfile: str) -> ServerTLS:
    """Server TLS from PEM files, checked now (not at the first connection): a file that cannot
    be read or parsed, or a key that is not the certificate's, raises WssConfigError."""
    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import load_pem_private_key
    from OpenSSL import SSL, crypto

    try:
        chain = x509.load_pem_x509_certificates(_read(certfile, "certificate"))
    except ValueError:
        raise WssConfigError(f"certificate file {certfile}: no PEM certificate in it") from None
    try:
        key = load_pem_private_key(_read(keyfile, "key"), password=None)
    except (ValueError, TypeError) as exc:
        raise WssConfigError(f"key file {keyfile}: not an unencrypted PEM private key ({exc})") from None
    ctx = SSL.Context(SSL.TLS_SERVER_METHOD)
    ctx.set_min_proto_version(SSL.TLS1_2_VERSION)
    ctx.set_options(SSL.OP_NO_COMPRESSION)
    try:
        ctx.use_certificate(crypto.X509.from_cryptography(chain[0]))
        for extra in chain[1:]:
            ctx.add_extra_chain_cert(crypto.X509.from_cryptography(extra))
        ctx.use_privatekey(crypto.PKey.from_cryptography_key(key))
        ctx.check_privatekey()
    except (SSL.Error, TypeError, ValueError) as exc:
        raise WssConfigError(
            f"key file {keyfile} does not match certificate file {certfile} ({exc})"
        ) from None
    return ServerTLS(ctx)


class Wss_stats:
    """WebSocket connections for the status line: open now, accepted since start, and closes by
    reason (`refused`: handshake denied; `limit`: a limit hit; `protocol`: bad WebSocket
    framing or text; `ended`: closed by the peer or lost)."""

    __slots__ = ("open", "total", "closed")

    def __init__(self) -> None:
        self.open = 0
        self.total = 0
        self.closed: Counter[str] = Counter()


class _SipWsProtocol(WebSocketServerProtocol):
    """One connection; its `ra` (set when the handshake succeeds) names it to the SIP layer."""

    ra: Optional[Remote_address] = None
    peer_host: Optional[str] = None
    peer_name = ""
    _handshake_timer: Any = None
    _close_logged = False

    @property
    def server(self) -> Wss_server:
        return self.factory.server

    def connectionMade(self) -> None:
        peer = self.transport.getPeer()
        self.peer_host = peer.host
        self.peer_name = sip_hostport(peer.host, peer.port)
        self.server._accepted(self)
        self._handshake_timer = self.server.reactor.callLater(
            self.server.uopts.handshake_timeout, self._handshakeTimedOut
        )
        super().connectionMade()

    def onConnect(self, request: Any) -> str:
        """Handshake: the `sip` subprotocol (RFC 7118 section 4) and the per-address limit."""
        if SUBPROTOCOL not in request.protocols:
            self._closeReason("refused", "handshake without the sip subprotocol (RFC 7118 section 4)")
            raise ConnectionDeny(ConnectionDeny.BAD_REQUEST, "the sip subprotocol is required (RFC 7118)")
        limit = self.server.uopts.max_connections_per_address
        if self.server.per_address[self.peer_host] > limit:
            self._closeReason(
                "limit", f"more than {limit} connections from {self.peer_host}, refused with 503"
            )
            raise ConnectionDeny(ConnectionDeny.SERVICE_UNAVAILABLE, "too many connections from your address")
        return SUBPROTOCOL

    def onOpen(self) -> None:
        self._cancelHandshakeTimer()
        self.server._opened(self)

    def onMessage(self, payload: bytes, isBinary: bool) -> None:
        if self.ra is not None:
            self.server._received(payload, self.ra)

    def onClose(self, wasClean: bool, code: Optional[int], reason: Optional[str]) -> None:
        """Every end comes here (clean close, error, drop). One autobahn failed itself (a message
        over the limit: 1009; bad framing: 1002; a text message not UTF-8: 1007) is logged with
        the code and reason the peer got."""
        if not self.closedByMe or self.localCloseCode in _ORDERLY_CLOSES or self.localCloseCode is None:
            return
        kind = "limit" if self.localCloseCode == self.CLOSE_STATUS_CODE_MESSAGE_TOO_BIG else "protocol"
        why = (self.localCloseReason or b"").decode("utf-8", "replace")
        self._closeReason(kind, f"closed {self.localCloseCode} ({why})")

    def connectionLost(self, reason: Any) -> None:
        self._cancelHandshakeTimer()
        super().connectionLost(reason)
        self.server._lost(self)

    def _handshakeTimedOut(self) -> None:
        self._handshake_timer = None
        self._closeReason("limit", f"no WebSocket handshake within {self.server.uopts.handshake_timeout:g} s")
        self.transport.abortConnection()

    def _cancelHandshakeTimer(self) -> None:
        if self._handshake_timer is not None:
            if self._handshake_timer.active():
                self._handshake_timer.cancel()
            self._handshake_timer = None

    def _closeReason(self, kind: str, text: str) -> None:
        """Log why we end this connection, once, and count it."""
        if self._close_logged:
            return
        self._close_logged = True
        self.server.wss_stats.closed[kind] += 1
        self.server.log_limiter.write(
            "wss_" + kind, SIPLOG_ERR, f"Wss_server: connection from {self.peer_name}: ", text
        )


class Wss_server(Network_server):
    """One listening WSS socket and its connections (`connections`: name -> protocol)."""

    transport = "wss"
    is_reliable = True
    uri_transport = "ws"
    names_connections = True

    def __init__(self, global_config: Any, uopts: Wss_server_opts, reactor: Any = None) -> None:
        super().__init__(global_config, uopts, reactor)
        o: Wss_server_opts = self.uopts  # type: ignore[assignment]
        if o.certfile is None or o.keyfile is None:
            raise WssConfigError("Wss_server needs certfile and keyfile")
        tls = tls_options(o.certfile, o.keyfile)
        self.wss_stats = Wss_stats()
        self.log_limiter = LogLimiter(self._log_args, self.reactor)
        # Connection name -> protocol; shared by every listener of a process (`o.connections`), so
        # that whichever of them the transaction layer sends through finds the connection.
        self.connections: dict[str, _SipWsProtocol] = o.connections if o.connections is not None else {}
        # Connections per source host, from TCP accept to close (handshakes in progress count).
        self.per_address: Counter[str] = Counter()
        host = o.laddress[0] or "0.0.0.0"
        factory = WebSocketServerFactory(protocols=[SUBPROTOCOL], reactor=self.reactor)
        factory.protocol = _SipWsProtocol
        factory.setProtocolOptions(
            maxMessagePayloadSize=o.max_message_size,
            maxFramePayloadSize=o.max_message_size,
            autoPingInterval=o.ping_interval,
            autoPingTimeout=o.ping_timeout,
            # Our own timer covers the TLS and WebSocket handshakes together.
            openHandshakeTimeout=0,
            closeHandshakeTimeout=5,
            # Close with a close frame (code and reason) when a limit is hit, not a bare drop.
            failByDrop=False,
        )
        factory.server = self
        self._factory = factory
        self._port: Any = self.reactor.listenSSL(int(o.laddress[1]), factory, tls, interface=host)
        o.laddress = (host, self._port.getHost().port)

    # ----- the connections -----

    def _accepted(self, proto: _SipWsProtocol) -> None:
        self.per_address[proto.peer_host] += 1

    def _opened(self, proto: _SipWsProtocol) -> None:
        peer = proto.transport.getPeer()
        name = os.urandom(8).hex() + INVALID_DOMAIN
        ra = Remote_address((peer.host, peer.port), self.transport)
        ra.received = name
        proto.ra = ra
        self.connections[name] = proto
        self.wss_stats.open += 1
        self.wss_stats.total += 1

    def _lost(self, proto: _SipWsProtocol) -> None:
        host = proto.peer_host
        self.per_address[host] -= 1
        if self.per_address[host] <= 0:
            del self.per_address[host]
        ra = proto.ra
        if ra is None or self.connections.pop(ra.received, None) is None:
            return
        self.wss_stats.open -= 1
        if not proto._close_logged:
            proto._close_logged = True
            self.wss_stats.closed["ended"] += 1
        # The calls first (their BYEs on this connection fail at once), then whatever transaction
        # is still waiting on it.
        for cb in (self.uopts.close_callback, self.uopts.error_callback):  # type: ignore[attr-defined]
            if cb is not None:
                self._call(cb, "closing the calls and transactions of", ra)

    def _received(self, data: bytes, ra: Remote_address) -> None:
        self.stats.dgrams_in += 1
        cb = self.uopts.data_callback
        if cb is not None:
            self._call(cb, "processing a message from", ra, data, ra, self, MonoTime())

    def _call(self, cb: Callable[..., Any], what: str, ra: Remote_address, *args: Any) -> None:
        """cb(*args) (or cb(ra, self)); an exception is logged, never raised into autobahn, whose
        framing state it would break."""
        try:
            cb(*(args or (ra, self)))
        except Exception:
            self.log_limiter.write(
                "exception",
                SIPLOG_ERR,
                f"Wss_server: unhandled exception when {what} {self.addr2str(ra)}:\n",
                CurrentTraceback(),
            )

    # ----- Network_server -----

    def connection(self, address: Address) -> Optional[_SipWsProtocol]:
        """The open connection address names (a Remote_address, or a (name, port) pair)."""
        name = address.received if isinstance(address, Remote_address) else address[0]
        return self.connections.get(name)

    def send_to(self, data: Union[bytes, str], address: Address) -> bool:
        """Write one SIP message on the connection address names: a text message when it is
        UTF-8 (all SIP is, but for binary bodies), binary otherwise. False when that connection
        is gone, or when the message is over max_message_size (autobahn holds messages sent to
        the limit of those received; the transaction then ends with a 503)."""
        proto = self.connection(address)
        if proto is None or proto.state != proto.STATE_OPEN:
            self.stats.errors += 1
            return False
        if isinstance(data, str):
            data = data.encode("utf-8")
        try:
            data.decode("utf-8")
            binary = False
        except UnicodeDecodeError:
            binary = True
        try:
            proto.sendMessage(data, isBinary=binary)
        except PayloadExceededError:
            self.stats.errors += 1
            self.log_limiter.write(
                "wss_send_size",
                SIPLOG_ERR,
                f"Wss_server: a message of {len(data)} bytes to {proto.peer_name} is over the limit "
                f"of {self.uopts.max_message_size}, not sent",  # type: ignore[attr-defined]
            )
            return False
        self.stats.dgrams_out += 1
        return True

    def shutdown(self) -> Any:
        """Stop listening and close every connection (going away, 1001)."""
        for proto in tuple(self.connections.values()):
            proto.sendClose(proto.CLOSE_STATUS_CODE_GOING_AWAY, "server shutting down")
        port, self._port = self._port, None
        return port.stopListening() if port is not None else None
