"""SIP over UDP on the Twisted reactor: the transport behind `SipTransactionManager`.

A `Network_server` (docs/internals.md "Transport"): `data_callback(data, ra, server, rtime)` gets a
`Remote_address` per datagram, `send_to` takes a (host, port) pair or one. It knows nothing of SIP: errors on
either direction are counted and logged, never raised into the reactor, so one bad datagram or
one unreachable peer cannot stop the server.
"""

from __future__ import annotations

import copy
import socket
import sys
import time
from functools import partial
from typing import Any, Callable, Optional, Union

from twisted.internet.address import IPv6Address
from twisted.internet.defer import Deferred
from twisted.internet.error import DNSLookupError, MessageLengthError
from twisted.internet.protocol import DatagramProtocol

from sippy.DatagramPort import adopt_udp, listen_udp
from sippy.LogLimiter import CurrentTraceback, LogLimiter
from sippy.misc import bare_host, is_ip, local4remote
from sippy.Network_server import (
    Address,
    DataCallback,
    ErrorCallback,
    Network_server,
    Network_server_opts,
    Network_server_stats,
    Remote_address,
)
from sippy.SipConf import SipConf
from sippy.SipLogger import SIPLOG_ERR
from sippy.Time.MonoTime import MonoTime
from sippy.Time.Timeout import default_reactor

# Requested size of the socket buffers (the kernel caps it at net.core.rmem_max/wmem_max).
RCVBUF_SIZE = 4 * 1024 * 1024

_WILDCARDS = ("0.0.0.0", "::")
# Largest datagram read whole (UDP's own limit).
MAX_DATAGRAM = 65535

# How long a name resolved for send_to() is reused before asking the resolver again.
RESOLVE_CACHE_TTL = 30.0
# Bounds (README "Security"): peers choose the names we resolve (Via sent-by, Contact), so at most
# RESOLVE_CACHE_SIZE names are cached (the one resolved longest ago is evicted first), at most
# RESOLVE_PENDING_HOSTS names are being resolved at once and each holds at most
# RESOLVE_PENDING_DATAGRAMS datagrams until it resolves; a datagram over a bound is dropped and
# counted in stats.errors.
RESOLVE_CACHE_SIZE = 4096
RESOLVE_PENDING_HOSTS = 256
RESOLVE_PENDING_DATAGRAMS = 64


class _FirstAddress:
    """IResolutionReceiver that fires a Deferred with the first address found, or DNSLookupError."""

    def __init__(self, host: str) -> None:
        self.host = host
        self.deferred: Deferred = Deferred()
        self.found: Optional[str] = None

    def resolutionBegan(self, resolution: Any) -> None:
        pass

    def addressResolved(self, address: Any) -> None:
        if self.found is None:
            self.found = address.host

    def resolutionComplete(self) -> None:
        if self.found is not None:
            self.deferred.callback(self.found)
        else:
            self.deferred.errback(DNSLookupError(f"no IPv6 address for {self.host}"))


def resolve6(reactor: Any, host: str) -> Deferred:
    """The first IPv6 address of host (AAAA, getaddrinfo in Twisted's resolver thread pool)."""
    receiver = _FirstAddress(host)
    reactor.nameResolver.resolveHostName(
        receiver, host, 0, addressTypes=[IPv6Address], transportSemantics="UDP"
    )
    return receiver.deferred


class Udp_server_opts(Network_server_opts):
    """Where to listen and whom to hand datagrams to (`Network_server_opts`), and the UDP specifics.

    `family` is inferred from the host when not given. `flags` is kept for Sippy compatibility
    (socket options are left at Twisted's defaults). The impairment knobs (Sippy's) act on each
    datagram. `fileno`: a socket already bound to laddress (by the --workers parent, see
    sippy.WorkerGroup) is adopted instead of binding one; the descriptor stays the caller's.
    `sip_port`: the port Via/Contact name when it is not the bound one (a worker answers on the
    shared port but names its own, so that the dialog comes back to it).
    """

    def __init__(
        self,
        laddress: tuple[Optional[str], int],
        data_callback: Optional[DataCallback],
        family: Optional[int] = None,
        flags: int = 0,
        *,
        direct_dispatch: bool = False,
        ploss_out_rate: float = 0.0,
        pdelay_out_max: float = 0.0,
        ploss_in_rate: float = 0.0,
        pdelay_in_max: float = 0.0,
        impair_seed: Optional[int] = None,
        error_callback: Optional[ErrorCallback] = None,
        fileno: Optional[int] = None,
        sip_port: Optional[int] = None,
    ) -> None:
        host = bare_host(laddress[0] or "0.0.0.0")
        super().__init__(
            (host, int(laddress[1])),
            data_callback,
            direct_dispatch=direct_dispatch,
            ploss_out_rate=ploss_out_rate,
            pdelay_out_max=pdelay_out_max,
            ploss_in_rate=ploss_in_rate,
            pdelay_in_max=pdelay_in_max,
            error_callback=error_callback,
            impair_seed=impair_seed,
        )
        self.laddress: tuple[str, int]
        if family is None:
            family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.family = family
        self.flags = flags
        self.fileno = fileno
        self.sip_port = sip_port

    def getCopy(self) -> Udp_server_opts:
        return copy.copy(self)

    def isWildCard(self) -> bool:
        """Bound to every address of its family (0.0.0.0 or ::), as `-l '*'` asks."""
        return self.laddress[0] in _WILDCARDS


