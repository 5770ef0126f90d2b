"""Micro-benchmark of the transaction layer: `handleIncoming` for a new INVITE (parsed, a server
transaction made, the consumer called, 100 Trying sent), for a retransmission of it (absorbed, the
last response resent; byte for byte as UAs send them, and with a byte changed so that it has to be
parsed to be matched), and for a 180 answering one of our client INVITEs.

The transport is an in-memory fake. Timers go to the real Twisted reactor, which is never run:
arming and cancelling them costs what it costs in production (a `task.Clock` re-sorts its whole
call list on every callLater, which would swamp the figures).

The server transactions stay alive for the whole run, as they would under load, so Python's cyclic
garbage collector scans more and more of them: with the default GC settings that is a large part
of the new-INVITE figure. `--no-gc` shows the work of the code alone; `--tuned-gc` runs with what
the B2BUA programs set once started (`sippy.CallMap.tune_gc()`).

Run: python bench/transactions.py [iterations] [--no-gc | --tuned-gc]
"""

from __future__ import annotations

import gc
import sys
import time
from pathlib import Path
from typing import Any, Callable

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from twisted.internet import reactor  # noqa: E402

from sippy.Network_server import Remote_address  # noqa: E402
from sippy.SipRequest import SipRequest  # noqa: E402
from sippy.SipTransactionManager import SipTransactionManager  # noqa: E402
from sippy.Time.MonoTime import MonoTime  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from parse import INVITE  # noqa: E402

PEER = ("192.0.2.10", 5060)
LOCAL = ("192.0.2.20", 5060)

RINGING = (
    "SIP/2.0 180 Ringing\r\n"
    "Via: SIP/2.0/UDP 192.0.2.20:5060;branch={branch};rport=5060\r\n"
    'From: "Alice" <sip:alice@192.0.2.20:5060>;tag=9fxced76sl\r\n'
    "To: <sip:bob@192.0.2.30:5060>;tag=8321234356\r\n"
    "Call-ID: 3848276298220188511@192.0.2.20\r\n"
    "CSeq: 1 INVITE\r\n"
    "Contact: <sip:bob@192.0.2.30:5060>\r\n"
    "Content-Length: 0\r\n"
    "\r\n"
)


class FakeTransport:
    """The transport contract (docs/internals.md) without a socket: counts what would be sent."""

    transport = "udp"

    def __init__(self) -> None:
        self.sent = 0
        # Messages handed up (server: requests to the consumer; client: responses to resp_cb).
        self.delivered = 0

    def send_to(self, data: bytes, address: tuple[str, int]) -> None:
        self.sent += 1

    def up(self, *_args: Any) -> None:
        self.delivered += 1

    def getSIPaddr(self, raddress: Any = None) -> tuple[str, int]:
        return LOCAL

    def shutdown(self) -> None:
        pass


def best_of(setup: Callable[[int], Any], run: Callable[[Any], None], n: int, rounds: int = 5) -> float:
    """Best mean time per message (microseconds) of run(setup(n)) over a few rounds (the machine
    is noisy); setup is not timed."""
    best = float("inf")
    for _ in range(rounds):
        state = setup(n)
        t0 = time.perf_counter()
        run(state)
        best = min(best, (time.perf_counter() - t0) / n)
    return best * 1e6


def new_manager() -> tuple[SipTransactionManager, FakeTransport]:
    transport = FakeTransport()
    tm = SipTransactionManager({}, lambda req, t: transport.up(), transport=transport, reactor=reactor)
    return tm, transport


def setup_new_invites(n: int) -> tuple[SipTransactionManager, FakeTransport, list[bytes]]:
    """n distinct INVITEs (distinct branches): each one opens a server transaction."""
    tm, transport = new_manager()
    return tm, transport, [INVITE.replace(b"a1b2c3d4e5f6", b"%012d" % i) for i in range(n)]


def setup_retransmissions(n: int) -> tuple[SipTransactionManager, FakeTransport, list[bytes]]:
    """The same INVITE n times after its first copy: every one is absorbed."""
    tm, transport = new_manager()
    tm.handleIncoming(INVITE, PEER, transport, MonoTime())
    transport.sent = transport.delivered = 0
    return tm, transport, [INVITE] * n


def setup_changed_retransmissions(n: int) -> tuple[SipTransactionManager, FakeTransport, list[bytes]]:
    """Retransmissions that differ from the first copy in a byte: matched after a full parse."""
    tm, transport, _ = setup_retransmissions(n)
    return tm, transport, [INVITE.replace(b"Max-Forwards: 70", b"Max-Forwards: 69")] * n


def setup_responses(n: int) -> tuple[SipTransactionManager, FakeTransport, list[bytes]]:
    """n client INVITEs sent, and a 180 for each to feed back."""
    tm, transport = new_manager()
    template = SipRequest(INVITE)
    datas = []
    for _ in range(n):
        req = template.getCopy()
        req.getHFBody("via").genBranch()
        t = tm.newTransaction(req, transport.up)
        datas.append(RINGING.format(branch=t.tid[0]).encode())
    transport.sent = transport.delivered = 0
    return tm, transport, datas


def feed(
    state: tuple[SipTransactionManager, FakeTransport, list[bytes]],
    source: tuple[str, int],
    sent: int,
    delivered: int,
) -> None:
    """Hand every datagram to the manager; check that each had the effect it should (per message:
    `sent` datagrams out, `delivered` messages up)."""
    tm, transport, datas = state
    handle = tm.handleIncoming
    rtime = MonoTime()
    for data in datas:
        # A Remote_address per message, as Udp_server makes one per datagram.
        handle(data, Remote_address(source, "udp"), transport, rtime)
    n = len(datas)
    assert (transport.sent, transport.delivered) == (sent * n, delivered * n), "unexpected outcome"


def main() -> None:
    args = [a for a in sys.argv[1:] if a not in ("--no-gc", "--tuned-gc")]
    if "--no-gc" in sys.argv:
        gc.disable()
    elif "--tuned-gc" in sys.argv:
        from sippy.CallMap import tune_gc

        tune_gc()
    n = int(args[0]) if args else 5000
    new = best_of(setup_new_invites, lambda s: feed(s, PEER, 1, 1), n)
    print(f"new INVITE (to the consumer, 100 Trying sent): {new:.1f} us")
    retr = best_of(setup_retransmissions, lambda s: feed(s, PEER, 1, 0), n)
    print(f"INVITE retransmission (absorbed, 100 resent):  {retr:.1f} us")
    retr = best_of(setup_changed_retransmissions, lambda s: feed(s, PEER, 1, 0), n)
    print(f"  the same, bytes changed (parsed to match):   {retr:.1f} us")
    resp = best_of(setup_responses, lambda s: feed(s, LOCAL, 0, 1), n)
    print(f"180 to a client INVITE (to resp_cb):           {resp:.1f} us")


if __name__ == "__main__":
    main()
