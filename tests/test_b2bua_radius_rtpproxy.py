"""b2bua_radius -r against the real RTPproxy (rtp.io), with real RTP.

A test caller and callee (``tests.sip_party.Party``: hand-written SIP, an RTP socket each) call
through ``scripts/b2bua_radius.py -r <proxy>``; the test checks that each side was given the proxy's
address, sends RTP datagrams to what it was given and counts what arrives on the other side, and
asks the proxy (its own UDP control socket) that the session is gone after each way a call ends.
"""

from __future__ import annotations

import os
import signal
import socket
import time
from collections.abc import Iterator
from typing import Any, Callable

import pytest

from tests.conftest import free_tcp_port, free_udp_port
from tests.radius_util import running_freeradius
from tests.rtpproxy_util import RTP_SPAN, RtpProxy
from tests.sip_party import Msg, Party
from tests.test_b2bua_radius_calls import B2B

ARGS = ("-u", "-A", "0", "-s", "127.0.0.1:9")  # -u needs -s; main(routes=) replaces it


def wait_for(cond: Callable[[], bool], timeout: float = 5.0, what: str = "condition") -> None:
    """Poll an outside process (RTPproxy, the B2BUA) until cond() holds."""
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout} s")
        time.sleep(0.05)


def proxy_port(proxy: RtpProxy, media: tuple[str, int]) -> bool:
    return proxy.rtp_low <= media[1] < proxy.rtp_low + RTP_SPAN


def wait_online(b2b: Any, proxy: RtpProxy, times: int = 1) -> None:
    """Until the B2BUA has logged this proxy online (for the ``times``-th time). ``b2b``: a ``B2B``
    (its log is ``stderr()``) or another harness whose log is ``log()``."""
    line = f"RTPproxy {proxy.contact} is online"
    read_log = getattr(b2b, "stderr", None) or b2b.log
    wait_for(lambda: read_log().count(line) >= times, what=line)


@pytest.fixture(scope="module")
def relay() -> Iterator[tuple[B2B, RtpProxy, Party, Party]]:
    proxy = RtpProxy("udp", ipv6=True).start()
    callee1, callee2 = Party(name="callee1"), Party(name="callee2")
    routes = [f"127.0.0.1:{callee1.port}", f"127.0.0.1:{callee2.port}"]
    b2b = B2B([*ARGS, "-r", proxy.contact], routes=routes).start()
    try:
        wait_online(b2b, proxy)
        yield b2b, proxy, callee1, callee2
    finally:
        b2b.stop()
        proxy.stop()
        callee1.close()
        callee2.close()


@pytest.fixture
def caller() -> Iterator[Party]:
    party = Party(name="caller")
    yield party
    party.close()


def establish(b2b: B2B, proxy: RtpProxy, caller: Party, callee: Party) -> tuple[Msg, Msg]:
    """Caller calls, callee answers 200: returns (INVITE the callee got, 200 the caller got)."""
    caller.call(b2b.address)
    inv = callee.expect("INVITE")
    callee.answered(inv, 200, callee.offer())
    ok = caller.expect("200")
    caller.connected(ok)
    callee.expect("ACK")
    return inv, ok


def media_flows(proxy: RtpProxy, caller: Party, callee: Party, inv: Msg, ok: Msg) -> None:
    """Both SDPs point at the proxy and RTP sent there arrives at the other party, both ways."""
    (to_callee,), (to_caller,) = inv.media(), ok.media()
    assert proxy_port(proxy, to_callee) and proxy_port(proxy, to_caller), (to_callee, to_caller)
    assert to_callee[0] == to_caller[0] == proxy_host(caller)
    caller.send_rtp(to_caller, 5)
    assert callee.count_rtp() == 5
    callee.send_rtp(to_callee, 5)
    assert caller.count_rtp() == 5


def proxy_host(party: Party) -> str:
    return "::1" if ":" in party.media_host else "127.0.0.1"


def gone(proxy: RtpProxy) -> None:
    wait_for(lambda: proxy.active_sessions() == 0, what="session deleted in the proxy")