# Sippy's name of the counters (dgrams_in, dgrams_out, errors, emulated_losses).
Udp_server_stats = Network_server_stats


class _UdpProtocol(DatagramProtocol):
    # A separate protocol object: DatagramProtocol owns `.transport` (the Twisted port), while
    # the SIP layer expects `server.transport == 'udp'`.
    def __init__(self, server: Udp_server) -> None:
        self.server = server

    def datagramReceived(self, datagram: bytes, addr: Any) -> None:
        self.server._received(datagram, addr)


class Udp_server(Network_server):
    """One listening UDP socket (IPv4 or IPv6)."""

    transport = "udp"
    uopts: Udp_server_opts

    def __init__(self, global_config: Any, uopts: Udp_server_opts, reactor: Any = None) -> None:
        super().__init__(global_config, uopts, reactor)
        # Errors a peer can provoke at will (bad names, unreachable addresses) are rate limited.
        self.log_limiter = LogLimiter(self._log_args, self.reactor)
        self._resolved: dict[str, tuple[str, float]] = {}
        self._resolving: dict[str, list[Callable[[Optional[str]], Any]]] = {}
        self.protocol = _UdpProtocol(self)
        host, port = self.uopts.laddress
        # Whole datagrams (Twisted would cut them at 8 KB): an oversized request gets its 413. Read
        # into one kept buffer (sippy.DatagramPort), not a 64 KiB allocation per datagram.
        if self.uopts.fileno is not None:
            self._port: Any = adopt_udp(
                self.reactor, self.uopts.fileno, self.uopts.family, self.protocol, MAX_DATAGRAM
            )
        elif self.uopts.family == socket.AF_INET6:
            self._port = self._listen6(host, port)
        else:
            self._port = listen_udp(self.reactor, port, self.protocol, host, MAX_DATAGRAM)
        self.uopts.laddress = (host, self._port.getHost().port)
        self._wildcard = self.uopts.isWildCard()
        # What Via/Contact name (getSIPaddr).
        self._sip_addr = (host, self.uopts.sip_port or self.uopts.laddress[1])
        self._grow_buffers()

    def _listen6(self, host: str, port: int) -> Any:
        """An IPv6 socket that takes IPv6 only (IPV6_V6ONLY), so that an IPv4 socket can hold the
        same port beside it (`-l '*'` listens with one of each); Twisted does not set it."""
        skt = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
        try:
            skt.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            skt.bind((host, port))
            skt.setblocking(False)
            return adopt_udp(self.reactor, skt.fileno(), socket.AF_INET6, self.protocol, MAX_DATAGRAM)
        finally:
            skt.close()  # the reactor's port holds its own copy of the descriptor

    def _grow_buffers(self) -> None:
        """Ask for large socket buffers, so that a short reactor stall (a GC pass, a burst of
        calls) queues datagrams in the kernel instead of dropping them. The kernel may cap it."""
        skt = getattr(self._port, "socket", None)
        if skt is None:  # a fake reactor in tests
            return
        for opt in (socket.SO_RCVBUF, socket.SO_SNDBUF):
            try:
                skt.setsockopt(socket.SOL_SOCKET, opt, RCVBUF_SIZE)
            except OSError:
                pass  # keep the default: not fatal, just less headroom

    @property
    def _logger(self) -> Any:
        return self.global_config.get("_sip_logger")

    def _log_error(self, text: str) -> None:
        logger = self._logger
        if logger is not None:
            logger.ewrite(text)
        else:
            sys.stderr.write(text + "\n")

    def _log_args(self, level: int, *args: Any) -> None:
        self._log_error("".join(str(x) for x in args))

    def getSIPaddr(self, raddress: Optional[Address] = None) -> tuple[str, int]:
        """Host and (actual) port to advertise in Via/Contact of a message to raddress. A socket
        bound to every address answers with the local address that faces raddress (the kernel's
        choice of source address, `local4remote`), or SipConf.my_address without a usable peer."""
        if not self._wildcard:
            return self._sip_addr
        port = self._sip_addr[1]
        if raddress is not None:
            try:
                return (local4remote(raddress[0], self.uopts.family), port)
            except (OSError, ValueError):
                pass  # a name (not resolved yet) or no route: the host's address will do
        return (SipConf.my_address, port)

    def _received(self, data: bytes, addr: Any) -> None:
        o = self.uopts
        if self._impair_in and self._held(o.ploss_in_rate, o.pdelay_in_max, self._deliver, data, addr):
            return
        self._deliver(data, addr)

    def _deliver(self, data: bytes, addr: Any) -> None:
        rtime = MonoTime()
        self.stats.dgrams_in += 1
        # IPv6 peers come as (host, port, flowinfo, scope_id); the SIP layer wants (host, port).
        address = addr if len(addr) == 2 else (addr[0], addr[1])
        try:
            self.uopts.data_callback(data, Remote_address(address, "udp"), self, rtime)
        except Exception:
            self.log_limiter.write(
                "exception",
                SIPLOG_ERR,
                "Udp_server: unhandled exception when processing datagram from ",
                address,
                ":\n",
                CurrentTraceback(),
            )

    def send_to(self, data: Union[bytes, str], address: Address) -> bool:
        """Queue data for address; a host name is resolved on the reactor first. Never blocks.
        True: UDP cannot tell whether a datagram arrives (a failure later is counted and logged)."""
        if self._port is None:
            return True
        if isinstance(data, str):
            data = data.encode("utf-8")
        if address.__class__ is Remote_address:
            address = address.address  # type: ignore[union-attr]
        host, port = bare_host(address[0]), int(address[1])
        if is_ip(host):
            self._write(data, (host, port))
            return True
        self.lookup(host, partial(self._send_resolved, data, port))
        return True

    def _send_resolved(self, data: bytes, port: int, ip: Optional[str]) -> None:
        if ip is None:
            self.stats.errors += 1
        else:
            self._write(data, (ip, port))

    def lookup(self, host: str, callback: Callable[[Optional[str]], Any]) -> None:
        """callback(ip) with an address of this socket's family for the name host, at once from
        the cache or when the resolver answers (never blocks); callback(None) when there is none
        or a bound is hit. IPv4 asks `reactor.resolve`, IPv6 the reactor's getaddrinfo resolver
        for AAAA only."""
        cached = self._resolved.get(host)
        if cached is not None:
            if cached[1] > MonoTime().monot:
                callback(cached[0])
                return
            del self._resolved[host]
        pending = self._resolving.get(host)
        if pending is not None:
            if len(pending) < RESOLVE_PENDING_DATAGRAMS:
                pending.append(callback)
            else:
                self._drop_unresolved(host, "datagrams wait for it already")
                callback(None)
            return
        if len(self._resolving) >= RESOLVE_PENDING_HOSTS:
            self._drop_unresolved(host, "names are being resolved already")
            callback(None)
            return
        self._resolving[host] = [callback]
        if self.uopts.family == socket.AF_INET6:
            d = resolve6(self.reactor, host)
        else:
            d = self.reactor.resolve(host)
        d.addCallbacks(self._resolve_done, self._resolve_failed, callbackArgs=(host,), errbackArgs=(host,))

    def _drop_unresolved(self, host: str, why: str) -> None:
        self.log_limiter.write(
            "resolve_bound", SIPLOG_ERR, "Udp_server: datagram to ", repr(host), " dropped: ", why
        )

    def _resolve_done(self, ip: str, host: str) -> None:
        cache = self._resolved
        cache.pop(host, None)
        while len(cache) >= RESOLVE_CACHE_SIZE:
            # Oldest first: dicts keep insertion order, and a name is reinserted when resolved again.
            del cache[next(iter(cache))]
        cache[host] = (ip, MonoTime().monot + RESOLVE_CACHE_TTL)
        for callback in self._resolving.pop(host, ()):
            callback(ip)

    def _resolve_failed(self, failure: Any, host: str) -> None:
        waiting = self._resolving.pop(host, ())
        self.log_limiter.write(
            "resolve_failed",
            SIPLOG_ERR,
            "Udp_server: cannot resolve ",
            repr(host),
            " (",
            failure.getErrorMessage(),
            "), dropped ",
            len(waiting),
        )
        for callback in waiting:
            callback(None)

    def _write(self, data: bytes, address: tuple[str, int]) -> None:
        o = self.uopts
        if self._impair_out and self._held(
            o.ploss_out_rate, o.pdelay_out_max, self._write_now, data, address
        ):
            return
        self._write_now(data, address)

    def _write_now(self, data: bytes, address: tuple[str, int]) -> None:
        if self._port is None:
            return
        try:
            self._port.write(data, address)
        except (OSError, MessageLengthError, ValueError) as ex:
            # ValueError: Twisted's InvalidAddressError (e.g. an IPv6 peer on an IPv4 socket).
            self.stats.errors += 1
            self.log_limiter.write(
                "send_failed",
                SIPLOG_ERR,
                "Udp_server: sending ",
                len(data),
                " bytes to ",
                address,
                " failed: ",
                ex,
            )
            return
        self.stats.dgrams_out += 1

    def shutdown(self) -> Any:
        """Stop listening; later send_to() calls are ignored. Returns Twisted's Deferred."""
        self.log_limiter.flush()
        port, self._port = self._port, None
        self._resolving.clear()
        if port is None:
            return None
        return port.stopListening()


