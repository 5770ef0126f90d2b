"""A seeded, lossy UDP pipe between two peers, run as a subprocess by the tests (no netem needed).

    python -m tests.udp_relay --front PORT --back PORT --target HOST:PORT [--loss 0.05]
        [--delay-max 0.05] [--seed 1]

Datagrams arriving on the front port (from whoever sent last there: SIPp, the B2BUA's RADIUS
client) go out of the back port to the target; datagrams arriving on the back port go out of the
front port to that last front peer. Each one is dropped with probability --loss and delayed by up
to --delay-max seconds (never overtaking an earlier one of the same direction), in both
directions, from a random generator seeded with --seed.
SIGUSR1 drops everything from then on (a server that went silent), SIGUSR2 passes again. On
SIGTERM it prints its counters as one JSON line and exits.
"""

from __future__ import annotations

import argparse
import heapq
import json
import random
import selectors
import signal
import socket
import sys
import time
from typing import Any, Optional


def _hostport(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    return host.strip("[]"), int(port)


def main(argv: Optional[list[str]] = None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--front", type=int, required=True)
    ap.add_argument("--back", type=int, default=0)
    ap.add_argument("--target", type=_hostport, required=True)
    ap.add_argument("--loss", type=float, default=0.0)
    ap.add_argument("--delay-max", type=float, default=0.0)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--host", default="127.0.0.1")
    opts = ap.parse_args(argv)
    rng = random.Random(opts.seed)
    front = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    front.bind((opts.host, opts.front))
    back = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    back.bind((opts.host, opts.back))
    state: dict[str, Any] = {"down": False, "stop": False}
    counts = {"forwarded": 0, "lost": 0, "dropped_down": 0}

    def on_signal(signum: int, _frame: Any) -> None:
        if signum == signal.SIGUSR1:
            state["down"] = True
        elif signum == signal.SIGUSR2:
            state["down"] = False
        else:
            state["stop"] = True

    for signum in (signal.SIGUSR1, signal.SIGUSR2, signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, on_signal)
    sel = selectors.DefaultSelector()
    sel.register(front, selectors.EVENT_READ)
    sel.register(back, selectors.EVENT_READ)
    front_peer: Optional[tuple[str, int]] = None
    # (due time, sequence, socket to send from, data, address)
    queue: list[tuple[float, int, socket.socket, bytes, tuple[str, int]]] = []
    last_due: dict[socket.socket, float] = {}
    seq = 0
    print(json.dumps({"front": front.getsockname()[1], "back": back.getsockname()[1]}), flush=True)
    while not state["stop"]:
        now = time.monotonic()
        while queue and queue[0][0] <= now:
            _, _, sock, data, addr = heapq.heappop(queue)
            try:
                sock.sendto(data, addr)
            except OSError:
                counts["lost"] += 1
        wait = max(0.0, queue[0][0] - now) if queue else 0.2
        try:
            events = sel.select(min(wait, 0.2))
        except InterruptedError:
            continue
        for key, _ in events:
            sock = key.fileobj
            assert isinstance(sock, socket.socket)
            try:
                data, src = sock.recvfrom(65535)
            except OSError:
                continue
            if sock is front:
                front_peer = src
                out, dest = back, opts.target
            elif front_peer is not None:
                out, dest = front, front_peer
            else:
                continue
            if state["down"]:
                counts["dropped_down"] += 1
                continue
            if opts.loss and rng.random() < opts.loss:
                counts["lost"] += 1
                continue
            counts["forwarded"] += 1
            delay = rng.random() * opts.delay_max if opts.delay_max else 0.0
            # One path: jitter, but no overtaking within a direction.
            due = last_due[out] = max(time.monotonic() + delay, last_due.get(out, 0.0))
            seq += 1
            heapq.heappush(queue, (due, seq, out, data, dest))
    print(json.dumps(counts), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())


class Relay:
    """The relay as a subprocess of a test: `with Relay(target) as r: ... r.down(); r.up()`."""

    def __init__(
        self,
        target: tuple[str, int],
        *,
        loss: float = 0.0,
        delay_max: float = 0.0,
        seed: int = 1,
        back: int = 0,
    ) -> None:
        import os

        from tests.conftest import free_udp_port

        self.front = free_udp_port()
        root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        self.args = [sys.executable, "-m", "tests.udp_relay", "--front", str(self.front), "--back", str(back)]
        self.args += [
            "--target",
            f"{target[0]}:{target[1]}",
            "--loss",
            str(loss),
            "--delay-max",
            str(delay_max),
        ]
        self.args += ["--seed", str(seed)]
        self.cwd = root
        self.proc: Any = None
        self.back = back
        self.counts: dict[str, int] = {}

    @property
    def address(self) -> tuple[str, int]:
        return ("127.0.0.1", self.front)

    def start(self) -> Relay:
        import subprocess

        self.proc = subprocess.Popen(self.args, cwd=self.cwd, stdout=subprocess.PIPE, text=True)
        ports = json.loads(self.proc.stdout.readline())
        self.back = ports["back"]
        return self

    def down(self) -> None:
        self.proc.send_signal(signal.SIGUSR1)

    def up(self) -> None:
        self.proc.send_signal(signal.SIGUSR2)

    def stop(self) -> dict[str, int]:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            out, _ = self.proc.communicate(timeout=5)
            lines = out.strip().splitlines()
            self.counts = json.loads(lines[-1]) if lines else {}
        return self.counts

    def __enter__(self) -> Relay:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        try:
            self.stop()
        finally:
            if self.proc is not None and self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()
