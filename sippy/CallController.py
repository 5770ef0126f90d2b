"""The b2bua_radius call controller: one call, an answering UA facing the caller and an
originating UA facing the callee, with authorisation, accounting, routes and failover.

Call control only moves events between the two UAs, so the legs stay isolated: what crosses is
what an event carries (numbers, names, SDP, a few headers). On the way it rewrites the egress
numbers, filters the SDP offer (``-F``), anchors the media on an RTPproxy (``-r``: every SDP
in either direction rewritten by ``rtp_proxy_session``) and, when a route fails before the caller
was answered, replaces the originating UA with one for the next route, so the caller sees only
the outcome of the last attempt.

``cc_factory(global_config, req, sip_t, callmap=...)`` is the ``CallMap`` factory: admission
(``-a``), the digest challenge, the headers to pass through and the pre-authorisation routine,
then the controller itself.
"""

from __future__ import annotations

from functools import partial
from hashlib import md5
from typing import Any, Callable, Optional, Sequence

from sippy.B2BRoute import DST_SIP_UA, B2BRoute, RouteError
from sippy.CCEvents import (
    CCEventDisconnect,
    CCEventFail,
    CCEventGeneric,
    CCEventTry,
    CCEventUpdate,
)
from sippy.Exceptions.RtpProxyError import RtpProxyError
from sippy.Exceptions.SipParseError import SdpParseError
from sippy.Radius_client import RESULT_NO_ANSWER
from sippy.RadiusAccounting import RadiusAccounting
from sippy.RadiusAuthorisation import AuthResult, RadiusAuthorisation
from sippy.Rtp_proxy.session import Rtp_proxy_session
from sippy.Rtp_proxy.Session.webrtc import Rtp_proxy_session_webrtc2sip
from sippy.Rtp_proxy.Session.webrtc_sdp import is_webrtc
from sippy.SdpBody import SdpBody
from sippy.Security.AddressList import AddressList
from sippy.Security.DigestGuard import DigestGuard
from sippy.Security.SipNonce import NONCE_OK, NONCE_STALE, HashOracle, default_oracle
from sippy.Security.WireSafe import first_unsafe
from sippy.SipCallId import SipCallId
from sippy.SipHeader import SipHeader
from sippy.SipLogger import SIPLOG_ERR, SIPLOG_INFO
from sippy.SipURL import plain_url, url_text
from sippy.SipWWWAuthenticate import SipWWWAuthenticate
from sippy.Time.MonoTime import MonoTime
from sippy.Time.Timeout import Timeout
from sippy.UA import UA
from sippy.UacStateTrying import UacStateTrying
from sippy.UasStateRinging import UasStateRinging
from sippy.UasStateTrying import UasStateTrying
from sippy.Wss_server import INVALID_DOMAIN

__all__ = (
    "CallController",
    "cc_factory",
    "filter_sdp",
    "CCStateIdle",
    "CCStateWaitRoute",
    "CCStateARComplete",
    "CCStateConnected",
    "CCStateDisconnecting",
    "CCStateDead",
)

UA_NAME = "Sippy B2BUA (RADIUS)"
# What the caller gets when RADIUS or a route gave a value that cannot go on the wire (CR, LF or
# NUL in a number, name or header) or a route that does not parse; the log says which.
UNSAFE_ROUTING = (500, "Internal Server Error (4)")
# Media transports whose m= formats are RTP payload types (what -F talks about).
_RTP_TRANSPORTS = ("rtp/avp", "rtp/savp", "rtp/avpf", "rtp/savpf", "udp/tls/rtp/savp", "udp/tls/rtp/savpf")


class CCStateIdle:
    sname = "Idle"


class CCStateWaitRoute:
    sname = "WaitRoute"


class CCStateARComplete:
    sname = "ARComplete"


class CCStateConnected:
    sname = "Connected"


class CCStateDisconnecting:
    sname = "Disconnecting"


class CCStateDead:
    sname = "Dead"


def filter_sdp(body: Any, allowed_pts: Sequence[Any]) -> bool:
    """Keep only the allowed payload types (ints, or encoding names as ``getPTbyName`` takes them,
    e.g. ``G726-32/8000``) in every RTP section.

    Returns False when some RTP section would be left with none (the offer is unacceptable);
    the body is then left as it was. Raises SdpParseError on an SDP that does not parse.
    """
    body.parse()
    sdp = body.getContent()
    plan = []
    for sect in sdp.sections:
        if sect.m_header.transport.lower() not in _RTP_TRANSPORTS:
            continue
        allowed = {x if isinstance(x, int) else sect.getPTbyName(x) for x in allowed_pts}
        keep = [f for f in sect.m_header.formats if f in allowed]
        if not keep:
            return False
        if len(keep) < len(sect.m_header.formats):
            plan.append((sect, keep))
    for sect, keep in plan:
        sect.keep_formats(keep)
    if plan:
        body.needs_update = True
    return True


