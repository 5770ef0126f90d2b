"""The real RTPproxy (PyPI wheel ``rtp.io``) for tests, each in its own process so a test can stop
it and start it again on the same socket, and asked directly about its sessions.

``RtpProxy(...)`` picks free ports (control socket, RTP range), ``start()`` waits until it answers,
``stop()`` kills it; ``command()`` sends one UDP command (with a cookie) and returns the answer.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from typing import Optional

from tests.conftest import free_port

# The child blocks SIGTERM before RTPproxy starts its threads, then waits for it: a clean exit.
# RTPproxy's own output goes to /dev/null (a pipe nobody reads would fill and stall it); only
# "ready" reaches the parent, on the original stdout.
_CHILD = """
import os, signal, sys
signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM, signal.SIGINT})
ready = os.dup(1)
devnull = os.open(os.devnull, os.O_WRONLY)
os.dup2(devnull, 1)
os.dup2(devnull, 2)
from rtp.io import rtpproxy
r = rtpproxy(extra_args=sys.argv[1:])
os.write(ready, b"ready\\n")
os.close(ready)
signal.sigwait({signal.SIGTERM, signal.SIGINT})
os._exit(0)
"""

RTP_SPAN = 200


class RtpProxy:
    """One RTPproxy. ``ctrl``: 'udp' (default), 'udp6', 'unix', 'cunix' or 'tcp'; ``notify``: the
    ``-n`` socket it may report media timeouts to; ``ttl``: seconds without RTP before a session
    times out (``-T``); ``ipv6``: also an IPv6 media address (::1)."""

    def __init__(
        self,
        ctrl: str = "udp",
        *,
        notify: Optional[str] = None,
        ttl: Optional[int] = None,
        ipv6: bool = False,
        port: Optional[int] = None,
        path: Optional[str] = None,
        rtp_span: int = RTP_SPAN,
    ) -> None:
        self.ctrl = ctrl
        self.host = "::1" if ctrl.endswith("6") else "127.0.0.1"
        self.port = port if port is not None else free_port(self.host)
        # Its working directory: RTPproxy writes rtpproxy_acct.csv there.
        self.workdir = tempfile.mkdtemp(prefix="rtpp-")
        self.path = path if path is not None else os.path.join(self.workdir, "rtpp.sock")
        # rtp_span 0: RTPproxy's own port range (35000-65000), e.g. for a benchmark.
        self.rtp_span = rtp_span
        self.rtp_low = free_port("127.0.0.1", span=rtp_span) if rtp_span else 35000
        self.notify = notify
        self.ttl = ttl
        self.ipv6 = ipv6
        self.proc: Optional[subprocess.Popen] = None
        # A second UDP control socket for the test's own questions, whatever `ctrl` is.
        self.qport = free_port("127.0.0.1")

    @property
    def contact(self) -> str:
        """The ``-r`` contact of this proxy."""
        if self.ctrl in ("unix", "cunix"):
            return f"{self.ctrl}:{self.path}"
        if self.ctrl.endswith("6"):
            return f"{self.ctrl}:[{self.host}]:{self.port}"
        return f"{self.ctrl}:{self.host}:{self.port}"

    def args(self) -> list[str]:
        # RTPproxy's own spelling of an IPv6 socket has no brackets.
        own = f"{self.ctrl}:{self.host}:{self.port}" if self.ctrl.endswith("6") else self.contact
        args = ["-F", "-s", own, "-s", f"udp:127.0.0.1:{self.qport}"]
        if self.rtp_span:
            args += ["-m", str(self.rtp_low), "-M", str(self.rtp_low + self.rtp_span - 1)]
        args += ["-d", "err"]
        args += ["-l", "127.0.0.1"] + (["-6", "/::1"] if self.ipv6 else [])
        if self.notify is not None:
            args += ["-n", self.notify]
        if self.ttl is not None:
            args += ["-T", str(self.ttl), "-W", str(self.ttl)]
        return args

    def start(self, timeout: float = 10.0) -> RtpProxy:
        os.makedirs(self.workdir, exist_ok=True)
        if self.ctrl in ("unix", "cunix") and os.path.exists(self.path):
            os.unlink(self.path)
        self.proc = subprocess.Popen(
            [sys.executable, "-c", _CHILD, *self.args()],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            cwd=self.workdir,
            text=True,
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if line.strip() != "ready":
            self.stop()
            raise RuntimeError(f"rtpproxy did not start: {self.args()}")
        deadline = time.monotonic() + timeout
        while self.command("V", timeout=0.5) != "20040107":
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("rtpproxy does not answer")
        return self

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()
        shutil.rmtree(self.workdir, ignore_errors=True)

    def command(self, cmd: str, timeout: float = 2.0) -> Optional[str]:
        """One command on the test's own UDP socket; None without an answer."""
        cookie = secrets.token_hex(4)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.settimeout(timeout)
            s.sendto(f"{cookie} {cmd}".encode(), ("127.0.0.1", self.qport))
            try:
                data = s.recv(65536).decode()
            except OSError:
                return None
        got, _, result = data.partition(" ")
        return result.strip() if got == cookie else None

    def info(self) -> dict[str, int]:
        """The ``I`` answer as numbers: 'active sessions', 'sessions created', ..."""
        out = {}
        for line in (self.command("I") or "").splitlines():
            key, _, value = line.partition(":")
            if value.strip().isdigit():
                out[key.strip()] = int(value)
        return out

    def active_sessions(self) -> int:
        return self.info()["active sessions"]

    def __enter__(self) -> RtpProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
