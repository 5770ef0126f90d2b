"""The call map: the transaction manager's `req_cb`, between the SIP stack and the call controllers.

Both B2BUA scripts share it. A new INVITE gets a call controller from a factory; everything else that
reaches `req_cb` is answered here (481, 482, 415/406 to an INVITE with no SDP to offer or take, 200
to OPTIONS, 501). In-dialog requests for live dialogs do not come here at all: every UA registers its
Call-ID with the transaction manager (`regConsumer`), which hands them straight to the UA. The map
keeps its own Call-ID -> controller dict (both legs) for the control socket, `discAll()`, loop
detection and the counters.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import os
from typing import Any, Callable, Optional, Protocol, Union

from sippy.SipHeader import SipHeader
from sippy.SipLogger import SIPLOG_INFO, SIPLOG_WARN
from sippy.SipResponse import SipResponse
from sippy.SipTransactionManager import RETRY_AFTER, unavailable
from sippy.Time.MonoTime import MonoTime
from sippy.Time.Timeout import Timeout

# Cyclic GC thresholds for a running B2BUA (Python's default is 700, 10, 10). Calls are freed by
# reference counting (tests/test_load_regressions.py runs a call with the collector off); the cyclic
# GC only finds rare leftovers. So only the young generation is collected automatically: a pass over
# the last 20000 objects allocated, ~3 ms, which frees a cycle made and dropped meanwhile (an
# exception's traceback). The older generations are never collected automatically: they hold every
# call up or lingering (32 s after its end), and a pass over them stalled the reactor for 100-220 ms
# at 500 calls/s (a generation-1 pass every ~10 s, which alone put p99 setup latency at 80-520 ms;
# a full pass over a few thousand calls is longer still). tidy_memory() collects them all once the
# map is idle, and, so that a cycle that outlived a young pass cannot pile up on a box that is never
# idle, every FULL_GC_PERIOD seconds while calls are up: one such stall in ten minutes is far below
# anyone's p99 (at 500 calls/s it is a pass over ~920,000 objects, ~420 ms of CPU, long enough for
# the callers' INVITEs sent meanwhile to be retransmitted: a step of bench/cps.py that holds one is
# not clean).
GC_NEVER = 1 << 30
GC_THRESHOLDS = (20000, GC_NEVER, GC_NEVER)
FULL_GC_PERIOD = 600.0
# Seconds between two passes over the young generation whatever the count says. CPython counts
# allocations minus deallocations of any generation, so once calls end as fast as they start (each
# freeing a call of 32 s ago) the count stays low while the young generation grows: at 500 calls/s a
# young pass came every few seconds over 40,000-140,000 objects, 35-120 ms of CPU each. On a timer
# it covers what the last GC_YOUNG_EVERY seconds left alive: ~2 ms at 500 calls/s.
GC_YOUNG_EVERY = 0.25


# The default bound on calls in memory (--max_calls): a share of the memory available at start,
# at a budget per call. A call (both legs, their transactions, and the 32 s it stays after its end to
# absorb retransmissions) takes some 20-30 KiB; the budget leaves room for long headers and SDP.
CALL_MEMORY_BUDGET = 64 * 1024
CALL_MEMORY_SHARE = 0.5
MIN_MAX_CALLS = 100
_CGROUP_FILES = ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current")


def available_memory() -> int:
    """Bytes this process may still use: MemAvailable, capped by a cgroup (v2) memory limit."""
    avail = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    avail = int(line.split()[1]) * 1024
                    break
    except OSError:
        pass
    try:
        limit, current = (_read_first(path) for path in _CGROUP_FILES)
    except (OSError, ValueError):
        return avail
    return min(avail, max(0, int(limit) - int(current)))


def _read_first(path: str) -> str:
    with open(path, encoding="ascii") as f:
        return f.read().split()[0]


def default_max_calls(mem_available: Optional[int] = None) -> int:
    """The --max_calls used when none is given (see CALL_MEMORY_BUDGET)."""
    if mem_available is None:
        mem_available = available_memory()
    return max(MIN_MAX_CALLS, int(mem_available * CALL_MEMORY_SHARE) // CALL_MEMORY_BUDGET)


def max_calls_from(global_config: dict) -> int:
    """The programs' bound on calls: --max_calls, else default_max_calls()."""
    return global_config.get("max_calls") or default_max_calls()