class CallController:
    """One call through b2bua_radius; Sippy's ``CallController`` with the same attribute names.

    ``callmap``: the ``CallMap`` this call registers its originating legs with and leaves when
    both legs are dead. ``routes``: when given, these routes are tried in order for every call
    instead of the static route (``-s``) or the ones RADIUS returns (the importable way to run
    failover). ``reactor`` drives every timer of the call (a ``Clock`` in tests).
    """

    # One per call, held for the whole call: the fields in slots (see UA.__slots__); `__dict__`
    # stays for what Sippy programs and subclasses set of their own.
    __slots__ = (
        "acctA",
        "acctO",
        "allowed_pts",
        "auth_proc",
        "cId",
        "caller_name",
        "callmap",
        "challenge",
        "cld",
        "cli",
        "eTry",
        "extra_attributes",
        "fixed_routes",
        "from_browser",
        "global_config",
        "group_timer",
        "huntstop_scodes",
        "id",
        "no_reply_timer",
        "pass_headers",
        "reactor",
        "remote_ip",
        "req_source",
        "_req_target",
        "routes",
        "rtp_proxy_session",
        "source",
        "state",
        "uaA",
        "uaO",
        "username",
        "__dict__",
        "__weakref__",
    )

    # Calls are numbered from 1 for the control socket and logs.
    _next_id = 1

    def __init__(
        self,
        remote_ip: str,
        source: tuple[str, int],
        req_source: Any,
        req_target: Any,
        global_config: dict,
        pass_headers: Sequence[SipHeader],
        *,
        callmap: Any = None,
        routes: Optional[Sequence[B2BRoute]] = None,
        reactor: Any = None,
        from_browser: bool = False,
    ) -> None:
        self.id = CallController._next_id
        CallController._next_id += 1
        self.global_config = global_config
        self.callmap = callmap
        self.reactor = reactor
        self.remote_ip = remote_ip
        self.source = source
        self.req_source = req_source
        # The INVITE's Request-URI, kept as its text when it is a plain one (see req_target).
        text = url_text(req_target)
        self._req_target = req_target if text is None else text
        # A tuple: only read (an empty one is shared).
        self.pass_headers = tuple(pass_headers)
        self.fixed_routes = list(routes) if routes is not None else None
        self.state: type = CCStateIdle
        # The same callbacks for a disconnect and a failure (one tuple kept, not two).
        disc_cbs = (self.aDisc,)
        self.uaA = UA(
            global_config,
            event_cb=self.recvEvent,
            conn_cbs=(self.aConn,),
            disc_cbs=disc_cbs,
            fail_cbs=disc_cbs,
            dead_cbs=(self.aDead,),
            reactor=reactor,
        )
        self.uaA.kaInterval = global_config.get("keepalive_ans", 0)
        self.uaA.local_ua = global_config.get("_uaname", UA_NAME)
        self.uaO: Optional[UA] = None
        self.routes: list[B2BRoute] = []
        self.huntstop_scodes: tuple[int, ...] = ()
        self.cId: Any = None
        self.cli: Optional[str] = None
        self.cld: Optional[str] = None
        self.caller_name: Optional[str] = None
        self.username: Optional[str] = None
        self.eTry: Optional[CCEventTry] = None
        self.acctA: Optional[RadiusAccounting] = None
        self.acctO: Optional[RadiusAccounting] = None
        self.auth_proc: Any = None
        self.challenge: Optional[SipHeader] = None
        self.extra_attributes: Optional[list[tuple[str, Any]]] = None
        self.group_timer: Optional[Timeout] = None
        self.no_reply_timer: Optional[Timeout] = None
        # -r: the call's media anchored on an RTPproxy (None: media goes end to end).
        self.rtp_proxy_session: Optional[Rtp_proxy_session] = None
        # The caller is on a WebSocket connection (a browser): with -r its media is WebRTC.
        self.from_browser = from_browser
        self.allowed_pts = global_config.get("_allowed_pts")

    @property
    def req_target(self) -> Any:
        """The INVITE's Request-URI (for programs; the controller itself does not read it), made
        again from its text when first read: a held call need not keep the URL object."""
        target = self._req_target
        if type(target) is str:
            target = self._req_target = plain_url(target)
        return target

    def __str__(self) -> str:
        return f"CallController#{self.id} {self.cId} ({self.state.sname})"

    # ----- events from either leg -----

    def recvEvent(self, event: CCEventGeneric, ua: UA) -> None:
        """Sippy's event_cb: an event from the answering UA or from the current originating UA."""
        if ua is self.uaA:
            if self.state is CCStateIdle:
                self._newCall(event)
                return
            if self.state not in (CCStateARComplete, CCStateConnected, CCStateDisconnecting):
                return
            if self.uaO is None or not self._offerAcceptable(event, self.uaA):
                return
            self.uaO.recvEvent(event)
            return
        if ua is not self.uaO:
            # An originating UA already replaced by the next route: its news is stale.
            return
        if not self._offerAcceptable(event, ua):
            return
        if isinstance(event, (CCEventFail, CCEventDisconnect)) and self._mayHunt():
            code = event.scode if isinstance(event, CCEventFail) else None
            if code is None or code not in self.huntstop_scodes:
                self.placeOriginate(self.routes.pop(0))
                return
        self.uaA.recvEvent(event)

    def _mayHunt(self) -> bool:
        """Whether a failed attempt can still be replaced by the next route."""
        return (
            self.state is CCStateARComplete
            and isinstance(self.uaA.state, (UasStateTrying, UasStateRinging))
            and bool(self.routes)
        )

    def _offerAcceptable(self, event: CCEventGeneric, ua: UA) -> bool:
        """Apply -F to an SDP offer from ``ua``; an offer with no allowed codec gets 488 there."""
        if self.allowed_pts is None or not isinstance(event, CCEventUpdate) or event.body is None:
            return True
        if self._filterBody(event.body):
            return True
        ua.recvEvent(CCEventFail((488, "Not Acceptable Here"), rtime=event.rtime))
        return False

    def _filterBody(self, body: Any) -> bool:
        try:
            return filter_sdp(body, self.allowed_pts)
        except SdpParseError:
            return False

    def _newCall(self, event: CCEventGeneric) -> None:
        """The caller's INVITE as CCEventTry: check it, translate the CLD, then authorise."""
        if not isinstance(event, CCEventTry):
            self.uaA.recvEvent(CCEventDisconnect(rtime=event.rtime))
            return
        self.cId, self.cli, self.cld, body, auth, self.caller_name = event.getData()
        if self.cld is None:
            self._fail(500, "Internal Server Error (1)", event.rtime)
            return
        if self.cld.startswith("nat-"):
            self.cld = self.cld[4:]
        tr_in = self.global_config.get("_static_tr_in")
        if tr_in is not None:
            self.cld = tr_in(self.cld)
        bad = first_unsafe((("CLD", self.cld), ("CLI", self.cli), ("caller name", self.caller_name)))
        if bad is not None:
            # Escaped in the caller's URI (%0D%0A) or a NUL in its From: never a real number.
            self._badInput(f"CR, LF or NUL in the {bad} of an INVITE, refused with 400")
            self._fail(400, f"Bad Request ({bad})", event.rtime)
            return
        if self.allowed_pts is not None and body is not None and not self._filterBody(body):
            self._fail(488, "Not Acceptable Here", event.rtime)
            return
        event.data = (self.cId, self.cli, self.cld, body, auth, self.caller_name)
        self.eTry = event
        self.state = CCStateWaitRoute
        self._authorise(auth)

    def _fail(self, code: int, reason: str, rtime: Optional[MonoTime] = None) -> None:
        self.uaA.recvEvent(CCEventFail((code, reason), rtime=rtime))
        self.state = CCStateDead

    # ----- authorisation -----

    def _authorise(self, auth: Any) -> None:
        """The authorisation seam: -u skips it; otherwise RADIUS, Remote-IP or digest."""
        if not self.global_config.get("auth_enable", True):
            self.username = self.remote_ip
            self.rDone(AuthResult((), 0))
            return
        radius_auth: RadiusAuthorisation = self.global_config["_radius_auth"]
        if auth is None or not getattr(auth, "username", None):
            self.username = self.remote_ip
            self.auth_proc = radius_auth.do_auth(
                self.remote_ip,
                self.cli,
                self.cld,
                _h323_cid(self.cId),
                str(self.cId),
                self.remote_ip,
                self.rDone,
                extra_attributes=self.extra_attributes,
            )
            return
        self.username = auth.username
        dattrs = auth.getDigestAttrs("INVITE")
        self.auth_proc = radius_auth.do_auth(
            auth.username,
            self.cli,
            self.cld,
            _h323_cid(self.cId),
            str(self.cId),
            self.remote_ip,
            self.rDone,
            dattrs["realm"],
            dattrs["nonce"],
            dattrs["uri"],
            dattrs["response"],
            extra_attributes=self.extra_attributes,
            algorithm=dattrs["algorithm"],
            qop=dattrs["qop"],
            cnonce=dattrs["cnonce"],
            nc=dattrs["nc"],
        )

    def rDone(self, results: Any) -> None:
        """Authorisation result ``(attributes, rcode)``: build the routes and place the first."""
        self.auth_proc = None
        attributes, rcode = results[0], results[1]
        if rcode != 0:
            if isinstance(self.uaA.state, UasStateTrying):
                # A refusal of Remote-IP auth asks for credentials; no answer at all does not.
                if self.challenge is not None and rcode != RESULT_NO_ANSWER:
                    event = CCEventFail((401, "Unauthorized"))
                    event.challenges = [self.challenge]
                else:
                    event = CCEventFail((403, "Auth Failed"))
                self.uaA.recvEvent(event)
                self.state = CCStateDead
            return
        result = results if isinstance(results, AuthResult) else AuthResult(tuple(attributes), rcode)
        self.acctA = self._newAccounting("answer")
        if self.acctA is not None:
            self.acctA.setParams(
                self.username, self.cli, self.cld, _h323_cid(self.cId), str(self.cId), self.remote_ip
            )
        if not isinstance(self.uaA.state, UasStateTrying):
            # The caller gave up while we were waiting for the server.
            if self.acctA is not None:
                self.acctA.ua_disc(self.uaA, MonoTime(), "caller")
            return
        if result.cli is not None:
            self.cli = result.cli or None
        if result.caller_name is not None:
            self.caller_name = result.caller_name or None
        credit_time = result.credit_time
        routing = self._routing(result)
        if routing is None:
            self._fail(500, "Internal Server Error (2)")
            return
        if not routing:
            self._fail(*UNSAFE_ROUTING)
            return
        max_credit_time = self.global_config.get("max_credit_time")
        for rnum, oroute in enumerate(routing, 1):
            oroute.customize(rnum, self.cld, self.cli, credit_time, self.pass_headers, max_credit_time)
            if oroute.credit_time == 0 or oroute.expires == 0:
                continue
            self.routes.append(oroute)
        if not self.routes:
            self._fail(500, "Internal Server Error (3)")
            return
        self.state = CCStateARComplete
        self.placeOriginate(self.routes.pop(0))

    def _routing(self, result: AuthResult) -> Optional[list[B2BRoute]]:
        """Fresh copies of the routes to try: fixed ones, the static route, or RADIUS's."""
        if self.fixed_routes is not None:
            return [r.getCopy() for r in self.fixed_routes]
        static = self.global_config.get("_static_routes")
        if static is not None:
            route = static.get(self.req_source, static[""])
            return [route.getCopy()]
        try:
            routes = [B2BRoute(x) for x in result.routes]
        except RouteError as exc:
            self._log(f"unusable route from RADIUS, call refused: {exc}", SIPLOG_ERR)
            return []
        return routes or None

    def _newAccounting(self, origin: str) -> Optional[RadiusAccounting]:
        cfg = self.global_config
        if not cfg.get("acct_enable", False) or cfg.get("_radius_client") is None:
            return None
        return RadiusAccounting(
            cfg["_radius_client"],
            origin,
            lperiod=cfg.get("alive_acct_int"),
            send_start=cfg.get("start_acct_enable", False),
            logger=cfg.get("_sip_logger"),
            ms_precision=cfg.get("precise_acct", False),
            reactor=self.reactor,
            spool=cfg.get("_acct_spool"),
        )

    # ----- the originating leg -----

    def placeOriginate(self, oroute: B2BRoute) -> None:
        """Start an attempt on one route: a new originating UA and the rewritten CCEventTry."""
        assert self.eTry is not None
        cfg = self.global_config
        if not self._relayMedia(oroute):
            return
        cId, _cli, _cld, body, auth, _caller_name = self.eTry.getData()
        cld = oroute.cld
        self.huntstop_scodes = oroute.params.get("huntstop_scodes", ())
        tr_out = cfg.get("_static_tr_out")
        if tr_out is not None and cld is not None:
            cld = tr_out(cld)
        caller_name = oroute.params.get("caller_name", self.caller_name)
        if not self._wireSafe(oroute, cld, caller_name):
            self._fail(*UNSAFE_ROUTING)
            return
        if oroute.hostport == DST_SIP_UA:
            host, nh_address = self.source[0], self.source
        else:
            host = oroute.hostonly
            nh_address = oroute.getNHAddr(self.source)[0]
        self.acctO = None if oroute.forward_on_fail else self._newAccounting("originate")
        # Without accounting on this leg there is nothing to call back on connect or disconnect.
        conn_cbs: tuple[Callable, ...] = ()
        disc_cbs: tuple[Callable, ...] = ()
        if self.acctO is not None:
            self.acctO.setParams(
                oroute.params.get("bill-to", self.username),
                oroute.params.get("bill-cli", oroute.cli),
                oroute.params.get("bill-cld", cld),
                _h323_cid(self.cId),
                str(self.cId),
                host,
            )
            conn_cbs = (self.oConn,)
            disc_cbs = (self.acctO.ua_disc,)
        self.uaO = UA(
            cfg,
            self.recvEvent,
            oroute.user,
            oroute.passw,
            nh_address,
            oroute.credit_time,
            conn_cbs=conn_cbs,
            disc_cbs=disc_cbs,
            fail_cbs=disc_cbs,
            dead_cbs=(self.oDead,),
            extra_headers=oroute.extra_headers,
            expire_time=oroute.expires,
            no_progress_time=oroute.no_progress_expires,
            reactor=self.reactor,
        )
        self.uaO.pass_auth = oroute.pass_auth
        self.uaO.local_ua = cfg.get("_uaname", UA_NAME)
        self.uaO.kaInterval = cfg.get("keepalive_orig", 0)
        self.uaO.ruri_transport = oroute.params.get("transport")
        outbound_proxy = oroute.params.get("outbound_proxy")
        if outbound_proxy is not None and outbound_proxy != self.source:
            self.uaO.outbound_proxy = outbound_proxy
        if self.rtp_proxy_session is not None:
            self.uaO.on_local_sdp_change = partial(
                self._relaySdp, self.rtp_proxy_session.on_caller_sdp_change
            )
            self.uaO.on_remote_sdp_change = partial(
                self._relaySdp, self.rtp_proxy_session.on_callee_sdp_change
            )
        if "group_timeout" in oroute.params:
            timeout, skipto = oroute.params["group_timeout"]
            if self.group_timer is not None:
                self.group_timer.cancel()
            self.group_timer = Timeout(self.group_expires, timeout, 1, skipto, reactor=self.reactor)
        if self.no_reply_timer is not None:
            self.no_reply_timer.cancel()
            self.no_reply_timer = None
        if oroute.no_reply_expires is not None:
            self.no_reply_timer = Timeout(
                self.no_reply_expires, oroute.no_reply_expires, 1, self.uaO, reactor=self.reactor
            )
        if cfg.get("hide_call_id", False):
            ocid = SipCallId(f"{md5(str(cId).encode()).hexdigest()}-b2b_{oroute.rnum}")
        else:
            ocid = SipCallId(f"{cId}-b2b_{oroute.rnum}")
        event = CCEventTry(
            (ocid, oroute.cli, cld, body.getCopy() if body is not None else None, auth, caller_name),
            rtime=self.eTry.rtime,
            origin=self.eTry.origin,
        )
        if self.eTry.max_forwards is not None:
            event.max_forwards = self.eTry.max_forwards - 1
            if event.max_forwards <= 0:
                self._fail(483, "Too Many Hops")
                return
        event.reason = self.eTry.reason
        po_proc = oroute.params.get("po_proc")
        if po_proc is not None:
            po_proc(self, event)
        if self.callmap is not None:
            self.callmap.addLeg(self, str(ocid))
        if self._logEnabled(SIPLOG_INFO):
            self._log(f"placing call #{oroute.rnum} to {oroute.hostport}, CLD {cld!r}, CLI {oroute.cli!r}")
        self.uaO.recvEvent(event)

    def _wireSafe(self, oroute: B2BRoute, cld: Optional[str], caller_name: Optional[str]) -> bool:
        """The last check before the outgoing INVITE is built: whatever RADIUS, the route, -T or
        the passed-through headers put in it, no CR, LF or NUL (see sippy.Security.WireSafe)."""
        fields = [("CLD", cld), ("CLI", oroute.cli), ("caller name", caller_name), ("auth user", oroute.user)]
        fields.extend(("header", str(hf)) for hf in oroute.extra_headers or ())
        bad = first_unsafe(fields)
        if bad is None:
            return True
        self._log(
            f"CR, LF or NUL in the {bad} for route #{oroute.rnum} ({oroute.hostport}), call refused",
            SIPLOG_ERR,
        )
        return False

    def group_expires(self, skipto: int) -> None:
        """``gt=timeout,skip``: the route group ran out of time; jump to route number skipto."""
        self.group_timer = None
        if not self._mayHunt():
            return
        if skipto > self.routes[-1].rnum:
            # The last group timed out: let the current attempt finish, but try nothing after it.
            self.routes = []
            return
        while self.routes and self.routes[0].rnum < skipto:
            self.routes.pop(0)
        if self.uaO is not None:
            self.uaO.disconnect()

    def no_reply_expires(self, ua: UA) -> None:
        """Route ``nr_expires``: the callee has not answered at all (not even 100): next route."""
        self.no_reply_timer = None
        if (
            ua is self.uaO
            and isinstance(ua.state, UacStateTrying)
            and ua.p100_ts is None
            and ua.p1xx_ts is None
        ):
            ua.disconnect()

    # ----- media relay (-r) -----

    def _relayMedia(self, oroute: B2BRoute) -> bool:
        """Anchor this attempt's media on an RTPproxy unless there is none (-r) or the route says
        ``rtpp=0``. False when no proxy is online: the caller got 503."""
        if not self.global_config.get("_rtp_proxy_clients") or not oroute.params.get("rtpp", True):
            self._deleteMedia()  # a previous route's session is no use to this one
            return True
        if self.rtp_proxy_session is not None:
            # Failover: the abandoned callee gets nothing more; the next answer sets the new one.
            self.rtp_proxy_session.callee_reset()
            return True
        # A browser's call (over WSS, offering DTLS-SRTP): its side of the proxy speaks ICE +
        # DTLS-SRTP. A WebSocket softphone offering plain RTP gets a plain session.
        webrtc = self.from_browser and self.eTry is not None and _offers_webrtc(self.eTry.getData()[3])
        session_class = Rtp_proxy_session_webrtc2sip if webrtc else Rtp_proxy_session
        try:
            self.rtp_proxy_session = session_class(
                self.global_config, call_id=str(self.cId), notify_tag=f"r {self.id}"
            )
        except RtpProxyError as exc:
            if self._logEnabled(SIPLOG_ERR):
                self._log(f"{exc}: call refused", SIPLOG_ERR)
            self._fail(*exc.response)
            return False
        return True

    def _relaySdp(
        self, hook: Callable[[Any, Callable[[Any], None]], None], body: Any, done_cb: Callable
    ) -> None:
        """The UA's SDP hook: the proxy rewrites the body, then the UA goes on with it."""
        try:
            body.getContent()
        except SdpParseError:
            self._mediaFailed(488, "Not Acceptable Here")
            return
        hook(body, partial(self._sdpRelayed, done_cb))

    def _sdpRelayed(self, done_cb: Callable[[Any], None], body: Any) -> None:
        if body is not None:
            done_cb(body)
            return
        rtpps = self.rtp_proxy_session
        refusal = rtpps.refusal if rtpps is not None else None
        if rtpps is not None and self._logEnabled(SIPLOG_ERR):
            what = "refused the media" if refusal is not None else "failed the media update"
            self._log(f"RTPproxy {rtpps.rtp_proxy_client} {what}: {rtpps.last_error}", SIPLOG_ERR)
        self._mediaFailed(*(refusal or (503, "Service Unavailable")))

    def _mediaFailed(self, code: int, reason: str) -> None:
        """The SDP could not be relayed: a call cannot go on without its media, so it ends (the
        caller gets ``code`` before it is answered, both legs a BYE after)."""
        self.routes = []
        if self.state is CCStateConnected:
            self.disconnect()
            return
        if isinstance(self.uaA.state, (UasStateTrying, UasStateRinging)):
            self.uaA.recvEvent(CCEventFail((code, reason)))
        if self.uaO is not None:
            self.uaO.disconnect()

    def _deleteMedia(self) -> None:
        session, self.rtp_proxy_session = self.rtp_proxy_session, None
        if session is not None:
            session.delete()

    # ----- leg callbacks -----

    def disconnect(
        self,
        rtime: Optional[MonoTime] = None,
        origin: Optional[str] = None,
        media_index: Optional[int] = None,
    ) -> None:
        """Hang the whole call up (control socket ``d``, shutdown; ``r``: media timed out)."""
        if origin == "media_timeout" and self.rtp_proxy_session is not None:
            # The proxy ended that media line's session itself.
            self.rtp_proxy_session.media_timeout_index = media_index
        self.uaA.disconnect(rtime=rtime, origin=origin)

    def oConn(self, ua: UA, rtime: MonoTime, origin: Optional[str]) -> None:
        if self.acctO is not None:
            self.acctO.ua_conn(ua, rtime, origin)

    def aConn(self, ua: UA, rtime: MonoTime, origin: Optional[str]) -> None:
        self.state = CCStateConnected
        # No route is tried any more: the caller's INVITE as an event (SDP and all) can go.
        self.eTry = None
        if self.acctA is not None:
            self.acctA.ua_conn(ua, rtime, origin)

    def aDisc(self, ua: UA, rtime: MonoTime, origin: Optional[str], result: int = 0) -> None:
        if self.state is CCStateWaitRoute and self.auth_proc is not None:
            self.auth_proc.cancel()
            self.auth_proc = None
        for timer in (self.group_timer, self.no_reply_timer):
            if timer is not None:
                timer.cancel()
        self.group_timer = self.no_reply_timer = None
        self.eTry = None
        self._deleteMedia()
        self.state = (
            CCStateDisconnecting if self.uaO is not None and self.state is not CCStateDead else CCStateDead
        )
        if self.acctA is not None:
            self.acctA.ua_disc(ua, rtime, origin, result)
        if self.uaO is None and self.callmap is not None:
            # Refused before any route was tried (401, 403...): free the Call-ID now, so the
            # caller's retry with credentials (same Call-ID, RFC 3261 22.2) is a new call and
            # not a "merged request" (482) while this answering UA lingers.
            self.callmap.dropCall(self, failed=True)

    def aDead(self, ua: UA) -> None:
        if self.uaO is None or self.uaO.isDead():
            self._gone()

    def oDead(self, ua: UA) -> None:
        if ua is self.uaO and self.uaA.isDead():
            self._gone()

    def _gone(self) -> None:
        """Both legs are dead: release everything and leave the call map."""
        self.state = CCStateDead
        self._deleteMedia()
        self.acctA = None
        self.acctO = None
        if self.callmap is not None:
            self.callmap.dropCall(self, failed=self.uaA.connect_ts is None)

    # ----- logging -----

    def _logEnabled(self, level: int) -> bool:
        logger = self.global_config.get("_sip_logger")
        return logger is not None and logger.isEnabledFor(level)

    def _log(self, msg: str, level: int = SIPLOG_INFO) -> None:
        if self._logEnabled(level):
            self.global_config["_sip_logger"].write(msg, level=level, call_id=str(self.cId))

    def _badInput(self, detail: str) -> None:
        """A caller's bad request: through the transaction manager's counted, quiet door."""
        tm = self.global_config.get("_sip_tm")
        if tm is not None:
            tm.badInput("unsafe_value", self.source, f"{detail} (Call-ID {self.cId})")
        else:
            self._log(detail)


