"""b2bua_radius route parameters not proven elsewhere, each checked on the wire (issue #4 audit).

Single-route parameters go through ``-s`` with ``call()`` of test_b2bua_radius_calls; the ones
about several routes (hs_scodes, gt, nr_expires) run b2bua_radius through ``main(routes=...)``
with SIPp callees and, where a route must never be reached or never answers, a bare UDP socket.
Billing parameters are read back from the accounting records of a real FreeRADIUS.
"""

from __future__ import annotations

import re
import socket
import time

import pytest

from tests.conftest import free_udp_port
from tests.radius_util import running_freeradius
from tests.sipp_util import Sipp
from tests.test_b2bua_radius_aaa import by_leg, cisco, wait_records
from tests.test_b2bua_radius_calls import B2B, body_of, call, header, pytestmark  # noqa: F401
from tests.test_b2bua_radius_routes import first_line, hunt

NO_AAA = ("-u", "-A", "0")


class DeadHop:
    """A UDP port that takes whatever is sent to it and never answers (a dead or unused next hop)."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.setblocking(False)
        self.port = self.sock.getsockname()[1]

    def received(self) -> list[str]:
        out = []
        while True:
            try:
                out.append(self.sock.recv(65535).decode(errors="replace"))
            except BlockingIOError:
                return out

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def dead_hop():
    hop = DeadHop()
    yield hop
    hop.close()


def finals(res) -> list[str]:
    return [first_line(m) for m in res.received("SIP/2.0") if not m.startswith("SIP/2.0 1")]


# ----- several routes -------------------------------------------------------------------------


def test_hs_scodes_stops_hunting_on_listed_code(dead_hop):
    port = free_udp_port()
    routes = [f"127.0.0.1:{port};hs_scodes=486,503", f"127.0.0.1:{dead_hop.port}"]
    callee = Sipp("radius_uas_503.xml", local_port=port, timeout=8)
    uac, (uas,), err, _ = hunt(routes, [callee], uac="radius_uac_fail.xml")
    assert uac.returncode == 0, uac.describe() + err
    assert uas.returncode == 0, uas.describe() + err
    assert finals(uac) == ["SIP/2.0 503 Service Unavailable"]
    assert dead_hop.received() == []  # the next route was never tried


def test_gt_group_timeout_skips_to_the_next_group(dead_hop):
    # Route 1 rings for ever; gt=1,2: after 1 s give up on it and skip to route 1+2 = 3.
    ring, answer = free_udp_port(), free_udp_port()
    routes = [f"127.0.0.1:{ring};gt=1,2", f"127.0.0.1:{dead_hop.port}", f"127.0.0.1:{answer}"]
    callees = [
        Sipp("radius_uas_ring.xml", local_port=ring, timeout=8),
        Sipp("uas", local_port=answer, timeout=8),
    ]
    uac, (uas1, uas3), err, took = hunt(routes, callees)
    assert uac.returncode == 0, uac.describe() + err
    assert uas1.received("CANCEL"), uas1.describe()
    assert dead_hop.received() == []
    assert uas3.received("INVITE") and uas3.received("BYE")
    assert finals(uac) == ["SIP/2.0 200 OK", "SIP/2.0 200 OK"]  # the INVITE's and the BYE's
    assert 1.0 <= took < 6.0


def test_nr_expires_moves_on_when_the_route_never_answers(dead_hop):
    answer = free_udp_port()
    routes = [f"127.0.0.1:{dead_hop.port};nr_expires=1", f"127.0.0.1:{answer}"]
    uac, (uas,), err, took = hunt(routes, [Sipp("uas", local_port=answer, timeout=8)])
    assert uac.returncode == 0, uac.describe() + err
    assert any(m.startswith("INVITE ") for m in dead_hop.received())
    assert uas.received("INVITE") and uas.received("BYE")
    assert 1.0 <= took < 5.0


def test_nr_expires_disarmed_by_100_trying():
    # The first route answers 100 at once: nr_expires=1 must not move the call; expires=3 does.
    trying, answer = free_udp_port(), free_udp_port()
    routes = [f"127.0.0.1:{trying};nr_expires=1;expires=3", f"127.0.0.1:{answer}"]
    callees = [
        Sipp("radius_uas_100only.xml", local_port=trying, timeout=8),
        Sipp("uas", local_port=answer, timeout=8),
    ]
    uac, (uas1, uas2), err, took = hunt(routes, callees)
    assert uac.returncode == 0, uac.describe() + err
    assert uas1.received("CANCEL") and uas2.received("BYE")
    assert took >= 3.0


# ----- one route ------------------------------------------------------------------------------


def test_op_outbound_proxy_gets_the_invite_with_the_routes_ruri():
    # The route's host (127.0.0.2, a port nobody listens on) stays in the R-URI; the INVITE and
    # the rest of the dialog go to the proxy.
    nobody = free_udp_port("127.0.0.2")
    uac, uas, err = call([*NO_AAA], route=f"5551234@127.0.0.2:{nobody};op=127.0.0.1:{{uas}}")
    assert uac.returncode == 0, uac.describe() + err
    assert uas.returncode == 0, uas.describe() + err
    invite = uas.received("INVITE")[0]
    assert invite.startswith(f"INVITE sip:5551234@127.0.0.2:{nobody} SIP/2.0"), invite
    assert uas.received("ACK") and uas.received("BYE")


@pytest.mark.parametrize("rtpp", ["0", "1"])
def test_rtpp_without_media_relay_leaves_sdp_alone(rtpp):
    # Without -r, rtpp cannot change anything and nothing pretends to relay: the addresses in
    # the SDP cross unchanged both ways (rtpp with -r: tests/test_b2bua_radius_rtpproxy.py).
    uac, uas, err = call([*NO_AAA], route=f"127.0.0.1:{{uas}};rtpp={rtpp}")
    assert uac.returncode == 0, uac.describe() + err

    def media(msg: str) -> list[str]:
        return re.findall(r"^(?:c=|m=).*?(?=\r?$)", body_of(msg), re.M)

    assert media(uas.received("INVITE")[0]) == media(uac.sent("INVITE")[0])
    answer_in = [m for m in uas.sent("SIP/2.0 200") if "INVITE" in header(m, "CSeq")[0]][0]
    answer_out = [m for m in uac.received("SIP/2.0 200") if "INVITE" in header(m, "CSeq")[0]][0]
    assert media(answer_out) == media(answer_in)


def test_readme_example_route_with_rid():
    # The README's route, rid included (Sippy keeps rid for the billing side: no wire effect).
    route = "5551234@127.0.0.1:{uas};cli=16046288900;rid=-1;expires=30;np_expires=5;ash=Name%3AValue"
    uac, uas, err = call([*NO_AAA], route=route)
    assert uac.returncode == 0, uac.describe() + err
    invite = uas.received("INVITE")[0]
    assert invite.startswith("INVITE sip:5551234@127.0.0.1:")
    assert "sip:16046288900@" in header(invite, "From")[0]
    assert header(invite, "Name") == ["Value"]
    assert "rid" not in invite


# ----- billing: bill-to, bill-cli, bill-cld, forward_on_fail ----------------------------------


@pytest.fixture(scope="module")
def radius():
    with running_freeradius() as srv:
        yield srv


def _billed_call(radius, tmp_path, route: str, cid: str):
    conf = radius.write_radconf(
        str(tmp_path), [f"127.0.0.1:{radius.auth_port}"], [f"127.0.0.1:{radius.acct_port}"]
    )
    uac, uas, err = call(["-u", "-A", "1", "-R", conf], route=route, uac_kw={"extra": ("-cid_str", cid)})
    assert uac.returncode == 0, uac.describe() + err
    assert uas.received("BYE"), uas.describe()
    return uas


def test_bill_params_go_to_the_originate_record_only(radius, tmp_path):
    cid = f"bill-{time.monotonic_ns()}@127.0.0.1"
    route = "5551234@127.0.0.1:{uas};cli=777;bill-to=acct42;bill-cli=111;bill-cld=222"
    uas = _billed_call(radius, tmp_path, route, cid)
    # The wire is as the route says, not as the bill says.
    invite = uas.received("INVITE")[0]
    assert invite.startswith("INVITE sip:5551234@") and "sip:777@" in header(invite, "From")[0]
    legs = by_leg(wait_records(radius, cid, 2))
    assert sorted(legs) == [("answer", "Stop"), ("originate", "Stop")], legs
    (orig,) = legs[("originate", "Stop")]
    assert (orig["User-Name"], orig["Calling-Station-Id"], orig["Called-Station-Id"]) == (
        ["acct42"],
        ["111"],
        ["222"],
    )
    assert cisco(orig, "h323-remote-address") == "127.0.0.1"
    (ans,) = legs[("answer", "Stop")]
    assert (ans["User-Name"], ans["Calling-Station-Id"], ans["Called-Station-Id"]) == (
        ["127.0.0.1"],
        ["1000"],
        ["service"],
    )


def test_forward_on_fail_leaves_the_originate_leg_unbilled(radius, tmp_path):
    cid = f"fof-{time.monotonic_ns()}@127.0.0.1"
    uas = _billed_call(radius, tmp_path, "127.0.0.1:{uas};forward_on_fail", cid)
    assert uas.received("INVITE")
    legs = by_leg(wait_records(radius, cid, 2, timeout=2.0))
    assert sorted(legs) == [("answer", "Stop")], legs
