"""Micro-benchmark of the message hot path: parse a typical INVITE with SDP (touching the
headers a transaction and a UA read first) and serialise it again.

Run: python bench/parse.py [iterations] [--reference]

--reference measures the same with Sippy 2.5.0's classes (PyPI, in the virtualenv of
bench/reference.py, made on first use) and prints the ratios. Sippy 2.5.0 parses text, not bytes:
its parse figure includes decoding the datagram, as its Udp_server does, and its message reads the
body (init_body, which its transaction manager calls on every request) before it is serialised.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable

HERE = Path(__file__).resolve().parent

SDP = (
    "v=0\r\n"
    "o=alice 2890844526 2890844526 IN IP4 192.0.2.10\r\n"
    "s=-\r\n"
    "c=IN IP4 192.0.2.10\r\n"
    "t=0 0\r\n"
    "m=audio 49170 RTP/AVP 0 8 101\r\n"
    "a=rtpmap:0 PCMU/8000\r\n"
    "a=rtpmap:8 PCMA/8000\r\n"
    "a=rtpmap:101 telephone-event/8000\r\n"
    "a=fmtp:101 0-15\r\n"
    "a=sendrecv\r\n"
)

INVITE = (
    "INVITE sip:bob@192.0.2.20:5060 SIP/2.0\r\n"
    "Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK-524287-1---a1b2c3d4e5f6;rport\r\n"
    "Max-Forwards: 70\r\n"
    'From: "Alice" <sip:alice@192.0.2.10:5060>;tag=9fxced76sl\r\n'
    "To: <sip:bob@192.0.2.20:5060>\r\n"
    "Call-ID: 3848276298220188511@192.0.2.10\r\n"
    "CSeq: 1 INVITE\r\n"
    "Contact: <sip:alice@192.0.2.10:5060;transport=udp>\r\n"
    "Allow: INVITE, ACK, CANCEL, OPTIONS, BYE, REFER, NOTIFY, MESSAGE, SUBSCRIBE, INFO, UPDATE\r\n"
    "Supported: replaces, timer\r\n"
    "User-Agent: Example SoftPhone 1.0\r\n"
    "Content-Type: application/sdp\r\n"
    f"Content-Length: {len(SDP)}\r\n"
    "\r\n" + SDP
).encode()


def measure(n: int, reference: bool) -> dict[str, float]:
    """Microseconds per parse / serialise with whichever `sippy` is importable (this project's, or
    with `reference` Sippy 2.5.0's in its own interpreter)."""
    from sippy.SipRequest import SipRequest

    def parse_once() -> Any:
        req = SipRequest(INVITE.decode()) if reference else SipRequest(INVITE)
        req.getHFBody("via")
        req.getHFBody("from")
        req.getHFBody("to")
        req.getHFBody("cseq")
        req.getHFBody("call-id")
        return req

    req = parse_once()
    fresh = SipRequest(INVITE.decode()) if reference else SipRequest(INVITE)
    if reference:
        req.init_body()
        fresh.init_body()
    else:
        assert str(req).encode() == INVITE, "round trip changed the message"
    return {
        "parse": best_of(parse_once, n),
        "serialise": best_of(req.__str__, n),
        "serialise_fresh": best_of(fresh.__str__, n),
    }


def best_of(fn: Callable[[], Any], n: int, rounds: int = 5) -> float:
    """Best mean time per call (microseconds) over a few rounds, to dodge scheduler noise."""
    best = float("inf")
    for _ in range(rounds):
        t0 = time.perf_counter()
        for _ in range(n):
            fn()
        best = min(best, (time.perf_counter() - t0) / n)
    return best * 1e6


LINES = (
    ("parse", "parse (Via, From, To, CSeq, Call-ID accessed)"),
    ("serialise", "serialise (same message, headers parsed)"),
    ("serialise_fresh", "serialise (untouched message)"),
)


def main() -> None:
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    n = int(args[0]) if args else 20000
    if "--as-reference" in sys.argv:
        # Run by --reference with the reference's interpreter: its `sippy` only, figures as JSON.
        print(json.dumps(measure(n, reference=True)))
        return
    sys.path.insert(0, str(HERE.parent))
    ours = measure(n, reference=False)
    if "--reference" not in sys.argv:
        for key, label in LINES:
            print(f"{label + ':':<48} {ours[key]:6.1f} us")
        return
    sys.path.insert(0, str(HERE))
    import reference

    # The reference's interpreter, started outside the checkout so that its own `sippy` is imported.
    out = subprocess.run(
        [reference.python(), str(HERE / "parse.py"), str(n), "--as-reference"],
        cwd=os.path.expanduser("~"),
        env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"},
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    ref = json.loads(out.strip().splitlines()[-1])
    print(f"{'':48} {'this':>8} {reference.LABEL:>12} {'this/ref':>9}")
    for key, label in LINES:
        print(f"{label + ':':<48} {ours[key]:6.1f} us {ref[key]:9.1f} us {ours[key] / ref[key]:8.2f}x")
    total, ref_total = ours["parse"] + ours["serialise"], ref["parse"] + ref["serialise"]
    label = "parse + serialise (headers parsed):"
    print(f"{label:<48} {total:6.1f} us {ref_total:9.1f} us {total / ref_total:8.2f}x")


if __name__ == "__main__":
    main()