def _h323_cid(call_id: Any) -> str:
    """A stable h323-conf-id for a SIP Call-ID (Cisco style: four groups of 8 hex digits)."""
    digest = md5(str(call_id).encode()).hexdigest().upper()
    return " ".join(digest[i : i + 8] for i in range(0, 32, 8))


def _remote_ip_allowed(global_config: dict, source: tuple[str, int]) -> bool:
    accept_ips = global_config.get("_accept_ips")
    return accept_ips is None or source[0] in accept_ips


def caller_address(req: Any, trusted_proxies: Optional[AddressList]) -> str:
    """The address Remote-IP authorisation and ``h323-remote-address`` name: where the datagram
    came from. Only a datagram from a trusted proxy (``--trusted_proxies``) is believed about the
    hop before it: then the next Via's address is taken (``received=`` if the proxy added one),
    and so on down a chain of trusted proxies."""
    address = req.getSource()[0]
    if trusted_proxies is None:
        return address
    vias = req.getHFBodys("via")
    depth = 0
    while address in trusted_proxies and depth + 1 < len(vias):
        depth += 1
        host = vias[depth].getTAddr()[0]
        if not host:
            break
        address = host
    return address


def _offers_webrtc(body: Any) -> bool:
    """Whether an INVITE's body offers a DTLS-SRTP media section (what browsers offer)."""
    if body is None:
        return False
    try:
        sdp = body.getContent()
    except SdpParseError:
        return False
    return isinstance(sdp, SdpBody) and any(is_webrtc(s) for s in sdp.sections)


