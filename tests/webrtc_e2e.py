"""One browser, real WebRTC media: JsSIP in headless Chromium -> WSS -> b2bua_radius -r -> a UDP
callee, through the real RTPproxy (rtp.io, its ice_lite and dtls_gw modules).

    python -m tests.webrtc_e2e --site DIR --calls pcmu:browser,opus:callee [--lo-up]

DIR holds webrtc.html and the jssip.js bundle. Each call of --calls is ``codec:who-hangs-up``: the
page calls, the callee (``Callee``, written here) answers with plain RTP/AVP in that codec and
echoes every RTP packet back (with its own SSRC); once the callee has had 100 packets from the
browser and the browser's getStats() counts 100 inbound ones, the named side sends BYE. --lo-up
brings the loopback interface up first (for a fresh ``unshare -n`` network namespace).
Prints one JSON object: per call, what the callee and the page saw; `l` during the first call;
the proxy's active sessions at the end. Everything it starts it stops; it gives up after
--timeout seconds per call.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import json
import secrets
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any, Optional

from tests.browser_util import CHROMIUM, stop_group
from tests.browser_util import CHROMIUM_FLAGS as BROWSER_FLAGS
from tests.conftest import free_tcp_port
from tests.rtpproxy_util import RtpProxy
from tests.sip_party import Msg, Party
from tests.test_b2bua_radius_ops import B2bua, read_text, wait_for
from tests.wss_util import make_cert

# Autoplay: the page plays what it receives without a user gesture.
CHROMIUM_FLAGS = (*BROWSER_FLAGS, "--autoplay-policy=no-user-gesture-required")
PACKETS = 100
# The callee's answer to an offer with this direction (RFC 3264 6.1).
_ANSWER_DIRECTION = {
    "sendonly": "recvonly",
    "recvonly": "sendonly",
    "inactive": "inactive",
    "sendrecv": "sendrecv",
}


def loopback_up() -> None:
    """``ip link set lo up`` without iproute2 (SIOCGIFFLAGS / SIOCSIFFLAGS)."""
    siocgifflags, siocsifflags, iff_up = 0x8913, 0x8914, 0x1
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        ifreq = struct.pack("16sH14x", b"lo", 0)
        flags = struct.unpack("16sH14x", fcntl.ioctl(s, siocgifflags, ifreq))[1]
        fcntl.ioctl(s, siocsifflags, struct.pack("16sH14x", b"lo", flags | iff_up))


def rtp_payload(data: bytes) -> Optional[tuple[int, int]]:
    """(payload type, payload length) of an RTP packet (RFC 3550 5.1), None if it is not one."""
    if len(data) < 12 or data[0] >> 6 != 2:
        return None
    cc, ext, pad = data[0] & 0x0F, data[0] & 0x10, data[0] & 0x20
    offset = 12 + 4 * cc
    if ext:
        if len(data) < offset + 4:
            return None
        offset += 4 + 4 * struct.unpack("!H", data[offset + 2 : offset + 4])[0]
    end = len(data) - (data[-1] if pad else 0)
    return data[1] & 0x7F, end - offset


class Callee:
    """A UDP SIP callee with plain RTP: answers INVITEs (re-INVITEs too) in one codec, echoes
    RTP, counts what it got, answers BYE, can send one."""

    def __init__(self) -> None:
        self.party = Party(name="callee")
        self.party.sip.setblocking(False)
        self.party.rtp.setblocking(False)
        self.codec = "pcmu"
        self.reset()

    def reset(self) -> None:
        self.invites = 0
        self.offers: list[str] = []
        self.rtp: dict[int, int] = {}  # payload type -> packets
        self.g711_160 = 0  # PCMU/PCMA packets with exactly 160 bytes of payload (decrypted, no tag)
        self.echoed = 0
        self.got_bye = False
        self.bye_answered = False
        self.reinvites_answered = 0  # 200s to our own re-INVITEs

    def answer_sdp(self, offer: str, version: int = 0) -> str:
        pt, rtpmap, fmtp = (8, "PCMA/8000", "") if self.codec == "pcma" else (0, "PCMU/8000", "")
        if self.codec == "opus":
            for line in offer.splitlines():
                if line.lower().startswith("a=rtpmap:") and "opus/48000" in line.lower():
                    pt, rtpmap = int(line[9:].split()[0]), line.split(None, 1)[1]
            fmtp = f"a=fmtp:{pt} minptime=10;useinbandfec=1\r\n"
        host, port = self.party.host, self.party.rtp_port
        direction = next((d for d in _ANSWER_DIRECTION if f"a={d}" in offer), "sendrecv")
        return (
            f"v=0\r\no=callee 7 {version} IN IP4 {host}\r\ns=-\r\nc=IN IP4 {host}\r\nt=0 0\r\n"
            f"m=audio {port} RTP/AVP {pt}\r\na=rtpmap:{pt} {rtpmap}\r\n{fmtp}a=ptime:20\r\n"
            f"a={_ANSWER_DIRECTION[direction]}\r\n"
        )

    def poll(self) -> None:
        for _ in range(500):
            try:
                data, src = self.party.rtp.recvfrom(2048)
            except BlockingIOError:
                break
            info = rtp_payload(data)
            if info is None:
                continue
            pt, size = info
            self.rtp[pt] = self.rtp.get(pt, 0) + 1
            if pt in (0, 8) and size == 160:
                self.g711_160 += 1
            # Echo it with our own SSRC (a browser may drop its own SSRC coming back).
            self.party.rtp.sendto(data[:8] + bytes(b ^ 0x5A for b in data[8:12]) + data[12:], src)
            self.echoed += 1
        while True:
            try:
                data, src = self.party.sip.recvfrom(65536)
            except BlockingIOError:
                return
            msg = Msg(data, src)
            if msg.method == "INVITE":
                self.invites += 1
                self.offers.append(msg.body)
                self.party.answered(
                    msg, 200, self.answer_sdp(msg.body, self.invites + self.reinvites_answered)
                )
            elif msg.method == "BYE":
                self.got_bye = True
                self.party.respond(msg, 200)
            elif msg.method not in (None, "ACK"):
                self.party.respond(msg, 200)
            elif msg.code == 200 and "BYE" in msg.h("cseq"):
                self.bye_answered = True
            elif msg.code == 200 and "INVITE" in msg.h("cseq"):
                self.reinvites_answered += 1
                self.party.connected(msg)

    def reinvite(self, direction: str) -> None:
        """A re-INVITE with our offer (same media, new o= version): ``sendonly`` puts the call on
        hold, ``sendrecv`` takes it off."""
        assert self.offers
        offer = self.answer_sdp(self.offers[0], 100 + self.reinvites_answered)
        self.party.reinvite(offer.replace("a=sendrecv", f"a={direction}"))

    def bye(self) -> None:
        self.party.bye()

    def close(self) -> None:
        self.party.close()


class Page:
    """The test page in Chromium, over the DevTools protocol."""

    def __init__(self, devtools_port: int) -> None:
        from websockets.sync.client import connect

        targets = json.load(urllib.request.urlopen(f"http://127.0.0.1:{devtools_port}/json/list", timeout=5))
        page = next(t for t in targets if "webrtc.html" in t.get("url", ""))
        self.stack = contextlib.ExitStack()
        self.cdp = self.stack.enter_context(
            connect(page["webSocketDebuggerUrl"], open_timeout=10, max_size=None)
        )
        self.next_id = 0

    def eval(self, expression: str) -> Any:
        self.next_id += 1
        self.cdp.send(
            json.dumps(
                {
                    "id": self.next_id,
                    "method": "Runtime.evaluate",
                    "params": {"expression": expression, "returnByValue": True, "awaitPromise": True},
                }
            )
        )
        while True:
            reply = json.loads(self.cdp.recv(timeout=10))
            if reply.get("id") == self.next_id:
                return reply.get("result", {}).get("result", {}).get("value")

    def close(self) -> None:
        self.stack.close()


def open_page(devtools_port: int, url: str, deadline: float) -> Page:
    while True:  # DevTools up: open the page in a new tab
        try:
            req = urllib.request.Request(
                f"http://127.0.0.1:{devtools_port}/json/new?{urllib.parse.quote(url, safe='')}", method="PUT"
            )
            urllib.request.urlopen(req, timeout=2).close()
            break
        except OSError:
            if time.monotonic() > deadline:
                raise RuntimeError("Chromium's DevTools port never answered") from None
            time.sleep(0.2)
    while True:
        try:
            page = Page(devtools_port)
            if page.eval("window.events.includes('ws_connected')"):
                return page
            page.close()
        except (OSError, StopIteration):
            pass
        if time.monotonic() > deadline:
            raise RuntimeError("the page never connected its WebSocket")
        time.sleep(0.2)


def run_call(page: Page, callee: Callee, b2b: B2bua, spec: str, timeout: float) -> dict:
    """One call; ``spec`` is ``codec:who-hangs-up[:reinvite]``. With ``reinvite`` the browser puts
    the call on hold and takes it off (two re-INVITEs from the browser), then the callee does the
    same, then the browser restarts ICE (new credentials); media must flow again (another 100
    packets each way) after each."""
    codec, hangup, *extra = spec.split(":")
    callee.reset()
    callee.codec = codec
    start = len(page.eval("window.events"))
    page.eval(f"window.call('{secrets.randbelow(9000) + 1000}')")
    out: dict[str, Any] = {"codec": codec, "hangup": hangup, "reinvite": "reinvite" in extra, "marks": []}
    steps = ["media"]
    if "reinvite" in extra:
        steps += ["hold", "unhold", "media", "callee-hold", "callee-unhold", "media", "restart", "media"]
    steps.append("bye")
    deadline = time.monotonic() + timeout
    inbound, listing, step, base, issued = -1, None, None, (0, 0, 0), False

    def mark() -> tuple[int, int, int]:
        return (sum(callee.rtp.values()), inbound, callee.invites + callee.reinvites_answered)

    while time.monotonic() < deadline:
        callee.poll()
        events = page.eval("window.events")[start:]
        if any(e.startswith(("ended", "failed")) for e in events):
            if step != "bye" or hangup == "callee" or callee.got_bye:
                break
        if "confirmed" not in events or step == "bye":
            time.sleep(0.02)
            continue
        if listing is None:
            listing = b2b.calls()
        inbound = page.eval("window.inbound()")
        now = mark()
        if now[1] < base[1]:
            # The browser's inbound-rtp counter starts again after a renegotiation.
            base = (base[0], now[1], base[2])
        if step in ("hold", "unhold", "restart") and not issued:
            # JsSIP refuses (false) while the previous offer/answer is still going on.
            issued = page.eval(f"window.{step}()")
        done = step is None or (
            (step == "media" and now[0] >= base[0] + PACKETS and now[1] >= base[1] + PACKETS)
            or (step in ("hold", "unhold") and f"{step}:local" in events and now[2] > base[2])
            or (step == "restart" and issued and now[2] > base[2])
            or (step == "callee-hold" and now[2] > base[2] and "hold:remote" in events)
            or (step == "callee-unhold" and now[2] > base[2] and "unhold:remote" in events)
        )
        if done:
            if step is not None:
                local = page.eval("window.localSdp()")
                ufrag = next((x[12:] for x in local.splitlines() if x.startswith("a=ice-ufrag:")), None)
                out["marks"].append([step, *now, ufrag])
            step, base, issued = steps.pop(0), now, False
            if step in ("callee-hold", "callee-unhold"):
                callee.reinvite("sendonly" if step == "callee-hold" else "sendrecv")
            elif step == "bye":
                out["local_sdp"] = page.eval("window.localSdp()")
                out["remote_sdp"] = page.eval("window.remoteSdp()")
                if hangup == "browser":
                    page.eval("window.hangup()")
                else:
                    callee.bye()
        time.sleep(0.02)
    end = time.monotonic() + 2  # the last answers (200 to BYE) may still be on their way
    while time.monotonic() < end and not (callee.got_bye or callee.bye_answered):
        callee.poll()
        time.sleep(0.02)
    callee.poll()
    out.update(
        events=page.eval("window.events")[start:],
        inbound=inbound,
        callee_rtp=callee.rtp,
        g711_160=callee.g711_160,
        echoed=callee.echoed,
        offer=callee.offers[0] if callee.offers else None,
        offers=callee.offers,
        callee_got_bye=callee.got_bye,
        callee_bye_answered=callee.bye_answered,
        listing=listing,
    )
    return out


class Gateway:
    """What a browser call goes through, started in order and stopped in reverse: the RTPproxy
    (rtp.io), b2bua_radius with a WSS listener, ``-r`` and a static route to ``callee_port``, a web
    server for ``site`` and Chromium with the page open (``page``). ``rtp_span=0``: the proxy's
    own port range (a benchmark's many calls)."""

    def __init__(
        self, tmp: Path, site: str, callee_port: int, *, allow_loopback: bool = False, rtp_span: int = 200
    ):
        self.tmp = tmp
        self.site = site
        self.callee_port = callee_port
        self.allow_loopback = allow_loopback
        self.proxy = RtpProxy("udp", rtp_span=rtp_span)
        self.b2b: Optional[B2bua] = None
        self.page: Optional[Page] = None
        self.chromium: Optional[subprocess.Popen] = None
        self.procs: list[subprocess.Popen] = []

    def start(self) -> Gateway:
        self.proxy.start()
        certfile, keyfile = make_cert(self.tmp)
        wss_port = free_tcp_port()
        wss = f"--wss_socket=127.0.0.1:{wss_port}:{certfile}:{keyfile}"
        self.b2b = b2b = B2bua(self.tmp, self.callee_port, extra=(wss, "-r", self.proxy.contact)).start()
        if not wait_for(lambda: f"RTPproxy {self.proxy.contact} is online" in read_text(b2b.log), 10):
            raise RuntimeError("the B2BUA never saw its RTPproxy online")
        http_port, devtools_port = free_tcp_port(), free_tcp_port()
        self.procs.append(
            subprocess.Popen(
                [sys.executable, "-m", "http.server", str(http_port), "--bind", "127.0.0.1"],
                cwd=self.site,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        )
        flags = [
            *CHROMIUM_FLAGS,
            f"--user-data-dir={self.tmp / 'profile'}",
            f"--remote-debugging-port={devtools_port}",
        ]
        if self.allow_loopback:
            flags.append("--allow-loopback-in-peer-connection")
        assert CHROMIUM is not None
        self.chromium = subprocess.Popen(
            [CHROMIUM, *flags, "about:blank"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,  # its helper processes too are stopped at the end
        )
        self.procs.append(self.chromium)
        url = f"http://127.0.0.1:{http_port}/webrtc.html?wss={wss_port}&sip={b2b.port}"
        self.page = open_page(devtools_port, url, time.monotonic() + 30)
        return self

    def stop(self) -> str:
        """Stop everything; the tail of the B2BUA's log."""
        if self.page is not None:
            self.page.close()
        for p in self.procs:
            stop_group(p)
        log = ""
        if self.b2b is not None:
            self.b2b.kill()
            log = read_text(self.b2b.log)[-6000:]
        self.proxy.stop()
        return log


def main(argv: Optional[list[str]] = None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--site", required=True)
    ap.add_argument("--calls", default="pcmu:browser")
    ap.add_argument("--lo-up", action="store_true")
    ap.add_argument("--allow-loopback", action="store_true", help="Chromium may use loopback candidates")
    ap.add_argument("--timeout", type=float, default=20.0)
    args = ap.parse_args(argv)
    if args.lo_up:
        loopback_up()
    tmp = Path(tempfile.mkdtemp(prefix="webrtc-e2e-"))
    result: dict[str, Any] = {"calls": []}
    callee = Callee()
    gw = Gateway(tmp, args.site, callee.party.port, allow_loopback=args.allow_loopback)
    try:
        gw.start()
        assert gw.page is not None and gw.b2b is not None
        for spec in args.calls.split(","):
            result["calls"].append(run_call(gw.page, callee, gw.b2b, spec, args.timeout))
        wait_for(lambda: gw.proxy.active_sessions() == 0, 5)
        result["proxy_sessions_after"] = gw.proxy.active_sessions()
        result["calls_after"] = gw.b2b.calls()
    except Exception as exc:  # the report says what went wrong; the test fails on it
        result["error"] = f"{type(exc).__name__}: {exc}"
    finally:
        result["b2bua_log"] = gw.stop()
        callee.close()
        shutil.rmtree(tmp, ignore_errors=True)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
