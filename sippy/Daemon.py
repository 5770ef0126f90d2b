"""Running as a daemon: detach, pidfile, log redirection and log reopening.

``daemonize(logfile, pidfile)`` returns in the detached process only. The process that called it
waits until the daemon has written its pidfile and then exits 0 (or 1 with the daemon's error on
stderr), so ``systemd`` ``Type=forking`` with ``PIDFile=`` finds the file as soon as the start
command returns. A pidfile that names a live process makes it refuse (``DaemonError``) before
anything forks; a stale one is replaced. The daemon removes its pidfile when it exits.
``pidfile=None`` (b2bua_simple: no ``-P``) detaches the same way and writes no pidfile.
"""

from __future__ import annotations

import os
import signal
import sys
from typing import Any, NoReturn, Optional

import daemon

__all__ = ("DaemonError", "PidFile", "check_pidfile", "daemonize", "reopen", "install_log_reopen")


class DaemonError(RuntimeError):
    """Cannot become a daemon (live pidfile, unwritable log or pidfile)."""


def _read_pid(path: str) -> Optional[int]:
    try:
        with open(path) as f:
            text = f.read(64).strip()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise DaemonError(f"cannot read pidfile {path}: {exc.strerror}") from None
    return int(text) if text.isdigit() else None


def _is_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def check_pidfile(path: str) -> None:
    """Raise DaemonError if ``path`` names a running process other than this one."""
    pid = _read_pid(path)
    if pid is not None and pid != os.getpid() and _is_alive(pid):
        raise DaemonError(f"pidfile {path} names a running process {pid}, not starting")


class PidFile:
    """Context manager python-daemon enters after detaching: write our pid, remove it on exit."""

    def __init__(self, path: str) -> None:
        self.path = os.path.abspath(path)
        self.pid: Optional[int] = None

    def __enter__(self) -> PidFile:
        check_pidfile(self.path)
        self.pid = os.getpid()
        tmp = f"{self.path}.{self.pid}.tmp"
        try:
            with open(tmp, "w") as f:
                f.write(f"{self.pid}\n")
            os.replace(tmp, self.path)
        except OSError as exc:
            raise DaemonError(f"cannot write pidfile {self.path}: {exc.strerror}") from None
        return self

    def __exit__(self, *exc_info: Any) -> None:
        # only our own file: a successor may already have replaced it
        if self.pid is not None and self.pid == os.getpid() and _read_pid(self.path) == self.pid:
            os.unlink(self.path)
        self.pid = None


def _wait_for_daemon(rfd: int, child: int) -> NoReturn:
    """In the original process: relay the daemon's verdict as our exit status."""
    chunks = []
    while True:
        data = os.read(rfd, 4096)
        if not data:
            break
        chunks.append(data)
    os.close(rfd)
    os.waitpid(child, 0)
    msg = b"".join(chunks).decode("utf-8", "replace")
    if msg == "ok":
        os._exit(0)
    sys.stderr.write(f"{msg or 'daemon exited before it started'}\n")
    sys.stderr.flush()
    os._exit(1)


def daemonize(logfile: str, pidfile: Optional[str] = None) -> daemon.DaemonContext:
    """Detach and return in the daemon, with stdout/stderr appended to ``logfile``; write
    ``pidfile`` unless it is None.

    Raises DaemonError (in the calling process, before forking) when the pidfile names a live
    process or the log file cannot be opened.
    """
    logfile = os.path.abspath(logfile)
    if pidfile is not None:
        pidfile = os.path.abspath(pidfile)
        check_pidfile(pidfile)
    try:
        log = open(logfile, "a", buffering=1)
    except OSError as exc:
        raise DaemonError(f"cannot open log file {logfile}: {exc.strerror}") from None
    sys.stdout.flush()
    sys.stderr.flush()
    rfd, wfd = os.pipe()
    child = os.fork()
    if child:
        os.close(wfd)
        _wait_for_daemon(rfd, child)
    os.close(rfd)
    ctx = daemon.DaemonContext(
        detach_process=True,
        umask=0o022,
        stdout=log,
        stderr=log,
        files_preserve=[wfd],
        pidfile=None if pidfile is None else PidFile(pidfile),
    )
    try:
        ctx.open()
    except Exception as exc:  # any failure in the detached process must reach the waiting one
        os.write(wfd, str(exc).encode() or type(exc).__name__.encode())
        os._exit(1)
    os.write(wfd, b"ok")
    os.close(wfd)
    log.close()
    sys.stdout.reconfigure(line_buffering=True)
    sys.stderr.reconfigure(line_buffering=True)
    return ctx


def reopen(signum: int, logfile: str) -> None:
    """Point stdout/stderr at a fresh ``logfile`` (after logrotate moved the old one away)."""
    sys.stdout.flush()
    sys.stderr.flush()
    fd = os.open(logfile, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(fd, sys.__stdout__.fileno())
    os.dup2(fd, sys.__stderr__.fileno())
    os.close(fd)
    print(f"Signal {signum} received, reopened logs")


def install_log_reopen(logfile: str, signum: int = signal.SIGUSR1) -> None:
    """Reopen ``logfile`` on ``signum`` (SIGUSR1 as in Sippy; systemd ``ExecReload``)."""
    logfile = os.path.abspath(logfile)
    signal.signal(signum, lambda sig, frame: reopen(sig, logfile))
