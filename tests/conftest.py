"""Shared test helpers: free loopback ports, bounded subprocesses and parser fuzzing input."""

from __future__ import annotations

import os
import random
import signal
import socket
import subprocess
from collections.abc import Iterator, Sequence

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

# Property tests must not fail on a slow machine (no deadline, no too_slow health check); under CI
# they also run the same examples every time (derandomize) and keep no example database, so a red
# run is a reproducible one.
settings.register_profile("sippy", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("sippy-ci", settings.get_profile("sippy"), derandomize=True, database=None)
settings.load_profile("sippy-ci" if os.environ.get("CI") else "sippy")


def _test_port_range() -> range:
    """Ports below the kernel's ephemeral range: no bind(0) or connect() anywhere on the machine
    takes one of them between our pick and the bind of the program that gets it (a port the
    kernel hands out from its ephemeral range is only free until the next socket asks)."""
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            low = int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        low = 32768
    return range(max(10000, low - 12000), low)


_PORTS = _test_port_range()
# A random start: two test sessions on one machine walk different stretches of the range.
_next_port = random.randrange(len(_PORTS)) if _PORTS else 0
_handed_out: set[int] = set()


def _is_free(family: int, host: str, port: int) -> bool:
    for kind in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
        with socket.socket(family, kind) as s:
            try:
                s.bind((host, port))
            except OSError:
                return False
    return True


def free_port(host: str = "127.0.0.1", span: int = 1) -> int:
    """A port p such that p .. p+span-1 are free for UDP and TCP on host now and were never handed
    out before in this session (so two picks in one test can never collide)."""
    global _next_port
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    if len(_PORTS) < 1000:  # odd ephemeral range: let the kernel choose
        for _ in range(100):
            with socket.socket(family, socket.SOCK_DGRAM) as s:
                s.bind((host, 0))
                port = s.getsockname()[1]
            block = range(port, port + span)
            if not _handed_out.intersection(block) and all(_is_free(family, host, p) for p in block):
                _handed_out.update(block)
                return port
        raise RuntimeError("no free port")
    for _lap in range(2):
        for _ in range(len(_PORTS)):
            port = _PORTS[_next_port % len(_PORTS)]
            _next_port += 1
            block = range(port, port + span)
            if block[-1] in _PORTS and not _handed_out.intersection(block):
                if all(_is_free(family, host, p) for p in block):
                    _handed_out.update(block)
                    _next_port += span - 1
                    return port
        _handed_out.clear()  # a whole lap: the ports of finished tests are free again
    raise RuntimeError("no free port")


def has_ipv6() -> bool:
    """True when this machine can bind the IPv6 loopback (::1)."""
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


def free_udp_port(host: str = "127.0.0.1") -> int:
    """A UDP port that is free on host right now (see free_port)."""
    return free_port(host)


def free_tcp_port(host: str = "127.0.0.1") -> int:
    """A TCP port that is free on host right now (see free_port)."""
    return free_port(host)


class ListLog:
    """A SipLogger stand-in that keeps every line written (all levels enabled)."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def isEnabledFor(self, level: int) -> bool:
        return True

    def write(self, text: str, level: int = 0) -> None:
        self.lines.append(text)


def stop_process(proc: subprocess.Popen, grace: float = 5.0) -> int:
    """SIGTERM (a B2BUA hangs up its calls), then SIGKILL if it lingers; returns the exit code."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return proc.returncode


@pytest.fixture
def udp_port() -> int:
    return free_udp_port()


def _live_descendants(root: int) -> dict[int, str]:
    """pid -> command line of every live (not zombie) process below root, from /proc."""
    parent: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if fields[0] != "Z":
            parent[int(entry)] = int(fields[1])
    found: dict[int, str] = {}
    frontier = [root]
    while frontier:
        pid = frontier.pop()
        for child, ppid in parent.items():
            if ppid == pid and child not in found:
                try:
                    with open(f"/proc/{child}/cmdline", "rb") as f:
                        found[child] = f.read().replace(b"\0", b" ").decode(errors="replace").strip()
                except OSError:
                    found[child] = "?"
                frontier.append(child)
    return found


# A test still running after this many seconds (a few is normal) fails where it hangs, its
# fixtures clean up, and the run goes on: a hang never holds CI until its own time limit.
TEST_HANG_TIMEOUT = 120


class HangError(Exception):
    """Raised in a test that ran past TEST_HANG_TIMEOUT."""


def _hang(signum: int, frame: object) -> None:
    raise HangError(f"test still running after {TEST_HANG_TIMEOUT} s")


@pytest.fixture(autouse=True)
def hang_watchdog() -> Iterator[None]:
    previous = signal.signal(signal.SIGALRM, _hang)
    signal.alarm(TEST_HANG_TIMEOUT)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


@pytest.fixture(scope="session", autouse=True)
def no_process_left_behind() -> Iterator[None]:
    """After the last test: every SIPp, FreeRADIUS and B2BUA a test started must be gone. Any
    survivor is killed (by its pid) and reported as an error of the run."""
    yield
    left = _live_descendants(os.getpid())
    for pid in left:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    if left:
        pytest.fail(
            "processes left running by the tests (now killed):\n"
            + "\n".join(f"  {pid}: {cmd}" for pid, cmd in sorted(left.items()))
        )


@st.composite
def mutated_text(draw: st.DrawFn, samples: Sequence[str], chars: str) -> str:
    """One of samples with 1 to 4 single-character insertions, deletions or replacements (from
    chars): input a parser must either take or refuse with its own parse error."""
    s = draw(st.sampled_from(samples))
    for _ in range(draw(st.integers(1, 4))):
        pos = draw(st.integers(0, len(s)))
        op = draw(st.sampled_from(["ins", "del", "rep"]))
        c = draw(st.sampled_from(list(chars)))
        s = s[:pos] + ("" if op == "del" else c) + s[pos + (0 if op == "ins" else 1) :]
    return s


# Bytes a mutation inserts: SIP's separators, line ends, and what no parser expects.
_SIP_JUNK = [b":", b",", b";", b"\r\n", b"\n", b"\r\n ", b" ", b"\t", b"<", b">", b'"', b"\\", b"[", b"]"]
_SIP_JUNK += [b"\x00", b"\xff", b"\xc3", b"=", b"@", b"%", b"%0", b"?", b"-1", b"99999999999999999999"]


@st.composite
def mutated_sip(draw: st.DrawFn, seeds: Sequence[bytes]) -> bytes:
    """One of seeds after 1 to 5 mutations, byte-level (insert junk, delete, flip, truncate) or
    line-level (drop, duplicate or swap header lines, fold one, give one another's value, change
    a Content-Length)."""
    data = bytearray(draw(st.sampled_from(seeds)))
    for _ in range(draw(st.integers(1, 5))):
        op = draw(
            st.sampled_from(
                ["insert", "delete", "flip", "truncate", "drop", "dup", "swap", "fold", "value", "clen"]
            )
        )
        pos = draw(st.integers(0, max(0, len(data) - 1)))
        if op == "insert":
            data[pos:pos] = draw(st.sampled_from(_SIP_JUNK))
        elif op == "delete":
            del data[pos : pos + draw(st.integers(1, 8))]
        elif op == "flip" and data:
            data[pos] = draw(st.integers(0, 255))
        elif op == "truncate":
            del data[pos:]
        else:
            head, sep, body = bytes(data).partition(b"\r\n\r\n")
            lines = head.split(b"\r\n")
            i = draw(st.integers(0, len(lines) - 1))
            j = draw(st.integers(0, len(lines) - 1))
            if op == "drop":
                del lines[i]
            elif op == "dup":
                lines.insert(j, lines[i])
            elif op == "swap":
                lines[i], lines[j] = lines[j], lines[i]
            elif op == "fold" and b" " in lines[i]:
                lines[i] = lines[i].replace(b" ", b"\r\n ", 1)
            elif op == "value" and b":" in lines[i] and b":" in lines[j]:
                lines[i] = lines[i].partition(b":")[0] + b":" + lines[j].partition(b":")[2]
            elif op == "clen":
                lines.append(b"Content-Length: " + str(draw(st.integers(-5, len(body) + 5))).encode())
            data = bytearray(b"\r\n".join(lines) + sep + body)
    return bytes(data)
