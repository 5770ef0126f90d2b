"""One SIP dialog (one leg of a call) as a state machine between SIP messages and call-control events.

The transaction layer hands the UA requests (`recvRequest`) and responses (`recvResponse`); call
control hands it events (`recvEvent`). The current state object decides what each of those means and
returns the next state; the UA keeps the dialog data (tags, CSeqs, route set, remote target, SDP) and
the timers, and reports what happened through `event_cb(event, ua)` and the callback lists.
"""

from __future__ import annotations

import random
from functools import partial
from hashlib import md5
from typing import Any, Callable, NamedTuple, Optional, Sequence

from sippy.CCEvents import (
    CCEventConnect,
    CCEventDisconnect,
    CCEventFail,
    CCEventGeneric,
    CCEventPreConnect,
    CCEventRing,
    CCEventTry,
    CCEventUpdate,
)
from sippy.LazySlot import lazy_slot
from sippy.SipAddress import SipAddress
from sippy.SipContact import SipContact
from sippy.SipFrom import SipFrom
from sippy.SipHeader import SipHeader
from sippy.SipLogger import SIPLOG_DBUG, SIPLOG_WARN
from sippy.SipMaxForwards import SipMaxForwards
from sippy.SipRequest import SipRequest
from sippy.SipRoute import SipRoute
from sippy.SipURL import SipURL, plain_url, url_text
from sippy.Time.MonoTime import MonoTime
from sippy.Time.Timeout import TimeoutAbsMono
from sippy.UacStateIdle import UacStateIdle
from sippy.UasStateIdle import UasStateIdle


def _new_from(cli: Optional[str], caller_name: Optional[str], tag: str) -> SipFrom:
    """The UAC's From header: the caller's number at this box (host filled in when sent)."""
    hf = SipFrom(address=SipAddress(url=SipURL(username=cli), hadbrace=True, name=caller_name))
    hf.setTag(tag)
    return hf


# What UA._contact_user holds before the dialog has a default Contact.
_NO_CONTACT = object()

# Events whose body is the SDP we are about to send: on_local_sdp_change sees it first.
_LOCAL_SDP_EVENTS = (CCEventTry, CCEventRing, CCEventPreConnect, CCEventConnect, CCEventUpdate)

# Callback signature of the SDP hooks: hook(body, done_cb) and later done_cb(new_body).
SdpHook = Callable[[Any, Callable[[Any], None]], None]


class DialogConnection(NamedTuple):
    """The connection a dialog's peer reaches us by: the listener that has it (a Tcp_server) and
    the Remote_address its requests came from."""

    server: Any
    address: Any


