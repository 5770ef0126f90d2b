"""The transaction manager's transports: the UDP sockets (given, or its own: one per address family
with -l '*') and the other registered listeners (WSS; later TCP, TLS), which one a message leaves
by, what its Via and Contact then say, and what happens when a connection transport cannot send.
"""

from __future__ import annotations

import socket
from typing import Any, Iterable

from sippy.misc import address_family, ipv6_available, sip_hostport
from sippy.Network_server import Remote_address
from sippy.SipLogger import SIPLOG_DBUG
from sippy.Transactions.state import (
    RINGING,
    TRYING,
    SipTransaction,
)


def is_reliable(server: Any) -> bool:
    """RFC 3261 17's "reliable transport": `is_reliable`, or for a transport without it (written
    for Sippy 2.x) anything but UDP."""
    reliable = getattr(server, "is_reliable", None)
    return server.transport != "udp" if reliable is None else reliable


def peer_host(address: Any) -> Any:
    """The host, or for a Remote_address the name of its connection (see Remote_address.received)."""
    return address.received if address.__class__ is Remote_address else address[0]


def sip_listen_hosts(global_config: dict[str, Any]) -> tuple[str, ...]:
    """Where the SIP UDP sockets listen: `_sip_address`, or with `_sip_wildcard` (-l '*') 0.0.0.0
    and :: on the same port (IPv4 alone on a host without IPv6)."""
    if not global_config.get("_sip_wildcard"):
        return (global_config["_sip_address"],)
    if ipv6_available():
        return ("0.0.0.0", "::")
    return ("0.0.0.0",)


