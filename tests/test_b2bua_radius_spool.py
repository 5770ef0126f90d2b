"""Accounting through an outage, end to end: b2bua_radius, SIPp both sides, a real FreeRADIUS
whose accounting port sits behind a relay the test silences (tests/udp_relay.py).

What a billing operator checks is asserted: after the outage, a restart of the B2BUA in the middle
and the server's return, every Start and Stop of every leg is in FreeRADIUS's detail file exactly
once after de-duplication (same Acct-Session-Id, origin, status type and times), Start before Stop
for each leg, and Acct-Delay-Time says how late each one came.
"""

from __future__ import annotations

import os
import signal
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest

from tests.conftest import free_udp_port
from tests.radius_util import FreeRadius, running_freeradius
from tests.sipp_util import Sipp
from tests.test_b2bua_radius_aaa import RADIUS_RETRIES, RADIUS_TIMEOUT, B2bua
from tests.test_b2bua_radius_calls import pytestmark  # noqa: F401
from tests.udp_relay import Relay

# What makes two copies of a record the same record for the billing side.
IDENTITY = (
    "Acct-Session-Id",
    "h323-call-origin",
    "Acct-Status-Type",
    "h323-setup-time",
    "h323-connect-time",
    "h323-disconnect-time",
    "h323-conf-id",
)


@pytest.fixture(scope="module")
def radius() -> Iterator[FreeRadius]:
    with running_freeradius() as srv:
        yield srv


def identity(rec: dict[str, list[str]]) -> tuple[str, ...]:
    return tuple(",".join(rec.get(name, [])) for name in IDENTITY)


def wait_until(cond: Any, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


def run_calls(b2b: B2bua, callee_port: int, n: int, tag: str) -> None:
    """n calls of about half a second each, all answered and hung up by the caller."""
    uas = Sipp("aaa_uas.xml", local_port=callee_port, calls=n, timeout=20)
    keys = ["-key", "cli", "16045550000", "-key", "cld", "600", "-key", "xbilling", "none"]
    uac = Sipp(
        "aaa_uac.xml",
        b2b.address,
        local_ip="127.0.0.26",
        calls=n,
        rate=10,
        duration=500,
        extra=[*keys, "-cid_str", f"spool-{tag}-%u@127.0.0.26"],
        timeout=20,
    )
    try:
        uas.start()
        uac.start()
        res = uac.wait()
        assert res.returncode == 0 and res.stat("SuccessfulCall(C)") == n, res.describe()
        uas.wait(timeout=5)
    finally:
        uac.cleanup()
        uas.cleanup()


def spooled(spool: str) -> int:
    """Records on disk under their final names (a '.'-name is one still being written)."""
    if not os.path.isdir(spool):
        return 0
    return len([f for f in os.listdir(spool) if f.endswith(".acct") and not f.startswith(".")])


def test_outage_and_restart_lose_no_record(radius: FreeRadius, tmp_path: Any) -> None:
    callee_port = free_udp_port()
    spool = str(tmp_path / "spool")
    with Relay(("127.0.0.1", radius.acct_port)) as relay:
        conf = radius.write_radconf(
            str(tmp_path),
            [f"127.0.0.1:{radius.auth_port}"],
            [f"127.0.0.1:{relay.front}"],
            radius_timeout=str(RADIUS_TIMEOUT),
            radius_retries=str(RADIUS_RETRIES),
        )
        flags = ["-u", "-s", f"600@127.0.0.1:{callee_port}", "-A", "2", "--acct_spool_dir", spool]
        relay.down()
        outage = time.time()
        first = B2bua(tmp_path, conf, flags).start()
        try:
            run_calls(first, callee_port, 6, "a")
            # 6 calls x 2 legs x (Start, Stop), each given up after timeout * retries.
            assert wait_until(lambda: spooled(spool) == 24, 15), (spooled(spool), first.log())
        finally:
            # Killed outright: only what is on disk survives.
            os.killpg(first.proc.pid, signal.SIGKILL)
            first.proc.wait(5)
        log = first.log()
        assert "Error sending Acct/" in log and ", spooled" in log
        for what in ("Start record (answer)", "Stop record (answer)", "Stop record (originate)"):
            assert f"accounting spool: {what} of spool-a-1@127.0.0.26 spooled" in log, log
        second = B2bua(tmp_path, conf, flags).start()
        try:
            run_calls(second, callee_port, 4, "b")
            assert wait_until(lambda: spooled(spool) == 40, 15), (spooled(spool), second.log())
            assert radius.detail_records() == []
            back = time.time()
            relay.up()
            # The next probe (every 5 s) finds the server, then the spool drains.
            assert wait_until(lambda: spooled(spool) == 0, 20), (spooled(spool), second.log())
            log = second.log()
        finally:
            second.stop()
    assert "accounting spool: 24 record(s) waiting" in log
    time.sleep(0.5)
    records = [r for r in radius.detail_records() if r["Acct-Session-Id"][0].startswith("spool-")]
    copies = Counter(identity(r) for r in records)
    unique = list(dict.fromkeys(identity(r) for r in records))
    # Every record of every leg, once after de-duplication.
    per_leg = Counter((r[0], r[1], r[2]) for r in unique)
    sessions = {r[0] for r in unique}
    assert len(sessions) == 10, sessions
    for session in sessions:
        for origin in ("answer", "originate"):
            assert per_leg[(session, f"h323-call-origin={origin}", "Start")] == 1, (session, origin, per_leg)
            assert per_leg[(session, f"h323-call-origin={origin}", "Stop")] == 1, (session, origin, per_leg)
    assert len(unique) == 40
    # In order: each leg's Start reached the server before its Stop.
    first_seen = {key: i for i, key in reversed(list(enumerate(identity(r) for r in records)))}
    for key, i in first_seen.items():
        if key[2] == "Stop":
            start = next(k for k in unique if k[:2] == key[:2] and k[2] == "Start")
            assert first_seen[start] < i, (key, start)
    # Late, and saying so: the delay covers the outage.
    for rec in records:
        delay = int(rec["Acct-Delay-Time"][0])
        event_age = back - outage
        assert 1 <= delay <= event_age + 30, (delay, event_age, rec)
    print(f"\nrecords delivered after the outage: {len(unique)} of 40, copies {sum(copies.values())}")