class UA:
    """A user agent for one dialog; `state` is None until the first INVITE or CCEventTry."""

    # Two per call, held for the whole call and its lingering: the fields in slots (a dict of this
    # many keys is three times the size). `__dict__` stays for what Sippy programs and subclasses
    # set of their own (the class defaults below, overridden per instance); `__weakref__` for tests.
    __slots__ = (
        "_sdp_ready",
        "branch",
        "cId",
        "conn_cbs",
        "connect_ts",
        "credit_time",
        "credit_timer",
        "_credit_times",
        "dead_cbs",
        "disc_cbs",
        "disconnect_ts",
        "equeue",
        "event_cb",
        "expire_time",
        "expire_timer",
        "extra_headers",
        "fail_cbs",
        "global_config",
        "invite_extra_headers",
        "lCSeq",
        "_lContact",
        "_contact_user",
        "lSDP",
        "lTag",
        "_lUri",
        "last_ack",
        "last_scode",
        "late_media",
        "no_progress_time",
        "no_progress_timer",
        "on_local_sdp_change",
        "on_remote_sdp_change",
        "origin",
        "outbound_proxy",
        "p100_ts",
        "p1xx_ts",
        "password",
        "pending_tr",
        "rAddr",
        "rAddr0",
        "rCSeq",
        "rConnection",
        "rSDP",
        "_rTarget",
        "rUri",
        "reactor",
        "remote_ua",
        "reqs",
        "ring_cbs",
        "routes",
        "ruri_transport",
        "setup_ts",
        "source_address",
        "state",
        "tr",
        "uasReq",
        "uas_ack_wait",
        "uas_t",
        "username",
        "__dict__",
        "__weakref__",
    )

    # Immutable defaults that Sippy programs override per instance after construction.
    kaInterval: float = 0
    godead_timeout: float = 32.0
    # Seconds a CANCELled INVITE may still take to get its final response.
    cancel_timeout: float = 300.0
    compact_sip: bool = False
    pass_auth: bool = False
    uas_lossemul: int = 0
    local_ua: Optional[str] = None

    def __init__(
        self,
        global_config: dict,
        event_cb: Optional[Callable[[CCEventGeneric, UA], None]] = None,
        username: Optional[str] = None,
        password: Optional[str] = None,
        nh_address: Optional[tuple[str, int]] = None,
        credit_time: Optional[float] = None,
        conn_cbs: Optional[Sequence[Callable]] = None,
        disc_cbs: Optional[Sequence[Callable]] = None,
        fail_cbs: Optional[Sequence[Callable]] = None,
        ring_cbs: Optional[Sequence[Callable]] = None,
        dead_cbs: Optional[Sequence[Callable]] = None,
        ltag: Optional[str] = None,
        extra_headers: Optional[Sequence[SipHeader]] = None,
        expire_time: Optional[float] = None,
        no_progress_time: Optional[float] = None,
        *,
        reactor: Any = None,
    ) -> None:
        self.global_config = global_config
        self.reactor = reactor
        self.event_cb = event_cb
        self.username = username
        self.password = password
        self.rAddr: Optional[tuple[str, int]] = nh_address
        self.rAddr0 = nh_address
        self.credit_time = credit_time
        # Credit limits by key (see resetCreditTime), None until there is one.
        self._credit_times: Optional[dict[Any, MonoTime]] = None
        self.credit_timer: Optional[TimeoutAbsMono] = None
        self.conn_cbs = tuple(conn_cbs) if conn_cbs is not None else ()
        self.disc_cbs = tuple(disc_cbs) if disc_cbs is not None else ()
        self.fail_cbs = tuple(fail_cbs) if fail_cbs is not None else ()
        self.ring_cbs = tuple(ring_cbs) if ring_cbs is not None else ()
        self.dead_cbs = tuple(dead_cbs) if dead_cbs is not None else ()
        self.lTag = ltag if ltag is not None else md5(str(random.random()).encode()).hexdigest()
        self.extra_headers = tuple(extra_headers) if extra_headers is not None else None
        self.expire_time = expire_time
        self.no_progress_time = no_progress_time
        self.expire_timer: Optional[TimeoutAbsMono] = None
        self.no_progress_timer: Optional[TimeoutAbsMono] = None
        self.state: Any = None
        self.equeue: list[CCEventGeneric] = []
        # Dialog data (RFC 3261 12): local/remote URI with tags, CSeqs, route set, remote target.
        self.cId: Any = None
        # Our From: a header, or (number, name, tag) for the UAC's own (see lUri).
        self._lUri: Any = None
        self.rUri: Any = None
        self.lCSeq: Optional[int] = None
        self.rCSeq: Optional[int] = None
        self._lContact: Any = None
        # The username of the default Contact once the dialog has one (see lContact).
        self._contact_user: Any = _NO_CONTACT
        self.routes: list[Any] = []
        # The remote target: a SipURL, or a plain one's text (see rTarget).
        self._rTarget: Any = None
        self.branch: Optional[str] = None
        self.outbound_proxy: Optional[tuple[str, int]] = None
        # The `transport=` of the first request's Request-URI (a route's transport=tcp): the
        # transaction manager sends it, and the dialog's requests until a Contact says otherwise,
        # by that transport.
        self.ruri_transport: Optional[str] = None
        self.source_address: Optional[tuple[str, int]] = None
        # The TCP/TLS connection the peer reaches us by (see noteConnection), or None.
        self.rConnection: Optional[DialogConnection] = None
        # SDP last sent (local) and last received (remote).
        self.lSDP: Any = None
        self.rSDP: Any = None
        self.late_media = False
        self.on_local_sdp_change: Optional[SdpHook] = None
        self.on_remote_sdp_change: Optional[SdpHook] = None
        # UAS side: the INVITE being answered and its server transaction.
        self.uasReq: Any = None
        self.uas_t: Any = None
        self.uas_ack_wait = False
        # UAC side: the current INVITE client transaction, requests sent by CSeq (for digest
        # retries; None while there is none), the 2xx transaction whose ACK waits for our SDP
        # (late media), the last ACK.
        self.tr: Any = None
        self.reqs: Optional[dict[int, Any]] = None
        self.pending_tr: Any = None
        # The CSeq of the INVITE whose 2xx was ACKed last.
        self.last_ack: Optional[int] = None
        self.invite_extra_headers: Any = None
        self.origin: Optional[str] = None
        self.remote_ua: Optional[str] = None
        self.last_scode = 100
        self.setup_ts: Optional[MonoTime] = None
        self.p100_ts: Optional[MonoTime] = None
        self.p1xx_ts: Optional[MonoTime] = None
        self.connect_ts: Optional[MonoTime] = None
        self.disconnect_ts: Optional[MonoTime] = None
        self._sdp_ready: Optional[CCEventGeneric] = None

    @property
    def lContact(self) -> Any:
        """Our Contact: one a program set, else the default one the dialog takes when it starts
        (an anonymous placeholder for this box, see SipContact), made when it is first read."""
        contact = self._lContact
        if contact is None and self._contact_user is not _NO_CONTACT:
            contact = self._lContact = self._defaultContact()
        return contact

    @lContact.setter
    def lContact(self, contact: Any) -> None:
        self._lContact = contact

    @property
    def lUri(self) -> Any:
        """Our From: the dialog's local URI and tag. The UAC's own (the caller's number and name,
        our tag, this box's address: useDefaultFrom) is made for each request that carries it, as
        its host is only known when the request is sent; read here, it is made once and kept (and
        what a program changes is then sent)."""
        luri = self._lUri
        if type(luri) is tuple:
            luri = self._lUri = _new_from(*luri)
        return luri

    @lUri.setter
    def lUri(self, luri: Any) -> None:
        self._lUri = luri

    def useDefaultFrom(self, cli: Optional[str], caller_name: Optional[str]) -> None:
        """The UAC's From: `caller_name <sip:cli@this box>;tag=lTag`."""
        self._lUri = (cli, caller_name, self.lTag)

    def _fromCopy(self) -> SipFrom:
        luri = self._lUri
        return _new_from(*luri) if type(luri) is tuple else luri.getCopy()

    def _localTag(self) -> Optional[str]:
        luri = self._lUri
        if type(luri) is tuple:
            return luri[2]
        return luri.getTag() if luri is not None else None

    def useDefaultContact(self, username: Optional[str] = None) -> None:
        """The dialog takes the default Contact (with username) unless a program set one. It is
        only made when read (lContact): each message we send builds its own Contact anyway, so a
        held call need not keep one per leg."""
        if self._lContact is None:
            self._contact_user = username

    def _defaultContact(self) -> SipContact:
        contact = SipContact()
        if self._contact_user is not None:
            contact.getUrl().username = self._contact_user
        return contact

    def localContact(self) -> Any:
        """A Contact header for a message we send (a copy of lContact)."""
        contact = self._lContact
        if contact is None and self._contact_user is not _NO_CONTACT:
            return self._defaultContact()
        return contact.getCopy()

    @property
    def rTarget(self) -> Any:
        """The remote target (RFC 3261 12.1): the URL our in-dialog requests go to. A plain one
        from the peer's Contact is kept as its text (each request takes a copy of it anyway); the
        URL is made when first read here, and then kept."""
        target = self._rTarget
        if type(target) is str:
            target = self._rTarget = plain_url(target)
        return target

    @rTarget.setter
    def rTarget(self, target: Any) -> None:
        self._rTarget = target

    def _targetCopy(self) -> Any:
        """A copy of rTarget, made from its text when that is what is kept."""
        target = self._rTarget
        return plain_url(target) if type(target) is str else target.getCopy()

    # ----- entry points -----

    def recvRequest(self, req: Any, sip_t: Any) -> Optional[tuple]:
        """A request for this dialog from the transaction layer; returns (resp, cancel_cb, noack_cb)."""
        if sip_t is not None:
            sip_t.compact = self.compact_sip
        if self.remote_ua is None:
            self.update_ua(req)
        method = req.getMethod()
        if self.state is not None:
            self.noteConnection(req, sip_t)
        if method == "ACK":
            self.recvACK(req)
            return None
        cseq = req.getHFBody("cseq").getCSeqNum()
        if self.rCSeq is not None and cseq <= self.rCSeq:
            # RFC 3261 12.2.2: a request out of order within the dialog.
            self.logWrong("request (CSeq out of order)", method, self.state)
            return (req.genResponse(500, "Server Internal Error", server=self.local_ua), None, None)
        self.rCSeq = cseq
        if self.state is None:
            if method != "INVITE":
                self.logWrong("request", method, "no dialog")
                resp = req.genResponse(481, "Call Leg/Transaction Does Not Exist", server=self.local_ua)
                return (resp, None, None)
            self.changeState(UasStateIdle)
        newstate = self.state.recvRequest(req, sip_t)
        if newstate is not None:
            self.changeState(newstate)
        self.emitPendingEvents()
        if method == "INVITE":
            return (None, self.cancel, self.disconnect)
        return (None, None, None)

    def recvResponse(self, resp: Any, tr: Any) -> None:
        """A response to a request this UA sent (INVITE or re-INVITE)."""
        if self.state is None:
            return
        self.update_ua(resp)
        code = resp.getSCodeNum()
        cseq, method = resp.getHFBody("cseq").getCSeq()
        reqs = self.reqs
        if (
            method == "INVITE"
            and not self.pass_auth
            and reqs is not None
            and cseq in reqs
            and code in (401, 407)
        ):
            if self.processChallenge(resp, cseq, code, tr):
                return
        if code >= 200:
            self.forgetRequest(cseq)
        newstate = self.state.recvResponse(resp, tr)
        if newstate is not None:
            self.changeState(newstate)
        self.emitPendingEvents()

    def recvEvent(self, event: CCEventGeneric) -> None:
        """An event from call control."""
        if self.state is None:
            if not isinstance(event, (CCEventTry, CCEventFail, CCEventDisconnect)):
                return
            self.changeState(UacStateIdle)
        if (
            self.on_local_sdp_change is not None
            and event is not self._sdp_ready
            and isinstance(event, _LOCAL_SDP_EVENTS)
            and event.body is not None
        ):
            self.on_local_sdp_change(event.body, partial(self._localSdpReady, event))
            return
        newstate = self.state.recvEvent(event)
        if newstate is not None:
            self.changeState(newstate)
        self.emitPendingEvents()

    def _localSdpReady(self, event: CCEventGeneric, body: Any) -> None:
        if self.state is None or self.state.dead:
            return
        self._sdp_ready = event.withBody(body)
        try:
            self.recvEvent(self._sdp_ready)
        finally:
            self._sdp_ready = None

    def recvACK(self, req: Any) -> None:
        """ACK of a 2xx we sent (the transaction layer's ack_cb)."""
        if self.state is None or not self.state.connected:
            return
        newstate = self.state.recvACK(req)
        if newstate is not None:
            self.changeState(newstate)
        self.emitPendingEvents()

    def cancel(self, rtime: MonoTime, req: Any = None) -> None:
        """CANCEL of the INVITE we are answering (the transaction layer's cancel_cb)."""
        if self.state is None:
            return
        newstate = self.state.cancel(rtime, req)
        if newstate is not None:
            self.changeState(newstate)
        self.emitPendingEvents()

    def disconnect(self, rtime: Optional[MonoTime] = None, origin: Optional[str] = None) -> None:
        """Hang up from this side: tell call control, and end the dialog on the wire.

        A leg that has already ended (e.g. a late no-ACK timeout after a BYE) stays quiet."""
        if self.disconnect_ts is not None or self.isDead():
            return
        if rtime is None or not isinstance(rtime, MonoTime):
            rtime = MonoTime()
        if origin is None:
            origin = self.origin
        self.equeue.append(CCEventDisconnect(rtime=rtime, origin=origin))
        self.recvEvent(CCEventDisconnect(rtime=rtime, origin=origin))

    # ----- timers -----

    def startSetupTimers(self, rtime: MonoTime) -> None:
        """Arm expire_time (no final answer) and no_progress_time (no provisional but 100)."""
        if self.expire_time is not None:
            self.expire_timer = TimeoutAbsMono(
                self.expires, rtime.offsetCopy(self.expire_time), reactor=self.reactor
            )
        if self.no_progress_time is not None and (
            self.expire_time is None or self.no_progress_time < self.expire_time
        ):
            self.no_progress_timer = TimeoutAbsMono(
                self.no_progress_expires, rtime.offsetCopy(self.no_progress_time), reactor=self.reactor
            )

    def cancelProgressTimer(self) -> None:
        if self.no_progress_timer is not None:
            self.no_progress_timer.cancel()
            self.no_progress_timer = None

    def cancelSetupTimers(self) -> None:
        self.cancelProgressTimer()
        if self.expire_timer is not None:
            self.expire_timer.cancel()
            self.expire_timer = None

    def expires(self) -> None:
        self.expire_timer = None
        self._setupTimedOut()

    def no_progress_expires(self) -> None:
        self.no_progress_timer = None
        self._setupTimedOut()

    def _setupTimedOut(self) -> None:
        """No answer in time: the UAC cancels its INVITE and reports a failure; the UAS answers
        408 to its caller and tells call control to drop the other leg."""
        self.cancelSetupTimers()
        rtime = MonoTime()
        if self.origin == "callee":
            self.equeue.append(CCEventFail((408, "Request Timeout"), rtime=rtime, origin=self.origin))
            self.recvEvent(CCEventDisconnect(rtime=rtime, origin=self.origin))
        else:
            self.equeue.append(CCEventDisconnect(rtime=rtime, origin=self.origin))
            self.recvEvent(CCEventFail((408, "Request Timeout"), rtime=rtime, origin=self.origin))

    credit_times = lazy_slot(
        "_credit_times", dict, "Credit limits by key: when each runs out (the earliest ends the call)."
    )

    def startCreditTimer(self, rtime: MonoTime) -> None:
        if self.credit_time is not None:
            self.credit_times[0] = rtime.offsetCopy(self.credit_time)
            self.credit_time = None
        if not self._credit_times:
            return
        when = min(self._credit_times.values())
        self.credit_timer = TimeoutAbsMono(self.credit_expires, when, when, reactor=self.reactor)

    def cancelCreditTimer(self) -> None:
        if self.credit_timer is not None:
            self.credit_timer.cancel()
            self.credit_timer = None

    def resetCreditTime(self, rtime: MonoTime, new_credit_times: dict) -> None:
        self.credit_times.update(new_credit_times)
        if self.state is not None and self.state.connected:
            self.cancelCreditTimer()
            self.startCreditTimer(rtime)

    def credit_expires(self, rtime: MonoTime) -> None:
        self.credit_timer = None
        self.disconnect(rtime)

    # ----- state and events -----

    def changeState(self, newstate: Any) -> None:
        """Switch to newstate: a state class, or (class, callbacks, *args) run as cb(self, *args)."""
        if isinstance(newstate, tuple):
            cls, cbs, cb_args = newstate[0], (newstate[1] if len(newstate) > 1 else ()), newstate[2:]
        else:
            cls, cbs, cb_args = newstate, (), ()
        if self.state is not None:
            self.state.onStateChange(cls)
        if self.logEnabled(SIPLOG_DBUG):
            self.log(f"UA state change {self.state} -> {cls.sname}", level=SIPLOG_DBUG)
        self.state = cls(self)
        for cb in cbs:
            cb(self, *cb_args)

    def queueRemote(self, event: CCEventGeneric, body: Any) -> None:
        """Queue an event carrying the remote SDP, after on_remote_sdp_change had its say."""
        if body is None:
            self.rSDP = None
            self.equeue.append(event)
            return
        if self.on_remote_sdp_change is not None:
            self.on_remote_sdp_change(body, partial(self._remoteSdpReady, event))
            return
        self.rSDP = body.getCopy()
        self.equeue.append(event)

    def _remoteSdpReady(self, event: CCEventGeneric, body: Any) -> None:
        if self.state is None or self.state.dead:
            return
        self.rSDP = body.getCopy()
        self.equeue.append(event.withBody(body))
        self.emitPendingEvents()

    def emitEvent(self, event: CCEventGeneric) -> None:
        self.equeue.append(event)
        self.emitPendingEvents()

    def emitPendingEvents(self) -> None:
        while self.equeue and self.event_cb is not None:
            self.event_cb(self.equeue.pop(0), self)

    # ----- building and sending messages -----

    @property
    def tm(self) -> Any:
        return self.global_config["_sip_tm"]

    def genRequest(
        self,
        method: str,
        body: Any = None,
        challenge: Any = None,
        extra_headers: Optional[Sequence[SipHeader]] = None,
        max_forwards: Optional[int] = None,
        cseq: Optional[int] = None,
    ) -> Any:
        """A request within this dialog; takes the next local CSeq unless cseq is given (ACK)."""
        if cseq is None:
            cseq = self.lCSeq
            self.lCSeq += 1
        target = self.outbound_proxy if self.outbound_proxy is not None else self.rAddr
        conn = self.rConnection
        if conn is not None and self.outbound_proxy is None and conn.server.isOpen(conn.address):
            target = conn.address
        req = SipRequest(
            method=method,
            ruri=self._targetCopy(),
            to=self.rUri.getCopy(),
            fr0m=self._fromCopy(),
            cseq=cseq,
            callid=self.cId.getCopy(),
            contact=self.localContact() if method == "INVITE" else None,
            routes=[x.getCopy() for x in self.routes],
            target=target,
            user_agent=self.local_ua,
            maxforwards=SipMaxForwards(number=max_forwards) if max_forwards is not None else None,
        )
        if challenge is not None:
            sbody = str(body) if body is not None else None
            auth = challenge.genAuthHF(self.username, self.password, method, str(self._targetCopy()), sbody)
            req.appendHeader(SipHeader(body=auth))
        if body is not None:
            req.setBody(body)
        if self.extra_headers is not None:
            req.appendHeaders([x.getCopy() for x in self.extra_headers])
        if extra_headers is not None:
            req.appendHeaders(list(extra_headers))
        if method == "INVITE":
            if self.reqs is None:
                self.reqs = {}
            self.reqs[cseq] = req
        return req

    def forgetRequest(self, cseq: int) -> None:
        """The INVITE sent with cseq needs no digest retry any more: let it go."""
        reqs = self.reqs
        if reqs is not None:
            reqs.pop(cseq, None)
            if not reqs:
                # A held call's UAs keep none (an emptied dict keeps the table it grew).
                self.reqs = None

    def sendRequest(self, req: Any, resp_cb: Optional[Callable] = None) -> Any:
        conn = self.rConnection
        # A request genRequest aimed at the peer's connection leaves by the listener that has it.
        userv = conn.server if conn is not None and req.getTarget() is conn.address else None
        return self.tm.newTransaction(
            req, resp_cb, laddress=self.source_address, userv=userv, cb_ifver=2, compact=self.compact_sip
        )

    def noteConnection(self, req: Any, sip_t: Any) -> None:
        """A peer that sends the dialog's requests straight to us (one Via, no route set) over a
        TCP or TLS connection is sent ours over that connection while it is open: behind NAT, or
        with its connection's local port in its Contact, it may accept no new connection (as
        RFC 5626 outbound and WSS peers). Once it is gone, requests go to the Contact as usual.
        The latest such request wins (a peer that reconnected is reached on its new connection)."""
        userv = getattr(sip_t, "userv", None)
        # Only connection transports whose peers are (host, port) have isOpen: Tcp_server, Tls_server.
        if getattr(userv, "isOpen", None) is None or self.routes or req.countHFs("via") != 1:
            return
        self.rConnection = DialogConnection(userv, sip_t.address)

    def sendInvite(self, body: Any, extra_headers: Any = None, max_forwards: Optional[int] = None) -> None:
        """Send an INVITE (initial or re-INVITE) whose responses come back to recvResponse."""
        req = self.genRequest("INVITE", body, extra_headers=extra_headers, max_forwards=max_forwards)
        self.lSDP = body
        self.invite_extra_headers = extra_headers
        self.tr = self.sendRequest(req, self.recvResponse)

    def sendBYE(self, extra_headers: Any = None) -> None:
        self.sendRequest(self.genRequest("BYE", extra_headers=extra_headers))

    def sendACK(self, tr: Any, resp: Any, body: Any = None) -> None:
        """ACK a 2xx to our INVITE (RFC 3261 13.2.2.4); a retransmitted 2xx gets the same ACK."""
        cseq = resp.getHFBody("cseq").getCSeqNum()
        if self.last_ack == cseq and tr.ack_data is not None:
            # The transaction keeps the bytes of the ACK it sent: they go again.
            self.tm.sendACK(tr)
            return
        self.last_ack = cseq
        self.tm.sendACK(tr, self.genRequest("ACK", body, cseq=cseq))

    def processChallenge(self, resp: Any, cseq: int, code: int, tr: Any) -> bool:
        """Retry an INVITE with digest credentials once (RFC 3261 22.2); False to fail as usual."""
        ch_name, auth_name = (
            ("www-authenticate", "authorization")
            if code == 401
            else ("proxy-authenticate", "proxy-authorization")
        )
        if self.username is None or self.password is None or self.reqs[cseq].countHFs(auth_name) != 0:
            return False
        if resp.countHFs(ch_name) == 0:
            return False
        challenge = resp.getHFBody(ch_name)
        if not challenge.supportedAlgorithm():
            return False
        del self.reqs[cseq]
        req = self.genRequest("INVITE", self.lSDP, challenge, extra_headers=self.invite_extra_headers)
        self.tr = self.sendRequest(req, self.recvResponse)
        return True

    def sendUasResponse(
        self,
        scode: int,
        reason: str,
        body: Any = None,
        contacts: Optional[Sequence[Any]] = None,
        extra_headers: Optional[Sequence[SipHeader]] = None,
        ack_wait: bool = False,
    ) -> None:
        """Answer the INVITE we are serving (initial or re-INVITE)."""
        resp = self.uasReq.genResponse(scode, reason, body, server=self.local_ua)
        resp.getHFBody("to").setTag(self.lTag)
        if contacts is not None:
            for contact in contacts:
                resp.appendHeader(SipHeader(name="contact", body=contact.getCopy()))
        if extra_headers is not None:
            resp.appendHeaders(list(extra_headers))
        self.uas_ack_wait = ack_wait
        ack_cb = self.recvACK if 200 <= scode < 300 else None
        self.tm.sendResponse(resp, self.uas_t, ack_cb=ack_cb)

    def sendResponse(
        self, resp: Any, sip_t: Any, extra_headers: Optional[Sequence[SipHeader]] = None
    ) -> None:
        """Answer a request other than the INVITE being served (BYE, INFO, a second INVITE...)."""
        if extra_headers is not None:
            resp.appendHeaders(list(extra_headers))
        self.tm.sendResponse(resp, sip_t)

    def regConsumer(self) -> None:
        """Have the transaction layer route in-dialog requests with our Call-ID to us."""
        self.tm.regConsumer(self, str(self.cId), compact=self.compact_sip)

    def setRouting(self, rrs: Sequence[Any], contact_url: Any) -> None:
        """Route set and remote target from Record-Route (already in our order) and the Contact URL
        (RFC 3261 12.1), with strict-routing (no ;lr) pre-RFC 3261 next hops handled."""
        if contact_url is not None:
            text = url_text(contact_url)
            self._rTarget = contact_url.getCopy() if text is None else text
        self.routes = [SipRoute(address=x.getCopy().address) for x in rrs]
        if not self.routes:
            addr = self._targetCopy().getAddr()
            # Mostly where the first request went: one tuple kept for both.
            self.rAddr = self.rAddr0 if addr == self.rAddr0 else addr
            return
        if not self.routes[0].getUrl().lr:
            self.routes.append(SipRoute(address=SipAddress(url=self._targetCopy())))
            self.rTarget = self.routes.pop(0).getUrl().getCopy()
            self.rAddr = self.rTarget.getAddr()
        else:
            self.rAddr = self.routes[0].getUrl().getAddr()

    # ----- information for call control -----

    def isYours(self, req: Any = None, call_id: Any = None, from_tag: Any = None, to_tag: Any = None) -> Any:
        """Self if the request belongs to this dialog (Sippy's consumer matching), else None."""
        if req is not None:
            if req.getMethod() != "BYE" and self.branch is not None:
                if self.branch != req.getHFBody("via").getBranch():
                    return None
            call_id = str(req.getHFBody("call-id"))
            from_tag = req.getHFBody("from").getTag()
            to_tag = req.getHFBody("to").getTag()
        if call_id != str(self.cId):
            return None
        if self.rUri is not None and self.rUri.getTag() != from_tag:
            return None
        if self._lUri is not None and self._localTag() != to_tag:
            return None
        return self

    def isDead(self) -> bool:
        return self.state is not None and self.state.dead

    def isConnected(self) -> bool:
        return self.state is not None and self.state.connected

    def getCLD(self) -> Optional[str]:
        return self.rUri.getUrl().username if self.rUri is not None else None

    def getCLI(self) -> Optional[str]:
        luri = self._lUri
        if type(luri) is tuple:
            return luri[0]
        return luri.getUrl().username if luri is not None else None

    def getCallingName(self) -> Optional[str]:
        luri = self._lUri
        if type(luri) is tuple:
            return luri[1]
        return luri.address.name if luri is not None else None

    def getTransport(self) -> str:
        """How the peer is reached, for `l`: its connection's transport (see noteConnection),
        else what the remote target asks for (`sips:`: tls, else its `transport=`); '' when it
        asks for nothing (UDP)."""
        if self.rConnection is not None:
            return self.rConnection.server.transport
        if self._rTarget is None:
            return ""
        target = self._targetCopy()
        if target.scheme == "sips":
            return "tls"
        return (target.transport or "").lower()

    def getRAddr0(self) -> Optional[tuple[str, int]]:
        return self.rAddr0

    def getCID(self) -> tuple:
        """(call-id, local tag, remote tag)."""
        return (
            str(self.cId),
            self._localTag(),
            self.rUri.getTag() if self.rUri is not None else None,
        )

    def getAcct(self) -> tuple[float, float, bool, bool]:
        """(duration, setup delay, connected, disconnected) for accounting, as in Sippy."""
        disconnected = self.disconnect_ts is not None
        end = self.disconnect_ts if disconnected else MonoTime()
        setup = self.setup_ts if self.setup_ts is not None else end
        if self.connect_ts is not None:
            return (max(0.0, end - self.connect_ts), self.connect_ts - setup, True, disconnected)
        return (0.0, end - setup, False, disconnected)

    def update_ua(self, msg: Any) -> None:
        """Remember the peer's User-Agent / Server string."""
        for name in ("user-agent", "server"):
            if msg.countHFs(name) > 0:
                self.remote_ua = str(msg.getHFBody(name))
                return

    # ----- logging -----

    def log(self, *args: Any, level: int = SIPLOG_WARN) -> None:
        logger = self.global_config.get("_sip_logger")
        if logger is not None:
            logger.write(*args, level=level, call_id=str(self.cId) if self.cId is not None else None)

    def logEnabled(self, level: int) -> bool:
        logger = self.global_config.get("_sip_logger")
        return logger is not None and logger.isEnabledFor(level)

    def logWrong(self, kind: str, what: Any, state: Any) -> None:
        """Something the current state does not accept: worth a line, never worth a crash."""
        if self.logEnabled(SIPLOG_WARN):
            self.log(f"UA: unexpected {kind} {what} in state {state}", level=SIPLOG_WARN)

    def cleanup(self) -> None:
        """Hook for subclasses, run once the UA is dead."""