def bye_from(ender: Party, other: Party) -> None:
    ender.bye()
    bye = other.expect("BYE")
    other.respond(bye, 200)
    ender.expect("200")


# ----- one call, each way it ends ---------------------------------------------------------------


def test_media_through_the_proxy_both_ways_and_caller_bye_deletes(relay, caller: Party) -> None:
    b2b, proxy, callee, _ = relay
    inv, ok = establish(b2b, proxy, caller, callee)
    assert proxy.active_sessions() == 1
    # The caller's own addresses never reach the callee (and back): topology hidden.
    assert str(caller.rtp_port) not in inv.body and str(callee.rtp_port) not in ok.body
    media_flows(proxy, caller, callee, inv, ok)
    bye_from(caller, callee)
    gone(proxy)


def test_callee_bye_deletes(relay, caller: Party) -> None:
    b2b, proxy, callee, _ = relay
    establish(b2b, proxy, caller, callee)
    bye_from(callee, caller)
    gone(proxy)


def test_failure_on_every_route_deletes(relay, caller: Party) -> None:
    b2b, proxy, callee1, callee2 = relay
    caller.call(b2b.address)
    for callee in (callee1, callee2):
        inv = callee.expect("INVITE")
        assert proxy_port(proxy, inv.media()[0])
        callee.answered(inv, 486)
        callee.expect("ACK")
    busy = caller.expect("486")
    caller.ack(busy)
    gone(proxy)


def test_failover_resets_the_old_callee_and_relays_to_the_new_one(relay, caller: Party) -> None:
    b2b, proxy, callee1, callee2 = relay
    caller.call(b2b.address)
    inv1 = callee1.expect("INVITE")
    # The first callee answers early media, then fails: its side must not keep the caller's RTP.
    callee1.answered(inv1, 183, callee1.offer())
    early = caller.expect("183")
    callee1.respond(inv1, 503)
    callee1.expect("ACK")
    inv2 = callee2.expect("INVITE")
    # Failed over, the new callee has not answered yet: the old one gets none of the caller's RTP.
    caller.send_rtp(early.media()[0], 3)
    assert callee1.count_rtp(0.5) == 0
    callee2.answered(inv2, 200, callee2.offer())
    ok = caller.expect("200")
    caller.connected(ok)
    callee2.expect("ACK")
    assert proxy.active_sessions() == 1
    assert ok.media() == early.media()  # the caller's view of the relay did not change
    media_flows(proxy, caller, callee2, inv2, ok)
    bye_from(caller, callee2)
    gone(proxy)


def test_late_offer_from_the_callee_answered_in_the_ack(relay, caller: Party) -> None:
    """INVITE without SDP: the callee's 200 carries the offer, the caller's ACK the answer; the
    proxy session is made from the callee's side first and still deleted at the end."""
    b2b, proxy, callee, _ = relay
    caller.call(b2b.address, body="")
    inv = callee.expect("INVITE")
    assert inv.body == ""
    callee.answered(inv, 200, callee.offer())
    ok = caller.expect("200")
    caller.connected(ok, caller.offer())
    ack = callee.expect("ACK")
    assert proxy_port(proxy, ok.media()[0]) and proxy_port(proxy, ack.media()[0])
    media_flows(proxy, caller, callee, ack, ok)
    bye_from(callee, caller)
    gone(proxy)


def test_each_media_line_is_its_own_proxy_session(relay, caller: Party) -> None:
    b2b, proxy, callee, _ = relay
    offer = caller.offer() + f"m=video {caller.rtp_port + 2} RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\n"
    caller.call(b2b.address, body=offer)
    inv = callee.expect("INVITE")
    answer = callee.offer() + f"m=video {callee.rtp_port + 2} RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\n"
    callee.answered(inv, 200, answer)
    ok = caller.expect("200")
    caller.connected(ok)
    callee.expect("ACK")
    for msg in (inv, ok):
        (audio, video) = msg.media()
        assert proxy_port(proxy, audio) and proxy_port(proxy, video) and audio[1] != video[1], msg.body
    assert proxy.active_sessions() == 2
    caller.send_rtp(ok.media()[0], 3)
    assert callee.count_rtp() == 3
    bye_from(caller, callee)
    gone(proxy)


