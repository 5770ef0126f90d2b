"""daemonize() with real processes: pidfile, refusal, stale pidfile, removal, log reopen."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sippy.Daemon import DaemonError, PidFile, check_pidfile

ROOT = Path(__file__).resolve().parent.parent

# what main() does: daemonize, hook SIGUSR1, then run (here: sleep)
SCRIPT = """
import os, sys, time
sys.path.insert(0, {root!r})
from sippy.Daemon import DaemonError, daemonize, install_log_reopen
try:
    daemonize(*sys.argv[1:3])
except DaemonError as exc:
    print('b2bua_radius:', exc, file=sys.stderr)
    sys.exit(1)
install_log_reopen(sys.argv[1])
print('daemon up, pid', os.getpid())
while True:
    time.sleep(0.05)
"""


def _wait(cond, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.02)
    return cond()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie still answers kill(0); it is gone for our purposes
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False


@pytest.fixture
def daemon_env(tmp_path):
    script = tmp_path / "d.py"
    script.write_text(SCRIPT.format(root=str(ROOT)))
    pidfile = tmp_path / "b2bua.pid"
    logfile = tmp_path / "b2bua.log"
    started: list[int] = []

    def start() -> subprocess.CompletedProcess:
        res = subprocess.run(
            [sys.executable, str(script), str(logfile), str(pidfile)],
            capture_output=True,
            text=True,
            timeout=15,
        )
        if res.returncode == 0:
            started.append(int(pidfile.read_text()))
        return res

    yield start, pidfile, logfile
    for pid in started:
        if _alive(pid):
            os.kill(pid, signal.SIGKILL)


def test_detaches_writes_pidfile_and_logs(daemon_env):
    start, pidfile, logfile = daemon_env
    res = start()
    assert res.returncode == 0, res.stderr
    assert (res.stdout, res.stderr) == ("", "")  # everything goes to the log
    text = pidfile.read_text()
    assert text.endswith("\n")
    pid = int(text)
    assert _alive(pid)
    assert os.getsid(pid) != os.getsid(0)  # a session of its own: detached from our terminal
    assert _wait(lambda: "daemon up" in logfile.read_text())


def test_sigterm_removes_pidfile(daemon_env):
    start, pidfile, _ = daemon_env
    assert start().returncode == 0
    pid = int(pidfile.read_text())
    os.kill(pid, signal.SIGTERM)
    assert _wait(lambda: not _alive(pid))
    assert not pidfile.exists()


def test_refuses_when_pidfile_names_live_process(daemon_env):
    start, pidfile, _ = daemon_env
    assert start().returncode == 0
    first = int(pidfile.read_text())
    res = start()
    assert res.returncode == 1
    assert f"names a running process {first}" in res.stderr and str(pidfile) in res.stderr
    assert int(pidfile.read_text()) == first and _alive(first)


def test_stale_pidfile_is_replaced(daemon_env):
    start, pidfile, _ = daemon_env
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait(timeout=10)
    pidfile.write_text(f"{gone.pid}\n")
    res = start()
    assert res.returncode == 0, res.stderr
    pid = int(pidfile.read_text())
    assert pid != gone.pid and _alive(pid)


def test_sigusr1_reopens_the_log(daemon_env):
    start, pidfile, logfile = daemon_env
    assert start().returncode == 0
    pid = int(pidfile.read_text())
    assert _wait(lambda: "daemon up" in logfile.read_text())
    rotated = logfile.with_suffix(".log.1")
    logfile.rename(rotated)
    os.kill(pid, signal.SIGUSR1)
    assert _wait(lambda: logfile.exists() and "reopened logs" in logfile.read_text())
    assert "reopened logs" not in rotated.read_text()


def test_without_pidfile_detaches_and_writes_none(tmp_path):
    """b2bua_simple has no -P: daemonize(logfile) alone, and no pidfile anywhere (not even a
    private temporary one)."""
    script = tmp_path / "d.py"
    script.write_text(SCRIPT.format(root=str(ROOT)))
    logfile = tmp_path / "b2bua.log"
    tmpdir = tmp_path / "tmp"
    tmpdir.mkdir()
    res = subprocess.run(
        [sys.executable, str(script), str(logfile)],
        capture_output=True,
        text=True,
        timeout=15,
        cwd=str(tmp_path),
        env=dict(os.environ, TMPDIR=str(tmpdir)),
    )
    assert res.returncode == 0, res.stderr
    assert (res.stdout, res.stderr) == ("", "")
    assert _wait(lambda: "daemon up" in logfile.read_text())
    pid = int(logfile.read_text().split("daemon up, pid ")[1].split()[0])
    try:
        assert _alive(pid) and os.getsid(pid) != os.getsid(0)
        assert sorted(p.name for p in tmp_path.iterdir()) == ["b2bua.log", "d.py", "tmp"]
        assert list(tmpdir.iterdir()) == []
        os.kill(pid, signal.SIGTERM)
        assert _wait(lambda: not _alive(pid))
    finally:
        if _alive(pid):
            os.kill(pid, signal.SIGKILL)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b2bua.log", "d.py", "tmp"]


def test_unwritable_log_fails_before_forking(tmp_path):
    script = tmp_path / "d.py"
    script.write_text(SCRIPT.format(root=str(ROOT)))
    pidfile = tmp_path / "p.pid"
    res = subprocess.run(
        [sys.executable, str(script), str(tmp_path / "no" / "such" / "log"), str(pidfile)],
        capture_output=True,
        text=True,
        timeout=15,
    )
    assert res.returncode == 1 and "cannot open log file" in res.stderr
    assert not pidfile.exists()


def test_pidfile_helpers_in_process(tmp_path):
    path = tmp_path / "x.pid"
    check_pidfile(str(path))  # absent: fine
    path.write_text("garbage\n")
    check_pidfile(str(path))  # unreadable content: treated as stale
    path.write_text(f"{os.getppid()}\n")
    with pytest.raises(DaemonError, match="running process"):
        check_pidfile(str(path))
    pf = PidFile(str(path))
    path.write_text(f"{os.getpid()}\n")  # our own pid (after a re-exec): not a conflict
    with pf:
        assert path.read_text() == f"{os.getpid()}\n"
        other = tmp_path / "y.pid"
        other.write_text("1\n")
    assert not path.exists()
    path.write_text("1\n")  # replaced by a successor: left alone on exit
    with pytest.raises(DaemonError):
        with PidFile(str(path)):
            pass
    assert path.read_text() == "1\n"
