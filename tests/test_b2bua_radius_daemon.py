"""b2bua_radius as a daemon: pidfile, log file, refusal of a second start, SIGTERM; and the
command line of contrib/b2bua.service, run as systemd would (ports and paths made local).
"""

from __future__ import annotations

import configparser
import os
import shlex
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import free_udp_port
from tests.radius_util import running_freeradius
from tests.sipp_util import Sipp
from tests.test_b2bua_radius_ops import B2bua, cli_command, pid_alive, read_text, wait_for

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "scripts" / "b2bua_radius.py"


@pytest.fixture
def cleanup():
    """Things to kill at the end: B2bua objects, SIPp instances, child processes, daemon pids."""
    items: list = []
    yield items
    for item in items:
        if isinstance(item, Sipp):
            item.cleanup()
        elif isinstance(item, B2bua):
            item.kill()
        elif isinstance(item, subprocess.Popen):
            if item.poll() is None:
                item.kill()
            item.wait(timeout=5)
        elif pid_alive(item):
            os.kill(item, signal.SIGKILL)


def test_daemon_pidfile_log_call_refusal_and_sigterm(tmp_path, cleanup):
    callee = Sipp("uas", timeout=10.0)
    cleanup.append(callee)
    callee.start()
    b2b = B2bua(tmp_path, callee.local_port, foreground=False)
    cleanup.append(b2b)
    b2b.start()  # returns once the daemon wrote its pidfile; it logs its own pid
    pid = b2b.pid
    assert pid_alive(pid) and os.getsid(pid) != os.getsid(0)  # detached: a session of its own
    assert f"b2bua_radius started, pid {pid}," in read_text(b2b.log)

    caller = Sipp("uac", b2b.address, duration=200, timeout=10.0)
    cleanup.append(caller)
    res = caller.start().wait()
    assert res.returncode == 0 and res.stat("SuccessfulCall") == 1, res.describe()
    assert callee.wait().returncode == 0
    assert wait_for(lambda: "placing call #1" in read_text(b2b.log))

    # a second start with the same live pidfile refuses, with one line, and leaves the first alone
    again = subprocess.run(b2b.args, capture_output=True, text=True, timeout=15)
    assert again.returncode != 0
    assert again.stderr.count("\n") == 1 and f"names a running process {pid}" in again.stderr, again.stderr
    assert int(b2b.pidfile.read_text()) == pid and pid_alive(pid)
    # still serving: the finished call lingers in the list (absorbing late retransmissions)
    assert cli_command(b2b.sock, "l\n").endswith("Total: 1\n")

    b2b.signal(signal.SIGTERM)
    assert wait_for(lambda: not pid_alive(pid), timeout=5.0), read_text(b2b.log)
    assert not b2b.pidfile.exists()
    assert not os.path.exists(b2b.sock)
    assert f"Signal {signal.SIGTERM} received, stopping" in read_text(b2b.log)


def unit_exec_start(unit: str) -> tuple[list[str], str]:
    """ExecStart of a unit file as argv, and its PIDFile= (or '')."""
    parser = configparser.ConfigParser(interpolation=None, strict=False)
    parser.optionxform = str  # keep the case of the keys
    parser.read(ROOT / "contrib" / unit)
    return shlex.split(parser["Service"]["ExecStart"]), parser["Service"].get("PIDFile", "")


def localise(argv: list[str], tmp: Path, sip_port: int) -> list[str]:
    """The unit's command line with this checkout's script, loopback, a free port and temp paths."""
    assert argv[0].endswith("/b2bua_radius")
    out = [sys.executable, str(SCRIPT)]
    paths = {"-P": "b2bua.pid", "-L": "b2bua.log", "-c": "b2bua.sock"}
    args = iter(argv[1:])
    for arg in args:
        if arg in paths:
            out += [arg, str(tmp / paths[arg])]
            next(args)
        elif arg.startswith("--sip_address="):
            out.append("--sip_address=127.0.0.1")
        elif arg.startswith("--sip_port="):
            out.append(f"--sip_port={sip_port}")
        else:
            out.append(arg)
    return out


