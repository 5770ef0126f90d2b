"""The receiving half of an RTP endpoint: jitter buffer (rtpsynth), decoding, and handing the
program audio in chunks of `out_chunk_ms`.

Lost packets become silence of the same length (the jitter buffer reports the gap in RTP
timestamp units), so the audio the program receives keeps the sender's timing.
"""

from __future__ import annotations

from array import array
from typing import Any, Callable, Optional

from rtpsynth.RtpJBuf import RTPFrameType, RtpJBuf, RTPParseError

from .Core.AudioChunk import AudioChunk, resampled
from .Params import RTPParams

# A gap longer than this is a new stream (sender restarted, timestamp jump), not lost audio.
MAX_GAP = 1.0


class RTPInStream:
    """`npkts` counts RTP packets accepted, `nerrors` datagrams that were not RTP, `nforeign`
    packets of another payload type (e.g. telephone-event) that were not decoded as audio."""

    jb_size = 8
    out_chunk_ms = 100

    def __init__(self, rtp_params: RTPParams, audio_in: Callable[[AudioChunk], Any]) -> None:
        self.audio_in = audio_in
        self.npkts = 0
        self.nerrors = 0
        self.nforeign = 0
        self.jbuf = RtpJBuf(self.jb_size)
        self._started = False
        self._pcm = array("h")
        self._pcm_rtime: Optional[float] = None
        self._set_codec(rtp_params)

    def _set_codec(self, rtp_params: RTPParams) -> None:
        self.codec = rtp_params.codec()
        self.codec.out_srate = rtp_params.out_sr
        self._codec_cls = rtp_params.codec
        self._out_sr = rtp_params.out_sr
        self._chunk_size = rtp_params.out_sr * self.out_chunk_ms // 1000

    def rtp_received(self, data: bytes, address: tuple[str, int], rtime: float) -> None:
        try:
            frames = self.jbuf.udp_in(data, rtime)
        except RTPParseError:
            self.nerrors += 1
            return
        self.npkts += 1
        if frames:
            self._decode(frames)
            self._deliver(final=False)

    def _decode(self, frames: list) -> None:
        codec = self.codec
        for frame in frames:
            content = frame.content
            if content.type == RTPFrameType.ERS:
                # rtpsynth also reports the sequence numbers before a stream's first packet as
                # lost when flushed early: nothing of this stream was played yet, nothing is lost.
                gap = content.ts_diff / codec.crate
                if self._started and gap < MAX_GAP:
                    self._pcm.extend(array("h", bytes(2 * int(gap * self._out_sr))))
                continue
            if frame.data[1] & 0x7F != codec.ptype:
                self.nforeign += 1
                continue
            self._started = True
            pcm = resampled(codec.decode_pcm(frame.rtp_data), codec.srate, self._out_sr)
            if not self._pcm:
                self._pcm_rtime = frame.opaque
            self._pcm.extend(pcm)

    def _deliver(self, final: bool) -> None:
        size = self._chunk_size
        while len(self._pcm) >= size or (final and self._pcm):
            chunk = AudioChunk(self._pcm[:size], self._out_sr)
            chunk.rtime = self._pcm_rtime
            del self._pcm[:size]
            if self._pcm_rtime is not None:
                self._pcm_rtime += chunk.nframes / self._out_sr
            self.audio_in(chunk)

    def flush(self) -> None:
        """Hand over everything still buffered (the stream ended or moved)."""
        self._decode(self.jbuf.flush())
        self._deliver(final=True)

    def stream_update(self, rtp_params: Optional[RTPParams] = None) -> None:
        """The stream moved or changed codec: deliver what the old one left, start afresh."""
        self.flush()
        self.jbuf = RtpJBuf(self.jb_size)
        self._started = False
        if rtp_params is None:
            return
        if rtp_params.codec is not self._codec_cls or rtp_params.out_sr != self._out_sr:
            self._set_codec(rtp_params)

    def stream_connect(self, audio_in: Callable[[AudioChunk], Any]) -> None:
        self.audio_in = audio_in
