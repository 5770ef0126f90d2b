"""How many simultaneous WebRTC calls with two-way audio one b2bua_radius and one RTPproxy carry.

    python bench/webrtc_calls.py [--steps 10,20,40,60] [--hold 5] [--loss 0.02]

One headless Chromium page (JsSIP, tests/browser/webrtc.html) opens N calls at once over one WSS
connection to ``b2bua_radius -u -s <callee> -r <rtp.io proxy>``; the callee (here) answers each
with plain RTP (PCMU) on its own port and echoes every packet back. Once all N are confirmed, both
directions are watched for --hold seconds: at the callee, RTP from the browser per call (loss from
the sequence numbers); in the browser, getStats() per call (packets received and lost). A step
passes when every call lost at most --loss of its packets each way and still got 80 % of its 50
packets a second (media not stalled). CPU of the B2BUA, RTPproxy, Chromium and the callee (share
of one core) is sampled over the same window. Steps go up until one fails. Loopback; the browser
and the callee run on the same machine as the gateway, so the figure is a lower bound of what the
gateway alone carries.
"""

from __future__ import annotations

import argparse
import os
import secrets
import selectors
import shutil
import socket
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Optional

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.browser_util import MISSING, SKIP_REASON, build_site  # noqa: E402
from tests.rtpproxy_util import RtpProxy  # noqa: E402
from tests.sip_party import Msg  # noqa: E402
from tests.test_b2bua_radius_ops import wait_for  # noqa: E402
from tests.webrtc_e2e import Gateway, Page, rtp_payload  # noqa: E402

PPS = 50  # 20 ms packets


class Call:
    """One answered call at the callee: its RTP socket and what came in."""

    def __init__(self) -> None:
        self.rtp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.rtp.bind(("127.0.0.1", 0))
        self.rtp.setblocking(False)
        self.port = self.rtp.getsockname()[1]
        self.received = 0
        self.highest: Optional[int] = None  # extended (unwrapped) highest sequence number seen

    def sequence(self, seq: int) -> None:
        if self.highest is None:
            self.highest = seq
            return
        # The extended number nearest to the last one (RFC 3550 A.1, simplified).
        ext = self.highest - (self.highest & 0xFFFF) + seq
        if ext < self.highest - 0x8000:
            ext += 0x10000
        elif ext > self.highest + 0x8000:
            ext -= 0x10000
        self.highest = max(self.highest, ext)


