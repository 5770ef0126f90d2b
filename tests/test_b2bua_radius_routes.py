"""b2bua_radius routing: failover across routes and digest auth towards a peer, over real SIPp peers.

Failover runs b2bua_radius through ``main(argv, routes=[...])`` (the importable API; no flag), with
one SIPp callee per route.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Optional

from tests.conftest import free_udp_port
from tests.sipp_util import Sipp
from tests.test_b2bua_radius_calls import B2B, header, pytestmark  # noqa: F401

ARGS = ("-u", "-A", "0", "-s", "127.0.0.1:9")  # -u needs -s; main(routes=) replaces it


def failover_call(
    callees: Sequence[tuple[str, str, Optional[dict]]],
    uac: str = "radius_uac.xml",
    timeout: float = 10.0,
):
    """callees: (scenario, route with {port}, sipp keywords) per route, in route order.

    Returns (uac result, [uas results], b2b stderr, seconds the caller took).
    """
    sipps = []
    routes = []
    for scenario, route, kw in callees:
        port = free_udp_port()
        sipps.append(Sipp(scenario, local_port=port, timeout=timeout, **(kw or {})))
        routes.append(route.format(port=port))
    return hunt(routes, sipps, uac, timeout)


def hunt(
    routes: Sequence[str],
    callees: Sequence[Sipp],
    uac: str = "radius_uac.xml",
    timeout: float = 8.0,
    args: Sequence[str] = (),
):
    """One call over these routes (tried in order) to these already built SIPp callees; `args`
    given to the B2BUA too.

    Returns (caller result, callee results, b2b stderr, seconds the caller took).
    """
    try:
        for s in callees:
            s.start()
        with B2B((*ARGS, *args), routes=routes) as b2b:
            t0 = time.monotonic()
            with Sipp(uac, remote=b2b.address, timeout=timeout, duration=300) as caller:
                pass
            took = time.monotonic() - t0
            results = [s.wait() for s in callees]
            err = b2b.stderr()
    finally:
        for s in callees:
            s.cleanup()
    return caller.result, results, err, took


def first_line(msg: str) -> str:
    return msg.split("\n", 1)[0].strip()


def test_failover_on_failure_response_caller_sees_only_success():
    reject = ("radius_uas_503.xml", "127.0.0.1:{port}", None)
    answer = ("uas", "127.0.0.1:{port}", None)
    uac, (uas1, uas2), err, _ = failover_call([reject, answer])
    assert uac.returncode == 0, uac.describe() + err
    assert uas1.returncode == 0, uas1.describe() + err
    assert uas2.returncode == 0, uas2.describe() + err
    assert [first_line(m) for m in uac.received("SIP/2.0") if not m.startswith("SIP/2.0 1")] == [
        "SIP/2.0 200 OK",
        "SIP/2.0 200 OK",  # the BYE's
    ]
    # A new originating leg per attempt: each callee saw its own Call-ID.
    cid1 = header(uas1.received("INVITE")[0], "Call-ID")[0]
    cid2 = header(uas2.received("INVITE")[0], "Call-ID")[0]
    assert cid1.endswith("-b2b_1") and cid2.endswith("-b2b_2")


def test_all_routes_fail_caller_sees_only_last_failure():
    first = ("radius_uas_503.xml", "127.0.0.1:{port}", None)
    last = ("radius_uas_486.xml", "127.0.0.1:{port}", None)
    uac, (uas1, uas2), err, _ = failover_call([first, last], uac="radius_uac_fail.xml")
    assert uac.returncode == 0, uac.describe() + err
    finals = [first_line(m) for m in uac.received("SIP/2.0") if not m.startswith("SIP/2.0 1")]
    assert finals == ["SIP/2.0 486 Busy Here"]
    assert uas1.received("INVITE") and uas2.received("INVITE")


def test_failover_on_expires_cancels_first_route():
    ringing = ("radius_uas_ring.xml", "127.0.0.1:{port};expires=2", None)
    answer = ("uas", "127.0.0.1:{port}", None)
    uac, (uas1, uas2), err, took = failover_call([ringing, answer])
    assert uac.returncode == 0, uac.describe() + err
    assert uas1.returncode == 0, uas1.describe() + err
    assert uas1.received("CANCEL"), uas1.describe()
    assert uas2.received("INVITE") and uas2.received("BYE")
    assert took >= 2.0


def test_failover_on_np_expires_only_100_trying():
    trying = ("radius_uas_100only.xml", "127.0.0.1:{port};np_expires=1;expires=8", None)
    answer = ("uas", "127.0.0.1:{port}", None)
    uac, (uas1, uas2), err, took = failover_call([trying, answer])
    assert uac.returncode == 0, uac.describe() + err
    assert uas1.returncode == 0, uas1.describe() + err
    assert uas1.received("CANCEL")
    assert uas2.received("BYE")
    # np_expires (1 s), not expires (8 s), moved the call on.
    assert 1.0 <= took < 6.0


def test_np_expires_does_not_fire_once_ringing():
    # The first route rings at once: np_expires=1 must not move the call; expires=3 then does.
    ringing = ("radius_uas_ring.xml", "127.0.0.1:{port};np_expires=1;expires=3", None)
    answer = ("uas", "127.0.0.1:{port}", None)
    uac, (uas1, uas2), err, took = failover_call([ringing, answer])
    assert uac.returncode == 0, uac.describe() + err
    assert uas1.received("CANCEL") and uas2.received("BYE")
    assert took >= 3.0


def test_route_auth_answers_401_with_digest_credentials():
    auth = (
        "radius_uas_auth.xml",
        "127.0.0.1:{port};auth=alice:s3cret",
        {"extra": ("-key", "user", "alice", "-key", "password", "s3cret")},
    )
    uac, (uas,), err, _ = failover_call([auth])
    assert uac.returncode == 0, uac.describe() + err
    assert uas.returncode == 0, uas.describe() + err
    first, second = uas.received("INVITE")
    assert not header(first, "Authorization")
    (authz,) = header(second, "Authorization")
    assert 'username="alice"' in authz and 'realm="sipp.test"' in authz
    assert "SIP/2.0 200 OK" in [first_line(m) for m in uas.sent("SIP/2.0")]
    # The caller never saw the challenge.
    assert not [m for m in uac.received("SIP/2.0 401")]


def test_static_route_auth_flag():
    # The same through -s, the way an operator writes it.
    port = free_udp_port()
    kw = {"extra": ("-key", "user", "bob", "-key", "password", "pw")}
    with Sipp("radius_uas_auth.xml", local_port=port, timeout=8, **kw) as uas_sipp:
        with B2B(("-u", "-A", "0", "-s", f"127.0.0.1:{port};auth=bob:pw")) as b2b:
            with Sipp("radius_uac.xml", remote=b2b.address, timeout=8, duration=300) as caller:
                pass
            err = b2b.stderr()
    assert caller.result.returncode == 0, caller.result.describe() + err
    assert uas_sipp.result.returncode == 0, uas_sipp.result.describe() + err
