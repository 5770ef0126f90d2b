"""Micro-benchmark of the message hot path: parse a typical INVITE with SDP (touching the
headers a transaction and a UA read first) and serialise it again.

Run: python bench/parse.py [iterations]
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sippy.SipRequest import SipRequest  # noqa: E402

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


def parse_once() -> SipRequest:
    req = SipRequest(INVITE)
    req.getHFBody("via")
    req.getHFBody("from")
    req.getHFBody("to")
    req.getHFBody("cseq")
    req.getHFBody("call-id")
    return req


def best_of(fn, n: int, rounds: int = 5) -> float:
    """Best mean time per call (microseconds) over a few rounds, to dodge scheduler noise."""
    best = float("inf")
    for _ in range(rounds):
        t0 = time.perf_counter()
        for _ in range(n):
            fn()
        best = min(best, (time.perf_counter() - t0) / n)
    return best * 1e6


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 20000
    req = parse_once()
    assert str(req).encode() == INVITE, "round trip changed the message"
    print(f"parse (Via, From, To, CSeq, Call-ID accessed): {best_of(parse_once, n):.1f} us")
    print(f"serialise (same message, headers parsed):      {best_of(req.__str__, n):.1f} us")
    fresh = SipRequest(INVITE)
    print(f"serialise (untouched message):                 {best_of(fresh.__str__, n):.1f} us")


if __name__ == "__main__":
    main()
