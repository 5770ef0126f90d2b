"""Running b2bua_radius: signals, control-socket commands and the periodic status line.

``start_operations(global_config, callmap)`` is what ``main()`` calls once the SIP stack and the
call map exist and before the reactor runs. It opens the control socket (``-c``), logs a status
line every 60 s and installs the signal handlers:

- SIGTERM / SIGINT: stop safely. New INVITEs get 503, every call is hung up (BYE on both legs);
  the reactor stops once no call is left and every accounting record is answered, or after
  ``stop_timeout`` seconds at the latest (``main()`` then spools the unanswered records).
- SIGHUP: hang up every call, keep running.
- SIGUSR1: reopen the log files (logrotate); SIGUSR2: toggle debug logging.

Signal handlers only queue work with ``reactor.callFromThread``, so all real work happens on the
reactor, between events. They are installed again once the reactor runs, because Twisted installs
its own SIGTERM/SIGINT handlers when ``reactor.run()`` starts.
"""

from __future__ import annotations

import signal
import sys
from collections import Counter
from types import FrameType
from typing import Any, Optional

from twisted.internet.error import ReactorNotRunning

from sippy.CallMap import CallMap
from sippy.CLIManager import CLIConnectionManager, CLIManager, CLISocketInUse, UnknownCommand
from sippy.Daemon import reopen as reopen_stdio
from sippy.misc import sip_hostport
from sippy.RadiusAcctSpool import spool_status
from sippy.SipLogger import SIPLOG_DBUG, SIPLOG_ERR, SIPLOG_INFO, SipLogger
from sippy.Time.MonoTime import MonoTime
from sippy.Time.Timeout import Timeout
from sippy.Wss_server import INVALID_DOMAIN

__all__ = ("B2BOperations", "start_operations", "STATUS_INTERVAL", "STOP_TIMEOUT", "LONG_TRANSACTION")

# Period of the status line in the log, seconds.
STATUS_INTERVAL = 60.0
# SIGTERM: longest wait for calls to finish their BYE exchanges before the reactor stops anyway.
STOP_TIMEOUT = 3.0
# How often the stopping B2BUA looks whether every call is gone.
STOP_POLL = 0.1
# `llt` lists transactions at least this old, seconds.
LONG_TRANSACTION = 60.0

# Leg states (CallMap.listCalls) in which a hung-up leg has nothing left to send.
FINISHED_LEG_STATES = ("Disconnected", "Failed", "Dead")
HANDLED_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGUSR1, signal.SIGUSR2)


def _hostport(addr: Optional[tuple[str, int]]) -> str:
    if addr is None:
        return "N/A:0"
    return sip_hostport(*addr)


def _leg_address(addr: Optional[tuple[str, int]], wss: Any) -> str:
    """A leg's remote as `l` shows it: host:port, or `wss:host:port` (the peer of the connection)
    for a leg reached over a WebSocket connection (its target host is the connection's name)."""
    if addr is None or wss is None or not str(addr[0]).endswith(INVALID_DOMAIN):
        return _hostport(addr)
    proto = wss.connection(addr)
    return wss.addr2str(proto.ra) if proto is not None else f"wss:{_hostport(addr)}"


def _counts(items: Any) -> str:
    """`kind N, kind N` for the non-zero counts, sorted by kind; `none` when there are none."""
    text = ", ".join(f"{kind} {n}" for kind, n in sorted(items) if n)
    return text or "none"


def add_counts(into: dict[str, Any], counts: dict[str, Any]) -> dict[str, Any]:
    """Add counts (numbers, nested by name) into `into`, key by key; returns `into`."""
    for key, value in counts.items():
        if isinstance(value, dict):
            add_counts(into.setdefault(key, {}), value)
        else:
            into[key] = into.get(key, 0) + value
    return into


def _connections(name: str, c: dict[str, Any]) -> str:
    closed = _counts(c["closed"].items())
    return f"; {name} connections: {c['open']} open, {c['total']} since start, closed: {closed}"


