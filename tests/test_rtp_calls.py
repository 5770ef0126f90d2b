"""Two UA programs written against the Sippy API and sippy.Rtp (tests/programs/rtp_ua.py) call
each other through b2bua_radius, with the media relayed by the real RTPproxy (-r) or direct:
audio both ways, a re-INVITE moving the caller's media keeps it flowing, a hold (a=inactive) stops
it, the call ends cleanly (the proxy's session is gone); IPv4 and IPv6."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.conftest import free_udp_port, has_ipv6, stop_process
from tests.rtpproxy_util import RtpProxy
from tests.test_b2bua_radius_rtpproxy import gone, proxy_port, wait_for
from tests.test_ipv6_calls import B2BProgram

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PHASE = 1.0  # seconds of talk before the move, after it, and on hold
PKTS = int(50 * PHASE)  # packets one side sends in a phase (20 ms each)


def run_programs(b2b: B2BProgram, host: str, callee_port: int) -> tuple[dict, dict]:
    env = dict(os.environ, PYTHONPATH=ROOT, SIPLOG_BEND="stderr")
    prog = [sys.executable, "-m", "tests.programs.rtp_ua"]
    callee = subprocess.Popen(
        [*prog, "callee", host, str(callee_port)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        caller = subprocess.run(
            [*prog, "caller", host, str(b2b.port), host, str(free_udp_port(host)), str(PHASE)],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=30,
        )
        out, err = callee.communicate(timeout=10)
    finally:
        stop_process(callee)
    logs = f"caller:\n{caller.stderr}\ncallee:\n{err}\nb2bua:\n{b2b.log()}"
    assert caller.returncode == 0 and callee.returncode == 0, caller.stdout + out + logs
    return json.loads(caller.stdout.splitlines()[-1]), json.loads(out.splitlines()[-1])


def check_media(caller: dict, callee: dict) -> None:
    crx, (at_hold, at_end) = caller["rx"], callee["rx"][-2:]
    # audio both ways before the move, and to and from the caller's new port after it
    assert crx["before_move"] >= 0.7 * PKTS and crx["after_move"] >= 0.7 * PKTS, caller
    assert at_hold >= 0.7 * 2 * PKTS, callee
    # on hold nothing flows (the callee may get what was in flight when the hold arrived)
    assert crx["hold_end"] == crx["hold_start"], caller
    assert at_end - at_hold <= 10, callee
    # each heard the other's tone (G.711 of a 10000 peak), not silence or noise
    assert 8000 <= caller["peak"] <= 11000 and 8000 <= callee["peak"] <= 11000, (caller, callee)
    assert caller["targets"][-1] is None and callee["targets"][-1] is None  # both stopped sending
    assert caller["result"] == 0 and callee["result"] == 0


@pytest.mark.parametrize("host", ["127.0.0.1", "::1"])
def test_ua_programs_talk_through_b2bua_radius_and_rtpproxy(host: str) -> None:
    if ":" in host and not has_ipv6():
        pytest.skip("no IPv6 loopback")
    proxy = RtpProxy("udp", ipv6=":" in host).start()
    callee_port = free_udp_port(host)
    b2b = B2BProgram("b2bua_radius", host, (host, callee_port), extra=("-r", proxy.contact))
    try:
        online = f"RTPproxy {proxy.contact} is online"
        wait_for(lambda: online in b2b.log(), what=online)
        caller, callee = run_programs(b2b, host, callee_port)
        check_media(caller, callee)
        # every address either side sent to was the proxy's, in the family of the call
        for media in caller["targets"][:-1] + callee["targets"][:-1]:
            assert media[0] == host and proxy_port(proxy, tuple(media)), (caller, callee)
        # the caller's move is between it and the proxy: the callee got no re-INVITE for it
        assert len(callee["rx"]) == 2 and len(callee["targets"]) == 2, callee
        gone(proxy)  # the call's session was deleted at the end
    finally:
        b2b.stop()
        proxy.stop()


@pytest.mark.parametrize("host", ["127.0.0.1", "::1"])
def test_ua_programs_talk_through_b2bua_radius_direct_media(host: str) -> None:
    if ":" in host and not has_ipv6():
        pytest.skip("no IPv6 loopback")
    callee_port = free_udp_port(host)
    b2b = B2BProgram("b2bua_radius", host, (host, callee_port))
    try:
        caller, callee = run_programs(b2b, host, callee_port)
    finally:
        b2b.stop()
    check_media(caller, callee)
    # direct media: the callee was told of the move, heard the caller before it and follows it
    assert len(callee["rx"]) == 3 and callee["rx"][0] >= 0.7 * PKTS, callee
    assert callee["targets"][1][1] != callee["targets"][0][1]
