"""Accounting through an outage, end to end: b2bua_radius, SIPp both sides, a real FreeRADIUS
whose accounting port sits behind a relay the test silences (tests/udp_relay.py).

What a billing operator checks is asserted: the server silent for a minute while calls run and end,
the B2BUA killed (SIGKILL) and started again in the middle, some calls hung up only after the server
is back; then every Start and Stop of every leg is in FreeRADIUS's detail file exactly once after
de-duplication (same Acct-Session-Id, origin, status type and times), both Starts of a call before
either Stop, and Acct-Delay-Time is how late each copy reached the server.
"""

from __future__ import annotations

import calendar
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


class Calls:
    """n calls from a SIPp caller through the B2BUA to a SIPp callee, in the background: one every
    `period_ms`, each hung up by the caller `hold_ms` after the answer."""

    def __init__(self, b2b: B2bua, callee_port: int, n: int, tag: str, period_ms: int, hold_ms: int) -> None:
        self.n = n
        timeout = (n * period_ms + hold_ms) / 1000.0 + 15
        self.uas = Sipp("aaa_uas.xml", local_port=callee_port, calls=n, timeout=timeout)
        keys = ["-key", "cli", "16045550000", "-key", "cld", "600", "-key", "xbilling", "none"]
        self.uac = Sipp(
            "aaa_uac.xml",
            b2b.address,
            local_ip="127.0.0.26",
            calls=n,
            rate=1,
            duration=hold_ms,
            extra=[*keys, "-rp", str(period_ms), "-cid_str", f"spool-{tag}-%u@127.0.0.26"],
            timeout=timeout,
        )
        self.uas.start()
        self.uac.start()

    def wait(self) -> None:
        """All answered and hung up."""
        try:
            res = self.uac.wait()
            assert res.returncode == 0 and res.stat("SuccessfulCall(C)") == self.n, res.describe()
            self.uas.wait(timeout=5)
        finally:
            self.uac.cleanup()
            self.uas.cleanup()


def spooled(spool: str) -> int:
    """Records on disk, one a line, in files under their final names (a '.'-name is one still
    being written)."""
    if not os.path.isdir(spool):
        return 0
    count = 0
    for name in os.listdir(spool):
        if name.endswith(".acct") and not name.startswith("."):
            try:
                with open(os.path.join(spool, name), encoding="utf-8") as f:
                    count += sum(1 for line in f if line.strip())
            except FileNotFoundError:
                pass  # acknowledged and removed meanwhile
    return count


def h323_time(text: str) -> float:
    """`h323-connect-time=10:00:00.000 GMT Tue Nov 14 2023` -> epoch seconds."""
    value = text.partition("=")[2]
    return calendar.timegm(
        time.strptime(value.split(".")[0] + value[value.index(" ") :], "%H:%M:%S GMT %a %b %d %Y")
    )


# The accounting server's silence, seconds, and the calls made meanwhile: a period of 2 s between
# two calls, held 1 s, before and after the restart; the last calls are held across its return.
OUTAGE = 60.0
BATCH = 8
LAST = 4


def test_minute_outage_and_restart_lose_no_record(radius: FreeRadius, tmp_path: Any) -> None:
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
        down = time.monotonic()
        first = B2bua(tmp_path, conf, flags).start()
        try:
            Calls(first, callee_port, BATCH, "a", 2000, 1000).wait()
            # Each call: 2 legs x (Start, Stop), each given up after timeout * retries.
            assert wait_until(lambda: spooled(spool) == 4 * BATCH, 15), (spooled(spool), first.log())
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
            Calls(second, callee_port, BATCH, "b", 2000, 1000).wait()
            assert wait_until(lambda: spooled(spool) == 8 * BATCH, 15), (spooled(spool), second.log())
            # Answered during the outage, hung up about 5 s after the server is back.
            hold = max(5.0, down + OUTAGE + 5.0 - time.monotonic())
            last = Calls(second, callee_port, LAST, "c", 500, int(hold * 1000))
            assert wait_until(lambda: spooled(spool) == 8 * BATCH + 2 * LAST, 15), spooled(spool)
            time.sleep(max(0.0, down + OUTAGE - time.monotonic()))
            assert radius.detail_records() == []
            relay.up()
            silent = time.monotonic() - down
            last.wait()
            # The next probe (every 5 s) finds the server, then the spool drains.
            total = 8 * BATCH + 4 * LAST
            assert wait_until(lambda: spooled(spool) == 0 and len(session_records(radius)) >= total, 20), (
                spooled(spool),
                second.log(),
            )
            log = second.log()
        finally:
            second.stop()
    assert f"accounting spool: {4 * BATCH} record(s) waiting" in log
    records = session_records(radius)
    copies = Counter(identity(r) for r in records)
    unique = list(dict.fromkeys(identity(r) for r in records))
    # Every record of every leg, once after de-duplication.
    per_leg = Counter((r[0], r[1], r[2]) for r in unique)
    sessions = {r[0] for r in unique}
    assert len(sessions) == 2 * BATCH + LAST, sessions
    for session in sessions:
        for origin in ("answer", "originate"):
            assert per_leg[(session, f"h323-call-origin={origin}", "Start")] == 1, (session, origin, per_leg)
            assert per_leg[(session, f"h323-call-origin={origin}", "Stop")] == 1, (session, origin, per_leg)
    assert len(unique) == total
    # In order per call: both Starts reached the server before either Stop.
    for session in sessions:
        kinds = [k[2] for k in unique if k[0] == session]
        assert kinds == ["Start", "Start", "Stop", "Stop"], (session, kinds)
    # Acct-Delay-Time is the real delay: the server got each copy that long after its event.
    for rec in records:
        event = h323_time(
            rec["h323-connect-time" if rec["Acct-Status-Type"] == ["Start"] else "h323-disconnect-time"][0]
        )
        delay = int(rec["Acct-Delay-Time"][0])
        assert abs(int(rec["Timestamp"][0]) - delay - event) <= 2, rec
    late = [r for r in records if int(r["Acct-Delay-Time"][0]) >= 1]
    print(
        f"\nserver silent {silent:.0f} s, B2BUA killed and restarted once: records delivered after "
        f"the outage {len(unique)} of {total}, copies {sum(copies.values())}, sent late {len(late)}"
    )


def session_records(radius: FreeRadius) -> list[dict[str, list[str]]]:
    return [r for r in radius.detail_records() if r["Acct-Session-Id"][0].startswith("spool-")]
