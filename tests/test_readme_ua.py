"""README's "Writing a UA program" example, run as written: it calls a SIPp UAS that echoes RTP,
plays 3 s of audio and hears it back, then hangs up."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap

from tests.conftest import free_udp_port
from tests.sipp_util import Sipp

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def readme_program() -> str:
    with open(os.path.join(ROOT, "README.rst"), encoding="utf-8") as f:
        text = f.read()
    section = text[text.index("\nWriting a UA program\n") :]
    block = re.search(r"::\n\n((?:    .*\n|\n)+)", section)
    assert block is not None, "no code block in the README section"
    return textwrap.dedent(block.group(1))


def test_readme_ua_program_places_a_call_and_plays_audio(tmp_path) -> None:
    script = tmp_path / "call.py"
    script.write_text(readme_program())
    sipp = Sipp("uas", calls=1, timeout=15, extra=("-rtp_echo", "-mi", "127.0.0.1"))
    sipp.start()
    try:
        proc = subprocess.run(
            [sys.executable, str(script), *map(str, sipp.address), str(free_udp_port())],
            env=dict(os.environ, PYTHONPATH=ROOT, SIPLOG_BEND="stderr"),
            capture_output=True,
            text=True,
            timeout=20,
        )
        res = sipp.wait()
    finally:
        sipp.kill()
        sipp.cleanup()
    assert proc.returncode == 0, proc.stdout + proc.stderr
    heard = re.search(r"heard ([\d.]+) s in (\d+) packets", proc.stdout)
    assert heard is not None, proc.stdout + proc.stderr
    # 3 s sent at 50 packets/s, all echoed back; what is heard lags by the jitter buffer
    assert 140 <= int(heard.group(2)) <= 151 and float(heard.group(1)) >= 2.5, proc.stdout
    assert res.stat("SuccessfulCall") == 1, res.describe()
    assert len(res.received("ACK")) == 1 and len(res.received("BYE")) == 1, res.describe()
