#!/usr/bin/env python3
"""CPU and memory per call of b2bua_radius in one process, without the network or SIPp's timing.

    python bench/call_cpu.py [--calls 3000] [--profile OUT] [--hold N [--top K]]

The B2BUA is built as `b2bua_radius -f -u -A 0 -s ROUTE` builds it (SIPLOG_LVL=ERR), but its UDP
server writes into a list instead of the socket; a caller and a callee written here answer the
way SIPp's built-in uac/uas scenarios do (INVITE; 180, 200 with SDP; ACK; BYE; 200), datagram for
datagram. Only the B2BUA's handling of each datagram is timed (process CPU time), so the figure is
steady on a busy machine: it is the number to compare before and after a hot-path change.
`--profile OUT` writes a cProfile of that handling. `--hold N` sets up N calls, keeps them
answered and prints the Python memory (tracemalloc) and RSS each costs, then ends them and prints
what they keep while they linger (the B2BUA absorbs retransmissions for 32 s after a call ends).
`--top K` then lists, for the calls just answered, the K allocation sites that keep the most per
call (tracemalloc, by the line that allocated): where to look for memory to save.
"""

from __future__ import annotations

import argparse
import gc
import os
import socket
import sys
import time
import tracemalloc
from typing import Callable

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
os.environ.setdefault("SIPLOG_LVL", "ERR")

from twisted.internet import reactor  # noqa: E402

from sippy import b2bua_radius  # noqa: E402
from sippy.CallMap import tune_gc  # noqa: E402
from sippy.Udp_server import Udp_server  # noqa: E402

B2B = ("127.0.0.1", 5060)
UAC = ("127.0.0.1", 5061)
UAS = ("127.0.0.1", 5062)

SDP = (
    "v=0\r\no=user1 53655765 2353687637 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
    "m=audio 6000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n"
)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def headers(msg: str) -> dict[str, list[str]]:
    """Header lines of a datagram by lower-case name (our own peers need nothing more)."""
    out: dict[str, list[str]] = {}
    for line in msg.split("\r\n\r\n", 1)[0].split("\r\n")[1:]:
        name = line.partition(":")[0].strip().lower()
        out.setdefault({"v": "via", "f": "from", "t": "to", "i": "call-id"}.get(name, name), []).append(line)
    return out


def uac_request(method: str, n: int, cseq: int, to_tag: str = "", body: str = "") -> bytes:
    ctype = "Content-Type: application/sdp\r\n" if body else ""
    return (
        f"{method} sip:service@{B2B[0]}:{B2B[1]} SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP {UAC[0]}:{UAC[1]};branch=z9hG4bK-{n}-{cseq}-{method}\r\n"
        f"From: sipp <sip:sipp@{UAC[0]}:{UAC[1]}>;tag=1SIPpTag00{n}\r\n"
        f"To: service <sip:service@{B2B[0]}:{B2B[1]}>{to_tag}\r\n"
        f"Call-ID: {n}-1@127.0.0.1\r\nCSeq: {cseq} {method}\r\n"
        f"Contact: sip:sipp@{UAC[0]}:{UAC[1]}\r\nMax-Forwards: 70\r\nSubject: Performance Test\r\n"
        f"{ctype}Content-Length: {len(body)}\r\n\r\n{body}"
    ).encode()


def uas_response(req: str, code: str, tag: str, body: str = "") -> bytes:
    h = headers(req)
    to = h["to"][0] + (f";tag={tag}" if ";tag=" not in h["to"][0] else "")
    lines = [f"SIP/2.0 {code}", *h["via"], h["from"][0], to, h["call-id"][0], h["cseq"][0]]
    lines.append(f"Contact: <sip:{UAS[0]}:{UAS[1]};transport=UDP>")
    if body:
        lines.append("Content-Type: application/sdp")
    lines.append(f"Content-Length: {len(body)}\r\n\r\n{body}")
    return "\r\n".join(lines).encode()


def uas_request_line(req: str) -> tuple[str, str]:
    first = req.split("\r\n", 1)[0]
    return first.split(" ", 1)[0], first