class TransportChoice:
    """SipTransactionManager's part that holds the transports and picks one per message. It uses
    the manager's handleIncoming (as data_callback), log_limiter, _sendFailed and _removeServer."""

    def _initTransports(
        self, global_config: dict[str, Any], reactor: Any, transport: Any, servers: Iterable[Any]
    ) -> None:
        """UDP: the transport given, else our own sockets (see _listen); then the others."""
        self.own_transport = transport is None
        # The transport of each address family when there are several (-l '*': one socket per
        # family); a request leaves by the one of its destination's family. Empty: one transport.
        self.transports: dict[int, Any] = {}
        # With -l '*' a name is resolved before its transport and Via address are chosen.
        self._resolve_names = False
        if transport is None:
            self.transports = self._listen(global_config, reactor)
            self._resolve_names = bool(global_config.get("_sip_wildcard"))
            transport = self.transports.get(socket.AF_INET) or self.transports[socket.AF_INET6]
            global_config["_sip_tm"] = self
        self.transport = transport
        # The other listening transports (Network_server), by transport name: "wss", later "tcp",
        # "tls". A request whose target asks for one leaves by it (see _targetTransport).
        self.listeners: dict[str, Any] = {}
        # Live transactions over reliable transports by connection (see _track).
        self._by_connection: dict[tuple[Any, Any], set[SipTransaction]] = {}
        for server in servers:
            self.registerTransport(server)
        if global_config.get("_wss_server") is not None:
            # Sippy 2.x programs hand their WSS listener over this way.
            self.registerTransport(global_config["_wss_server"])

    def registerTransport(self, server: Any) -> None:
        """Send through server (a Network_server other than UDP, whose data_callback is
        handleIncoming and error_callback transportError) the requests whose target asks for its
        transport; the answers to requests that came on it go back on it anyway."""
        if server.transport == "udp":
            raise ValueError("UDP sockets are the manager's own transport (transport= or _sip_address)")
        self.listeners[server.transport] = server

    def _listen(self, global_config: dict[str, Any], reactor: Any) -> dict[int, Any]:
        """UDP sockets on `sip_listen_hosts`; a --workers worker adopts the ones its parent
        bound for it (`_sip_fds`: descriptor by address family, see sippy.WorkerGroup)."""
        from sippy.Udp_server import Udp_server, Udp_server_opts

        port = global_config["_sip_port"]
        fds = global_config.get("_sip_fds", {})
        servers: dict[int, Any] = {}
        try:
            for host in sip_listen_hosts(global_config):
                uopts = Udp_server_opts(
                    (host, port),
                    self.handleIncoming,
                    ploss_out_rate=self.ploss_out_rate,
                    pdelay_out_max=self.pdelay_out_max,
                    impair_seed=self.impair_seed,
                    fileno=fds.get(address_family(host)),
                )
                server = Udp_server(global_config, uopts, reactor=reactor)
                servers[server.uopts.family] = server
                port = server.uopts.laddress[1]  # port 0: the second socket takes the first one's
        except Exception:
            for server in servers.values():
                server.shutdown()
            raise
        return servers

    def _transportFor(self, address: tuple[str, int]) -> Any:
        """The transport that reaches address: the one of its family when there are several."""
        if not self.transports:
            return self.transport
        return self.transports.get(address_family(address[0]), self.transport)

    def _targetTransport(self, msg: Any, address: Any) -> str:
        """The transport the request's target asks for: a Remote_address's own, else the
        `transport=` parameter (and scheme) of the URI the target comes from (the first Route,
        else the Request-URI) when the target is that URI's address; "udp" otherwise.
        `transport=ws` (RFC 7118 uses it for WS and WSS) names our WSS listener, `sips:` TLS.
        Only WSS and TLS are asked for whether we have them or not (no listener: 503), since
        UDP cannot reach a browser or keep a sips: promise; any other transport we do not have
        (tcp) falls back to UDP, as every request went before transports were chosen."""
        if address.__class__ is Remote_address:
            return address.transport
        routes = msg.getHFBodys("route")
        url = routes[0].getUrl() if routes else msg.getRURI()
        if url.getAddr() != tuple(address):
            return "udp"
        name = (url.transport or "udp").lower()
        if name == "ws":
            name = "wss"
        if url.scheme == "sips" and name != "wss":
            return "tls"
        if name in self.listeners or name == "wss":
            return name
        return "udp"

    def _markTransport(self, msg: Any, userv: Any) -> None:
        """A request leaving by a transport other than UDP says so in its top Via's protocol, and
        its Contact (see _markContact)."""
        msg.getHFBody("via").transport = userv.transport.upper()
        self._markContact(msg, userv)

    def _markContact(self, msg: Any, userv: Any) -> None:
        """Our own (placeholder) Contact in a message leaving by a transport other than UDP gets
        the transport's `transport=`, so that the peer can reach us back (on a copy: the UA reuses
        its Contact)."""
        uri_transport = getattr(userv, "uri_transport", None)
        if uri_transport is not None and msg.countHFs("contact") == 1:
            h = msg.getHF("contact")
            body = h.getBody()
            if not body.asterisk and body.getUrl().host is None:
                body = body.getCopy()
                body.getUrl().transport = uri_transport
                h.body = body

    def transportError(self, address: Any, server: Any) -> None:
        """A connection transport's error_callback: a message to address could not be delivered,
        or its connection went. Every transaction pending on that peer ends: client ones with a
        local 503, server ones at once (nothing can answer them any more)."""
        for t in list(self._by_connection.pop(self._connectionKey(server, address), ())):
            if t.tid in self.tclient and self.tclient[t.tid] is t:
                if t.state in (TRYING, RINGING):
                    self._sendFailed(t)
                else:
                    self._removeClient(t)
            else:
                self._removeServer(t)

    @staticmethod
    def _connectionKey(server: Any, address: Any) -> tuple[Any, Any]:
        """What identifies a connection of a reliable transport: the server and the peer's
        connection name (names_connections) or address."""
        if getattr(server, "names_connections", False):
            return (server, peer_host(address))
        return (server, address.address if address.__class__ is Remote_address else tuple(address))

    def _track(self, t: SipTransaction) -> None:
        """Note a transaction over a reliable transport under its connection, so that
        transportError finds it without a look at every other transaction."""
        key = self._connectionKey(t.userv, t.address)
        self._by_connection.setdefault(key, set()).add(t)

    def _untrack(self, t: SipTransaction) -> None:
        key = self._connectionKey(t.userv, t.address)
        ts = self._by_connection.get(key)
        if ts is not None:
            ts.discard(t)
            if not ts:
                del self._by_connection[key]

    def _send(self, userv: Any, data: bytes, address: Any) -> bool:
        """Hand data to the transport; False when a connection transport cannot send it at all."""
        ok = userv.send_to(data, address)
        if self._dbug():
            self._log(
                SIPLOG_DBUG,
                f"SENDING message to {sip_hostport(*address)}:\n",
                data.decode(errors="backslashreplace"),
            )
        return ok is not False

    def _encode(self, msg: Any, userv: Any, address: tuple[str, int], compact: bool = False) -> bytes:
        """The wire bytes of msg for address: Via/Contact placeholders take the local address
        the transport shows that peer. surrogateescape: undecodable body bytes go out as they
        came in (see SipMsg._parse)."""
        return msg.localStr(*userv.getSIPaddr(address), compact=compact).encode("utf-8", "surrogateescape")