def _over_websocket(global_config: dict, req: Any) -> bool:
    """Whether the INVITE came on one of our WebSocket connections: the transaction layer made its
    Contact host the connection's ``*.invalid`` name (RFC 7118 5), and that connection is open."""
    wss = global_config.get("_wss_server")
    if wss is None or req.countHFs("contact") == 0:
        return False
    contact = req.getHFBody("contact")
    if contact.asterisk:
        return False
    host = str(contact.getUrl().host)
    return host.endswith(INVALID_DOMAIN) and wss.connection((host, 0)) is not None


def _challenge(req: Any, oracle: HashOracle, stale: bool = False) -> SipHeader:
    www = SipWWWAuthenticate(realm=req.getRURI().host, nonce=oracle.emit_challenge())
    if stale:
        www.stale = "true"
    return SipHeader(name="www-authenticate", body=www)


def _refuse_credentials(global_config: dict, req: Any, guard: DigestGuard) -> Optional[Any]:
    """None when the INVITE's digest credentials may go to RADIUS; otherwise the 401 with a new
    challenge (``stale=true`` for a nonce of ours that is too old or already used)."""
    verdict = guard.check(req.getHFBody("authorization"))
    if verdict == NONCE_OK:
        return None
    stale = verdict == NONCE_STALE
    tm = global_config.get("_sip_tm")
    if tm is not None:
        kind, why = ("stale_nonce", "stale or reused") if stale else ("bad_nonce", "not issued by us")
        tm.badInput(kind, req.getSource(), f"digest nonce {why}, challenged again")
    resp = req.genResponse(401, "Unauthorized")
    resp.appendHeader(_challenge(req, guard.oracle, stale))
    return resp