class MultiCallee:
    """A UDP SIP callee for many calls at once: 200 with plain PCMU to each INVITE (its own RTP
    port per call), RTP echoed back with another SSRC, 200 to BYE."""

    def __init__(self) -> None:
        self.sip = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sip.bind(("127.0.0.1", 0))
        self.sip.setblocking(False)
        self.port = self.sip.getsockname()[1]
        self.calls: dict[str, Call] = {}
        self.selector = selectors.DefaultSelector()
        self.selector.register(self.sip, selectors.EVENT_READ)

    def _respond(self, msg: Msg, body: str = "") -> None:
        to = msg.h("to")
        if ";tag=" not in to:
            to += ";tag=" + secrets.token_hex(4)
        head = ["SIP/2.0 200 OK", *(f"Via: {v}" for v in msg.headers["via"])]
        head += [
            f"From: {msg.h('from')}",
            f"To: {to}",
            f"Call-ID: {msg.h('call-id')}",
            f"CSeq: {msg.h('cseq')}",
        ]
        if msg.method == "INVITE":
            head += [f"Contact: <sip:callee@127.0.0.1:{self.port}>", "Content-Type: application/sdp"]
        head.append(f"Content-Length: {len(body)}")
        self.sip.sendto(("\r\n".join(head) + "\r\n\r\n" + body).encode(), msg.source)

    def poll(self, timeout: float = 0.0) -> None:
        """Handle what has arrived (waiting up to ``timeout`` for something to arrive)."""
        for key, _ in self.selector.select(timeout):
            if key.data is None:
                self._sip()
                continue
            call = key.data
            if call.rtp.fileno() < 0:
                continue  # closed by a BYE handled in this same round
            for _ in range(50):
                try:
                    data, src = call.rtp.recvfrom(2048)
                except BlockingIOError:
                    break
                if rtp_payload(data) is not None:
                    call.received += 1
                    call.sequence(int.from_bytes(data[2:4], "big"))
                    ssrc = (int.from_bytes(data[8:12], "big") ^ 0x5A5A5A5A).to_bytes(4, "big")
                    call.rtp.sendto(data[:8] + ssrc + data[12:], src)

    def _sip(self) -> None:
        while True:
            try:
                data, src = self.sip.recvfrom(65536)
            except BlockingIOError:
                return
            msg = Msg(data, src)
            if msg.method == "INVITE":
                call = self.calls.get(msg.h("call-id"))
                if call is None:
                    call = self.calls[msg.h("call-id")] = Call()
                    self.selector.register(call.rtp, selectors.EVENT_READ, call)
                self._respond(
                    msg,
                    f"v=0\r\no=callee 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
                    f"m=audio {call.port} RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\na=ptime:20\r\n",
                )
            elif msg.method == "BYE":
                self._respond(msg)
                call = self.calls.pop(msg.h("call-id"), None)
                if call is not None:
                    self.selector.unregister(call.rtp)
                    call.rtp.close()
            elif msg.method not in (None, "ACK"):
                self._respond(msg)


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU time of these processes so far."""
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def group_pids(pgid: int) -> list[int]:
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if os.getpgid(int(entry)) == pgid:
                    pids.append(int(entry))
            except OSError:
                pass
    return pids


def pump(callee: MultiCallee, seconds: float) -> None:
    end = time.monotonic() + seconds
    while (left := end - time.monotonic()) > 0:
        callee.poll(min(left, 0.05))


def step(
    page: Page, callee: MultiCallee, proxy: RtpProxy, n: int, hold: float, loss: float, pids: dict[str, Any]
) -> dict:
    first = len(page.eval("window.confirmedAll()"))
    for _ in range(n):
        page.eval(f"window.call('{secrets.randbelow(90000) + 10000}')")
        pump(callee, 0.05)
    deadline = time.monotonic() + 30 + n * 0.2
    while time.monotonic() < deadline:
        pump(callee, 0.2)
        if all(page.eval("window.confirmedAll()")[first:]):
            break
    confirmed = sum(page.eval("window.confirmedAll()")[first:])
    pump(callee, 2)  # ICE and DTLS done for all
    calls = list(callee.calls.values())
    rx0 = [(c.received, c.highest or 0) for c in calls]
    in0 = page.eval("window.inboundAll()")[first:]
    cpu0 = {k: cpu_seconds(v()) for k, v in pids.items()}
    relay0 = proxy.info()
    t0 = time.monotonic()
    pump(callee, hold)
    elapsed = time.monotonic() - t0
    rx1 = [(c.received, c.highest or 0) for c in calls]
    in1 = page.eval("window.inboundAll()")[first:]
    relay1 = proxy.info()
    cpu = {k: 100 * (cpu_seconds(v()) - cpu0[k]) / elapsed for k, v in pids.items()}
    # Per call and direction: packets that arrived in the window, and the share lost (callee: gaps
    # in the sequence numbers; browser: getStats() packetsLost).
    to_callee = [b[0] - a[0] for a, b in zip(rx0, rx1)]
    lost_callee = [1 - (b[0] - a[0]) / max(1, b[1] - a[1]) for a, b in zip(rx0, rx1)]
    to_browser = [b[0] - a[0] for a, b in zip(in0, in1)]
    lost_browser = [(b[1] - a[1]) / max(1, b[0] - a[0] + b[1] - a[1]) for a, b in zip(in0, in1)]
    rate_floor = PPS * elapsed * 0.8  # media keeps coming (not stalled), give or take scheduling
    worst_loss = max(lost_callee + lost_browser, default=1.0)
    ok = (
        confirmed == n
        and len(calls) == n
        and worst_loss <= loss
        and min(to_callee + to_browser, default=0) >= rate_floor
    )
    page.eval("window.hangupAll()")
    pump(callee, 3)
    return {
        "calls": n,
        "confirmed": confirmed,
        "ok": ok,
        "min_to_callee": min(to_callee, default=0),
        "min_to_browser": min(to_browser, default=0),
        "worst_loss": worst_loss,
        "worst_loss_each_way": (max(lost_callee, default=1.0), max(lost_browser, default=1.0)),
        # What the proxy sent of what it got in the window (RTP, RTCP, STUN, DTLS alike).
        "relayed": (relay1["packets transmitted"] - relay0["packets transmitted"])
        / max(1, relay1["packets received"] - relay0["packets received"]),
        "expected": round(PPS * elapsed),
        "cpu": cpu,
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", default="10,20,40,60,80")
    ap.add_argument("--hold", type=float, default=5.0)
    ap.add_argument("--loss", type=float, default=0.02)
    args = ap.parse_args()
    if MISSING:
        print(SKIP_REASON, file=sys.stderr)
        return 2
    tmp = Path(tempfile.mkdtemp(prefix="webrtc-bench-"))
    site = build_site(tmp / "site", "webrtc.html")
    callee = MultiCallee()
    gw = Gateway(tmp, str(site), callee.port, rtp_span=0)  # RTPproxy's own port range: 4 ports a call
    try:
        gw.start()
        page, proxy, b2b, chromium = gw.page, gw.proxy, gw.b2b, gw.chromium
        assert page is not None and b2b is not None and chromium is not None and proxy.proc is not None
        pids = {
            "b2bua": lambda: [b2b.pid],
            "rtpproxy": lambda: [proxy.proc.pid],
            "chromium": lambda: group_pids(chromium.pid),
            "callee": lambda: [os.getpid()],
        }
        print(f"load average before: {os.getloadavg()[0]:.2f} ({os.cpu_count()} cores)")
        print("calls  confirmed  min packets to callee / to browser (of ~N)  worst loss %  relayed %", end="")
        print("  CPU % b2bua rtpproxy chromium callee")
        for n in (int(x) for x in args.steps.split(",")):
            r = step(page, callee, proxy, n, args.hold, args.loss, pids)
            c = r["cpu"]
            counts = f"{r['min_to_callee']:6d} / {r['min_to_browser']:6d} (of ~{r['expected']})"
            counts += f"  {100 * r['worst_loss']:5.1f}  {100 * r['relayed']:5.1f}"
            cpu = f"{c['b2bua']:5.1f} {c['rtpproxy']:5.1f} {c['chromium']:6.1f} {c['callee']:5.1f}"
            verdict = "ok" if r["ok"] else "FAILED"
            print(f"{n:5d}  {r['confirmed']:9d}  {counts}  {cpu}  {verdict}", flush=True)
            if os.environ.get("WEBRTC_BENCH_DEBUG"):
                print(r, flush=True)
            wait_for(lambda: proxy.active_sessions() == 0, 10)
            if not r["ok"]:
                break
    finally:
        gw.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