class self_test:
    """Sippy's self-check of this module: over IPv4 and IPv6 loopback one server pings another,
    which pongs back; done when both pongs came back with the right data from the right address.

    `start()` arms it on a running reactor (a Deferred fires with self, or errs); `run()` drives
    the not yet running reactor itself, as Sippy's unit test calls it, and raises on failure.
    """

    ping_data, ping_data6 = b"ping!", b"ping6!"
    pong_data, pong_data6 = b"pong!", b"pong6!"

    def __init__(self, reactor: Any = None) -> None:
        self.reactor = reactor if reactor is not None else default_reactor()
        self.npongs = 2
        self.servers: list[Udp_server] = []
        self.done: Any = None

    def start(self) -> Any:
        self.done = Deferred()
        for host, ping, pong in (
            ("127.0.0.1", self.ping_data, self.pong_data),
            ("::1", self.ping_data6, self.pong_data6),
        ):
            pair: dict[str, Udp_server] = {}
            pair["pinged"] = Udp_server(
                {}, Udp_server_opts((host, 0), self._answer(ping, pong, pair)), self.reactor
            )
            pair["pinger"] = Udp_server({}, Udp_server_opts((host, 0), self._check(pong, pair)), self.reactor)
            self.servers += pair.values()
            pair["pinger"].send_to(ping, pair["pinged"].getSIPaddr())
        return self.done

    def _answer(self, ping: bytes, pong: bytes, pair: dict[str, Udp_server]) -> DataCallback:
        def ping_received(data: bytes, ra: Remote_address, server: Network_server, rtime: MonoTime) -> None:
            if data != ping or ra.address != pair["pinger"].getSIPaddr():
                self._fail(f"unexpected ping {data!r} from {ra}")
                return
            server.send_to(pong, ra)

        return ping_received

    def _check(self, pong: bytes, pair: dict[str, Udp_server]) -> DataCallback:
        def pong_received(data: bytes, ra: Remote_address, server: Network_server, rtime: MonoTime) -> None:
            if data != pong or ra.address != pair["pinged"].getSIPaddr():
                self._fail(f"unexpected pong {data!r} from {ra}")
                return
            self.npongs -= 1
            if self.npongs == 0 and not self.done.called:
                self.done.callback(self)

        return pong_received

    def _fail(self, why: str) -> None:
        if not self.done.called:
            self.done.errback(RuntimeError(why))

    def shutdown(self) -> None:
        for server in self.servers:
            server.shutdown()
        self.servers = []

    def run(self, timeout: float = 5.0) -> None:
        """Ping-pong on the (not running) reactor; raises if it does not complete in timeout."""
        if getattr(self.reactor, "running", False):
            raise RuntimeError("self_test.run() drives the reactor itself; use start() from a running one")
        outcome: list[Any] = []
        try:
            self.start().addBoth(outcome.append)
            deadline = time.monotonic() + timeout
            while not outcome and time.monotonic() < deadline:
                self.reactor.iterate(0.01)
        finally:
            self.shutdown()
        if not outcome:
            raise RuntimeError(f"Udp_server self_test: {self.npongs} pong(s) missing after {timeout} s")
        if outcome[0] is not self:
            outcome[0].raiseException()
