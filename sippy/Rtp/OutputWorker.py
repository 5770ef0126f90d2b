"""The sending half of an RTP endpoint: queues the program's audio and sends one packet per
ptime on the reactor.

Packets go out at start + n * ptime (each timer is set from that ideal time, not from when the
previous one fired), so the stream does not drift. When the queue runs dry the RTP clock keeps
running without packets (silence suppression) and the next packet after the gap carries the
marker bit, as RFC 3551 4.1 asks.
"""

from __future__ import annotations

import secrets
import threading
from collections import deque
from typing import Any, Callable, Optional

from rtpsynth.RtpSynth import RtpSynth, set_randfunc

from sippy.Time.Timeout import default_reactor

from .Core.AudioChunk import AudioChunk, resampled
from .Params import RTPParams

# rtpsynth draws SSRC and the first sequence number from C random() unless told otherwise:
# without this every stream in every process would start with the same SSRC.
set_randfunc(lambda: secrets.randbits(31))

# A reactor stalled for longer than this does not get a burst of late packets: the stream skips
# ahead (timestamps jump, the receiver's jitter buffer sees a gap) and goes on from now.
MAX_LAG = 0.2


class RTPOutputWorker:
    """`soundout(chunk)` queues audio; counters are in frames (samples) of the chunks fed:
    `frames_rcvd` queued so far, `frames_prcsd` sent so far. `update_frm_ctrs` is called once per
    ptime (and for each chunk queued) with no lock held by the worker, so a subclass may override
    it to refill the queue when it runs low, taking its own locks if it wants to."""

    def __init__(self, rtp_params: RTPParams) -> None:
        self.codec = rtp_params.codec()
        self.samplerate_out: int = self.codec.srate
        self.out_ft: int = rtp_params.out_ptime
        self.state_lock = threading.RLock()
        self.frames_rcvd = 0
        self.frames_prcsd = 0
        self.has_started = False
        self.has_ended = False
        self.pkt_send_f: Optional[Callable[[bytes], Any]] = None
        self.npkts_sent = 0
        self._period = self.out_ft / 1000.0
        self._out_pt = self.codec.ptype
        frames_per_pkt = self.samplerate_out * self.out_ft // 1000
        self._out_psize = self.codec.d2e_frames(frames_per_pkt, self.samplerate_out)
        self._rsynth = RtpSynth(self.codec.crate, self.out_ft)
        self._enc = bytearray()
        # [encoded bytes not yet sent, frames they came from] per queued chunk, oldest first
        self._pending: deque[list[int]] = deque()
        self._talking = False
        self._reactor: Any = None
        self._call: Any = None
        self._next = 0.0

    def set_pkt_send_f(self, pkt_send_f: Callable[[bytes], Any]) -> None:
        self.pkt_send_f = pkt_send_f

    def start(self, reactor: Any = None) -> None:
        """Start the packet clock; the first packet goes out as soon as there is audio."""
        if self.has_started or self.has_ended:
            raise RuntimeError("RTPOutputWorker can be started once")
        self.has_started = True
        self._reactor = reactor if reactor is not None else default_reactor()
        self._next = self._reactor.seconds()
        self._tick()

    def end(self) -> None:
        self.has_ended = True
        call, self._call = self._call, None
        if call is not None and call.active():
            call.cancel()

    def join(self, timeout: Optional[float] = None) -> None:
        """Sippy's threaded worker had to be joined after end(); here end() is immediate."""

    def ended(self) -> bool:
        return self.has_ended

    def update_frm_ctrs(self, rcvd_inc: int = 0, prcsd_inc: int = 0) -> tuple[int, int]:
        with self.state_lock:
            self.frames_rcvd += rcvd_inc
            self.frames_prcsd += prcsd_inc
            return (self.frames_rcvd, self.frames_prcsd)

    def get_frm_ctrs(self) -> tuple[int, int]:
        with self.state_lock:
            return (self.frames_rcvd, self.frames_prcsd)

    def soundout(self, chunk: AudioChunk) -> tuple[int, bool]:
        """Queue a chunk (any sample rate; it is converted, the chunk itself is left alone).
        Returns (chunks queued, False) like Sippy's worker."""
        nframes = chunk.nframes
        if nframes == 0:
            return (len(self._pending), False)
        enc = self.codec.encode_pcm(resampled(chunk.audio, chunk.samplerate, self.samplerate_out))
        self._enc += enc
        self._pending.append([len(enc), nframes])
        self.update_frm_ctrs(rcvd_inc=nframes)
        return (len(self._pending), False)

    def _tick(self) -> None:
        self._call = None
        now = self._reactor.seconds()
        late = now - self._next
        if late > MAX_LAG:
            missed = int(late / self._period)
            self._rsynth.skip(missed)
            self._next += missed * self._period
            self._talking = False
        try:
            while self._next <= now and not self.has_ended:
                self._next += self._period
                self.update_frm_ctrs(prcsd_inc=self._send_one())
        finally:
            if not self.has_ended:
                self._call = self._reactor.callLater(self._next - now, self._tick)

    def _send_one(self) -> int:
        """Send this ptime's packet (or let the RTP clock run on in silence); frames sent."""
        psize = len(self._enc)
        if psize == 0:
            if self.npkts_sent > 0:  # the RTP clock runs on through the silence
                self._rsynth.skip(1)
            self._talking = False
            return 0
        if psize >= self._out_psize:
            psize = self._out_psize
            payload = bytes(self._enc[:psize])
        else:  # the tail of what was queued: fill up with silence
            payload = bytes(self._enc) + self.codec.silence(self._out_psize - psize)
        del self._enc[:psize]
        if not self._talking:
            self._talking = True
            if self.npkts_sent > 0:
                self._rsynth.set_mbt(1)
        pkt = self._rsynth.next_pkt(self._out_psize, self._out_pt, pload=payload)
        self.npkts_sent += 1
        if self.pkt_send_f is not None:
            self.pkt_send_f(pkt)
        return self._mark_sent(psize)

    def _mark_sent(self, nbytes: int) -> int:
        frames = 0
        pending = self._pending
        while nbytes > 0 and pending:
            head = pending[0]
            if head[0] > nbytes:
                head[0] -= nbytes
                break
            nbytes -= head[0]
            frames += head[1]
            pending.popleft()
        return frames
