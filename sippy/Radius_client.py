"""RADIUS client on the Twisted reactor: pyrad builds, signs and parses, Twisted moves the bytes.

A B2BUA asks for authorisation on the path of every call and sends accounting for every leg, so
nothing here may block: one UDP socket per address family shared by all requests, identifiers
allocated per server, retransmissions and fail-over to the next server driven by `Timeout`s.

Attribute conventions (those of Sippy's radiusclient-ng set-up, which billing engines expect):
- the numbered Cisco h323-* VSAs carry `name=value` (`h323-remote-address=192.0.2.1`);
- names Cisco has no number for (`call-id`, `h323-session-protocol`, ...) and names the dictionary
  does not know travel as `Cisco-AVPair = "name=value"`;
- the digest sub-attributes (dictionary codes 1063-1072: Digest-Realm ... Digest-User-Name) are
  each packed into a Digest-Attributes (207) as draft-sterman-aaa-sip and FreeRADIUS expect.
Replies are returned the same way round: `(name, value)` pairs with the `name=` prefixes removed.
"""

from __future__ import annotations

import ipaddress
import socket
from collections import OrderedDict, deque
from typing import Any, Callable, Optional

from pyrad import packet as rpacket
from pyrad.dictionary import Dictionary
from twisted.internet.protocol import DatagramProtocol

from sippy.DatagramPort import listen_udp
from sippy.LogLimiter import LogLimiter
from sippy.RadiusConf import RadiusConf, RadiusServer, read_radconf
from sippy.SipLogger import SIPLOG_DBUG, SIPLOG_ERR, SIPLOG_INFO
from sippy.Time.Timeout import Timeout, default_reactor

# Attributes Cisco carries only inside Cisco-AVPair.
AVPAIR_NAMES = frozenset(
    (
        "call-id",
        "h323-session-protocol",
        "h323-ivr-out",
        "h323-ivr-in",
        "h323-incoming-conf-id",
        "release-source",
        "alert-timepoint",
        "provisional-timepoint",
    )
)
CISCO_VENDOR_ID = 9
# Reply attributes that protect the exchange and mean nothing to the caller of do_auth.
_TRANSPORT_ONLY = frozenset(("Message-Authenticator", "Proxy-State"))
DIGEST_ATTRIBUTES = 207
# Dictionary codes of the digest sub-attributes: code - DIGEST_SUB_BASE is the sub-attribute type.
DIGEST_SUB_BASE = 1062
DIGEST_SUB_CODES = range(1063, 1073)

# Requests waiting for an identifier of one server (256 already in flight to it), or for its name
# to resolve, at most; one more is treated as if that server had not answered: the next server is
# tried, and with none left the request ends with RESULT_NO_ANSWER (README "Security").
MAX_WAITING = 1024

# Result codes handed to callbacks, as in Sippy: (attributes, rcode).
RESULT_ACCEPT = 0
RESULT_REJECT = 1
RESULT_NO_ANSWER = -1

Attributes = list[tuple[str, Any]]
ResultCallback = Callable[..., None]


def _ip_literal(host: str) -> Optional[str]:
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        return None


class RadiusRequest:
    """One AAA request in flight; `cancel()` drops it without calling back (call torn down)."""

    __slots__ = (
        "client",
        "code",
        "attributes",
        "servers",
        "idx",
        "tries_left",
        "pkt",
        "raw",
        "addr",
        "pkt_id",
        "timer",
        "result_cb",
        "cb_params",
        "done",
    )

    def __init__(
        self,
        client: Radius_client,
        code: int,
        attributes: Attributes,
        servers: list[RadiusServer],
        result_cb: Optional[ResultCallback],
        cb_params: tuple[Any, ...],
    ) -> None:
        self.client = client
        self.code = code
        self.attributes = attributes
        self.servers = servers
        self.idx = 0
        self.tries_left = 0
        self.pkt: Any = None
        self.raw = b""
        self.addr: Optional[tuple[str, int]] = None
        self.pkt_id: Optional[int] = None
        self.timer: Optional[Timeout] = None
        self.result_cb = result_cb
        self.cb_params = cb_params
        self.done = False

    def cancel(self) -> None:
        if self.done:
            return
        self.done = True
        self.result_cb = None
        self.cb_params = ()
        self.client._release(self)