def test_systemd_unit_command_line_runs_a_call(tmp_path, cleanup):
    argv, pidfile = unit_exec_start("b2bua.service")
    assert pidfile and argv[argv.index("-P") + 1] == pidfile  # systemd waits for the file -P writes
    assert "-f" not in argv  # Type=forking: the command detaches by itself
    callee = Sipp("uas", timeout=15.0)
    cleanup.append(callee)
    callee.start()
    # The unit authorises and accounts over RADIUS: the caller (127.0.0.1, Remote-IP method) is
    # routed to the callee.
    users = (
        '127.0.0.1\tCleartext-Password := "cisco"\n'
        f'\tCisco-AVPair += "h323-ivr-in=Routing:127.0.0.1:{callee.local_port}"\n'
    )
    with running_freeradius(overlay={"users": users}) as radius:
        conf = radius.write_radconf(
            str(tmp_path), [f"127.0.0.1:{radius.auth_port}"], [f"127.0.0.1:{radius.acct_port}"]
        )
        port = free_udp_port()
        # the unit relies on the default radiusclient.conf; here it is a temporary one
        cmd = [*localise(argv, tmp_path, port), "-R", conf]
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=15)
        pidpath = tmp_path / "b2bua.pid"
        if pidpath.exists():
            cleanup.append(int(pidpath.read_text()))
        assert res.returncode == 0, res.stderr
        # what systemd does after the start command returned: read PIDFile=
        pid = int(pidpath.read_text())
        assert pid_alive(pid)
        caller = Sipp("uac", ("127.0.0.1", port), duration=200, timeout=15.0)
        cleanup.append(caller)
        res = caller.start().wait()
        assert res.returncode == 0 and res.stat("SuccessfulCall") == 1, res.describe() + read_text(
            tmp_path / "b2bua.log"
        )
        assert callee.wait().returncode == 0
        # accounting Stop records reached the server (-A 1)
        assert wait_for(lambda: radius.detail_records(), timeout=5.0), radius.log()
        os.kill(pid, signal.SIGTERM)  # systemctl stop
        assert wait_for(lambda: not pid_alive(pid), timeout=5.0)
        assert not pidpath.exists()


def test_systemd_foreground_unit_command_line_runs_a_call(tmp_path, cleanup):
    argv, pidfile = unit_exec_start("b2bua-simple.service")
    assert "-f" in argv and not pidfile  # Type=simple: systemd tracks the process it started
    callee = Sipp("uas", timeout=15.0)
    cleanup.append(callee)
    callee.start()
    users = (
        '127.0.0.1\tCleartext-Password := "cisco"\n'
        f'\tCisco-AVPair += "h323-ivr-in=Routing:127.0.0.1:{callee.local_port}"\n'
    )
    with running_freeradius(overlay={"users": users}) as radius:
        conf = radius.write_radconf(
            str(tmp_path), [f"127.0.0.1:{radius.auth_port}"], [f"127.0.0.1:{radius.acct_port}"]
        )
        port = free_udp_port()
        journal = tmp_path / "journal"
        with open(journal, "wb") as out:
            proc = subprocess.Popen(
                [*localise(argv, tmp_path, port), "-R", conf],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=out,
            )
        cleanup.append(proc)
        assert wait_for(lambda: "b2bua_radius started" in read_text(journal)), read_text(journal)
        caller = Sipp("uac", ("127.0.0.1", port), duration=200, timeout=15.0)
        cleanup.append(caller)
        res = caller.start().wait()
        assert res.returncode == 0 and res.stat("SuccessfulCall") == 1, res.describe() + read_text(journal)
        assert callee.wait().returncode == 0
        assert wait_for(lambda: radius.detail_records(), timeout=5.0), radius.log()
        proc.send_signal(signal.SIGTERM)  # systemctl stop
        assert proc.wait(timeout=5) == 0
        assert not (tmp_path / "b2bua.pid").exists() and not (tmp_path / "b2bua.sock").exists()