def test_cancel_deletes(relay, caller: Party) -> None:
    b2b, proxy, callee, _ = relay
    caller.call(b2b.address)
    inv = callee.expect("INVITE")
    callee.answered(inv, 180)
    caller.expect("180")
    assert proxy.active_sessions() == 1
    caller.cancel()
    cancel = callee.expect("CANCEL")
    callee.respond(cancel, 200)
    callee.respond(inv, 487)
    callee.expect("ACK")
    caller.ack(caller.expect("487"))
    gone(proxy)


def test_control_socket_d_deletes_and_l_shows_the_proxy(relay, caller: Party) -> None:
    b2b, proxy, callee, _ = relay
    establish(b2b, proxy, caller, callee)
    listing = control(b2b, "l")
    assert f"via RTPproxy {proxy.contact}" in listing, listing
    assert control(b2b, f"d {caller.dialog['call-id']}").startswith("OK")
    for party in (caller, callee):
        party.respond(party.expect("BYE"), 200)
    gone(proxy)


def test_hold_and_resume_by_reinvite_from_either_side(relay) -> None:
    b2b, proxy, callee, _ = relay
    caller = Party(name="caller")
    try:
        inv, ok = establish(b2b, proxy, caller, callee)
        # Caller holds with a=sendonly: the callee is told so, at the proxy's address.
        caller.reinvite(caller.offer("sendonly", version=2))
        hold = callee.expect("INVITE")
        assert "sendonly" in hold.attrs() and hold.media() == inv.media()
        callee.respond(hold, 200, callee.offer("recvonly", version=2))
        held = caller.expect("200")
        assert "recvonly" in held.attrs() and held.media() == ok.media()
        caller.connected(held)
        callee.expect("ACK")
        # Old-style hold from the caller: c=0.0.0.0 becomes the proxy's address plus a=sendonly.
        caller.reinvite(caller.offer("sendrecv", c_addr="0.0.0.0", version=3))
        hold = callee.expect("INVITE")
        assert "sendonly" in hold.attrs() and "sendrecv" not in hold.attrs(), hold.body
        assert hold.media() == inv.media()
        callee.respond(hold, 200, callee.offer("recvonly", version=3))
        caller.connected(caller.expect("200"))
        callee.expect("ACK")
        # The callee resumes from a new port: its re-INVITE goes through the proxy too.
        callee.rebind_rtp("127.0.0.1")
        callee.reinvite(callee.offer("sendrecv", version=4))
        resume = caller.expect("INVITE")
        assert "sendrecv" in resume.attrs() and resume.media() == ok.media()
        caller.respond(resume, 200, caller.offer("sendrecv", version=4))
        resumed = callee.expect("200")
        callee.connected(resumed)
        caller.expect("ACK")
        assert resumed.media() == inv.media()
        media_flows(proxy, caller, callee, inv, ok)
        bye_from(caller, callee)
        gone(proxy)
    finally:
        callee.rebind_rtp("127.0.0.1")
        caller.close()


def test_ipv6_media(relay) -> None:
    b2b, proxy, callee, _ = relay
    caller = Party(name="caller")
    caller.rebind_rtp("::1")
    callee.rebind_rtp("::1")
    try:
        inv, ok = establish(b2b, proxy, caller, callee)
        assert "c=IN IP6 ::1" in inv.body and "c=IN IP6 ::1" in ok.body
        media_flows(proxy, caller, callee, inv, ok)
        bye_from(callee, caller)
        gone(proxy)
    finally:
        callee.rebind_rtp("127.0.0.1")
        caller.close()


