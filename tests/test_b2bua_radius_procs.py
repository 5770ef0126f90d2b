"""The route's ``po_proc`` routine runs before each originating leg: its attributes reach the
accounting records FreeRADIUS writes (b2bua_radius with ``-u`` and Stop accounting)."""

from __future__ import annotations

import time

from tests.conftest import free_udp_port
from tests.radius_util import running_freeradius
from tests.sipp_util import Sipp
from tests.test_b2bua_radius_calls import B2B, pytestmark  # noqa: F401


def _stop_records(srv, timeout: float = 5.0) -> list[dict[str, list[str]]]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        stops = [r for r in srv.detail_records() if r.get("Acct-Status-Type") == ["Stop"]]
        if len(stops) >= 2:
            return stops
        time.sleep(0.1)
    return [r for r in srv.detail_records() if r.get("Acct-Status-Type") == ["Stop"]]


def test_po_proc_val2xattrs_reaches_both_legs_accounting(tmp_path):
    with running_freeradius() as srv:
        conf = srv.write_radconf(
            str(tmp_path), [f"127.0.0.1:{srv.auth_port}"], [f"127.0.0.1:{srv.acct_port}"]
        )
        port = free_udp_port()
        route = f"127.0.0.1:{port};po_proc=VAL2Xattrs[x-attr=val1,y-attr=val2]"
        with Sipp("uas", local_port=port, timeout=8) as uas:
            with B2B(("-u", "-A", "1", "-R", conf, "-s", route)) as b2b:
                with Sipp("radius_uac.xml", remote=b2b.address, timeout=8, duration=300) as caller:
                    pass
                err = b2b.stderr()
        assert caller.result.returncode == 0, caller.result.describe() + err
        assert uas.result.returncode == 0, uas.result.describe() + err
        stops = _stop_records(srv)
    assert sorted(r["h323-call-origin"][0] for r in stops) == [
        "h323-call-origin=answer",
        "h323-call-origin=originate",
    ]
    for rec in stops:
        avpairs = rec.get("Cisco-AVPair", [])
        assert "x-attr=val1" in avpairs and "y-attr=val2" in avpairs, rec
