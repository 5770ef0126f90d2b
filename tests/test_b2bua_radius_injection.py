"""Header injection through b2bua_radius: values with CR/LF that would end up in the outgoing
INVITE (RADIUS CLI/CNAM overrides, routes from RADIUS, route ash/cnam parameters, the caller's own
escaped CLD) fail the call, reach no callee, and leave a line in the log that says why.

The real program against a real FreeRADIUS (tests/radius_e2e/users, callers 127.0.0.41-45) and
SIPp on both sides.
"""

from __future__ import annotations

from typing import Any

from tests.radius_util import FreeRadius
from tests.test_b2bua_radius_aaa import B2bua, callee_ports, place_call, radconf, radius

__all__ = ("callee_ports", "radius")

# caller address -> what the log must say about the refused call
CASES = {
    "127.0.0.41": "CR, LF or NUL in the CLI for route #1",
    "127.0.0.42": "CR, LF or NUL in the caller name for route #1",
    "127.0.0.43": "unusable route from RADIUS, call refused: route ",
    "127.0.0.44": "unusable route from RADIUS, call refused: ash: CR, LF or NUL in ",
    "127.0.0.45": "unusable route from RADIUS, call refused: cnam: CR, LF or NUL in ",
}


def test_crlf_from_radius_or_route_fails_the_call_with_500(
    radius: FreeRadius, callee_ports: dict[str, int], tmp_path: Any
) -> None:
    callees = {"ok": ("aaa_uas.xml", callee_ports["ANSWER"])}
    with B2bua(tmp_path, radconf(radius, tmp_path), ["-A", "0", "-D"]) as b2b:
        for caller_ip, reason in CASES.items():
            call = place_call(b2b, "aaa_uac_refused.xml", caller_ip, callees=callees, timeout=5.0)
            assert call.uac.returncode == 0, call.describe()
            (resp,) = call.uac.received("SIP/2.0 5")
            assert resp.startswith("SIP/2.0 500 Internal Server Error (4)\n"), resp
            assert "X-Injected" not in resp
            # Nothing went out: the callee saw no INVITE at all, let alone an injected header.
            assert call.callees["ok"].received() == [], call.describe()
            lines = [x for x in b2b.log().splitlines() if call.call_id in x and reason in x]
            assert len(lines) == 1, f"{caller_ip}: no {reason!r} line in\n{b2b.log()}"
    log = b2b.log()
    assert "Traceback" not in log
    # The reply is logged as received, escaped: no log line starts with the injected text.
    assert "'CLI:555\\r\\nX-Injected: cli'" in log
    assert not any(x.startswith("X-Injected") for x in log.splitlines())


def test_caller_cld_with_escaped_crlf_gets_400_before_radius(
    radius: FreeRadius, callee_ports: dict[str, int], tmp_path: Any
) -> None:
    callees = {"ok": ("aaa_uas.xml", callee_ports["ANSWER"])}
    with B2bua(tmp_path, radconf(radius, tmp_path), ["-A", "0", "-D"]) as b2b:
        # 127.0.0.21 would be accepted and routed to the callee.
        call = place_call(
            b2b, "aaa_uac_refused.xml", "127.0.0.21", callees=callees, cld="200%0D%0AX-Injected%3A1"
        )
    assert call.uac.returncode == 0, call.describe()
    (resp,) = call.uac.received("SIP/2.0 400")
    assert resp.startswith("SIP/2.0 400 Bad Request (CLD)\n")
    assert call.callees["ok"].received() == []
    log = b2b.log()
    assert "unsafe_value from 127.0.0.21:" in log and "CR, LF or NUL in the CLD of an INVITE" in log
    assert "sending AAA request" not in log and "Traceback" not in log
