"""Shared test helpers: free loopback ports, bounded subprocesses and parser fuzzing input."""

from __future__ import annotations

import socket
from typing import Sequence

import pytest
from hypothesis import strategies as st


def free_udp_port(host: str = "127.0.0.1") -> int:
    """Return a UDP port that is free on host right now."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_DGRAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def free_tcp_port(host: str = "127.0.0.1") -> int:
    """Return a TCP port that is free on host right now."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


@pytest.fixture
def udp_port() -> int:
    return free_udp_port()


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