def test_rtpp_0_route_leaves_the_sdp_alone() -> None:
    with RtpProxy("udp") as proxy:
        callee = Party(name="callee")
        b2b = B2B([*ARGS, "-r", proxy.contact], routes=[f"127.0.0.1:{callee.port};rtpp=0"]).start()
        caller = Party(name="caller")
        try:
            wait_online(b2b, proxy)
            inv, ok = establish(b2b, proxy, caller, callee)
            assert inv.media() == [("127.0.0.1", caller.rtp_port)]
            assert ok.media() == [("127.0.0.1", callee.rtp_port)]
            assert proxy.info()["sessions created"] == 0
            bye_from(caller, callee)
        finally:
            b2b.stop()
            caller.close()
            callee.close()


@pytest.mark.parametrize("ctrl", ["unix", "cunix", "tcp", "udp6"])
def test_each_control_socket_kind_relays_a_call_with_a_filtered_offer(ctrl: str) -> None:
    with RtpProxy(ctrl) as proxy:
        callee = Party(name="callee")
        args = [*ARGS, "-F", "0,[telephone-event/8000]", "-r", proxy.contact]
        b2b = B2B(args, routes=[f"127.0.0.1:{callee.port}"]).start()
        caller = Party(name="caller")
        try:
            wait_online(b2b, proxy)
            inv, ok = establish(b2b, proxy, caller, callee)
            # -F by number and by encoding name, on the SDP the proxy rewrote.
            assert f"m=audio {inv.media()[0][1]} RTP/AVP 0 101\r\n" in inv.body, inv.body
            media_flows(proxy, caller, callee, inv, ok)
            bye_from(caller, callee)
            gone(proxy)
        finally:
            b2b.stop()
            caller.close()
            callee.close()


def control(b2b: B2B, command: str) -> str:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(5)
        s.connect(os.path.join(b2b.tmpdir, "ctl.sock"))
        s.sendall(f"{command}\nq\n".encode())
        chunks = []
        while data := s.recv(65536):
            chunks.append(data)
    return b"".join(chunks).decode()


# ----- ends that need a B2BUA of their own ---------------------------------------------------


@pytest.mark.parametrize("how", ["credit time", "SIGTERM", "keep-alive failure"])
def test_b2bua_side_endings_delete(how: str) -> None:
    with RtpProxy("udp") as proxy:
        callee = Party(name="callee")
        route = f"127.0.0.1:{callee.port}" + (";credit-time=1" if how == "credit time" else "")
        extra = ["--keepalive_orig=1"] if how == "keep-alive failure" else []
        b2b = B2B([*ARGS, *extra, "-r", proxy.contact], routes=[route]).start()
        caller = Party(name="caller")
        try:
            wait_online(b2b, proxy)
            establish(b2b, proxy, caller, callee)
            assert proxy.active_sessions() == 1
            if how == "SIGTERM":
                assert b2b.proc is not None
                b2b.proc.send_signal(signal.SIGTERM)
            elif how == "keep-alive failure":
                callee.respond(callee.expect("INVITE"), 481)
                callee.expect("ACK")
            callee.respond(callee.expect("BYE"), 200)
            caller.respond(caller.expect("BYE"), 200)
            gone(proxy)
        finally:
            b2b.stop()
            caller.close()
            callee.close()


