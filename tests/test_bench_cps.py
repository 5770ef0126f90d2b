"""bench/cps.py, the call-rate benchmark: its arithmetic, the callee it builds, and one short real run
(a few calls through b2bua_radius between two SIPp) that must print a clean row. Nothing here
asserts a speed: only that the tool measures and reports what happened.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys

from tests.test_b2bua_radius_calls import ROOT, pytestmark  # noqa: F401

sys.path.insert(0, os.path.join(ROOT, "bench"))

import cps  # noqa: E402


def test_percentile_nearest_rank():
    values = [float(v) for v in range(1, 101)]
    assert cps.percentile(values, 0.5) == 50.0
    assert cps.percentile(values, 0.99) == 99.0
    assert cps.percentile([7.0], 0.99) == 7.0
    assert cps.percentile([], 0.5) is None


def test_clean_means_every_call_and_no_retransmission():
    ok = cps.StepResult(rate=10, calls=100, attempted=100, completed=100)
    assert ok.clean and not ok.overloaded
    assert not cps.StepResult(rate=10, calls=100, attempted=100, completed=99).clean
    assert not cps.StepResult(rate=10, calls=100, attempted=100, completed=100, rtx_uac=1).clean
    assert not cps.StepResult(rate=10, calls=100, attempted=100, completed=100, rtx_uas=1).clean
    assert cps.StepResult(rate=10, calls=100, attempted=100, completed=80).overloaded


def test_setup_times_read_sipps_rtt_file(tmp_path):
    (tmp_path / "uac_1_rtt.csv").write_text("Date_ms;response_time_ms;rtd_no\n12.0;3;1\n13.0;0;1\n")
    assert sorted(cps.setup_times(str(tmp_path))) == [0.0, 3.0]


def test_caller_scenario_names_its_transactions():
    xml = cps.uac_scenario()
    assert re.search(r'<send retrans="500" start_txn="invite">\s*<!\[CDATA\[\s*INVITE', xml)
    for code in ("100", "180", "183"):
        assert re.search(rf'<recv response="{code}" response_txn="invite"', xml), code
    assert re.search(r'<recv response="200" rtd="true" response_txn="invite"', xml)
    assert re.search(r'<send ack_txn="invite">\s*<!\[CDATA\[\s*ACK', xml)
    assert re.search(r'<send retrans="500" start_txn="bye">\s*<!\[CDATA\[\s*BYE', xml)
    assert re.search(r'<recv response="200" crlf="true" response_txn="bye"', xml)


def test_callee_scenario_has_no_transport_in_its_contact():
    xml = cps.uas_scenario()
    contacts = re.findall(r"^\s*Contact:.*$", xml, re.M)
    assert contacts and all("transport" not in c for c in contacts)
    assert "180 Ringing" in xml and "200 OK" in xml


def test_a_short_run_prints_a_clean_step_and_the_highest_clean_rate():
    out = subprocess.run(
        [sys.executable, os.path.join(ROOT, "bench", "cps.py"), "--steps", "20", "--step-time", "1"]
        + ["--warmup", "0"],
        capture_output=True,
        text=True,
        timeout=90,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    row = re.search(r"^\s+20\s+this project" + r"\s+(\d+)" * 5 + r".*\s(yes|NO)$", out.stdout, re.M)
    assert row, out.stdout
    attempted, completed, failed = (int(row.group(i)) for i in (1, 2, 3))
    assert (attempted, completed, failed) == (20, 20, 0), out.stdout
    # Retransmissions may happen on a loaded machine; the verdict must agree with the counts.
    clean = int(row.group(4)) == 0 and int(row.group(5)) == 0
    assert row.group(6) == ("yes" if clean else "NO"), out.stdout
    if clean:
        assert "highest clean rate, this project: 20 calls/s" in out.stdout