def cc_factory(
    global_config: dict,
    req: Any,
    sip_t: Any,
    *,
    callmap: Any = None,
    routes: Optional[Sequence[B2BRoute]] = None,
    reactor: Any = None,
    digest_guard: Optional[DigestGuard] = None,
) -> Any:
    """``CallMap``'s factory for an out-of-dialog INVITE: admit it and make its controller.

    Returns the controller, or the response that refuses the call (403 from ``-a``, 401 when
    ``digest_auth_only`` and the INVITE has no credentials, 401 with a new challenge when its
    nonce is not a fresh, unused one of ours). Bind ``callmap``, ``routes``, ``reactor`` and
    ``digest_guard`` (one per process; nonces are checked when it is given) with
    ``functools.partial``.
    """
    source = req.getSource()
    if not _remote_ip_allowed(global_config, source):
        return req.genResponse(403, "Forbidden")
    remote_ip = caller_address(req, global_config.get("_trusted_proxies"))
    oracle = digest_guard.oracle if digest_guard is not None else default_oracle
    challenge = None
    if global_config.get("auth_enable", True) and global_config.get("digest_auth", True):
        if req.countHFs("authorization") == 0:
            # Remote-IP authorisation is tried first; this answers it if the server says no.
            challenge = _challenge(req, oracle)
            if global_config.get("digest_auth_only", False):
                resp = req.genResponse(401, "Unauthorized")
                resp.appendHeader(challenge)
                return resp
        elif digest_guard is not None:
            refusal = _refuse_credentials(global_config, req, digest_guard)
            if refusal is not None:
                return refusal
    pass_headers = []
    for name in global_config.get("_pass_headers", ()):
        pass_headers.extend(hf.getCopy() for hf in req.getHFs(name))
    cc = CallController(
        remote_ip,
        source,
        source[0],
        req.getRURI(),
        global_config,
        pass_headers,
        callmap=callmap,
        routes=routes,
        reactor=reactor,
        from_browser=_over_websocket(global_config, req),
    )
    pre_auth_proc = global_config.get("_pre_auth_proc")
    if pre_auth_proc is not None:
        pre_auth_proc(cc, req)
    cc.challenge = challenge
    return cc
