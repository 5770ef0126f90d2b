"""Server transactions (RFC 3261 17.2, RFC 6026): answering a request (the To tag, retransmitting a
final response to INVITE over UDP until the ACK: timers G, H), absorbing retransmissions and ACKs
(I, J), CANCEL and Expires, and the answer when the consumer fails.
"""

from __future__ import annotations

from typing import Any, Optional

from sippy.Exceptions.SipParseError import SipParseError
from sippy.SipLogger import SIPLOG_ERR, SIPLOG_INFO
from sippy.Time.MonoTime import MonoTime
from sippy.Transactions.state import (
    ACCEPTED,
    COMPLETED,
    CONFIRMED,
    MAGIC,
    RINGING,
    TERMINATED,
    TRYING,
    SipTransaction,
    cancel_call,
)


class ServerTransactions:
    """SipTransactionManager's server side; the timers are its methods (called with the
    transaction and rtime through the manager's _timer). It uses the manager's tables (tserver,
    tserver_ack, _retrans, tclient), T1/T2/T4, _timer, _call, consumers and the transports' _send,
    _encode, _markContact."""

    def sendResponse(
        self, resp: Any, t: Optional[SipTransaction] = None, retrans: bool = False, ack_cb: Any = None
    ) -> None:
        """Send resp on server transaction t (found from resp's Via and CSeq when not given)."""
        if t is None:
            t = self._findServer(resp)
            if t is None:
                self._log(SIPLOG_ERR, "sendResponse: no server transaction for the response")
                return
        if t.state is TERMINATED:
            # Ended by timerUnanswered (or shut down) before the consumer answered.
            self._log(SIPLOG_INFO, f"response on ended {t.method} transaction dropped")
            return
        if t.state not in (TRYING, RINGING) and not retrans:
            self._log(SIPLOG_ERR, f"BUG: response on finished {t.method} transaction dropped")
            return
        scode = resp.getSCodeNum()
        if scode > 100:
            to = resp.getHFBody("to")
            tag = to.getTag()
            if tag is None:
                if t.to_tag is None:
                    to.genTag()
                    t.to_tag = to.getTag()
                else:
                    to.setTag(t.to_tag)
            elif t.to_tag is None:
                t.to_tag = tag
        if t.userv.transport != "udp":
            self._markContact(resp, t.userv)
        t.data = self._encode(resp, t.userv, t.address, t.compact)
        self._send(t.userv, t.data, t.address)
        if t.state not in (TRYING, RINGING):
            return
        if scode < 200:
            t.state = RINGING
            return
        t.stopTimers()
        # Final: from now on only t.data is resent; the request and the CANCEL hook are not needed
        # for the 32 s the transaction still absorbs retransmissions.
        t.req = t.cancel_cb = None
        if t.method != "INVITE":
            # Its client retransmits only if this answer is lost: such a copy takes the parsing
            # path (found all the same by its branch), and the request's bytes can go.
            self._forgetRaw(t)
            t.state = COMPLETED
            if t.reliable:
                self._removeServer(t)
            else:
                t.te_end = self._timer(self.timerJ, 64 * self.T1, t)
            return
        t.tout = self.T1
        if scode < 300:
            t.state = ACCEPTED
            t.ack_cb = ack_cb
            if t.dlg_key is not None:
                call_id, ftag, cseq_num = t.dlg_key
                t.ack_key = (call_id, ftag, t.to_tag, cseq_num)
                self.tserver_ack[t.ack_key] = t
        else:
            t.state = COMPLETED
        if not t.reliable:
            t.te_retr = self._timer(self.timerG, t.tout, t)
        t.te_end = self._timer(self.timerH, 64 * self.T1, t)

    def _findServer(self, resp: Any) -> Optional[SipTransaction]:
        via = resp.getHFBody("via")
        host, port = via.getAddr()
        branch = via.getBranch()
        cseq_num, method = resp.getHFBody("cseq").getCSeq()
        if branch is not None and branch.startswith(MAGIC):
            return self.tserver.get((branch, host, port, method))
        call_id = str(resp.getHFBody("call-id"))
        ftag = resp.getHFBody("from").getTag()
        return self.tserver.get((call_id, ftag, cseq_num, host, port, branch, method))

    def doCancel(
        self,
        t: SipTransaction,
        rtime: Optional[MonoTime] = None,
        req: Any = None,
        reason: str = "Request Terminated",
    ) -> None:
        """CANCEL of a pending INVITE: tell the consumer, then 487 unless it answered finally."""
        if rtime is None:
            rtime = MonoTime()
        if t.cancel_cb is not None:
            self._call("cancel_cb", t.cancel_cb, rtime, req)
        if t.state in (TRYING, RINGING):
            self.sendResponse(t.req.genResponse(487, reason), t)

    def timerExpires(self, t: SipTransaction, rtime: MonoTime) -> None:
        """The INVITE's Expires passed with no final response: cancel it as Sippy does."""
        t.te_end = None
        if t.state in (TRYING, RINGING):
            self.doCancel(t, rtime, None, "Request Expired")

    def incomingACK(self, t: SipTransaction, ack: Any, rtime: MonoTime) -> None:
        # Acknowledged: the INVITE is not retransmitted any more (a late copy takes the parsing
        # path), so its bytes need not wait for the transaction's end.
        self._forgetRaw(t)
        if t.state is COMPLETED:
            # ACK of our non-2xx: absorbed here (RFC 3261 17.2.1), timer G stops.
            t.state = CONFIRMED
            t.stopTimers()
            if t.reliable:
                self._removeServer(t)
            else:
                t.te_end = self._timer(self.timerI, self.T4, t)
        elif t.state is ACCEPTED:
            # ACK of our 2xx: stop retransmitting and pass it up, once.
            t.state = CONFIRMED
            cancel_call(t.te_retr)
            t.te_retr = None
            t.noack_cb = None
            ack_cb, t.ack_cb = t.ack_cb, None
            if ack_cb is not None:
                self._call("ack_cb", ack_cb, ack)
            else:
                consumer, _ = self._consumerFor(ack, str(ack.getHFBody("call-id")))
                if consumer is not None:
                    self._call("the ACK's consumer", consumer, ack, None)

    def _resend(self, t: SipTransaction) -> None:
        """A retransmitted request gets the transaction's last response again (none yet: nothing)."""
        if t.data is not None:
            self._send(t.userv, t.data, t.address)

    def timerG(self, t: SipTransaction, rtime: MonoTime) -> None:
        """Retransmit the final response to INVITE (T1 doubling, capped at T2) until the ACK."""
        t.te_retr = None
        if t.state not in (COMPLETED, ACCEPTED):
            return
        self._send(t.userv, t.data, t.address)
        t.tout = min(t.tout * 2, self.T2)
        t.te_retr = self._timer(self.timerG, t.tout, t)

    def timerH(self, t: SipTransaction, rtime: MonoTime) -> None:
        """64*T1 after the final response: give up on the ACK (noack_cb for a 2xx) or end the wait."""
        t.te_end = None
        noack_cb = t.noack_cb if t.state is ACCEPTED else None
        self._removeServer(t)
        if noack_cb is not None:
            self._call("noack_cb", noack_cb, rtime)

    def timerUnanswered(self, t: SipTransaction, rtime: MonoTime) -> None:
        """64*T1 after a non-INVITE request that got no final response: its client gave up (timer F),
        so the transaction ends and nothing is sent. A late answer from the consumer is dropped."""
        t.te_end = None
        if t.state in (TRYING, RINGING):
            self.log_limiter.write(
                "unanswered", SIPLOG_INFO, t.method, " not answered in 64*T1, transaction ended"
            )
            self._removeServer(t)

    def timerI(self, t: SipTransaction, rtime: MonoTime) -> None:
        """T4 after the ACK of a non-2xx: stop absorbing ACK retransmissions."""
        t.te_end = None
        self._removeServer(t)

    def timerJ(self, t: SipTransaction, rtime: MonoTime) -> None:
        """64*T1 after a non-INVITE final response: stop absorbing request retransmissions."""
        t.te_end = None
        self._removeServer(t)

    def _removeServer(self, t: SipTransaction) -> None:
        t.stopTimers()
        if self.tserver.get(t.tid) is t:
            del self.tserver[t.tid]
            if t.reliable:
                self._untrack(t)
        if t.ack_key is not None and self.tserver_ack.get(t.ack_key) is t:
            del self.tserver_ack[t.ack_key]
        self._forgetRaw(t)
        t.state = TERMINATED
        t.cancel_cb = t.noack_cb = t.ack_cb = None
        t.req = None

    def _newServer(
        self,
        req: Any,
        key: Any,
        userv: Any,
        address: tuple[str, int],
        rtime: MonoTime,
        reliable: bool,
        call_id: str,
    ) -> SipTransaction:
        t = SipTransaction()
        t.tid = key
        t.method = req.getMethod()
        t.call_id = call_id
        t.rtime = rtime
        t.userv = userv
        t.address = address
        t.reliable = reliable
        t.req = req
        self.tserver[key] = t
        if reliable:
            self._track(t)
        return t

    def _rememberRaw(self, t: SipTransaction, data: bytes, address: tuple[str, int]) -> None:
        if isinstance(data, bytes):
            t.raw_key = (data, address)
            self._retrans[t.raw_key] = t

    def _forgetRaw(self, t: SipTransaction) -> None:
        """Stop matching t by the bytes of its request (see _rememberRaw)."""
        key = t.raw_key
        if key is not None:
            if self._retrans.get(key) is t:
                del self._retrans[key]
            t.raw_key = None

    def _loopsBack(self, t: SipTransaction) -> bool:
        """True when the full path would take a request of t for our own one come back (482)."""
        tid = t.tid
        return len(tid) == 4 and (tid[0], tid[3]) in self.tclient

    def _fail(self, t: SipTransaction, resp: Any, scode: int, reason: str) -> None:
        """Final answer of a request its consumer could not process (unless it answered already);
        should even that fail, the transaction goes, so that nothing is left behind."""
        if t.state not in (TRYING, RINGING):
            return
        req = t.req
        try:
            if resp is None:
                resp = req.genErrorResponse(scode, reason)
            self.sendResponse(resp, t)
        except SipParseError as ex:
            self.badInput("unanswerable", t.address, ex.reason, req.rtime)
            self._removeServer(t)