@pytest.mark.parametrize("ctl_kind", ["unix", "tcp"])
def test_media_timeout_notify_hangs_up_the_call(ctl_kind: str, tmp_path) -> None:
    """No RTP at all: the proxy times the session out and writes "r <call number> 0" to the control
    socket; both legs get BYE and the Stop records name the B2BUA as the releasing side."""
    callee = Party(name="callee")
    with running_freeradius() as radius:
        conf = radius.write_radconf(
            str(tmp_path), [f"127.0.0.1:{radius.auth_port}"], [f"127.0.0.1:{radius.acct_port}"]
        )
        args = ["-u", "-A", "1", "-R", conf, "-s", "127.0.0.1:9"]
        if ctl_kind == "tcp":
            notify = f"tcp:127.0.0.1:{free_tcp_port()}"
            b2b = B2B([*args, "-c", notify], routes=[f"127.0.0.1:{callee.port}"])
        else:
            b2b = B2B(args, routes=[f"127.0.0.1:{callee.port}"])
            notify = "unix:" + os.path.join(b2b.tmpdir, "ctl.sock")
        with RtpProxy("udp", notify=notify, ttl=1) as proxy:
            b2b.cmd += ["-r", proxy.contact]
            b2b.start()
            caller = Party(name="caller")
            try:
                wait_online(b2b, proxy)
                establish(b2b, proxy, caller, callee)
                callee.respond(callee.expect("BYE", timeout=8), 200)
                caller.respond(caller.expect("BYE"), 200)
                gone(proxy)
                assert "media timeout of call" in b2b.stderr()
                cid = caller.dialog["call-id"]

                def stops() -> list[dict[str, list[str]]]:
                    return [r for r in radius.detail_records() if r.get("Acct-Session-Id") == [cid]]

                wait_for(lambda: len(stops()) == 2, what="two Stop records")
                for rec in stops():
                    assert "release-source=8" in rec.get("Cisco-AVPair", []), rec
            finally:
                b2b.stop()
                caller.close()
                callee.close()


def test_a_proxy_gone_mid_call_ends_the_call_at_its_next_update() -> None:
    proxy = RtpProxy("udp").start()
    callee = Party(name="callee")
    b2b = B2B([*ARGS, "-r", proxy.contact], routes=[f"127.0.0.1:{callee.port}"]).start()
    caller = Party(name="caller")
    try:
        wait_online(b2b, proxy)
        establish(b2b, proxy, caller, callee)
        proxy.stop()
        # The hold cannot be relayed (no answer within 3 s): the call ends, nothing hangs.
        caller.reinvite(caller.offer("sendonly", version=2))
        callee.respond(callee.expect("BYE", timeout=8), 200)
        caller.respond(caller.expect("BYE"), 200)
        assert "failed the media update: no answer" in b2b.stderr()
    finally:
        b2b.stop()
        proxy.stop()
        caller.close()
        callee.close()


# ----- several proxies, none online -----------------------------------------------------------


def test_no_proxy_online_refuses_with_503_naming_the_proxies() -> None:
    dead = f"udp:127.0.0.1:{free_udp_port()}"
    callee = Party(name="callee")
    b2b = B2B([*ARGS, "-r", dead], routes=[f"127.0.0.1:{callee.port}"]).start()
    caller = Party(name="caller")
    try:
        caller.call(b2b.address)
        caller.ack(caller.expect("503"))
        assert f"no RTPproxy online ({dead})" in b2b.stderr()
    finally:
        b2b.stop()
        caller.close()
        callee.close()


def test_two_proxies_one_stopped_then_restarted() -> None:
    p1, p2 = RtpProxy("udp").start(), RtpProxy("unix").start()
    callee = Party(name="callee")
    args = [*ARGS, "--rtpp_hrtb_ival=1", "--rtpp_hrtb_retr_ival=1", "-r", p1.contact, "-r", p2.contact]
    b2b = B2B(args, routes=[f"127.0.0.1:{callee.port}"]).start()
    caller = Party(name="caller")

    def one_call() -> None:
        establish(b2b, p1, caller, callee)
        bye_from(caller, callee)

    try:
        wait_online(b2b, p1)
        wait_online(b2b, p2)
        p2.stop()
        # Heartbeat (1 s) plus the stats query's retransmissions (3 s).
        wait_for(lambda: f"RTPproxy {p2.contact} does not answer" in b2b.stderr(), 10, "p2 offline")
        for _ in range(4):
            one_call()
        assert p1.info()["sessions created"] == 4
        p2.start()
        # Version check every second: back online, and new calls go to either proxy again.
        wait_online(b2b, p2, times=2)
        for _ in range(16):
            one_call()
            if p2.info()["sessions created"]:
                break
        assert p2.info()["sessions created"] > 0
        wait_for(lambda: p1.active_sessions() == p2.active_sessions() == 0, what="sessions deleted")
    finally:
        b2b.stop()
        p1.stop()
        p2.stop()
        caller.close()
        callee.close()