# Seconds after the last call left the map before tidy_memory() runs. A call leaves the map when
# both legs are dead, 32 s after its end; the transactions of its last requests linger as long
# (64*T1), so by then they are gone too.
IDLE_TIDY_DELAY = 10.0


def _malloc_trim() -> Callable[[int], int]:
    """glibc's malloc_trim, or a no-op where the C library has none (musl, macOS)."""
    name = ctypes.util.find_library("c")
    trim = getattr(ctypes.CDLL(name), "malloc_trim", None) if name else None
    return trim if trim is not None else (lambda pad: 0)


malloc_trim = _malloc_trim()


def tidy_memory() -> None:
    """Give the memory of a finished burst of calls back to the system. A full collection, which
    GC_THRESHOLDS leave to this, finds the cycles that outlived a young pass, and empties CPython's free lists
    (thousands of spare tuples, floats, dicts kept for reuse): their blocks, scattered over the
    burst's 1 MiB pymalloc arenas, are what kept otherwise empty arenas mapped. malloc_trim(0) then
    returns glibc's free heap pages. With no call up this takes a few ms."""
    gc.collect()
    malloc_trim(0)


def tune_gc(reactor: Any = None) -> Optional[Timeout]:
    """Called by the B2BUA programs once started: what exists now (modules, configuration, the
    transaction manager) lives as long as the process, so it leaves the collector's view for
    good (gc.freeze), and the collector runs as GC_THRESHOLDS says; with a reactor, also every
    GC_YOUNG_EVERY seconds on it (the timer is returned). CPython only: PyPy's collector has
    neither generation thresholds nor freeze, and sizes its nursery itself."""
    if not hasattr(gc, "freeze"):
        return None
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)
    if reactor is None:
        return None
    return Timeout(gc.collect, GC_YOUNG_EVERY, -1, 0, reactor=reactor)


# What this B2BUA answers to out-of-dialog OPTIONS (RFC 3261 11.2).
ALLOW_METHODS = "INVITE, ACK, CANCEL, BYE, OPTIONS, INFO"
# Accept values under which a caller takes an SDP answer (RFC 3261 20.1).
SDP_ACCEPT = ("application/sdp", "application/*", "*/*")


def media_refusal(req: Any) -> Optional[SipResponse]:
    """415 to a body that cannot hold SDP, 406 when the caller accepts no SDP answer (RFC 4475
    3.3.6, 3.3.15); None when the call may go on."""
    body = req.getBody()
    mtype = body.getType() if body is not None else "application/sdp"
    if mtype != "application/sdp" and not mtype.startswith("multipart/"):
        resp = req.genResponse(415, "Unsupported Media Type")
        resp.appendHeader(SipHeader(name="accept", body="application/sdp"))
        return resp
    values = ",".join(hf.getValue() or "" for hf in req.getHFs("accept"))
    types = {t.split(";", 1)[0].strip().lower() for t in values.split(",")} - {""}
    if types and not types.intersection(SDP_ACCEPT):
        return req.genResponse(406, "Not Acceptable")
    return None


class CallController(Protocol):
    """What the map needs from a call controller."""

    # The answering UA (facing the caller), made by the controller's constructor.
    uaA: Any
    # The originating UA (facing the callee), None until the controller makes it.
    uaO: Any

    def disconnect(self, rtime: Optional[MonoTime] = None) -> None: ...


# cc_factory(global_config, req, sip_t) -> a controller, or a SipResponse to refuse the call with.
CCFactory = Callable[[dict, Any, Any], Union[CallController, Any]]


def _reached_over(ua: Any, name: str) -> bool:
    """Whether ua's peer is reached over the connection called name (see Remote_address.received)."""
    if ua is None:
        return False
    return any(addr is not None and addr[0] == name for addr in (ua.rAddr, ua.rAddr0))