def _format_stream(by_transport: dict[str, dict[str, Any]]) -> str:
    return "".join(_connections(transport.upper(), c) for transport, c in by_transport.items())


def format_status(c: dict[str, Any]) -> str:
    """The status line from `B2BOperations.statusCounts()` (or a group's sum of them)."""
    return (
        f"status: {c['active']} active calls, {c['total']} calls since start, {c['failed']} failed, "
        f"{c['client']} client / {c['server']} server transactions; bad messages: "
        f"{_counts(c['bad'].items())}; refused at a bound: {_counts(c['refused'].items())}"
        + (f"; {spool_status(c['spool'])}" if "spool" in c else "")
        + (_connections("WebSocket", c["wss"]) if "wss" in c else "")
        + _format_stream(c.get("stream", {}))
    )


class B2BOperations:
    """The operator's handles on a running B2BUA; everything here runs on the reactor."""

    def __init__(
        self,
        global_config: dict,
        callmap: CallMap,
        *,
        reactor: Any = None,
        stop_timeout: float = STOP_TIMEOUT,
    ) -> None:
        if reactor is None:
            from twisted.internet import reactor
        self.global_config = global_config
        self.callmap = callmap
        self.reactor = reactor
        self.stop_timeout = stop_timeout
        self.cli: Optional[CLIConnectionManager] = None
        self.status_timer: Optional[Timeout] = None
        self.stopping = False
        self._stop_timer: Optional[Timeout] = None
        self._stop_started: Optional[float] = None

    @property
    def logger(self) -> Optional[SipLogger]:
        return self.global_config.get("_sip_logger")

    def log(self, text: str, level: int = SIPLOG_INFO) -> None:
        """Through the SIP logger; plain stdout/stderr (the daemon's -L file) when there is none."""
        logger = self.logger
        if logger is None:
            print(text, file=sys.stderr if level >= SIPLOG_ERR else sys.stdout)
        elif logger.isEnabledFor(level):
            logger.write(text, level=level)

    # ----- control socket -----

    def startCLI(self, address: Optional[str] = None) -> Optional[CLIConnectionManager]:
        """Listen on the control socket; a socket that cannot be opened is logged, not fatal.

        The default path (/var/run/b2bua.sock) is not writable for an unprivileged user, and losing
        the control socket must not keep the B2BUA from carrying calls. A unix socket another
        process listens on is the exception: CLISocketInUse goes up, as a second B2BUA with the
        same socket must not start.
        """
        cfg = self.global_config
        if address is None:
            address = cfg.get("b2bua_socket")
        try:
            self.cli = CLIConnectionManager(
                self.recvCommand,
                address,
                reactor=self.reactor,
                sock_mode=cfg.get("_b2bua_socket_mode"),
                allow=cfg.get("_b2bua_socket_allow"),
            )
        except CLISocketInUse:
            raise
        except Exception as exc:  # CannotListenError and friends: the reason is in the message
            self.log(f"control socket {address}: cannot listen ({exc}), continuing without it", SIPLOG_ERR)
            self.cli = None
        return self.cli

    def recvCommand(self, clim: CLIManager, cmd_line: str) -> None:
        """The CLIConnectionManager callback: one command line, answered on clim (`q` is the
        manager's own)."""
        args = cmd_line.split()
        cmd = args.pop(0).lower()
        if cmd == "l":
            clim.send(self.formatCalls())
        elif cmd in ("lt", "llt"):
            clim.send(self.formatTransactions(LONG_TRANSACTION if cmd == "llt" else None))
        elif cmd == "d":
            clim.send(self.disconnectCommand(args))
        elif cmd == "r":
            clim.send(self.mediaTimeoutCommand(args))
        else:
            raise UnknownCommand(cmd)

    def formatCalls(self) -> str:
        """The `l` answer: one line per call, then `Total: N`."""
        lines = ["In-memory calls:\n"]
        wss = self.global_config.get("_wss_server")
        for info in self.callmap.listCalls():
            cc = self.callmap.getCall(info["call_id"])
            legs = []
            for key in ("a", "o"):
                leg = info[key]
                if leg is None:
                    legs.append("N/A")
                else:
                    # Caller's number first on both legs, as Sippy's uaA.getCLD()/uaO.getCLI().
                    remote = _leg_address(leg["remote"], wss)
                    if leg.get("transport") in ("tcp", "tls"):
                        remote = f"{leg['transport']}:{remote}"
                    legs.append(f"{leg['state']} {remote} {leg['cli']} {leg['cld']}")
            rtpps = getattr(cc, "rtp_proxy_session", None)
            relay = f" via RTPproxy {rtpps.rtp_proxy_client}" if rtpps is not None else ""
            if getattr(cc, "from_browser", False):
                # The caller is a browser (with -r its ICE + DTLS-SRTP ends on the proxy).
                relay += ", WebRTC caller"
            lines.append(f"{info['call_id']}: {self.ccState(cc)} ({legs[0]} -> {legs[1]}){relay}\n")
        lines.append(f"Total: {len(lines) - 1}\n")
        return "".join(lines)

    @staticmethod
    def ccState(cc: Any) -> str:
        """A controller's state name (Sippy's `cc.state.sname`)."""
        state = getattr(cc, "state", None)
        return getattr(state, "sname", None) or str(state)

    def formatTransactions(self, min_age: Optional[float] = None) -> str:
        """The `lt` (min_age None) and `llt` answers: live transactions, server then client, one
        a line: `<Call-ID> <tid> <method> <state> <transport:peer>`, llt only those at least
        min_age old, with their age."""
        tm = self.global_config.get("_sip_tm")
        out = []
        for side in ("server", "client"):
            out.append(f"In-memory {side} transactions:\n")
            if tm is None:
                continue
            for t in tm.listTransactions(side, min_age or 0.0):
                line = f"{t.call_id} {t.tid} {t.method} {t.state} {t.peer}"
                out.append(f"{line} {t.age:.1f}\n" if min_age is not None else line + "\n")
        return "".join(out)

    def disconnectCommand(self, args: list[str]) -> str:
        """`d <call-id>` / `d *`: hang up, answer OK or ERROR."""
        if len(args) != 1:
            return "ERROR: syntax error: d <call-id>\n"
        if args[0] == "*":
            self.callmap.discAll()
            return "OK\n"
        cc = self.callmap.getCall(args[0])
        if cc is None:
            return f"ERROR: no call with id of {args[0]} has been found\n"
        cc.disconnect(MonoTime())
        return "OK\n"

    def mediaTimeoutCommand(self, args: list[str]) -> str:
        """`r <call number> [<media index>]`: what RTPproxy writes when a call's media stopped
        (the notify tag of each U); the call is hung up, the B2BUA as release source."""
        if not 1 <= len(args) <= 2 or not all(x.isdigit() for x in args):
            return "ERROR: syntax error: r <call number> [<media index>]\n"
        number = int(args[0])
        cc = next((x for x in self.callmap.ccmap if getattr(x, "id", None) == number), None)
        if cc is None:
            return f"ERROR: no call with number {number} has been found\n"
        media_index = int(args[1]) if len(args) == 2 else 0
        self.log(f"media timeout of call {number} (media line {media_index}): disconnecting")
        cc.disconnect(MonoTime(), origin="media_timeout", media_index=media_index)
        return "OK\n"

    # ----- status line -----

    def statusLine(self) -> str:
        """Calls, transactions, then since start: bad messages by kind, what a bound refused and
        (with accounting) the spool."""
        return format_status(self.statusCounts())

    def statusCounts(self) -> dict[str, Any]:
        """The numbers of the status line (JSON-able; a --workers group adds its workers' up,
        see ``add_counts``)."""
        tm = self.global_config.get("_sip_tm")
        refused = getattr(tm, "refused", {})
        counts: dict[str, Any] = {
            "active": self.callmap.ncalls_active,
            "total": self.callmap.ncalls_total,
            "failed": self.callmap.ncalls_failed,
            "client": len(getattr(tm, "tclient", ())),
            "server": len(getattr(tm, "tserver", ())),
            "bad": dict(getattr(tm, "bad_counts", {})),
            "refused": {
                "calls": self.callmap.ncalls_refused,
                "server transactions": refused.get("server", 0),
                "client transactions": refused.get("client", 0),
            },
        }
        spool = self.global_config.get("_acct_spool")
        if spool is not None:
            counts["spool"] = spool.counts()
        wss = self._wssCounts()
        if wss is not None:
            counts["wss"] = wss
        counts["stream"] = self._streamCounts()
        return counts

    def _streamCounts(self) -> dict[str, dict[str, Any]]:
        """Connections of --tcp_socket / --tls_socket listeners by transport (closes we made:
        idle, framing)."""
        by_transport: dict[str, dict[str, Any]] = {}
        for server in self.global_config.get("_stream_servers", ()):
            st = server.conn_stats
            add_counts(
                by_transport.setdefault(server.transport, {}),
                {"open": st.open, "total": st.total, "closed": dict(st.closed)},
            )
        return by_transport

    def _streamStatus(self) -> str:
        """`; TCP connections: N open, N since start, closed: <reason N, ...>` per transport."""
        return _format_stream(self._streamCounts())

    def _wssCounts(self) -> Optional[dict[str, Any]]:
        servers = self.global_config.get("_wss_servers")
        if not servers:
            return None
        closed: Counter = sum((s.wss_stats.closed for s in servers), Counter())
        return {
            "open": sum(s.wss_stats.open for s in servers),
            "total": sum(s.wss_stats.total for s in servers),
            "closed": dict(closed),
        }

    def logStatus(self) -> None:
        self.log(self.statusLine())

    def startStatus(self, interval: float = STATUS_INTERVAL) -> Timeout:
        """Log the status line every `interval` seconds, first after one interval."""
        if self.status_timer is not None:
            self.status_timer.cancel()
        self.status_timer = Timeout(self.logStatus, interval, -1, reactor=self.reactor)
        return self.status_timer

    # ----- signals -----

    def installSignals(self) -> None:
        """Install the handlers now and again once the reactor runs (after Twisted's own)."""
        self._setHandlers()
        self.reactor.callWhenRunning(self._setHandlers)

    def _setHandlers(self) -> None:
        for signum in HANDLED_SIGNALS:
            signal.signal(signum, self._onSignal)

    def _onSignal(self, signum: int, frame: Optional[FrameType]) -> None:
        # Interrupts whatever runs now: queue the work for the reactor and return at once.
        self.reactor.callFromThread(self.handleSignal, signum)

    def handleSignal(self, signum: int) -> None:
        if signum in (signal.SIGTERM, signal.SIGINT):
            self.safeStop(signum)
        elif signum == signal.SIGHUP:
            self.log(f"Signal {signum} received, disconnecting {self.callmap.ncalls_active} call(s)")
            self.callmap.discAll()
        elif signum == signal.SIGUSR1:
            self.reopenLogs(signum)
        elif signum == signal.SIGUSR2:
            self.toggleDebug()

    def reopenLogs(self, signum: int = signal.SIGUSR1) -> None:
        """Start new log files under the configured names (the old ones were renamed)."""
        if not self.global_config.get("foreground", False) and self.global_config.get("logfile"):
            # The daemon's stdout/stderr: the -L file
            reopen_stdio(signum, self.global_config["logfile"])
        logger = self.logger
        if logger is not None:
            logger.reopen()
            if logger.bend == "logfile":
                self.log(f"Signal {signum} received, reopened logs")

    def toggleDebug(self) -> None:
        logger = self.logger
        if logger is None:
            return
        logger.toggleDebug()
        state = "on" if logger.level == SIPLOG_DBUG else "off"
        logger.write(f"debug logging {state}", level=max(logger.level, SIPLOG_INFO))

    def safeStop(self, signum: int = signal.SIGTERM) -> None:
        """Refuse new calls with 503, hang up the rest, stop the reactor once they are gone.

        A second request while stopping stops at once.
        """
        if self.stopping:
            self._finishStop()
            return
        self.stopping = True
        self.log(f"Signal {signum} received, stopping: disconnecting {self.callmap.ncalls_active} call(s)")
        self.callmap.cc_factory = self._refuseCall
        self._stop_started = self.reactor.seconds()
        self.callmap.discAll()
        self._stop_timer = Timeout(self._checkStop, STOP_POLL, -1, reactor=self.reactor)

    @staticmethod
    def _refuseCall(global_config: dict, req: Any, sip_t: Any) -> Any:
        return req.genResponse(503, "Service Unavailable")

    def pendingHangups(self) -> int:
        """Calls with a leg still up, plus BYEs/CANCELs still waiting for their answer.

        A hung-up call stays in the call map until its legs go dead (32 s, to absorb late
        retransmissions): waiting for that would hold a stop for half a minute.
        """
        n = 0
        for info in self.callmap.listCalls():
            legs = (info["a"], info["o"])
            if any(leg is not None and leg["state"] not in FINISHED_LEG_STATES for leg in legs):
                n += 1
        tm = self.global_config.get("_sip_tm")
        for t in tuple(getattr(tm, "tclient", {}).values()):
            if t.method in ("BYE", "CANCEL") and t.state.__name__ in ("TRYING", "RINGING"):
                n += 1
        return n

    def pendingAccounting(self) -> int:
        """Accounting records neither answered nor spooled yet (the Stops the hang-ups made)."""
        spool = self.global_config.get("_acct_spool")
        return spool.unsaved() if spool is not None else 0

    def _checkStop(self) -> None:
        assert self._stop_started is not None
        waited = self.reactor.seconds() - self._stop_started
        if waited >= self.stop_timeout or self.pendingHangups() + self.pendingAccounting() == 0:
            self._finishStop()

    def _finishStop(self) -> None:
        if self._stop_timer is not None:
            self._stop_timer.cancel()
        pending = self.pendingHangups()
        if pending:
            self.log(f"stopping with {pending} call(s) or hang-up(s) not finished", SIPLOG_ERR)
        unanswered = self.pendingAccounting()
        if unanswered:
            self.log(f"stopping with {unanswered} accounting record(s) unanswered: spooled", SIPLOG_ERR)
        self.callmap.shutdown()
        self.shutdown()
        self._stopReactor()

    def _stopReactor(self) -> None:
        try:
            self.reactor.stop()
        except ReactorNotRunning:
            # a shutdown hook stopped it already
            pass

    def shutdown(self) -> None:
        """Close the control socket and stop the status line; its unix socket file is gone when
        this returns, so the reactor may stop right after."""
        if self.status_timer is not None:
            self.status_timer.cancel()
            self.status_timer = None
        cli, self.cli = self.cli, None
        if cli is not None:
            cli.shutdown()


def start_operations(
    global_config: dict,
    callmap: CallMap,
    *,
    reactor: Any = None,
    status_interval: Optional[float] = STATUS_INTERVAL,
    stop_timeout: float = STOP_TIMEOUT,
    control: bool = True,
) -> B2BOperations:
    """For main(), before the reactor runs: control socket, status line, signal handlers.

    A --workers worker has neither control socket nor status line of its own (``control=False``,
    ``status_interval=None``): its parent serves the group's (sippy.WorkerControl)."""
    ops = B2BOperations(global_config, callmap, reactor=reactor, stop_timeout=stop_timeout)
    if control:
        ops.startCLI()
    if status_interval is not None:
        ops.startStatus(status_interval)
    ops.installSignals()
    return ops
