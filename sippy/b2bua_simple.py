"""b2bua_simple: every incoming call gets one outgoing leg to a fixed next hop.

Sippy's example of call control: the controller below is all the logic there is. It passes the
answering UA's events to the originating UA and back; only what the events carry (CLD, CLI, SDP,
caller and callee names) crosses, so the legs keep their own Call-ID, tags, CSeq and Via.

    b2bua_simple.py [-f] [-L logfile] [-l local_ip] [-p local_port] [-n remote_ip[:port]]
                    [--max_calls=N]

--max_calls bounds the calls in memory (more get 503 with Retry-After); the default comes from
the memory available at start (sippy.CallMap.default_max_calls).
"""

from __future__ import annotations

import getopt
import os
import signal
import sys
from typing import Any, Optional, Sequence

from sippy import misc
from sippy.CallMap import CallMap, max_calls_from, tune_gc
from sippy.CCEvents import CCEventDisconnect, CCEventFail, CCEventGeneric, CCEventTry
from sippy.Core.EventDispatcher import ED2
from sippy.Security.WireSafe import first_unsafe
from sippy.SipCallId import SipCallId
from sippy.SipConf import SipConf
from sippy.SipLogger import SipLogger
from sippy.SipTransactionManager import SipTransactionManager
from sippy.Time.MonoTime import MonoTime
from sippy.UA import UA

PROG = "b2bua_simple"
USAGE = f"usage: {PROG} [-f] [-L logfile] [-l local_ip] [-p local_port] [-n remote_ip[:port]] [--max_calls=N]"
DEFAULT_LOGFILE = "/var/log/b2bua.log"


class UsageError(ValueError):
    """A bad command line; the message is one line naming the flag."""