class CallMap:
    """Live calls by Call-ID, and the answers to requests no dialog claimed."""

    def __init__(
        self,
        global_config: dict,
        cc_factory: CCFactory,
        max_calls: Optional[int] = None,
        reactor: Any = None,
    ) -> None:
        self.global_config = global_config
        self.cc_factory = cc_factory
        # At most this many calls in memory (finished ones count until they are freed); more new
        # INVITEs get 503 with Retry-After. None: no bound (the B2BUA programs always set one).
        self.max_calls = max_calls
        self.ncalls_refused = 0
        # For the rate-limited line about refused calls (the transaction manager's LogLimiter).
        self.log_limiter: Any = None
        # Call-ID (either leg) -> controller, and controller -> its Call-IDs, insertion ordered.
        self.by_call_id: dict[str, CallController] = {}
        self.ccmap: dict[CallController, list[str]] = {}
        self.ncalls_total = 0
        self.ncalls_failed = 0
        # Run by shutdown(), in order, after every call was told to hang up.
        self.shutdown_hooks: list[Callable[[], Any]] = []
        # With a reactor, tidy_memory() runs IDLE_TIDY_DELAY s after the last call left the map
        # (if none came since), so that RSS falls back after a burst of calls.
        self.reactor = reactor
        self.idle_tidy: Any = None
        # With a reactor, a full collection every FULL_GC_PERIOD s while calls are up (see GC_THRESHOLDS).
        self.busy_collect: Any = None

    def logBound(self) -> None:
        """One line at start: the bound and where it came from, for an operator who sees 503s."""
        logger = self.global_config.get("_sip_logger")
        if self.max_calls is not None and logger is not None and logger.isEnabledFor(SIPLOG_INFO):
            origin = (
                "--max_calls" if self.global_config.get("max_calls") else "from the memory available at start"
            )
            logger.write(
                f"at most {self.max_calls} calls in memory ({origin}), more get 503", level=SIPLOG_INFO
            )

    @property
    def ncalls_active(self) -> int:
        return len(self.ccmap)

    # ----- the transaction manager's req_cb -----

    def recvRequest(self, req: Any, sip_t: Any) -> Optional[tuple]:
        """A request no UA claimed; returns (resp, cancel_cb, noack_cb) as req_cb must, or None."""
        method = req.getMethod()
        if method == "ACK":
            # The ACK of a 2xx for a dialog that is gone: nothing to answer (RFC 3261 17.2.3).
            return None
        call_id = str(req.getHFBody("call-id"))
        if req.getHFBody("to").getTag() is not None or method == "BYE":
            # In-dialog request for a dialog we do not have (RFC 3261 12.2.2).
            return (req.genResponse(481, "Call Leg/Transaction Does Not Exist"), None, None)
        if method == "INVITE":
            if call_id in self.by_call_id:
                # Same Call-ID as a live leg, not matched by its UA: merged request or our own
                # INVITE looping back (RFC 3261 8.2.2.2).
                return (req.genResponse(482, "Loop Detected"), None, None)
            refusal = media_refusal(req)
            if refusal is not None:
                return (refusal, None, None)
            return self.newCall(req, sip_t, call_id)
        if method == "OPTIONS":
            resp = req.genResponse(200, "OK")
            resp.appendHeader(SipHeader(name="allow", body=ALLOW_METHODS))
            return (resp, None, None)
        # RFC 3261 8.2.1: an unknown method gets 501 and what we do accept.
        resp = req.genResponse(501, "Not Implemented")
        resp.appendHeader(SipHeader(name="allow", body=ALLOW_METHODS))
        return (resp, None, None)

    def newCall(self, req: Any, sip_t: Any, call_id: str) -> Optional[tuple]:
        self.ncalls_total += 1
        if self.max_calls is not None and len(self.ccmap) >= self.max_calls:
            self.ncalls_failed += 1
            self.ncalls_refused += 1
            if self.log_limiter is not None:
                self.log_limiter.write(
                    "max_calls", SIPLOG_WARN, self.max_calls, " calls in memory: 503 to a new INVITE"
                )
            return (unavailable(req, RETRY_AFTER), None, None)
        cc = self.cc_factory(self.global_config, req, sip_t)
        if isinstance(cc, SipResponse):
            # The factory refused the call (403, 503...).
            self.ncalls_failed += 1
            return (cc, None, None)
        # Registered before the UA sees the INVITE: the UA may finish the call right away.
        self.addLeg(cc, call_id)
        try:
            return cc.uaA.recvRequest(req, sip_t)
        except Exception:
            # The INVITE is answered with an error (by the transaction layer): no call to keep.
            self.dropCall(cc, failed=True)
            raise

    # ----- registry -----

    def addLeg(self, cc: CallController, call_id: str) -> None:
        """Register one more Call-ID of cc (the originating leg's, once the controller makes it)."""
        self.by_call_id[call_id] = cc
        self.ccmap.setdefault(cc, []).append(call_id)
        if self.busy_collect is None and self.reactor is not None:
            self.busy_collect = self.reactor.callLater(FULL_GC_PERIOD, self._collectWhileBusy)

    def dropCall(self, cc: CallController, failed: bool = False) -> None:
        """The call is over (both legs finished); failed: it never got connected. Idempotent."""
        call_ids = self.ccmap.pop(cc, None)
        if call_ids is None:
            return
        for call_id in call_ids:
            if self.by_call_id.get(call_id) is cc:
                del self.by_call_id[call_id]
        if failed:
            self.ncalls_failed += 1
        if not self.ccmap and self.reactor is not None:
            if self.idle_tidy is not None and self.idle_tidy.active():
                self.idle_tidy.cancel()
            self.idle_tidy = self.reactor.callLater(IDLE_TIDY_DELAY, self._tidyIfIdle)
            if self.busy_collect is not None:
                self.busy_collect.cancel()
                self.busy_collect = None

    def _tidyIfIdle(self) -> None:
        self.idle_tidy = None
        if not self.ccmap:
            self.releaseEmptyTables()
            tidy_memory()

    def releaseEmptyTables(self) -> None:
        """Free the hash tables of the map and of the transaction manager that are empty: an
        emptied dict keeps the table it grew to in the burst (with 2,000 calls the map's two held
        ~180 KB, the manager's ~470 KB)."""
        for table in (self.by_call_id, self.ccmap):
            if not table:
                table.clear()
        tm = self.global_config.get("_sip_tm")
        if tm is not None:
            tm.releaseEmptyTables()

    def _collectWhileBusy(self) -> None:
        gc.collect()
        self.busy_collect = self.reactor.callLater(FULL_GC_PERIOD, self._collectWhileBusy)

    def getCall(self, call_id: str) -> Optional[CallController]:
        return self.by_call_id.get(call_id)

    # ----- control -----

    def listCalls(self) -> list[dict[str, Any]]:
        """One dict per live call, for the control socket: Call-IDs, leg states and addresses."""
        return [self._callInfo(cc, call_ids) for cc, call_ids in self.ccmap.items()]

    @staticmethod
    def _callInfo(cc: CallController, call_ids: list[str]) -> dict[str, Any]:
        info: dict[str, Any] = {"call_id": call_ids[0], "call_ids": tuple(call_ids)}
        for key, ua in (("a", cc.uaA), ("o", cc.uaO)):
            if ua is None:
                info[key] = None
                continue
            connected = ua.connect_ts is not None and ua.disconnect_ts is None
            info[key] = {
                "state": str(ua.state),
                "remote": ua.getRAddr0(),
                # The UAS's remote URI is the caller's (From), the UAC's is the callee's (To).
                "cli": ua.getCLD() if key == "a" else ua.getCLI(),
                "cld": ua.getCLI() if key == "a" else ua.getCLD(),
                "duration": (MonoTime() - ua.connect_ts) if connected else 0.0,
                "transport": ua.getTransport(),
            }
        return info

    def connectionClosed(self, ra: Any, server: Any = None) -> None:
        """A connection transport's close_callback (sippy.Wss_server): the connection `ra` came by
        is gone, so every call with a leg reached over it is hung up (BYE on the other leg,
        accounting Stop). Such a leg's remote target host is the connection's name (ra.received)."""
        name = ra.received
        rtime = MonoTime()
        for cc in tuple(self.ccmap):
            if any(_reached_over(ua, name) for ua in (cc.uaA, cc.uaO)):
                cc.disconnect(rtime)

    def discAll(self, rtime: Optional[MonoTime] = None) -> None:
        """Hang up every call (SIGTERM, control socket)."""
        if rtime is None:
            rtime = MonoTime()
        for cc in tuple(self.ccmap):
            cc.disconnect(rtime)

    def shutdown(self) -> None:
        """Hang up all calls, then run the shutdown hooks (flush accounting, stop the reactor...)."""
        logger = self.global_config.get("_sip_logger")
        if logger is not None and logger.isEnabledFor(SIPLOG_INFO) and self.ccmap:
            logger.write(f"shutdown: disconnecting {len(self.ccmap)} call(s)", level=SIPLOG_INFO)
        self.discAll()
        hooks, self.shutdown_hooks = self.shutdown_hooks, []
        for hook in hooks:
            hook()
