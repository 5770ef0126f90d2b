"""Fuzzing in CI, bounded: mutations of valid SIP messages and SDP bodies (hypothesis) must raise
nothing but the parse error, and the transaction manager must answer or drop each one and keep
nothing. The same properties are the atheris target's (tests/fuzz/fuzz_sip.py) for longer runs."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import mutated_sip, mutated_text
from tests.fuzz.harness import SDP, SEEDS, check_b2b, check_manager, check_parsers, check_sdp

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FUZZ
@given(mutated_sip(SEEDS))
def test_mutated_messages_raise_only_parse_errors(data: bytes) -> None:
    check_parsers(data)


@FUZZ
@given(mutated_sip(SEEDS))
def test_transaction_manager_answers_or_drops_every_mutated_message(data: bytes) -> None:
    check_manager(data, pytest.fail)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated_sip(SEEDS[:1] + SEEDS[-1:]))
def test_b2buas_keep_nothing_of_a_mutated_invite(data: bytes) -> None:
    check_b2b(data, pytest.fail)


@FUZZ
@given(mutated_text([SDP, SDP.replace("\r\n", "\n")], "\r\n =:/.0123456789aAcmtvo\x00\xff-"))
def test_mutated_sdp_raises_only_sdp_parse_errors(text: str) -> None:
    check_sdp(text)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=400))
def test_transaction_manager_survives_random_datagrams(data: bytes) -> None:
    check_manager(data, pytest.fail)


def test_atheris_target_short_run(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """A few thousand libFuzzer inputs through the atheris target: it must end without a crash."""
    pytest.importorskip("atheris")
    target = os.path.join(os.path.dirname(__file__), "fuzz", "fuzz_sip.py")
    proc = subprocess.run(
        [sys.executable, target, "-runs=3000", "-seed=1", f"-artifact_prefix={tmp_path}/"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert "Done 3000 runs" in proc.stderr