class _RadiusProtocol(DatagramProtocol):
    def __init__(self, client: Radius_client) -> None:
        self.client = client

    def datagramReceived(self, data: bytes, addr: Any) -> None:
        self.client._recv(data, (addr[0], addr[1]))


class Radius_client:
    """Sends Access-Request and Accounting-Request packets to the configured servers in order.

    Access-Requests carry a Message-Authenticator; with `require_ma` (the default) a reply to one
    without a valid Message-Authenticator is dropped like a forged one (BlastRADIUS,
    CVE-2024-3596: the response authenticator alone can be forged). `require_ma=False` is for
    servers that do not sign their replies yet; a Message-Authenticator that is present is always
    checked.
    """

    def __init__(
        self, conf: RadiusConf, *, reactor: Any = None, logger: Any = None, require_ma: bool = True
    ) -> None:
        if conf.dictionary is None:
            raise ValueError("RadiusConf has no dictionary")
        self.conf = conf
        self.require_ma = require_ma
        self.dict: Dictionary = conf.dictionary
        self.reactor = reactor if reactor is not None else default_reactor()
        self.logger = logger
        self._ports: dict[int, Any] = {}
        self._resolved: dict[str, str] = {}
        self._resolving: dict[str, list[RadiusRequest]] = {}
        self._resolver: Any = None
        self._pending: dict[tuple[str, int], dict[int, RadiusRequest]] = {}
        self._next_id: dict[tuple[str, int], int] = {}
        self._waiting: dict[tuple[str, int], deque[RadiusRequest]] = {}
        self.stats = {"sent": 0, "retransmitted": 0, "ignored": 0, "refused": 0}
        self.log_limiter = LogLimiter(self._write, self.reactor)

    @classmethod
    def from_file(
        cls, path: str, *, reactor: Any = None, logger: Any = None, require_ma: bool = True
    ) -> Radius_client:
        """Client configured by a radiusclient-ng `radiusclient.conf` (`-R`)."""
        return cls(read_radconf(path), reactor=reactor, logger=logger, require_ma=require_ma)

    # --- public API -------------------------------------------------------------------------

    def do_auth(self, attributes: Attributes, result_cb: ResultCallback, *cb_params: Any) -> RadiusRequest:
        """Access-Request; `result_cb((attrs, rcode), *cb_params)`, rcode 0 accept, 1 reject, -1
        no server answered."""
        return self._start(rpacket.AccessRequest, attributes, self.conf.authservers, result_cb, cb_params)

    def do_acct(
        self, attributes: Attributes, result_cb: Optional[ResultCallback] = None, *cb_params: Any
    ) -> RadiusRequest:
        """Accounting-Request; same callback convention as do_auth (rcode 0 or -1)."""
        return self._start(rpacket.AccountingRequest, attributes, self.conf.acctservers, result_cb, cb_params)

    def shutdown(self) -> None:
        """Drop every request in flight and close the sockets."""
        for reqs in list(self._pending.values()):
            for req in list(reqs.values()):
                req.cancel()
        for queue in self._waiting.values():
            for req in queue:
                req.done = True
        self._waiting.clear()
        for port in self._ports.values():
            port.stopListening()
        self._ports.clear()

    # --- encoding ---------------------------------------------------------------------------

    def translate(self, attributes: Attributes) -> Attributes:
        """Map Sippy-style (name, value) pairs onto what goes on the wire (see module doc)."""
        out: Attributes = []
        attrs = self.dict.attributes
        for name, value in attributes:
            attr = attrs.get(name)
            if attr is None or name in AVPAIR_NAMES:
                out.append(("Cisco-AVPair", f"{name}={value}"))
            elif attr.vendor and name.startswith("h323-") and self._vendor_id(attr) == CISCO_VENDOR_ID:
                out.append((name, f"{name}={value}"))
            else:
                out.append((name, value))
        return out

    def _vendor_id(self, attr: Any) -> int:
        return int(self.dict.vendors.GetForward(attr.vendor))

    def encode(self, code: int, attributes: Attributes, secret: bytes, pkt_id: int) -> tuple[Any, bytes]:
        """Build and sign one request (attributes already translated) -> (pyrad packet, bytes)."""
        pkt: Any
        if code == rpacket.AccessRequest:
            pkt = rpacket.AuthPacket(code=code, id=pkt_id, secret=secret, dict=self.dict)
            pkt.authenticator = pkt.CreateAuthenticator()
            # Signed Access-Requests (RFC 3579, the BlastRADIUS countermeasure).
            pkt.message_authenticator = True
        else:
            pkt = rpacket.AcctPacket(code=code, id=pkt_id, secret=secret, dict=self.dict)
        for name, value in attributes:
            attr = self.dict.attributes[name]
            if not attr.vendor and attr.code in DIGEST_SUB_CODES:
                data = str(value).encode()[:251]
                sub = bytes((attr.code - DIGEST_SUB_BASE, len(data) + 2)) + data
                # Raw octets under the code, bypassing pyrad's per-name encoding.
                OrderedDict.setdefault(pkt, DIGEST_ATTRIBUTES, []).append(sub)
                continue
            if attr.encrypt == 1:
                value = pkt.PwCrypt(str(value))
            elif attr.type == "integer":
                if not (isinstance(value, str) and attr.values.HasForward(value)):
                    value = int(value)
            elif attr.type == "string":
                # One attribute holds 253 octets (247 inside a VSA); a long User-Agent must not
                # cost the call its accounting.
                value = str(value).encode()[: 247 if attr.vendor else 253]
                if not value:
                    # RFC 2865 has no empty strings (an unknown CLI): leave the attribute out.
                    continue
            pkt.AddAttribute(name, value)
        return pkt, pkt.RequestPacket()

    def decode_attributes(self, reply: Any) -> tuple[tuple[str, str], ...]:
        """Reply attributes as Sippy's (name, value) pairs, `name=` prefixes of Cisco values removed."""
        out = []
        for key in reply.keys():
            if not isinstance(key, str) or key in _TRANSPORT_ONLY:
                continue
            try:
                values = reply[key]
            except (KeyError, ValueError, TypeError):
                continue
            for v in values:
                name, sval = key, (v.decode(errors="replace") if isinstance(v, bytes) else str(v))
                if name == "Cisco-AVPair" or (name.startswith("h323-") and sval.startswith(name + "=")):
                    left, sep, right = sval.partition("=")
                    if sep:
                        name, sval = left, right
                out.append((name, sval))
        return tuple(out)

    # --- request state machine --------------------------------------------------------------

    def _start(
        self,
        code: int,
        attributes: Attributes,
        servers: list[RadiusServer],
        result_cb: Optional[ResultCallback],
        cb_params: tuple[Any, ...],
    ) -> RadiusRequest:
        req = RadiusRequest(self, code, self.translate(attributes), servers, result_cb, cb_params)
        self._try_server(req)
        return req

    def _try_server(self, req: RadiusRequest) -> None:
        while not req.done and req.idx < len(req.servers):
            server = req.servers[req.idx]
            ip = self._resolved.get(server.host) or _ip_literal(server.host)
            if ip is None:
                self._resolve(server.host, req)
                return
            addr = (ip, server.port)
            pkt_id = self._alloc_id(addr, req)
            if pkt_id is None:
                # 256 requests to this server already in flight: wait for an identifier.
                if not self._wait_for_id(addr, req):
                    self._refuse(req, addr)
                return
            try:
                req.pkt, req.raw = self.encode(req.code, req.attributes, server.secret, pkt_id)
            except (ValueError, KeyError, TypeError) as ex:
                self._release(req)
                self._log(SIPLOG_INFO, "RADIUS: cannot encode request: %s", ex)
                break
            req.tries_left = max(1, self.conf.retries)
            self._send(req)
            return
        if not req.done:
            self._finish(req, (), RESULT_NO_ANSWER)

    def _wait_for_id(self, addr: tuple[str, int], req: RadiusRequest) -> bool:
        """Queue req for addr's next free identifier; False when MAX_WAITING already wait."""
        queue = self._waiting.get(addr)
        if queue is None:
            queue = self._waiting[addr] = deque()
        elif len(queue) >= MAX_WAITING:
            # Cancelled requests (calls gone) stay queued until dequeued: drop them first.
            queue = self._waiting[addr] = deque(r for r in queue if not r.done)
            if len(queue) >= MAX_WAITING:
                return False
        queue.append(req)
        return True

    def _refuse(self, req: RadiusRequest, server: Any) -> None:
        """MAX_WAITING wait for server already: go on as if it had not answered, on the next
        reactor turn (never inside do_auth)."""
        self.stats["refused"] += 1
        self.log_limiter.write(
            "radius_full",
            SIPLOG_ERR,
            "RADIUS: ",
            MAX_WAITING,
            " requests wait for ",
            server,
            ", one more refused",
        )
        self.reactor.callLater(0, self._next_server, req)

    def _next_server(self, req: RadiusRequest) -> None:
        if not req.done:
            req.idx += 1
            self._try_server(req)

    def _resolve(self, host: str, req: RadiusRequest) -> None:
        waiters = self._resolving.get(host)
        if waiters is not None:
            if len(waiters) >= MAX_WAITING:
                waiters[:] = [r for r in waiters if not r.done]
                if len(waiters) >= MAX_WAITING:
                    self._refuse(req, host)
                    return
            waiters.append(req)
            return
        self._resolving[host] = [req]

        def done(ip: Optional[str]) -> None:
            for r in self._resolving.pop(host, []):
                if ip is None:
                    r.idx += 1
                self._try_server(r)

        def resolved(ip: str) -> None:
            self._resolved[host] = ip
            done(ip)

        def failed(failure: Any) -> None:
            self._log(SIPLOG_INFO, "RADIUS: cannot resolve %s: %s", host, failure.getErrorMessage())
            done(None)

        if self._resolver is None:
            # /etc/hosts, then DNS over this reactor (twisted.names): no resolver threads.
            from twisted.names import client, hosts, resolve

            self._resolver = resolve.ResolverChain(
                [
                    hosts.Resolver(b"/etc/hosts"),
                    client.Resolver(resolv="/etc/resolv.conf", reactor=self.reactor),
                ]
            )
        self._resolver.getHostByName(host).addCallbacks(resolved, failed)

    def _alloc_id(self, addr: tuple[str, int], req: RadiusRequest) -> Optional[int]:
        pending = self._pending.setdefault(addr, {})
        if len(pending) >= 256:
            return None
        pkt_id = self._next_id.get(addr, 0)
        while pkt_id in pending:
            pkt_id = (pkt_id + 1) & 0xFF
        self._next_id[addr] = (pkt_id + 1) & 0xFF
        pending[pkt_id] = req
        req.addr, req.pkt_id = addr, pkt_id
        return pkt_id

    def _release(self, req: RadiusRequest) -> None:
        """Stop the timer and free the identifier (if any) so a late reply is not matched."""
        if req.timer is not None:
            req.timer.cancel()
            req.timer = None
        addr, pkt_id = req.addr, req.pkt_id
        req.addr = req.pkt_id = None
        if addr is None or pkt_id is None:
            return
        pending = self._pending.get(addr)
        if pending is not None and pending.get(pkt_id) is req:
            del pending[pkt_id]
        queue = self._waiting.get(addr)
        while queue:
            nxt = queue.popleft()
            if not nxt.done:
                self._try_server(nxt)
                break

    def _port_for(self, ip: str) -> Any:
        family = socket.AF_INET6 if ":" in ip else socket.AF_INET
        port = self._ports.get(family)
        if port is None:
            bind = self.conf.bindaddr
            if bind is None or (":" in bind) != (family == socket.AF_INET6):
                bind = "::" if family == socket.AF_INET6 else ""
            port = listen_udp(self.reactor, 0, _RadiusProtocol(self), bind)
            self._ports[family] = port
        return port

    def _send(self, req: RadiusRequest) -> None:
        assert req.addr is not None
        req.tries_left -= 1
        try:
            self._port_for(req.addr[0]).write(req.raw, req.addr)
            self.stats["sent"] += 1
        except OSError as ex:
            # Unreachable now: the timer below moves on as if the server had not answered.
            self._log(SIPLOG_INFO, "RADIUS: sending to %s:%s failed: %s", req.addr[0], req.addr[1], ex)
        req.timer = Timeout(self._on_timeout, self.conf.timeout, 1, req, reactor=self.reactor)

    def _on_timeout(self, req: RadiusRequest) -> None:
        req.timer = None
        if req.done:
            return
        if req.tries_left > 0:
            self.stats["retransmitted"] += 1
            self._send(req)
            return
        assert req.addr is not None
        self._log(SIPLOG_DBUG, "RADIUS: no answer from %s:%s", req.addr[0], req.addr[1])
        self._release(req)
        req.idx += 1
        self._try_server(req)

    def _recv(self, data: bytes, addr: tuple[str, int]) -> None:
        ip = _ip_literal(addr[0]) or addr[0]
        req = self._pending.get((ip, addr[1]), {}).get(data[1]) if len(data) >= 20 else None
        if req is None:
            self._ignore(addr, "no request waits for it")
            return
        try:
            reply = req.pkt.CreateReply(packet=data)
        except (rpacket.PacketError, ValueError, KeyError, IndexError, TypeError) as ex:
            self._ignore(addr, f"cannot decode it ({ex})")
            return
        if not req.pkt.VerifyReply(reply, data, enforce_ma=self.require_ma):
            if reply.message_authenticator is None and req.code == rpacket.AccessRequest:
                # Forged, or an unpatched server: either way the operator has to know.
                why = "no Message-Authenticator (an old server? see --radius_require_ma)"
                self._ignore(addr, why, SIPLOG_ERR)
            else:
                self._ignore(addr, "bad response or message authenticator")
            return
        if reply.code in (rpacket.AccessAccept, rpacket.AccountingResponse):
            rcode = RESULT_ACCEPT
        elif reply.code in (rpacket.AccessReject, rpacket.AccessChallenge):
            rcode = RESULT_REJECT
        else:
            self._ignore(addr, f"unexpected code {reply.code}")
            return
        self._finish(req, self.decode_attributes(reply), rcode)

    def _finish(self, req: RadiusRequest, attrs: tuple[tuple[str, str], ...], rcode: int) -> None:
        cb, params = req.result_cb, req.cb_params
        req.cancel()
        if cb is not None:
            cb((attrs, rcode), *params)

    def _ignore(self, addr: tuple[str, int], why: str, level: int = SIPLOG_DBUG) -> None:
        self.stats["ignored"] += 1
        self._log(level, "RADIUS: reply from %s:%s ignored: %s", addr[0], addr[1], why)

    def _write(self, level: int, *args: Any) -> None:
        if self.logger is not None and self.logger.isEnabledFor(level):
            self.logger.write(*args, level=level)

    def _log(self, level: int, fmt: str, *args: Any) -> None:
        """Write `fmt % args`, formatted only when the logger will write it at that level."""
        if self.logger is not None and self.logger.isEnabledFor(level):
            self.logger.write(fmt % args, level=level)
