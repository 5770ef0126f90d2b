"""A real FreeRADIUS on loopback for the RADIUS tests, and a way to run the reactor until done.

The server runs in the foreground from a copy of tests/radius/ in a temporary directory, on free
loopback ports, and is killed when the `with` block ends. If freeradius is not installed the
test fails (run_tests installs it): a RADIUS test that silently skips proves nothing.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache
from typing import Callable, Optional, Sequence

import pytest
from pyrad.dictionary import Dictionary

from sippy.Radius_client import Radius_client
from sippy.RadiusConf import RadiusConf, RadiusServer, load_dictionary
from tests.conftest import free_udp_port

CONF_DIR = os.path.join(os.path.dirname(__file__), "radius")
TOP_DICTIONARY = os.path.join(os.path.dirname(os.path.dirname(__file__)), "dictionary")
SECRET = "sippy-test-secret"
START_TIMEOUT = 20.0  # generous: only a slow machine waits that long


@dataclass
class FreeRadius:
    dir: str
    auth_port: int
    acct_port: int
    secret: str
    proc: subprocess.Popen

    @property
    def detail_path(self) -> str:
        return os.path.join(self.dir, "detail")

    def log(self) -> str:
        try:
            with open(os.path.join(self.dir, "radius.log"), encoding="utf-8", errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def detail_records(self) -> list[dict[str, list[str]]]:
        """The accounting records the server wrote, each as {attribute: [values]} (quotes removed).

        Only complete records: each ends in a blank line, and one still being written is left for
        the next read."""
        try:
            with open(self.detail_path, encoding="utf-8", errors="replace") as f:
                text = f.read()
        except FileNotFoundError:
            return []
        records: list[dict[str, list[str]]] = []
        for block in text.split("\n\n")[:-1]:
            rec: dict[str, list[str]] = {}
            for line in block.splitlines()[1:]:
                name, sep, value = line.strip().partition(" = ")
                if sep:
                    rec.setdefault(name, []).append(value.strip('"'))
            if rec:
                records.append(rec)
        return records

    def write_radconf(
        self, path_dir: str, authservers: list[str], acctservers: list[str], **opts: str
    ) -> str:
        """A radiusclient.conf (+ servers file) pointing at the given servers; returns its path."""
        servers = os.path.join(path_dir, "servers")
        with open(servers, "w", encoding="utf-8") as f:
            f.write(f"127.0.0.1\t{self.secret}\n")
        conf = os.path.join(path_dir, "radiusclient.conf")
        with open(conf, "w", encoding="utf-8") as f:
            for s in authservers:
                f.write(f"authserver {s}\n")
            for s in acctservers:
                f.write(f"acctserver {s}\n")
            f.write(f"servers {servers}\ndictionary {TOP_DICTIONARY}\n")
            for k, v in opts.items():
                f.write(f"{k} {v}\n")
        return conf


def _render(src_dir: str, dst_dir: str, subst: dict[str, str]) -> None:
    for name in os.listdir(src_dir):
        with open(os.path.join(src_dir, name), encoding="utf-8") as f:
            text = f.read()
        text = re.sub(r"@([A-Z]+)@", lambda m: subst[m.group(1)], text)
        with open(os.path.join(dst_dir, name), "w", encoding="utf-8") as f:
            f.write(text)


@contextmanager
def running_freeradius(overlay: Optional[dict[str, str]] = None) -> Iterator[FreeRadius]:
    """overlay: file name -> text written over the rendered copy (e.g. a test's own users file)."""
    binary = shutil.which("freeradius") or shutil.which("radiusd")
    if binary is None:
        pytest.fail(
            "freeradius is not installed: apt-get install freeradius freeradius-utils (./run_tests does)"
        )
    with tempfile.TemporaryDirectory(prefix="sippy-radius-") as tmp:
        auth_port = free_udp_port()
        acct_port = free_udp_port()
        while acct_port == auth_port:
            acct_port = free_udp_port()
        _render(
            CONF_DIR,
            tmp,
            {"DIR": tmp, "SECRET": SECRET, "AUTHPORT": str(auth_port), "ACCTPORT": str(acct_port)},
        )
        for name, text in (overlay or {}).items():
            with open(os.path.join(tmp, name), "w", encoding="utf-8") as f:
                f.write(text)
        out = open(os.path.join(tmp, "stdout"), "wb")
        proc = subprocess.Popen(
            [binary, "-f", "-d", tmp, "-n", "radiusd"],
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        server = FreeRadius(tmp, auth_port, acct_port, SECRET, proc)
        try:
            deadline = time.monotonic() + START_TIMEOUT
            while "Ready to process requests" not in server.log():
                if proc.poll() is not None or time.monotonic() > deadline:
                    with open(os.path.join(tmp, "stdout"), encoding="utf-8", errors="replace") as f:
                        output = f.read()
                    pytest.fail(f"freeradius did not start:\n{output}\n{server.log()}")
                time.sleep(0.05)
            yield server
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(5)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait(5)
            out.close()


@cache
def top_dictionary() -> Dictionary:
    """The project's RADIUS dictionary, loaded once for all the tests that build packets."""
    return load_dictionary(TOP_DICTIONARY)


def loopback_client(
    secret: str,
    auth_ports: Sequence[int],
    acct_ports: Sequence[int] = (),
    timeout: float = 0.3,
    retries: int = 2,
    require_ma: bool = True,
) -> Radius_client:
    """A Radius_client of servers on 127.0.0.1 (tried in the order given), short timeouts so that
    a silent one costs little test time."""
    conf = RadiusConf(
        authservers=[RadiusServer("127.0.0.1", p, secret.encode()) for p in auth_ports],
        acctservers=[RadiusServer("127.0.0.1", p, secret.encode()) for p in acct_ports],
        dictionary=top_dictionary(),
        timeout=timeout,
        retries=retries,
    )
    return Radius_client(conf, require_ma=require_ma)


def run_reactor_until(done: Callable[[], bool], timeout: float = 5.0) -> None:
    """Turn the global reactor until done() or timeout (the reactor is never started/stopped,
    so every test can use it)."""
    from twisted.internet import reactor

    deadline = time.monotonic() + timeout
    while not done():
        if time.monotonic() > deadline:
            raise AssertionError(f"not done within {timeout} s")
        reactor.iterate(0.01)
