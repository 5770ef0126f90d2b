"""What every codec tells the RTP endpoint: payload type, rates, and how to size packets."""

from __future__ import annotations

from array import array

from ..Core.AudioChunk import AudioChunk, PCM16Like, pcm16_from, resampled


class GenCodec:
    """A codec instance is stateful (G.722), so a sender and a receiver each make their own.

    `srate` is the PCM sample rate the codec works at, `crate` the RTP clock rate (they differ for
    G.722), `brate` the encoded bytes per second; `out_srate` is the rate decoded audio is handed
    to the program at.
    """

    ptype: int
    ename: str
    srate: int = 8000
    crate: int = 8000
    brate: int = 8000

    def __init__(self) -> None:
        self.out_srate = self.srate

    @classmethod
    def rtpmap(cls) -> str:
        """The SDP attribute value announcing this codec, e.g. 'rtpmap:0 PCMU/8000'."""
        return f"rtpmap:{cls.ptype} {cls.ename}/{cls.crate}"

    def encode_pcm(self, pcm: array) -> bytes:
        raise NotImplementedError

    def decode_pcm(self, data: bytes) -> array:
        raise NotImplementedError

    def encode(self, chunk: AudioChunk | PCM16Like) -> bytes:
        """Encoded bytes of a chunk (resampled to the codec's rate) or of raw PCM at `srate`."""
        if isinstance(chunk, AudioChunk):
            return self.encode_pcm(resampled(chunk.audio, chunk.samplerate, self.srate))
        return self.encode_pcm(pcm16_from(chunk))

    def decode(self, data: bytes, resample: bool = True, sample_rate: int | None = None) -> AudioChunk:
        """An AudioChunk of the decoded bytes, at `sample_rate` (default `out_srate`)."""
        chunk = AudioChunk(self.decode_pcm(data), self.srate)
        if resample:
            chunk.resample(self.out_srate if sample_rate is None else sample_rate)
        return chunk

    def e2d_frames(self, enframes: int, out_srate: int | None = None) -> int:
        """Samples (at out_srate) that enframes encoded bytes decode to."""
        return enframes * (self.out_srate if out_srate is None else out_srate) // self.brate

    def d2e_frames(self, dnframes: int, in_srate: int | None = None) -> int:
        """Encoded bytes for dnframes samples at in_srate."""
        return dnframes * self.brate // (self.out_srate if in_srate is None else in_srate)

    def e2t(self, frames: int) -> float:
        """Seconds of audio in `frames` encoded bytes."""
        return frames / self.brate

    def silence(self, nframes: int) -> bytes:
        """nframes encoded bytes of silence."""
        return self.encode_pcm(array("h", bytes(2 * (nframes * self.srate // self.brate))))