class Harness:
    def __init__(self) -> None:
        cfg = b2bua_radius.load_config(
            ["-f", "-u", "-A", "0", "-s", f"{UAS[0]}:{UAS[1]}", "-l", B2B[0], "-p", str(free_port())]
        )
        b2bua_radius.start_logger(cfg)
        self.callmap = b2bua_radius.build_call_machinery(cfg)
        self.server: Udp_server = cfg["_sip_tm"].transport
        self.out: list[tuple[bytes, tuple[str, int]]] = []
        self.server._write_now = lambda data, address: self.out.append((data, address))  # type: ignore
        self.cpu = 0.0
        # The reactor is never run: its clock is moved by hand (`advance`) and its due calls are
        # run after each datagram, as its loop would.
        self.skew = 0.0
        reactor.seconds = lambda: time.time() + self.skew  # type: ignore[method-assign]

    def advance(self, secs: float) -> None:
        """Let secs pass for the reactor's timers (transaction and call lingering ends): its due
        calls are run until none is left (timer lanes fire a batch per call, then rearm at once)."""
        self.skew += secs
        reactor.runUntilCurrent()
        while any(c.getTime() <= reactor.seconds() for c in reactor.getDelayedCalls()):
            reactor.runUntilCurrent()

    def feed(self, data: bytes, source: tuple[str, int]) -> list[tuple[str, tuple[str, int]]]:
        """One datagram into the B2BUA; what it sent in answer (timed: this is the B2BUA's work)."""
        t0 = time.process_time()
        self.server._received(data, source)
        reactor.runUntilCurrent()
        self.cpu += time.process_time() - t0
        out = [(d.decode(), a) for d, a in self.out]
        self.out.clear()
        return out

    def call(self, n: int, hang_up: bool = True) -> Callable[[], None]:
        """One call to the answer (and its end when hang_up); returns the caller's BYE step."""
        sent = self.feed(uac_request("INVITE", n, 1, body=SDP), UAC)
        invite = next(m for m, a in sent if a == UAS)
        self.feed(uas_response(invite, "180 Ringing", f"2SIPpTag01{n}"), UAS)
        sent = self.feed(uas_response(invite, "200 OK", f"2SIPpTag01{n}", SDP), UAS)
        ok = next(m for m, a in sent if a == UAC)
        tag = ";tag=" + headers(ok)["to"][0].split(";tag=")[1].split(";")[0]
        self.feed(uac_request("ACK", n, 1, tag), UAC)

        def bye() -> None:
            sent = self.feed(uac_request("BYE", n, 2, tag), UAC)
            req = next(m for m, a in sent if a == UAS)
            assert any(m.startswith("SIP/2.0 200") for m, a in sent if a == UAC), sent
            self.feed(uas_response(req, "200 OK", f"2SIPpTag01{n}"), UAS)

        if hang_up:
            bye()
        return bye


def rss_kb() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def show_top(base: tracemalloc.Snapshot, calls: int, k: int) -> None:
    """The k allocation sites whose memory grew most since base, per call."""
    gc.collect()
    here = os.path.abspath(__file__)
    stats = [
        s
        for s in tracemalloc.take_snapshot().compare_to(base, "lineno")
        if s.traceback[0].filename not in (here, tracemalloc.__file__)
    ]
    for s in stats[:k]:
        frame = s.traceback[0]
        where = f"{os.path.relpath(frame.filename, ROOT)}:{frame.lineno}"
        print(f"  {s.size_diff / calls:7.1f} B {s.count_diff / calls:5.2f} blocks  {where}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--calls", type=int, default=3000)
    ap.add_argument("--warmup", type=int, default=300)
    ap.add_argument("--profile", metavar="OUT")
    ap.add_argument("--hold", type=int, metavar="N")
    ap.add_argument("--top", type=int, default=0, metavar="K", help="with --hold: the K biggest sites")
    opts = ap.parse_args()
    h = Harness()
    tune_gc()
    for n in range(opts.warmup):
        h.call(n)
    if opts.hold:
        gc.collect()
        tracemalloc.start()
        base_py = tracemalloc.get_traced_memory()[0]
        base_snap = tracemalloc.take_snapshot() if opts.top else None
        byes = [h.call(opts.warmup + n, hang_up=False) for n in range(opts.hold)]

        def show(what: str) -> None:
            gc.collect()
            py = tracemalloc.get_traced_memory()[0]
            print(f"{what:<44} {(py - base_py) / opts.hold / 1024:5.1f} KB per call (Python heap)")

        print(f"{opts.hold} calls")
        show("held, just answered")
        if base_snap is not None:
            show_top(base_snap, opts.hold, opts.top)
        h.advance(40)
        show("held, 40 s later (transactions ended)")
        for bye in byes:
            bye()
        del byes
        show("ended, lingering (absorbing retransmissions)")
        h.advance(40)
        show("ended, 40 s later")
        return 0
    h.cpu = 0.0
    prof = None
    if opts.profile:
        import cProfile

        prof = cProfile.Profile()
        prof.enable()
    for n in range(opts.calls):
        h.call(opts.warmup + n)
    if prof is not None:
        prof.disable()
        prof.dump_stats(opts.profile)
    print(f"calls:             {opts.calls}")
    print(f"B2BUA CPU per call: {1e6 * h.cpu / opts.calls:.0f} us (14 datagrams, socket writes excluded)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
