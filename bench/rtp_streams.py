"""How many 20 ms RTP streams (sent and received: one endpoint each way) one core sustains.

Runs N pairs of sippy.Rtp endpoints on loopback in this one process (so 2N endpoints, each
sending 50 packets/s and receiving 50 packets/s through the jitter buffer and decoder), for a few
seconds of real reactor time, and reports the process CPU time per endpoint-second. One core
sustains about 1 / that many endpoints; a run also tells whether it kept real time (packets
received vs. due, late ticks).

Run: python bench/rtp_streams.py [--pairs 50,100,200] [--seconds 5] [--codec PCMU|PCMA|G722]
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from array import array
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from twisted.internet import reactor  # noqa: E402

from sippy.Rtp.Codecs.G711 import G711ACodec, G711Codec  # noqa: E402
from sippy.Rtp.Codecs.G722 import G722Codec  # noqa: E402
from sippy.Rtp.Conf import RTPConf  # noqa: E402
from sippy.Rtp.Core.AudioChunk import AudioChunk  # noqa: E402
from sippy.Rtp.EPoint import RTPEPoint  # noqa: E402
from sippy.Rtp.Params import RTPParams  # noqa: E402

CODECS = {"PCMU": G711Codec, "PCMA": G711ACodec, "G722": G722Codec}


def cpu_seconds() -> float:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def run(npairs: int, seconds: float, codec: type) -> dict[str, float]:
    conf = RTPConf(20000, 40000)
    received = [0]

    def sink(chunk: AudioChunk) -> None:
        received[0] += chunk.nframes

    eps = []
    for _ in range(npairs):
        a = RTPEPoint(conf, _params(None, codec), sink)
        b = RTPEPoint(conf, _params(("127.0.0.1", a.rtp_params.rtp_lport), codec), sink)
        up = a.rtp_params.getCopy()
        up.rtp_target = ("127.0.0.1", b.rtp_params.rtp_lport)
        a.update(up)
        eps += [a, b]
    audio = array("h", bytes(2 * codec.srate * int(seconds + 2)))
    for ep in eps:
        ep.soundout(AudioChunk(audio, codec.srate))
    # let every writer start, then measure a whole number of seconds
    reactor.iterate(0)
    t0, c0 = time.monotonic(), cpu_seconds()
    npkts0 = sum(ep.rsess.npkts for ep in eps)
    while time.monotonic() - t0 < seconds:
        reactor.iterate(0.001)
    wall, cpu = time.monotonic() - t0, cpu_seconds() - c0
    npkts = sum(ep.rsess.npkts for ep in eps) - npkts0
    for ep in eps:
        ep.shutdown()
    for _ in range(5):
        reactor.iterate(0.01)
    due = len(eps) * wall * 50
    return {"endpoints": len(eps), "wall": wall, "cpu": cpu, "received": npkts, "due": due}


def _params(target, codec) -> RTPParams:
    p = RTPParams(target)
    p.codec = codec
    p.rtp_laddr = "127.0.0.1"
    return p


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--pairs", default="25,50,100,200", help="comma-separated numbers of endpoint pairs")
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--codec", choices=sorted(CODECS), default="PCMU")
    args = ap.parse_args()
    print(f"{'endpoints':>9} {'CPU %':>7} {'recv/due':>9} {'CPU us/pkt':>10} {'endpoints/core':>14}")
    for npairs in (int(n) for n in args.pairs.split(",")):
        r = run(npairs, args.seconds, CODECS[args.codec])
        load = r["cpu"] / r["wall"]
        per_ep = r["cpu"] / (r["endpoints"] * r["wall"])  # CPU s per endpoint-second
        us_per_pkt = 1e6 * per_ep / 50  # each endpoint: one packet out and one in per 20 ms
        print(
            f"{r['endpoints']:>9} {100 * load:>6.1f}% {r['received'] / r['due']:>9.3f} "
            f"{us_per_pkt:>10.1f} {1 / per_ep:>14.0f}"
        )


if __name__ == "__main__":
    main()
