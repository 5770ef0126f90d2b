"""A piece of 16-bit mono PCM audio with its sample rate: what programs feed and receive."""

from __future__ import annotations

import sys
from array import array
from typing import Optional, Union

from rtpsynth.RtpUtils import resample_linear

PCM16Like = Union[array, bytes, bytearray, memoryview]


def pcm16_from(data: PCM16Like) -> array:
    """An array('h') of the samples; bytes are taken as little-endian 16-bit PCM."""
    if isinstance(data, array):
        if data.typecode != "h":
            raise TypeError("PCM16 audio must be an array with typecode 'h'")
        return data
    pcm = array("h", bytes(data))
    if sys.byteorder == "big":
        pcm.byteswap()
    return pcm


class AudioChunk:
    """`audio` is array('h'); `rtime` is when the first sample was received (None when sent)."""

    __slots__ = ("audio", "samplerate", "rtime", "debug")

    def __init__(self, audio: PCM16Like, samplerate: int) -> None:
        self.audio: array = pcm16_from(audio)
        self.samplerate = samplerate
        self.rtime: Optional[float] = None
        self.debug = False

    @property
    def nframes(self) -> int:
        return len(self.audio)

    def duration(self) -> float:
        return len(self.audio) / self.samplerate

    def resample(self, samplerate: int) -> AudioChunk:
        """Convert in place to another rate (linear interpolation); returns self."""
        if samplerate != self.samplerate:
            self.audio = resampled(self.audio, self.samplerate, samplerate)
            self.samplerate = samplerate
        return self

    def to_bytes(self) -> bytes:
        if sys.byteorder == "big":
            pcm = array("h", self.audio)
            pcm.byteswap()
            return pcm.tobytes()
        return self.audio.tobytes()


def resampled(pcm: array, from_rate: int, to_rate: int) -> array:
    """pcm at to_rate (a new array; the same one when the rates are equal)."""
    if from_rate == to_rate or len(pcm) == 0:
        return pcm
    return resample_linear(pcm, from_rate, to_rate)
