"""WebRTC calls through b2bua_radius -r and its WSS listener, without a browser: a WebSocket client
(tests.test_wss_calls.WsPhone) offers a browser's SDP to a UDP callee (tests.sip_party.Party), the
real RTPproxy (rtp.io) in between. With a proxy that lacks the modules, or an offer the modules
cannot take, the caller gets 488, the log says why, the callee gets no INVITE and nothing stays on
the proxy. However a WebRTC call ends (either BYE, CANCEL, a failure, the connection dropped, `d`),
its proxy session goes."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import free_port, free_tcp_port, stop_process
from tests.rtpproxy_util import RtpProxy
from tests.sip_party import Msg, Party
from tests.test_b2bua_radius_ops import B2bua, cli_command, read_text, wait_for
from tests.test_webrtc_sdp import CHROME_OFFER, SIP_ANSWER
from tests.test_wss_calls import WsPhone, _drop, _header
from tests.wss_util import make_cert, ws_connect


@pytest.fixture(scope="module")
def proxy() -> Iterator[RtpProxy]:
    with RtpProxy("udp") as p:
        yield p


def gateway(tmp_path: Path, callee: Party, contact: str, *extra: str) -> tuple[B2bua, int]:
    """b2bua_radius with a WSS listener, -r ``contact`` (and ``extra`` flags) and a static route to
    the callee, once the proxy is online: (the B2BUA, the WSS port)."""
    certfile, keyfile = make_cert(tmp_path)
    wss_port = free_tcp_port()
    wss = f"--wss_socket=127.0.0.1:{wss_port}:{certfile}:{keyfile}"
    b2b = B2bua(tmp_path, callee.port, extra=(wss, "-r", contact, *extra)).start()
    if not wait_for(lambda: f"RTPproxy {contact} is online" in read_text(b2b.log), 10):
        b2b.kill()
        raise AssertionError(read_text(b2b.log))
    return b2b, wss_port


def refused(tmp_path: Path, contact: str, offer: str) -> tuple[str, str, Party]:
    """One WSS INVITE with ``offer`` through a B2BUA whose -r is ``contact``: (final response,
    B2BUA log, the callee)."""
    callee = Party(name="callee")
    b2b, wss_port = gateway(tmp_path, callee, contact)
    try:
        with ws_connect(wss_port) as ws:
            phone = WsPhone(ws, b2b.port)
            ws.send(phone._request("INVITE", f"sip:1234@127.0.0.1:{b2b.port}", 1, offer))
            final = phone.wait("SIP/2.0 4")
        return final.split("\r\n", 1)[0], read_text(b2b.log), callee
    finally:
        b2b.kill()


@pytest.fixture
def bare_proxy(proxy: RtpProxy) -> Iterator[str]:
    """The -r contact of the real proxy seen through tests.rtpp_no_modules: one without modules."""
    port = free_port()
    bare = subprocess.Popen(
        [sys.executable, "-m", "tests.rtpp_no_modules", str(port), f"127.0.0.1:{proxy.port}"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert bare.stdout is not None and bare.stdout.readline().strip() == "ready"
        yield f"udp:127.0.0.1:{port}"
    finally:
        stop_process(bare)


def test_a_proxy_without_the_modules_refuses_webrtc_calls_with_488(
    tmp_path: Path, proxy: RtpProxy, bare_proxy: str
) -> None:
    status, log, callee = refused(tmp_path, bare_proxy, CHROME_OFFER)
    port = int(bare_proxy.rsplit(":", 1)[1])
    assert status == "SIP/2.0 488 Not Acceptable Here", log
    assert f"udp:127.0.0.1:{port} lacks dtls_gw, ice_lite" in log and "--dso" in log, log
    assert "call refused" in log
    assert f"RTPproxy udp:127.0.0.1:{port} is online, without dtls_gw/ice_lite: WebRTC calls get 488" in log
    with pytest.raises(AssertionError):
        callee.expect("INVITE", timeout=0.5)
    callee.close()
    assert proxy.active_sessions() == 0


@pytest.mark.parametrize(
    "broken",
    [
        # No ICE password: refused before the proxy is asked anything.
        CHROME_OFFER.replace("a=ice-pwd:AbndINYhA4b2570CZ76KDLgD\r\n", ""),
        # ICE credentials the ice_lite module will not take: the proxy's session is made, then
        # refused and deleted.
        CHROME_OFFER.replace("a=ice-ufrag:XToB", "a=ice-ufrag:X").replace(
            "a=ice-pwd:AbndINYhA4b2570CZ76KDLgD", "a=ice-pwd:short"
        ),
        # Only an mDNS name (a page without microphone permission): nothing the proxy could pair
        # with, so no call that would connect without audio.
        "\r\n".join(
            x for x in CHROME_OFFER.split("\r\n") if not x.startswith("a=candidate:") or ".local" in x
        ),
    ],
    ids=["no-ice-pwd", "module-says-no", "mdns-only"],
)
def test_an_offer_the_modules_cannot_take_is_refused_with_488(
    tmp_path: Path, proxy: RtpProxy, broken: str
) -> None:
    status, log, callee = refused(tmp_path, proxy.contact, broken)
    assert status == "SIP/2.0 488 Not Acceptable Here", log
    assert "refused the media" in log, log
    assert f"RTPproxy {proxy.contact} is online, modules: dtls_gw ice_lite" in log
    with pytest.raises(AssertionError):
        callee.expect("INVITE", timeout=0.5)
    callee.close()
    assert wait_for(lambda: proxy.active_sessions() == 0, 5)


def _callee_answer(callee: Party) -> str:
    return SIP_ANSWER.replace("198.51.100.9", "127.0.0.1").replace("30000", str(callee.rtp_port))


@pytest.mark.parametrize("ending", ["caller-bye", "callee-bye", "cancel", "busy", "drop", "d"])
def test_every_ending_deletes_the_proxy_session(tmp_path: Path, proxy: RtpProxy, ending: str) -> None:
    callee = Party(name="callee")
    b2b, wss_port = gateway(tmp_path, callee, proxy.contact)
    try:
        with ws_connect(wss_port) as ws:
            phone = WsPhone(ws, b2b.port)
            invite = phone._request("INVITE", f"sip:1234@127.0.0.1:{b2b.port}", 1, CHROME_OFFER)
            ws.send(invite)
            inv = callee.expect("INVITE")
            assert " RTP/AVP " in inv.body and "a=fingerprint" not in inv.body
            assert proxy.active_sessions() == 1  # made by the browser's offer
            if ending == "busy":
                callee.answered(inv, 486)
                assert phone.wait("SIP/2.0 486").startswith("SIP/2.0 486")
            elif ending == "cancel":
                callee.answered(inv, 180)
                phone.wait("SIP/2.0 180")
                # The INVITE's Via (branch) and CSeq number (RFC 3261 9.1), no body.
                head = invite.split("\r\n\r\n", 1)[0].replace("INVITE", "CANCEL")
                keep = [h for h in head.split("\r\n") if not h.startswith(("Content-", "Contact"))]
                ws.send("\r\n".join([*keep, "Content-Length: 0"]) + "\r\n\r\n")
                callee.expect("CANCEL")
                callee.respond(inv, 487)
                phone.wait("SIP/2.0 487")
            else:
                callee.answered(inv, 200, _callee_answer(callee))
                ok = phone.wait("SIP/2.0 200")
                assert "a=ice-lite" in ok and "a=setup:passive" in ok and "UDP/TLS/RTP/SAVPF" in ok
                phone.to = _header(ok, "To")
                phone.remote_target = (_header(ok, "Contact") or "<>").split("<", 1)[1].split(">", 1)[0]
                ws.send(phone._request("ACK", phone.remote_target, 1))
                callee.expect("ACK")
                if ending == "caller-bye":
                    ws.send(phone._request("BYE", phone.remote_target, 2))
                    callee.expect("BYE")
                elif ending == "callee-bye":
                    callee.bye()
                    phone.wait("BYE")
                elif ending == "drop":
                    _drop(ws)
                    callee.expect("BYE")
                else:
                    assert "OK" in cli_command(b2b.sock, f"d {phone.call_id}\n")
                    callee.expect("BYE")
        assert wait_for(lambda: proxy.active_sessions() == 0, 5), ending
    finally:
        b2b.kill()
        callee.close()


def offered(tmp_path: Path, proxy: RtpProxy, contact: str, offer: str, *flags: str) -> Msg:
    """The INVITE the callee gets for a WSS caller's ``offer`` (then refused with 486, after which
    the proxy has no session left)."""
    callee = Party(name="callee")
    b2b, wss_port = gateway(tmp_path, callee, contact, *flags)
    try:
        with ws_connect(wss_port) as ws:
            phone = WsPhone(ws, b2b.port)
            ws.send(phone._request("INVITE", f"sip:1234@127.0.0.1:{b2b.port}", 1, offer))
            inv = callee.expect("INVITE")
            callee.answered(inv, 486)
            phone.wait("SIP/2.0 486")
        assert wait_for(lambda: proxy.active_sessions() == 0, 5)
        return inv
    finally:
        b2b.kill()
        callee.close()


def test_allowed_pts_apply_to_the_sip_side(tmp_path: Path, proxy: RtpProxy) -> None:
    # -F 8,0: the browser offers Opus first; the SIP side is offered PCMA and PCMU only.
    inv = offered(tmp_path, proxy, proxy.contact, CHROME_OFFER, "-F", "8,0")
    assert "m=audio" in inv.body and " RTP/AVP 0 8\r\n" in inv.body, inv.body
    assert "opus" not in inv.body and "a=fingerprint" not in inv.body


def test_a_websocket_softphone_with_plain_rtp_needs_no_modules(
    tmp_path: Path, proxy: RtpProxy, bare_proxy: str
) -> None:
    # Not every WSS caller is a browser: plain RTP/AVP over WSS is relayed as any call.
    inv = offered(tmp_path, proxy, bare_proxy, SIP_ANSWER)
    (addr, port) = inv.media()[0]
    assert addr == "127.0.0.1" and proxy.rtp_low <= port < proxy.rtp_low + 200, inv.body
