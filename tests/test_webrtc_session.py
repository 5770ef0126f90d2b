"""Rtp_proxy_session_webrtc2sip against the real RTPproxy (rtp.io, with its dtls_gw and ice_lite
modules): the commands it sends, what the proxy answers, the SDP each side gets, refusals (488)
and that nothing stays on the proxy. The client here is a stand-in that asks the real proxy each
command synchronously; the real client's module probe is tested on the real proxy and on one that
lacks the modules (tests.rtpp_no_modules in front of it)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from typing import Any, Optional

import pytest

from sippy.Exceptions.RtpProxyError import RtpProxyError
from sippy.MsgBody import MsgBody
from sippy.Rtp_proxy.client import Rtp_proxy_client
from sippy.Rtp_proxy.Session.webrtc import Rtp_proxy_session_webrtc2sip
from sippy.SipLogger import SIPLOG_DBUG
from tests.conftest import free_port, stop_process
from tests.radius_util import run_reactor_until
from tests.rtpproxy_util import RtpProxy
from tests.test_webrtc_sdp import CHROME_OFFER, SIP_ANSWER


class SyncClient:
    """The client API the session uses, each command answered by the real proxy before it returns."""

    def __init__(self, proxy: RtpProxy, modules: frozenset = frozenset(("dtls_gw", "ice_lite"))) -> None:
        self.proxy = proxy
        self.online = True
        self.modules = modules
        self.tnot_supported = False
        self.notify_socket: Optional[str] = None
        self.proxy_address = "127.0.0.1"
        self.sent: list[str] = []

    def send_command(self, cmd: str, cb: Any = None, *params: Any) -> None:
        self.sent.append(cmd)
        answer = self.proxy.command(cmd)
        if cb is not None:
            cb(answer, *params)

    def __str__(self) -> str:
        return self.proxy.contact


class Logger:
    def __init__(self) -> None:
        self.lines: list[tuple[int, str]] = []

    def isEnabledFor(self, level: int) -> bool:
        return True

    def write(self, msg: str, level: int = 1, **kw: Any) -> None:
        self.lines.append((level, msg))


@pytest.fixture(scope="module")
def proxy() -> Iterator[RtpProxy]:
    with RtpProxy("udp") as p:
        yield p


def relay(session: Any, side: str, text: str) -> Optional[str]:
    out: list[Any] = []
    getattr(session, f"on_{side}_sdp_change")(MsgBody(text), out.append)
    assert len(out) == 1
    return None if out[0] is None else str(out[0])


def attrs(text: str) -> list[str]:
    return [line[2:] for line in text.split("\r\n") if line.startswith("a=")]


def test_offer_answer_through_the_modules_and_nothing_left(proxy: RtpProxy) -> None:
    client, log = SyncClient(proxy), Logger()
    cfg = {"_rtp_proxy_clients": [client], "_sip_logger": log}
    s = Rtp_proxy_session_webrtc2sip(cfg, call_id="wcid", from_tag="ft", to_tag="tt")
    offer = relay(s, "caller", CHROME_OFFER)
    assert offer is not None
    (u,) = client.sent
    assert u.startswith("U wcid-0 192.0.2.2 49730 ft && M4:1 A sha-256 70:99:AE")
    assert " && M5:1 A XToB AbndINYhA4b2570CZ76KDLgD && M5:1 C 2545838154 1 udp " in u
    assert u.count("M5:1 C ") == 2  # the TCP and the .local candidates are not given to it
    # The proxy took all of it; the SIP side gets plain RTP at the proxy.
    assert "m=audio " in offer and " RTP/AVP 111 63 9 0 8 13 110 126\r\n" in offer
    assert "c=IN IP4 127.0.0.1\r\n" in offer
    assert not [
        a for a in attrs(offer) if a.split(":")[0] in ("candidate", "fingerprint", "ice-ufrag", "mid")
    ]
    dropped = [m for lvl, m in log.lines if lvl == SIPLOG_DBUG]
    assert len(dropped) == 1 and "transport tcp" in dropped[0] and "mDNS name" in dropped[0]

    client.sent.clear()
    answer = relay(s, "callee", SIP_ANSWER)
    assert answer is not None
    assert client.sent == ["U wcid-0 198.51.100.9 30000 tt ft && M4:1 S && M5:1 S"]
    a = attrs(answer)
    assert " UDP/TLS/RTP/SAVPF 0\r\n" in answer
    assert a[:2] == ["group:BUNDLE 0", "ice-lite"]
    assert "mid:0" in a and "rtcp-mux" in a and "setup:passive" in a  # the browser is active
    (fp,) = [x for x in a if x.startswith("fingerprint:")]
    assert fp.startswith("fingerprint:SHA-256 ") and len(fp.split()[1].split(":")) == 32
    (cand,) = [x for x in a if x.startswith("candidate:")]
    port = int(answer.split("m=audio ")[1].split()[0])
    assert cand.split()[4:6] == ["127.0.0.1", str(port)]  # the proxy's port the browser checks
    assert proxy.active_sessions() == 1
    s.delete()
    assert proxy.active_sessions() == 0


def test_re_offer_from_the_sip_side_and_the_browsers_answer(proxy: RtpProxy) -> None:
    client = SyncClient(proxy)
    s = Rtp_proxy_session_webrtc2sip(
        {"_rtp_proxy_clients": [client]}, call_id="rcid", from_tag="ft", to_tag="tt"
    )
    assert relay(s, "caller", CHROME_OFFER) is not None
    first = relay(s, "callee", SIP_ANSWER)
    assert first is not None
    # A re-INVITE from the SIP side (hold): the browser gets the same ICE/DTLS identity.
    again = relay(s, "callee", SIP_ANSWER.replace("a=sendrecv", "a=sendonly").replace(" 1 IN", " 2 IN"))
    assert again is not None and "a=sendonly\r\n" in again
    for key in ("a=ice-ufrag:", "a=fingerprint:", "a=mid:0"):
        assert first.split(key)[1].split("\r\n")[0] == again.split(key)[1].split("\r\n")[0], key
    # The browser's answer to it goes through the modules again.
    answer = CHROME_OFFER.replace("a=setup:actpass", "a=setup:active").replace("a=sendrecv", "a=recvonly")
    back = relay(s, "caller", answer)
    assert back is not None and "a=recvonly\r\n" in back and " RTP/AVP " in back
    s.delete()
    assert proxy.active_sessions() == 0


def test_browser_sdp_without_ice_is_refused_before_anything_is_created(proxy: RtpProxy) -> None:
    client = SyncClient(proxy)
    s = Rtp_proxy_session_webrtc2sip({"_rtp_proxy_clients": [client]}, call_id="ncid")
    assert relay(s, "caller", CHROME_OFFER.replace("a=ice-pwd:AbndINYhA4b2570CZ76KDLgD\r\n", "")) is None
    assert s.refusal == (488, "Not Acceptable Here") and "ice-pwd" in (s.last_error or "")
    assert client.sent == []
    s.delete()
    assert proxy.active_sessions() == 0


def test_a_module_saying_no_refuses_the_call_and_the_session_goes(proxy: RtpProxy) -> None:
    # ICE credentials the module will not take (RFC 8839: ufrag >= 4, pwd >= 22 characters).
    bad = CHROME_OFFER.replace("a=ice-ufrag:XToB", "a=ice-ufrag:X").replace(
        "a=ice-pwd:AbndINYhA4b2570CZ76KDLgD", "a=ice-pwd:short"
    )
    client = SyncClient(proxy)
    s = Rtp_proxy_session_webrtc2sip({"_rtp_proxy_clients": [client]}, call_id="bcid")
    assert relay(s, "caller", bad) is None
    assert s.refusal == (488, "Not Acceptable Here")
    assert "M5:1 A X short" in (s.last_error or "")
    assert proxy.active_sessions() == 1  # the U itself succeeded
    s.delete()
    assert proxy.active_sessions() == 0


def test_no_proxy_with_the_modules_is_a_488_that_says_why(proxy: RtpProxy) -> None:
    bare = SyncClient(proxy, modules=frozenset(("ice_lite",)))
    with pytest.raises(RtpProxyError) as info:
        Rtp_proxy_session_webrtc2sip({"_rtp_proxy_clients": [bare]})
    assert info.value.response == (488, "Not Acceptable Here")
    assert f"{proxy.contact} lacks dtls_gw" in str(info.value) and "--dso" in str(info.value)
    # With one that has them among the online proxies, that one is used.
    good = SyncClient(proxy)
    s = Rtp_proxy_session_webrtc2sip({"_rtp_proxy_clients": [bare, good]})
    assert s.rtp_proxy_client is good


def test_the_client_probes_the_modules(proxy: RtpProxy) -> None:
    relay_port = free_port()
    bare = subprocess.Popen(
        [sys.executable, "-m", "tests.rtpp_no_modules", str(relay_port), f"127.0.0.1:{proxy.port}"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert bare.stdout is not None and bare.stdout.readline().strip() == "ready"
        clients = [
            Rtp_proxy_client({}, spath=proxy.contact),
            Rtp_proxy_client({}, spath=f"udp:127.0.0.1:{relay_port}"),
        ]
        run_reactor_until(lambda: all(c.online for c in clients))
        assert [c.modules for c in clients] == [frozenset(("dtls_gw", "ice_lite")), frozenset()]
        for c in clients:
            c.shutdown()
    finally:
        stop_process(bare)
