"""RFC 3261 section 17 transaction layer: client and server, INVITE and non-INVITE.

The protocol logic lives in plain methods that take `rtime`; timers are lane timers on
`self.reactor` (sippy.Transactions.timers), so tests drive every timer with
`twisted.internet.task.Clock`. Transports are
`sippy.Network_server` objects: UDP (one per address family with `-l '*'`) and the registered
others (WSS); a request leaves by the one its target asks for, an answer by the one its request
came on (docs/internals.md).

Hot path: each datagram is parsed once (headers lazily), retransmissions are found by a dict lookup
on the transaction key (byte-identical ones on the datagram itself, before any parsing), log lines
are built only when DBUG is enabled, and retransmission timers (A, E, G) are armed only over
unreliable transports.
"""

from __future__ import annotations

import sys
from collections import Counter
from typing import Any, Callable, Iterable, NamedTuple, Optional

from sippy.Exceptions.SipParseError import SdpParseError, SipParseError
from sippy.LogLimiter import CurrentTraceback, LogLimiter
from sippy.misc import sip_hostport
from sippy.Network_server import Remote_address
from sippy.SipLogger import SIPLOG_DBUG, SIPLOG_ERR, SIPLOG_INFO
from sippy.SipRequest import SipRequest
from sippy.SipRequestCheck import Refusal, check_request, check_response
from sippy.SipResponse import SipResponse
from sippy.Time.MonoTime import MonoTime
from sippy.Transactions.client import ClientTransactions
from sippy.Transactions.nat import check1918, contact_by_connection, nat_request, nat_response, stamp_via
from sippy.Transactions.server import ServerTransactions
from sippy.Transactions.state import (
    ACCEPTED,
    COMPLETED,
    CONFIRMED,
    MAGIC,
    RINGING,
    TERMINATED,
    TRYING,
    UACK,
    SipTransaction,
    SipTransactionConsumer,
    SipTransactionState,
)
from sippy.Transactions.stateless import RETRY_AFTER, StatelessAnswers, unavailable
from sippy.Transactions.timers import TimerLanes
from sippy.Transactions.transports import TransportChoice, is_reliable

# Sippy's names, importable from here whichever module is their home.
__all__ = [
    "ACCEPTED",
    "COMPLETED",
    "CONFIRMED",
    "MAX_CLIENT_TRANSACTIONS",
    "MAX_SERVER_TRANSACTIONS",
    "RETRY_AFTER",
    "RINGING",
    "TERMINATED",
    "TRYING",
    "UACK",
    "SipTransaction",
    "SipTransactionConsumer",
    "SipTransactionManager",
    "SipTransactionState",
    "TransactionInfo",
    "check1918",
    "unavailable",
]

MAX_MESSAGE_SIZE = 8192

# Bounds on the transaction tables (README "Security"). A finished transaction stays 32 s (64*T1)
# to absorb retransmissions, so a table holds about 32 s worth of traffic: 65536 leaves room for
# some 500 calls/s. At the bound a new request gets a stateless 503 with Retry-After (an ACK is
# dropped) and a new client transaction fails at once with a local 503 to its consumer; both are
# counted in `SipTransactionManager.refused`.
MAX_SERVER_TRANSACTIONS = 65536
MAX_CLIENT_TRANSACTIONS = 65536


class TransactionInfo(NamedTuple):
    """One transaction as the control socket's `lt` shows it. `peer` is 'transport:host:port'."""

    tid: Any
    call_id: Optional[str]
    method: Optional[str]
    state: str
    age: float
    peer: str


def _peer(t: SipTransaction) -> str:
    """'transport:host:port' of the transaction's peer, as its transport shows it."""
    address = t.address
    if address is None:
        return "N/A"
    userv = t.userv
    if hasattr(userv, "addr2str"):
        return userv.addr2str(address)
    # A Sippy 2.x transport, or none yet: a client transaction resolving its target's name (UDP).
    if address.__class__ is Remote_address:
        address = address.address
    return f"{getattr(userv, 'transport', 'udp')}:{sip_hostport(*address)}"


