"""b2bua_simple as a program: flags, daemon mode, SIPLOG_* logging, Max-Forwards at the edge."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile

import pytest

from tests.conftest import free_udp_port
from tests.sipp_util import Sipp
from tests.test_b2bua_simple import B2BUA, CLD, SCRIPT, _send_request, first_line, ok, run_call, wait_for


@pytest.mark.parametrize(
    "args,needle",
    [
        (["-x"], "-x"),
        (["-n", "127.0.0.1", "-p", "99999"], "-p"),
        (["-n", "127.0.0.1", "-p", "abc"], "-p"),
        (["-n", "127.0.0.1:0"], "-n"),
        (["-n", "[::1"], "-n"),
        (["-f"], "-n"),
        (["-n", "127.0.0.1", "extra"], "extra"),
        (["-n", "127.0.0.1", "--max_calls=0"], "--max_calls"),
        (["-n", "127.0.0.1", "--max_calls=x"], "--max_calls"),
    ],
)
def test_bad_flags_one_line_error_exit_2(args: list[str], needle: str) -> None:
    res = subprocess.run([sys.executable, SCRIPT, *args], capture_output=True, text=True, timeout=10)
    assert res.returncode == 2
    lines = res.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("b2bua_simple: ") and needle in lines[0], res.stderr
    assert res.stdout == ""


def test_foreground_announces_its_pid() -> None:
    b = B2BUA(free_udp_port())
    try:
        assert f"b2bua_simple started, pid {b.proc.pid}, listening on 127.0.0.1:{b.port}" in b.log()
    finally:
        b.stop()
    # SIGTERM ends it cleanly.
    assert b.proc.returncode == 0, b.log()


def test_sigterm_right_after_the_start_line_stops_cleanly() -> None:
    """Whoever waits for the start line may signal at once: the line comes only once SIGTERM is
    handled (printed earlier, the default action killed the process)."""
    port = free_udp_port()
    cmd = [sys.executable, SCRIPT, "-f", "-l", "127.0.0.1", "-p", str(port), "-n", "127.0.0.1:9"]
    for _ in range(3):
        proc = subprocess.Popen(
            cmd,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=dict(os.environ, SIPLOG_BEND="stderr"),
        )
        try:
            line = proc.stdout.readline()
            assert line.startswith(b"b2bua_simple started, pid"), line
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(10) == 0
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            proc.stdout.close()


class _Daemon:
    """The parts of B2BUA that run_call needs, for a process we did not start as a child."""

    def __init__(self, port: int, nh_port: int) -> None:
        self.port = port
        self.nh_port = nh_port

    @property
    def address(self) -> tuple[str, int]:
        return ("127.0.0.1", self.port)


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def test_daemon_mode_detaches_logs_to_L_and_keeps_serving() -> None:
    port, nh_port = free_udp_port(), free_udp_port()
    logdir = tempfile.mkdtemp(prefix="b2bua-daemon-")
    logfile = os.path.join(logdir, "b2bua.log")
    # No -P: the daemon writes no pidfile, not even a private one under TMPDIR.
    tmpdir = os.path.join(logdir, "tmp")
    os.mkdir(tmpdir)
    cmd = [sys.executable, SCRIPT, "-l", "127.0.0.1", "-p", str(port), "-n", f"127.0.0.1:{nh_port}"]
    res = subprocess.run(
        [*cmd, "-L", logfile],
        capture_output=True,
        text=True,
        timeout=15,
        cwd=logdir,
        env=dict(os.environ, SIPLOG_BEND="stderr", TMPDIR=tmpdir),
    )
    assert res.returncode == 0, res.stderr
    # The starting process is gone; the daemon says who it is in the log.
    assert wait_for(lambda: os.path.exists(logfile) and "started, pid" in open(logfile).read(), 5)
    pid = int(re.search(r"started, pid (\d+)", open(logfile).read()).group(1))
    try:
        assert not _gone(pid)
        assert os.getsid(pid) != os.getsid(0), "the daemon left our session"
        assert sorted(os.listdir(logdir)) == ["b2bua.log", "tmp"] and os.listdir(tmpdir) == []
        d = _Daemon(port, nh_port)
        (resp,) = _send_request(d, "OPTIONS")
        assert first_line(resp) == "SIP/2.0 200 OK"
        caller, callee = run_call(d, "simple_uac.xml", "simple_uas.xml", duration=100)
        ok(caller, callee)
    finally:
        if not _gone(pid):
            os.kill(pid, signal.SIGTERM)
        stopped = wait_for(lambda: _gone(pid), 5)
        if not stopped:
            os.kill(pid, signal.SIGKILL)
    assert stopped
    assert "Traceback" not in open(logfile).read()
    assert sorted(os.listdir(logdir)) == ["b2bua.log", "tmp"] and os.listdir(tmpdir) == []
    shutil.rmtree(logdir)


def _logging_b2bua(level: str) -> tuple[B2BUA, str]:
    path = os.path.join(tempfile.mkdtemp(prefix="b2bua-siplog-"), "sip.log")
    env = {"SIPLOG_LVL": level, "SIPLOG_BEND": "logfile", "SIPLOG_LOGFILE_FILE": path}
    return B2BUA(free_udp_port(), env=env), path


def test_siplog_dbug_logs_every_message_with_its_address() -> None:
    b, path = _logging_b2bua("DBUG")
    try:
        with_port = _send_request(b, "OPTIONS")
        assert with_port
        # the log line of the answer may still be on its way to the file
        assert wait_for(lambda: "SENDING message" in open(path).read(), 5)
        text = open(path).read()
    finally:
        b.stop()
    assert re.search(r"RECEIVED message from 127\.0\.0\.1:\d+:\s*\nOPTIONS sip:", text), text
    assert re.search(r"SENDING message to 127\.0\.0\.1:\d+:\s*\nSIP/2\.0 200 OK", text), text


def test_siplog_info_writes_no_message_text() -> None:
    b, path = _logging_b2bua("INFO")
    try:
        _send_request(b, "OPTIONS")
        caller, callee = run_call(b, "simple_uac.xml", "simple_uas.xml", duration=100)
        ok(caller, callee)
        text = open(path).read() if os.path.exists(path) else ""
    finally:
        b.stop()
    assert "OPTIONS sip:" not in text and "INVITE sip:" not in text and "SIP/2.0 200" not in text, text


def test_max_forwards_1_is_not_forwarded() -> None:
    b = B2BUA(free_udp_port())
    try:
        resps = _send_request(
            b, "INVITE", call_id="cid-mf1@127.0.0.1", extra="Max-Forwards: 1", drop="Max-Forwards: 70"
        )
        finals = [first_line(r) for r in resps if not r.startswith("SIP/2.0 100")]
        assert finals == ["SIP/2.0 483 Too Many Hops"], resps
    finally:
        b.stop()


def test_sigterm_hangs_up_calls_in_progress() -> None:
    nh_port = free_udp_port()
    b = B2BUA(nh_port)
    callee = Sipp("simple_uas.xml", local_port=nh_port, calls=1, timeout=8)
    caller = Sipp(
        "simple_uac_wait_bye.xml",
        remote=b.address,
        calls=1,
        service=CLD,
        extra=("-key", "cli", "a"),
        timeout=8,
    )
    try:
        callee.start()  # returns once it listens
        caller.start()
        # Connected once the callee has the ACK.
        assert wait_for(
            lambda: (
                "ACK sip:"
                in (open(callee.message_file).read() if os.path.exists(callee.message_file) else "")
            ),
            5,
        )
        b.proc.send_signal(signal.SIGTERM)
        res_caller, res_callee = caller.wait(), callee.wait()
        b.proc.wait(5)
    finally:
        caller.cleanup()
        callee.cleanup()
        b.stop()
    ok(res_caller, res_callee)
    assert len(res_caller.received("BYE ")) == 1 and len(res_callee.received("BYE ")) == 1
    assert b.proc.returncode == 0, b.log()


def test_max_calls_refuses_a_call_over_the_bound_with_503() -> None:
    # The next hop never answers: the first call stays in memory, trying.
    b = B2BUA(free_udp_port(), args=["--max_calls=1"])
    try:
        answers = _send_request(b, "INVITE", call_id="first@127.0.0.1")
        assert [first_line(a) for a in answers] == ["SIP/2.0 100 Trying"], answers
        answers = _send_request(b, "INVITE", call_id="second@127.0.0.1")
        assert [first_line(a) for a in answers] == ["SIP/2.0 503 Service Unavailable"], answers
        assert "\r\nRetry-After: 10\r\n" in answers[0]
    finally:
        b.stop()
