"""Helpers for tests of sippy.Rtp: real loopback sockets with a Clock for the packet timers."""

from __future__ import annotations

import math
import struct
import time
from array import array
from typing import Any

from twisted.internet import reactor
from twisted.internet.task import Clock

from sippy.Rtp.Ingest import RTPInStream


class ClockedReactor:
    """Real UDP sockets (the global reactor) with time from a Clock: a test steps the packet
    clock 20 ms at a time without sleeping, and the datagrams really cross loopback."""

    def __init__(self) -> None:
        self.clock = Clock()
        self.clock.advance(1000.0)
        self.callLater = self.clock.callLater
        self.seconds = self.clock.seconds
        self.listenUDP = reactor.listenUDP

    def step(self, secs: float, received: Any = None, expect: int = 0) -> None:
        """Advance the clock by secs, then let the reactor deliver what was sent (until
        received() reaches expect, or briefly when no expectation is given)."""
        self.clock.advance(secs)
        pump(lambda: received is not None and received() >= expect, 0.5 if received is not None else 0.0)


def pump(cond: Any, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    reactor.iterate(0)
    while not cond() and time.monotonic() < deadline:
        reactor.iterate(0.002)
    return cond()


def tone(freq: float, nsamples: int, rate: int = 8000, amp: int = 12000, phase0: int = 0) -> array:
    return array(
        "h", (int(amp * math.sin(2 * math.pi * freq * (phase0 + i) / rate)) for i in range(nsamples))
    )


class RecordingInStream(RTPInStream):
    """Keeps (seq, ts, ssrc, marker, pt) of each packet it is given, then decodes as usual."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.headers: list[tuple[int, int, int, int, int]] = []

    def rtp_received(self, data: bytes, address: Any, rtime: float) -> None:
        if len(data) >= 12:
            b1, seq, ts, ssrc = struct.unpack("!xBHII", data[:12])
            self.headers.append((seq, ts, ssrc, b1 >> 7, b1 & 0x7F))
        super().rtp_received(data, address, rtime)