class _EgressTry(CCEventTry):
    """CCEventTry that also gives the originating leg the callee's display name (To header)."""

    def __init__(self, *args: Any, callee_name: Optional[str] = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.callee_name = callee_name

    def onUacSetupComplete(self, uac: Any) -> None:
        if self.callee_name is not None:
            uac.rUri.address.name = self.callee_name


class CallController:
    """One call: the answering UA (uaA), the originating UA (uaO) and the events between them."""

    def __init__(self, global_config: dict, callmap: CallMap, reactor: Any = None) -> None:
        self.global_config = global_config
        self.callmap = callmap
        self.reactor = reactor
        self.uaA = UA(
            global_config,
            event_cb=self.recvEvent,
            disc_cbs=(self.aDone,),
            fail_cbs=(self.aDone,),
            dead_cbs=(self.aDone,),
            reactor=reactor,
        )
        self.uaO: Optional[UA] = None

    def recvEvent(self, event: CCEventGeneric, ua: UA) -> None:
        if ua is not self.uaA:
            self.uaA.recvEvent(event)
            return
        if self.uaO is None:
            if not isinstance(event, CCEventTry):
                # Nothing to pass on before a call exists.
                self.uaA.recvEvent(CCEventDisconnect(rtime=event.rtime))
                return
            if event.max_forwards is not None and event.max_forwards <= 1:
                # Forwarding would send Max-Forwards: 0 (RFC 3261 16.6 step 3, as Sippy does).
                self.uaA.recvEvent(CCEventFail((483, "Too Many Hops"), rtime=event.rtime))
                return
            event = self.egressTry(event)
            bad = self.unsafeField(event)
            if bad is not None:
                self.uaA.recvEvent(CCEventFail((400, f"Bad Request ({bad})"), rtime=event.rtime))
                return
            self.uaO = UA(
                self.global_config,
                event_cb=self.recvEvent,
                nh_address=self.global_config["nh_addr"],
                reactor=self.reactor,
            )
            self.callmap.addLeg(self, str(event.call_id))
        self.uaO.recvEvent(event)

    def egressTry(self, event: CCEventTry) -> CCEventTry:
        """The same call parameters under a new Call-ID: the callee must not see the caller's."""
        callee_name = self.uaA.lUri.address.name if self.uaA.lUri is not None else None
        out = _EgressTry(
            (SipCallId(), event.cli, event.cld, event.body, event.auth, event.caller_name),
            rtime=event.rtime,
            origin=event.origin,
            callee_name=callee_name,
        )
        if event.max_forwards is not None:
            out.max_forwards = event.max_forwards - 1
        return out

    def unsafeField(self, event: _EgressTry) -> Optional[str]:
        """The caller's value that would put a CR, LF or NUL in the egress INVITE (an escaped
        %0D%0A in a URI user, a NUL in a display name), counted and logged as bad input."""
        bad = first_unsafe(
            (
                ("CLD", event.cld),
                ("CLI", event.cli),
                ("caller name", event.caller_name),
                ("callee name", event.callee_name),
            )
        )
        tm = self.global_config.get("_sip_tm")
        if bad is not None and tm is not None:
            detail = f"CR, LF or NUL in the {bad} of an INVITE, refused with 400"
            tm.badInput("unsafe_value", self.uaA.rAddr or ("?", 0), detail)
        return bad

    def aDone(self, ua: UA, *args: Any) -> None:
        """The caller's leg has ended (or died at once): the call no longer counts as active."""
        self.callmap.dropCall(self, failed=ua.connect_ts is None)

    def disconnect(self, rtime: Optional[MonoTime] = None) -> None:
        self.uaA.disconnect(rtime)


def parse_hostport(text: str, flag: str, default_port: int) -> tuple[str, int]:
    """`host`, `host:port`, `[v6]`, `[v6]:port` or a bare IPv6 address -> (host, port)."""
    try:
        return misc.parse_hostport(text, default_port)
    except ValueError as ex:
        raise UsageError(f"{flag}: bad address {text!r}: {ex}") from None


def parse_port(text: str, flag: str) -> int:
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise UsageError(f"{flag}: bad port {text!r}")
    return int(text)


def parse_args(argv: Sequence[str]) -> dict:
    """The command line as a Sippy global_config; UsageError on anything wrong."""
    try:
        opts, args = getopt.getopt(list(argv), "fL:l:p:n:", ["max_calls="])
    except getopt.GetoptError as ex:
        raise UsageError(str(ex)) from None
    if args:
        raise UsageError(f"unexpected argument {args[0]!r}")
    config: dict[str, Any] = {"foreground": False, "logfile": DEFAULT_LOGFILE, "_sip_port": 5060}
    laddr: Optional[str] = None
    for opt, val in opts:
        if opt == "-f":
            config["foreground"] = True
        elif opt == "-L":
            config["logfile"] = val
        elif opt == "-l":
            laddr = misc.bare_host(val)
        elif opt == "-p":
            config["_sip_port"] = parse_port(val, "-p")
        elif opt == "-n":
            config["nh_addr"] = parse_hostport(val, "-n", 5060)
        elif opt == "--max_calls":
            if not val.isdigit() or int(val) == 0:
                raise UsageError(f"--max_calls: not a positive integer: {val!r}")
            config["max_calls"] = int(val)
    if "nh_addr" not in config:
        raise UsageError("-n remote_ip[:port] is required")
    # No -l, or a wildcard: every IPv4 and IPv6 address (one socket per family), as Sippy.
    config["_sip_wildcard"] = laddr in (None, "", "*", "0.0.0.0", "::")
    if config["_sip_wildcard"]:
        laddr = SipConf.my_address
    config["_sip_address"] = laddr
    return config


def main(argv: Optional[Sequence[str]] = None) -> int:
    try:
        global_config = parse_args(sys.argv[1:] if argv is None else argv)
    except UsageError as ex:
        sys.stderr.write(f"{PROG}: {ex}\n")
        return 2
    if not global_config["foreground"]:
        from sippy.Daemon import DaemonError, daemonize, install_log_reopen

        try:
            daemonize(global_config["logfile"])
        except DaemonError as ex:
            sys.stderr.write(f"{PROG}: {ex}\n")
            return 1
        install_log_reopen(global_config["logfile"])

    SipConf.my_address = global_config["_sip_address"]
    SipConf.my_port = global_config["_sip_port"]
    logger = SipLogger(PROG)
    global_config["_sip_logger"] = logger
    signal.signal(signal.SIGUSR2, logger.toggleDebug)
    max_calls = max_calls_from(global_config)
    callmap = CallMap(
        global_config, lambda gc, req, sip_t: CallController(gc, callmap), max_calls, reactor=ED2.reactor
    )
    try:
        callmap.log_limiter = SipTransactionManager(global_config, callmap.recvRequest).log_limiter
    except Exception as ex:  # the one place a bind error (port in use, bad -l) can surface
        sys.stderr.write(f"{PROG}: cannot listen on {misc.listen_address(global_config)}: {ex}\n")
        return 1
    host, port = global_config["nh_addr"]
    # Announced from the running reactor: Twisted installs its SIGTERM/SIGINT handlers as it starts,
    # so whoever waits for this line may signal at once and still get a clean stop (printed before
    # the reactor ran, a SIGTERM right after it killed the process).
    ED2.reactor.callWhenRunning(
        print,
        f"{PROG} started, pid {os.getpid()}, listening on {misc.listen_address(global_config)}, "
        f"calls go to {misc.sip_hostport(host, port)}",
        flush=True,
    )
    ED2.reactor.callWhenRunning(callmap.logBound)
    # SIGTERM/SIGINT stop the reactor; the calls get their BYEs while it still runs.
    ED2.reactor.addSystemEventTrigger("before", "shutdown", callmap.shutdown)
    tune_gc(ED2.reactor)
    ED2.loop()
    global_config["_sip_tm"].shutdown()
    logger.shutdown()
    return 0
