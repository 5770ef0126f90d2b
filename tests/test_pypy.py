"""b2bua_radius under PyPy (Debian's pypy3, Python 3.9): it starts and carries a SIPp call.

The PyPy interpreter is $SIPPY_PYPY, else .pypy-venv/bin/python (run_tests makes that virtualenv
with the project's dependencies when it can); the test is skipped when neither has them.
"""

from __future__ import annotations

import os
import subprocess

import pytest

from tests.conftest import free_udp_port
from tests.sipp_util import Sipp
from tests.test_b2bua_radius_calls import B2B, ROOT, pytestmark  # noqa: F401

PYPY = os.environ.get("SIPPY_PYPY") or os.path.join(ROOT, ".pypy-venv", "bin", "python")
_PROBE = "import platform, autobahn, daemon, pyrad, twisted; print(platform.python_implementation())"


def _pypy_with_deps() -> bool:
    if not os.access(PYPY, os.X_OK):
        return False
    probe = subprocess.run([PYPY, "-c", _PROBE], capture_output=True, text=True, timeout=60)
    return probe.returncode == 0 and probe.stdout.strip() == "PyPy"


def test_b2bua_radius_carries_a_call_under_pypy():
    if not _pypy_with_deps():
        pytest.skip(f"no PyPy with the B2BUA's dependencies at {PYPY}")
    uas_port = free_udp_port()
    callee = Sipp("uas", local_port=uas_port, timeout=30)
    try:
        callee.start()
        # PyPy starts slower than CPython (no JIT yet): a longer start-up allowance.
        b2b = B2B(["-u", "-A", "0", "-s", f"127.0.0.1:{uas_port}"], python=PYPY).start(timeout=60)
        try:
            assert b2b.proc is not None
            assert "pypy" in os.path.basename(os.path.realpath(f"/proc/{b2b.proc.pid}/exe"))
            with Sipp("radius_uac.xml", remote=b2b.address, timeout=30, duration=300) as caller:
                pass
            uas = callee.wait()
        finally:
            b2b.stop()
        stderr = b2b.stderr()
    finally:
        callee.cleanup()
    assert caller.result.returncode == 0, caller.result.describe() + stderr
    assert uas.received("INVITE") and uas.received("BYE"), uas.describe()
    assert "Traceback" not in stderr, stderr
