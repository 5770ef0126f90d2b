#!/usr/bin/env python3
"""Extra call setup time that the media relay (-r) adds: b2bua_radius -u -s with and without a real
RTPproxy (rtp.io, UDP control socket on loopback).

    python bench/rtpp_setup.py [--calls 300]

One caller and one callee (tests/sip_party.py: hand-written SIP on loopback, in this process) make
``--calls`` calls one after the other through each B2BUA, alternating between the two (after 20
warm-up calls each): INVITE with SDP, 200 with SDP at once, ACK, BYE. The setup time of a call is
INVITE sent -> 200 received at the caller (perf_counter); with -r it includes the two U commands
and their answers. Prints median / p90 / mean for both runs and the
difference of the medians. Not part of the test suite.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from tests.rtpproxy_util import RtpProxy  # noqa: E402
from tests.sip_party import Party  # noqa: E402
from tests.test_b2bua_radius_calls import B2B  # noqa: E402
from tests.test_b2bua_radius_rtpproxy import wait_online  # noqa: E402


class Setup:
    """One B2BUA (with or without -r) and its caller and callee."""

    def __init__(self, relay: bool) -> None:
        self.callee, self.caller = Party(name="callee"), Party(name="caller")
        self.proxy = RtpProxy("udp").start() if relay else None
        args = ["-u", "-A", "0", "-s", f"127.0.0.1:{self.callee.port}"]
        if self.proxy is not None:
            args += ["-r", self.proxy.contact]
        self.b2b = B2B(args).start()
        if self.proxy is not None:
            wait_online(self.b2b, self.proxy)
        self.times: list[float] = []

    def call(self) -> None:
        caller, callee = self.caller, self.callee
        t0 = time.perf_counter()
        caller.call(self.b2b.address)
        inv = callee.expect("INVITE")
        callee.answered(inv, 200, callee.offer())
        ok = caller.expect("200")
        self.times.append(time.perf_counter() - t0)
        caller.connected(ok)
        callee.expect("ACK")
        caller.bye()
        callee.respond(callee.expect("BYE"), 200)
        caller.expect("200")

    def close(self) -> None:
        self.b2b.stop()
        if self.proxy is not None:
            self.proxy.stop()
        self.caller.close()
        self.callee.close()


WARMUP = 20


def summary(times: list[float]) -> str:
    ms = sorted(t * 1000 for t in times)
    return (
        f"median {statistics.median(ms):.2f} ms, p90 {ms[int(len(ms) * 0.9)]:.2f} ms, "
        f"mean {statistics.fmean(ms):.2f} ms"
    )


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--calls", type=int, default=300, help="calls per run (default 300)")
    opts = ap.parse_args()
    setups = [Setup(relay=False), Setup(relay=True)]
    try:
        # Alternate the two so that whatever else runs on the machine weighs on both alike;
        # the first calls (imports, caches) are not counted.
        for _ in range(WARMUP + opts.calls):
            for setup in setups:
                setup.call()
    finally:
        for setup in setups:
            setup.close()
    plain, relayed = (x.times[WARMUP:] for x in setups)
    print(f"without -r: {summary(plain)}")
    print(f"with -r:    {summary(relayed)}")
    extra_ms = (statistics.median(relayed) - statistics.median(plain)) * 1000
    print(f"extra setup time per call (medians): {extra_ms:.2f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
