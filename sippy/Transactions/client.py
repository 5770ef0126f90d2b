"""Client transactions (RFC 3261 17.1, RFC 6026): sending a request and retransmitting it over
UDP (timers A, E), its end (B, F: a local 408; D, K, M), the ACKs, the CANCEL, and a request that
cannot be sent (a local 503).
"""

from __future__ import annotations

from functools import partial
from typing import Any, Callable, Optional

from sippy.misc import bare_host, is_ip
from sippy.SipHeader import SipHeader
from sippy.SipLogger import SIPLOG_INFO, SIPLOG_WARN
from sippy.Time.MonoTime import MonoTime
from sippy.Transactions.state import (
    COMPLETED,
    RINGING,
    TERMINATED,
    TRYING,
    UACK,
    SipTransaction,
    cancel_call,
)
from sippy.Transactions.transports import is_reliable


class ClientTransactions:
    """SipTransactionManager's client side; the timers are its methods (called with the
    transaction and rtime through the manager's _timer). It uses the manager's tables (tclient),
    T1/T2, _timer, _call, log_limiter and the transports' _send, _encode, _targetTransport."""

    def newTransaction(
        self,
        msg: Any,
        resp_cb: Optional[Callable[..., Any]] = None,
        laddress: Any = None,
        userv: Any = None,
        cb_ifver: int = 1,
        compact: bool = False,
        t: Optional[SipTransaction] = None,
    ) -> SipTransaction:
        """Send request msg and retransmit it until answered; resp_cb gets every response.

        cb_ifver=1 calls `resp_cb(resp)`, cb_ifver=2 calls `resp_cb(resp, t)` (as in Sippy).
        `laddress` is accepted for Sippy compatibility (the transport follows the destination).
        """
        if t is None:
            t = SipTransaction()
        method = msg.getMethod()
        if len(self.tclient) >= self.max_client_transactions:
            self._refuseClient(t, msg, resp_cb, cb_ifver)
            return t
        via = msg.getHFBody("via")
        if via.getBranch() is None:
            via.genBranch()
        tid = (via.getBranch(), method)
        if tid in self.tclient:
            raise ValueError("BUG: Attempt to initiate transaction with the same TID as existing one!!!")
        t.tid = tid
        t.method = method
        t.call_id = str(msg.getHFBody("call-id"))
        t.rtime = MonoTime()
        t.compact = compact
        t.cb_ifver = cb_ifver
        t.resp_cb = resp_cb
        t.req = msg
        t.address = msg.getTarget()
        if t.address is None:
            t.address = msg.getRURI().getAddr()
        name = "udp" if userv is not None else self._targetTransport(msg, t.address)
        t.state = TRYING
        t.tout = self.T1
        if method == "INVITE":
            t.expires = 300
            if msg.countHFs("expires") > 0:
                t.expires = msg.getHFBody("expires").getNum()
                if t.expires <= 0:
                    t.expires = 300
        t.te_end = self._timer(self.timerB, 64 * self.T1, t)
        self.tclient[tid] = t
        if name != "udp":
            userv = self.listeners.get(name)
            if userv is None:
                self.log_limiter.write(
                    "no_transport", SIPLOG_WARN, method, " to a ", name, " target: no such transport"
                )
                self._sendFailed(t)
                return t
        elif userv is None and self._resolve_names and not is_ip(bare_host(t.address[0])):
            # -l '*': the family of the name's address picks the socket and the Via address. IPv4
            # first; IPv6 when the name has no IPv4 address. Timer B bounds the wait.
            self._resolveTarget(t, tuple(self.transports))
            return t
        self._sendFirst(t, userv)
        return t

    def _resolveTarget(self, t: SipTransaction, families: tuple[int, ...]) -> None:
        transport = self.transports[families[0]]
        transport.lookup(bare_host(t.address[0]), partial(self._targetResolved, t, families[1:]))

    def _targetResolved(self, t: SipTransaction, families: tuple[int, ...], ip: Optional[str]) -> None:
        if self.tclient.get(t.tid) is not t or t.data is not None or t.state is not TRYING:
            return  # ended meanwhile (timer B, shutdown)
        if ip is not None:
            t.address = (ip, t.address[1])
            self._sendFirst(t, None)
        elif families:
            self._resolveTarget(t, families)
        else:
            # No address at all: fail as a transport error does (RFC 3261 8.1.3.1: 503).
            self._sendFailed(t, later=False)

    def _sendFirst(self, t: SipTransaction, userv: Any) -> None:
        """Choose the transport, encode and send the request, start retransmitting."""
        t.userv = userv if userv is not None else self._transportFor(t.address)
        t.reliable = is_reliable(t.userv)
        if t.reliable:
            self._track(t)
        if t.userv.transport != "udp":
            self._markTransport(t.req, t.userv)
        t.data = self._encode(t.req, t.userv, t.address, t.compact)
        if not t.reliable:
            t.te_retr = self._timer(self.timerA if t.method == "INVITE" else self.timerE, t.tout, t)
        if not self._send(t.userv, t.data, t.address):
            self._sendFailed(t)

    def _sendFailed(self, t: SipTransaction, later: bool = True) -> None:
        """The request cannot be sent (no transport or address for its target, its connection is
        gone): the transaction ends and its consumer gets a local 503 (RFC 3261 8.1.3.1); `later`:
        on the next reactor turn (not inside newTransaction)."""
        req = t.req
        self._removeClient(t)
        if t.resp_cb is not None and req is not None:
            resp = req.genResponse(503, "Service Unavailable")
            resp.rtime = MonoTime()
            if later:
                self.reactor.callLater(0, self._respondOnce, t, resp)
            else:
                self._respondOnce(t, resp)

    def _respondOnce(self, t: SipTransaction, resp: Any) -> None:
        self._respond(t, resp)
        t.resp_cb = None

    def _refuseClient(self, t: SipTransaction, msg: Any, resp_cb: Any, cb_ifver: int) -> None:
        """The client table is full: nothing is sent, and the consumer gets a local 503 as from the
        network (on the next reactor turn, not inside newTransaction)."""
        self.refused["client"] += 1
        self.log_limiter.write(
            "client_full",
            SIPLOG_WARN,
            "client transaction table full (",
            self.max_client_transactions,
            "): ",
            msg.getMethod(),
            " not sent",
        )
        t.method = msg.getMethod()
        t.state = TERMINATED
        t.resp_cb = resp_cb
        t.cb_ifver = cb_ifver
        if resp_cb is not None:
            resp = msg.genResponse(503, "Service Unavailable")
            resp.rtime = MonoTime()
            self.reactor.callLater(0, self._respond, t, resp)

    def _respond(self, t: SipTransaction, resp: Any) -> None:
        if t.resp_cb is None:
            return
        if t.cb_ifver == 1:
            self._call("resp_cb", t.resp_cb, resp)
        else:
            self._call("resp_cb", t.resp_cb, resp, t)

    def incomingResponse(self, resp: Any, t: SipTransaction, code: int, rtime: MonoTime) -> None:
        state = t.state
        if state is UACK:
            # 2xx retransmission (or a forked 2xx): the UA re-ACKs.
            if code >= 200 and code < 300:
                self._respond(t, resp)
            return
        if state is COMPLETED:
            if t.ack_data is not None and code >= 300:
                self._send(t.userv, t.ack_data, t.ack_address)
            return
        if state not in (TRYING, RINGING):
            return
        if code < 200:
            if state is TRYING:
                t.state = RINGING
                if t.method == "INVITE":
                    cancel_call(t.te_retr)
                    t.te_retr = None
                else:
                    # Proceeding: timer E keeps going, but at T2 (RFC 3261 17.1.2.2).
                    t.tout = self.T2
                if t.cancelPending:
                    t.cancelPending = False
                    self._sendCancel(t)
            if t.method == "INVITE":
                # Sippy: once the callee is alive, wait up to Expires (default 300 s) for a final.
                cancel_call(t.te_end)
                t.te_end = self._timer(self.timerB, t.expires, t)
            self._respond(t, resp)
            return
        t.stopTimers()
        t.cancelPending = False
        # Final: the request is not retransmitted any more; only an ACK's bytes may be resent.
        t.data = None
        if t.method != "INVITE":
            t.state = COMPLETED
            t.req = None
            if t.reliable:
                self._removeClient(t)
            else:
                t.te_end = self._timer(self.timerK, self.T4, t)
        elif code >= 300:
            # The ACK of a non-2xx belongs to the INVITE transaction (same branch).
            ack = self._autoAck(t)
            tag = resp.getHFBody("to").getTag()
            if tag is not None:
                ack.getHFBody("to").setTag(tag)
            t.ack_address = t.address
            t.ack_data = self._encode(ack, t.userv, t.ack_address, t.compact)
            self._send(t.userv, t.ack_data, t.ack_address)
            t.req = t.ack = t.ack_auto = None
            t.state = COMPLETED
            if t.reliable:
                self._removeClient(t)
            else:
                t.te_end = self._timer(self.timerD, 32.0, t)
        else:
            t.state = UACK
            t.resp2xx = resp
            t.te_end = self._timer(self.timerM, 64 * self.T1, t)
        self._respond(t, resp)

    def sendACK(self, t: SipTransaction, ack: Any = None) -> None:
        """Send (or resend) the ACK of a 2xx; the UA calls it again for each retransmitted 2xx.

        Without an ACK set by the UA (`t.ack` stays None), one is made from the INVITE with the
        dialog's To tag, Request-URI (Contact) and route set (Record-Route) from the 2xx and a new
        branch.
        """
        if ack is None:
            ack = t.ack
        if ack is None:
            # Ours: made once from the INVITE and the 2xx, then its bytes are resent.
            if t.ack_data is not None:
                self._send(t.ack_userv or t.userv, t.ack_data, t.ack_address)
                return
            ack = self._autoAck(t)
            if t.resp2xx is not None:
                self._prepare2xxAck(ack, t.resp2xx)
        t.ack_address = ack.getTarget() or t.address
        # The ACK of a 2xx goes where the dialog says (RFC 3261 13.2.2.4): a Contact or
        # Record-Route that asks for another transport (`transport=tcp`, `sips:`) gets it; else
        # the INVITE's.
        userv = t.userv
        name = self._targetTransport(ack, t.ack_address)
        if name != "udp" and name != userv.transport:
            userv = t.ack_userv = self.listeners.get(name)
            if userv is None:
                self.log_limiter.write(
                    "no_transport", SIPLOG_WARN, "ACK to a ", name, " target: no such transport"
                )
                return
        if userv.transport != "udp":
            self._markTransport(ack, userv)
        t.ack_data = self._encode(ack, userv, t.ack_address, t.compact)
        # Only the bytes are needed to ACK a retransmitted 2xx again (for the rest of timer M).
        t.ack = t.ack_auto = t.req = t.resp2xx = None
        self._send(userv, t.ack_data, t.ack_address)

    def _autoAck(self, t: SipTransaction) -> Any:
        """The ACK made from the INVITE itself (RFC 3261 17.1.1.3), made once, when first needed."""
        if t.ack_auto is None:
            t.ack_auto = t.req.genACK()
        return t.ack_auto

    def _prepare2xxAck(self, ack: Any, resp: Any) -> None:
        tag = resp.getHFBody("to").getTag()
        if tag is not None:
            ack.getHFBody("to").setTag(tag)
        target = None
        if resp.countHFs("contact") > 0:
            curl = resp.getHFBody("contact").getUrl().getCopy()
            ack.setRURI(curl)
            target = curl.getAddr()
        rrs = resp.getHFBodys("record-route")
        if rrs:
            for hf in list(ack.getHFs("route")):
                ack.removeHeader(hf)
            routes = [rr.getCopy() for rr in reversed(rrs)]
            ack.appendHeaders([SipHeader(name="route", body=r) for r in routes])
            target = routes[0].getUrl().getAddr()
        if target is not None:
            ack.setTarget(target)
        ack.getHFBody("via").genBranch()

    def cancelTransaction(self, t: SipTransaction, extra_headers: Any = None) -> None:
        """CANCEL an INVITE: now if a provisional came, else when one comes (RFC 3261 9.1)."""
        t.cancel_extra = extra_headers
        if t.state is RINGING:
            self._sendCancel(t)
        elif t.state is TRYING:
            t.cancelPending = True

    def _sendCancel(self, t: SipTransaction) -> None:
        if t.cancel is not None or t.req is None:
            # Sent already, or the INVITE is over.
            return
        cancel = t.cancel = t.req.genCANCEL()
        if t.cancel_extra:
            cancel.appendHeaders([h.getCopy() for h in t.cancel_extra])
        if cancel.getTarget() is None:
            cancel.setTarget(t.address)
        self.newTransaction(cancel, userv=t.userv, compact=t.compact)

    def timerA(self, t: SipTransaction, rtime: MonoTime) -> None:
        """Retransmit the INVITE, doubling the interval, until a response."""
        t.te_retr = None
        if t.state is not TRYING:
            return
        self._send(t.userv, t.data, t.address)
        t.tout *= 2
        t.te_retr = self._timer(self.timerA, t.tout, t)

    def timerE(self, t: SipTransaction, rtime: MonoTime) -> None:
        """Retransmit a non-INVITE request: T1 doubling to T2, then every T2 once proceeding."""
        t.te_retr = None
        if t.state not in (TRYING, RINGING):
            return
        self._send(t.userv, t.data, t.address)
        t.tout = min(t.tout * 2, self.T2)
        t.te_retr = self._timer(self.timerE, t.tout, t)

    def timerB(self, t: SipTransaction, rtime: MonoTime) -> None:
        """No final response in time (timers B and F): the consumer gets a locally made 408."""
        t.te_end = None
        req = t.req
        self._removeClient(t)
        if t.resp_cb is None:
            return
        r408 = req.genResponse(408, "Request Timeout")
        r408.rtime = rtime
        self._respond(t, r408)
        t.resp_cb = None

    timerF = timerB

    def timerD(self, t: SipTransaction, rtime: MonoTime) -> None:
        """End of absorbing retransmitted non-2xx finals to INVITE (timer D) or non-INVITE (K)."""
        t.te_end = None
        self._removeClient(t)

    timerK = timerD

    def timerM(self, t: SipTransaction, rtime: MonoTime) -> None:
        """64*T1 after a 2xx to INVITE: no more 2xx retransmissions to pass up (RFC 6026)."""
        t.te_end = None
        if t.ack_data is None:
            self._log(SIPLOG_INFO, "INVITE transaction stuck in the UACK state, possible UAC bug")
        self._removeClient(t)

    def _removeClient(self, t: SipTransaction) -> None:
        t.stopTimers()
        if self.tclient.get(t.tid) is t:
            del self.tclient[t.tid]
            if t.reliable:
                self._untrack(t)
        t.state = TERMINATED
        t.req = t.resp2xx = None