class SipTransactionManager(ServerTransactions, ClientTransactions, TransportChoice, StatelessAnswers):
    """Matches messages to transactions, retransmits over UDP, and hands requests to consumers."""

    # Sippy's knobs for tests and demos, read when the manager opens its own UDP server: drop
    # this share of the datagrams it sends, delay the others by up to this many seconds
    # (Udp_server_opts; impair_seed: repeatable runs). Set them on the class before the manager
    # is made.
    ploss_out_rate = 0.0
    pdelay_out_max = 0.0
    impair_seed: Optional[int] = None

    def __init__(
        self,
        global_config: dict[str, Any],
        req_cb: Optional[Callable[..., Any]] = None,
        *,
        transport: Any = None,
        reactor: Any = None,
        servers: Iterable[Any] = (),
    ) -> None:
        if reactor is None:
            from twisted.internet import reactor as _reactor

            reactor = _reactor
        self.global_config = global_config
        self.req_cb = req_cb
        self.reactor = reactor
        self.T1 = 0.5
        self.T2 = 4.0
        self.T4 = 5.0
        self.max_server_transactions = MAX_SERVER_TRANSACTIONS
        self.max_client_transactions = MAX_CLIENT_TRANSACTIONS
        # Requests refused because a table was full: "server" (503 sent or ACK dropped), "client".
        self.refused: Counter[str] = Counter()
        self.tclient: dict[Any, SipTransaction] = {}
        self.tserver: dict[Any, SipTransaction] = {}
        # Server INVITEs that sent a 2xx, by dialog (Call-ID, From tag, To tag, CSeq): the ACK of a
        # 2xx is a new transaction with its own branch (RFC 3261 17.1.1.3).
        self.tserver_ack: dict[Any, SipTransaction] = {}
        self.req_consumers: dict[str, list[SipTransactionConsumer]] = {}
        # Server transactions by the exact datagram and source address that opened them. UAs
        # retransmit byte for byte, and the same bytes from the same address always give the same
        # transaction key, so such a retransmission is recognised without parsing it again.
        self._retrans: dict[tuple[bytes, tuple[str, int]], SipTransaction] = {}
        # Sippy's -t flag: fix up Contacts and answer at the source for UAs behind NAT.
        self.nat_traversal = False
        # Bad messages seen, by kind ("unparsable", "no_via", "bad_request"...): see badInput.
        self.bad_counts: Counter[str] = Counter()
        # Option tags of the extensions the consumers support (Require of anything else: 420).
        self.supported: frozenset[str] = frozenset()
        # Larger requests over UDP are refused with 413 (Sippy read at most this much of a datagram).
        self.max_message_size = MAX_MESSAGE_SIZE
        self.logger = global_config.get("_sip_logger")
        # Lines a peer can provoke (bad requests, full tables) go through it: a flood writes a
        # few lines and a summary per minute, not a line per datagram.
        self.log_limiter = LogLimiter(self._log, reactor)
        self._timers = TimerLanes(reactor, self._fire)
        self._initTransports(global_config, reactor, transport, servers)

    # -- logging --------------------------------------------------------------------------------

    def _dbug(self) -> bool:
        lg = self.logger
        return lg is not None and lg.isEnabledFor(SIPLOG_DBUG)

    def _log(self, level: int, *args: Any, ltime: Any = None) -> None:
        lg = self.logger
        if lg is not None:
            if lg.isEnabledFor(level):
                lg.write(*args, ltime=ltime, level=level)
        elif level >= SIPLOG_ERR:
            sys.stderr.write("".join(str(x) for x in args) + "\n")

    def badInput(self, kind: str, address: tuple[str, int], detail: str, rtime: Any = None) -> None:
        """Count a bad message by kind and log one short line: every bad-input report goes here."""
        self.bad_counts[kind] += 1
        lg = self.logger
        if lg is not None and lg.isEnabledFor(SIPLOG_INFO):
            # Rate limited per kind: a flood writes a few lines and a summary a minute. The
            # detail may quote the request: cut short, one line whatever it holds.
            detail = detail[:200].replace("\r", " ").replace("\n", " ")
            self.log_limiter.write(kind, SIPLOG_INFO, kind, " from ", sip_hostport(*address), ": ", detail)

    def _log_exc(self, what: str) -> None:
        """A bug's traceback; rate limited too, since a peer may hit the same bug on every datagram."""
        self.log_limiter.write("exception", SIPLOG_ERR, what, ":\n", CurrentTraceback())

    # -- timers and callbacks ---------------------------------------------------------------------

    def _timer(self, fn: Callable[..., None], ival: float, t: SipTransaction) -> Any:
        """Call fn(t, rtime) in ival seconds. Every transaction arms two to four timers and most
        are cancelled: a lane timer each (sippy.Transactions.timers), not a reactor call; `_fire`
        does what Timeout would (rtime, exceptions)."""
        return self._timers.callLater(ival, fn, t)

    def _fire(self, fn: Callable[..., None], t: SipTransaction) -> None:
        """Timer trampoline: supplies rtime and keeps exceptions away from the reactor."""
        try:
            fn(t, MonoTime())
        except Exception:
            self._log_exc(f"SipTransactionManager: unhandled exception in {fn.__name__}")

    def _call(self, what: str, cb: Callable[..., Any], *args: Any) -> Any:
        """Run a consumer callback; its bugs are logged, not propagated into the transaction layer."""
        try:
            return cb(*args)
        except Exception:
            self._log_exc(f"SipTransactionManager: unhandled exception in {what}")
            return None

    # -- incoming -------------------------------------------------------------------------------

    def handleIncoming(self, data: bytes, ra: Any, server: Any, rtime: MonoTime) -> None:
        """The transports' data_callback: ra is the Remote_address the message came from (a bare
        (host, port) pair is taken too, as before Network_server). Never raises."""
        address = ra if ra.__class__ is tuple else ra.address
        try:
            if len(data) < 32:
                # Keep-alives (CRLF) and runts: nothing to answer.
                return
            if self._dbug():
                self._log(
                    SIPLOG_DBUG,
                    f"RECEIVED message from {sip_hostport(*address)}:\n",
                    data.decode(errors="backslashreplace"),
                    ltime=rtime,
                )
            if data.startswith(b"SIP/2.0 "):
                self._incomingResponse(data, address, ra, server, rtime)
            else:
                self._incomingRequest(data, address, ra, server, rtime)
        except Exception:
            self._log_exc(
                f"SipTransactionManager: unhandled exception on message from {sip_hostport(*address)}"
            )

    def _incomingResponse(
        self, data: bytes, address: tuple[str, int], ra: Any, server: Any, rtime: MonoTime
    ) -> None:
        try:
            resp = SipResponse(buf=data)
            code = resp.getSCodeNum()
            key = (resp.getHFBody("via").getBranch(), resp.getHFBody("cseq").getCSeqMethod())
        except SipParseError as ex:
            self.badInput("bad_response", address, ex.reason, rtime)
            return
        t = self.tclient.get(key)
        if t is None:
            if self._dbug():
                self._log(SIPLOG_DBUG, f"no client transaction for response from {sip_hostport(*address)}")
            return
        if code < 100 or code > 699:
            self.badInput("bad_response", address, f"invalid status code {code}", rtime)
            return
        # What the UA reads of it must parse, or it would fail there, after the transaction moved.
        bad = check_response(resp, code)
        if bad is not None:
            self.badInput("bad_response", address, bad, rtime)
            return
        resp.rtime = rtime
        resp.setSource(address)
        if self.nat_traversal:
            nat_response(resp, t.address, address)
        if getattr(server, "names_connections", False):
            contact_by_connection(resp, ra)
        self.incomingResponse(resp, t, code, rtime)

    def _incomingRequest(
        self, data: bytes, address: tuple[str, int], ra: Any, transport: Any, rtime: MonoTime
    ) -> None:
        if isinstance(data, bytes):
            t = self._retrans.get((data, address))
            if t is not None and self.tserver.get(t.tid) is t and not self._loopsBack(t):
                # Same answer as the full path below gives a retransmission, without the parse.
                self._resend(t)
                return
        reliable = is_reliable(transport)
        # Where answers go: the connection itself over a reliable transport.
        source = ra if reliable and ra.__class__ is not tuple else address
        received = source.received if source is not address else address[0]
        try:
            req = SipRequest(buf=data)
        except SipParseError as ex:
            resp = ex.sip_response
            if resp is None:
                self.badInput("unparsable", address, ex.reason, rtime)
                return
            via = resp.getHFBody("via")
            stamp_via(via, address, False, received)
            self._reply_stateless(transport, resp, self._respAddress(via, source, reliable))
            self.badInput("bad_version" if resp.scode == 505 else "bad_request", address, ex.reason, rtime)
            return
        # One pass over the headers answers every "is there a ..." question below.
        names = [h.name for h in req.headers]
        present = set(names)
        if "via" not in present:
            self.badInput("no_via", address, "request without Via dropped", rtime)
            return
        try:
            via = req.getHFBody("via")
            host, port = via.getAddr()
        except SipParseError as ex:
            self._refuseBadVia(req, ex.reason, address, source, transport, rtime)
            return
        branch = via.getBranch()
        method = req.getMethod()
        magic = branch is not None and branch.startswith(MAGIC)
        if magic and method != "ACK":
            t = self.tserver.get((branch, host, port, method))
            if t is not None and not self._loopsBack(t):
                # A retransmission with other bytes (the branch says so): the last answer again,
                # nothing more read of it (it was inspected when it opened the transaction).
                self._resend(t)
                return
        bad = None
        if self.nat_traversal:
            try:
                nat_request(req, host, port, address)
            except SipParseError as ex:
                bad = Refusal(400, "Bad Contact Header", "bad_header", ex.reason)
        stamp_via(via, address, req.nated, received)
        if bad is None:
            bad = check_request(req, names, self.supported)
        # A datagram's bound; a stream or WebSocket transport bounds its messages itself (its
        # max_message_size), since large messages are what one uses TCP for.
        if bad is None and not reliable and len(data) > self.max_message_size:
            bad = Refusal(413, "Request Entity Too Large", "too_large", f"{len(data)} bytes")
        if bad is not None:
            self._refuse(req, bad, address, source, transport, reliable, rtime)
            return
        if (
            reliable
            and "contact" in present
            and getattr(transport, "names_connections", False)
            and req.countHFs("via") == 1
        ):
            contact_by_connection(req, source)
        rhost, rport = address
        cseq_num = req.getHFBody("cseq").getCSeqNum()
        call_id = str(req.getHFBody("call-id"))
        # (Inspected above: these parse.) The From tag matches RFC 2543 peers and 2xx ACKs.
        ftag = req.getHFBody("from").getTag()
        req.rtime = rtime
        req.setSource(address)
        raddress = source if reliable else (rhost, rport if "rport" in via.params else port)

        if magic:
            base: tuple[Any, ...] = (branch, host, port)
            if (branch, method) in self.tclient:
                # Our own request came back to us.
                self._reply_stateless(transport, req.genResponse(482, "Loop Detected"), raddress)
                return
        else:
            # RFC 2543 peers: no usable branch, match on the dialog fields and the top Via.
            base = (call_id, ftag, cseq_num, host, port, branch)
        t = self.tserver.get(base + ("INVITE" if method == "ACK" else method,))
        if method == "ACK":
            if t is None:
                t = self.tserver_ack.get((call_id, ftag, req.getHFBody("to").getTag(), cseq_num))
            if t is None:
                if self._dbug():
                    self._log(SIPLOG_DBUG, "unmatched ACK ignored")
                return
            self.incomingACK(t, req, rtime)
            return
        if t is not None:
            # A retransmission: answer with the last response, never bother the consumer again.
            self._resend(t)
            return
        if len(self.tserver) >= self.max_server_transactions:
            self._refuseFull(req, address, transport, raddress)
            return
        if method == "CANCEL":
            it = self.tserver.get(base + ("INVITE",))
            t = self._newServer(req, base + ("CANCEL",), transport, raddress, rtime, reliable, call_id)
            self._rememberRaw(t, data, address)
            if it is None:
                self.sendResponse(req.genResponse(481, "Call Leg/Transaction Does Not Exist"), t)
                return
            self.sendResponse(req.genResponse(200, "OK"), t)
            if it.state in (TRYING, RINGING):
                self.doCancel(it, rtime, req)
            return
        t = self._newServer(req, base + (method,), transport, raddress, rtime, reliable, call_id)
        self._rememberRaw(t, data, address)
        try:
            if method == "INVITE":
                t.dlg_key = (call_id, ftag, cseq_num)
                if "expires" in present:
                    # RFC 3261 13.3.1: an invitation that expires unanswered is terminated (487).
                    expires = req.getHFBody("expires").getNum()
                    if expires > 0:
                        t.te_end = self._timer(self.timerExpires, expires, t)
            self._deliver(req, t, call_id)
        finally:
            if t.state in (TRYING, RINGING) and method != "INVITE":
                # Not answered (yet, or ever if its answer failed): the consumer gets until the
                # client's timer F (64*T1), then the transaction ends.
                t.te_end = self._timer(self.timerUnanswered, 64 * self.T1, t)

    def _deliver(self, req: Any, t: SipTransaction, call_id: str) -> None:
        """Hand a new request to its consumer; the consumer's errors become 4xx/5xx, not tracebacks."""
        try:
            consumer, t.compact = self._consumerFor(req, call_id)
            if consumer is None:
                if t.state is TRYING:
                    self.sendResponse(req.genResponse(500, "No Request Consumer"), t)
                return
            rval = consumer(req, t)
        except SdpParseError as ex:
            self.badInput("bad_sdp", t.address, ex.reason, req.rtime)
            self._fail(t, ex.sip_response, 488, "Not Acceptable Here")
            return
        except SipParseError as ex:
            self.badInput("bad_request", t.address, ex.reason, req.rtime)
            self._fail(t, ex.sip_response, 400, ex.reason)
            return
        except Exception:
            self._log_exc("SipTransactionManager: unhandled exception in request consumer")
            self._fail(t, None, 500, "Server Internal Error")
            return
        if rval is not None:
            resp, t.cancel_cb, t.noack_cb = rval
            if resp is not None:
                self.sendResponse(resp, t)
        if t.state is TRYING and t.method == "INVITE":
            self.sendResponse(req.genTrying(), t)

    def _consumerFor(self, req: Any, call_id: str) -> tuple[Optional[Callable[..., Any]], bool]:
        """Who takes a request (a new one, or the ACK of a 2xx): the recvRequest of the in-dialog
        consumer of its Call-ID that says it is its own (isYours), else req_cb (None: nobody); and
        whether that consumer wants compact headers."""
        for consumer in self.req_consumers.get(call_id, ()):
            cobj = consumer.cobj.isYours(req)
            if cobj is not None:
                return cobj.recvRequest, consumer.compact
        return self.req_cb, False

    def regConsumer(self, consumer: Any, call_id: str, compact: bool = False) -> None:
        """Route new requests of call_id to consumer.isYours(req).recvRequest(req, t) (Sippy's UA)."""
        self.req_consumers.setdefault(call_id, []).append(SipTransactionConsumer(consumer, compact))

    def unregConsumer(self, consumer: Any, call_id: str) -> None:
        consumers = self.req_consumers.get(call_id, [])
        for cons in consumers:
            if cons.cobj is consumer:
                consumers.remove(cons)
                break
        else:
            raise IndexError(f"unregConsumer: consumer {consumer} for call-id {call_id} is not registered")
        if not consumers:
            del self.req_consumers[call_id]

    def releaseEmptyTables(self) -> None:
        """Free the hash table of every transaction table that is empty. A dict keeps the table it
        grew to when its entries go: after a burst of 2,000 calls the tables held some 500 KB with
        no transaction left. The call map calls this once it is idle (sippy.CallMap)."""
        for table in (
            self.tclient,
            self.tserver,
            self.tserver_ack,
            self.req_consumers,
            self._retrans,
            self._by_connection,
        ):
            if not table:
                table.clear()

    # -- for the control socket ---------------------------------------------------------------------

    def listTransactions(self, side: str, min_age: float = 0.0) -> list[TransactionInfo]:
        """The live "server" or "client" transactions at least min_age seconds old, each with
        its Call-ID and peer, so that an operator can tell which call a stuck one belongs to."""
        now = MonoTime()
        out = []
        for tid, t in tuple((self.tserver if side == "server" else self.tclient).items()):
            age = now - t.rtime if t.rtime is not None else 0.0
            if age < min_age:
                continue
            out.append(TransactionInfo(tid, t.call_id, t.method, t.state.__name__, age, _peer(t)))
        return out

    def shutdown(self) -> None:
        """Stop every timer and forget every transaction; close the transport if we opened it."""
        self.log_limiter.flush()
        for t in list(self.tclient.values()) + list(self.tserver.values()):
            t.stopTimers()
        self.tclient.clear()
        self.tserver.clear()
        self.tserver_ack.clear()
        self._retrans.clear()
        self._by_connection.clear()
        self.req_consumers.clear()
        if self.own_transport:
            for transport in self.transports.values():
                transport.shutdown()
        self.transports = {}
        self.transport = None
