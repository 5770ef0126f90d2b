"""G.711 (ITU-T G.711): PCMU (mu-law, payload type 0) and PCMA (A-law, payload type 8).

mu-law comes from rtpsynth; A-law is not in rtpsynth, so its two lookup tables are built here
once, from the segment/mantissa definition in G.711.
"""

from __future__ import annotations

from array import array

from rtpsynth.RtpUtils import linear2ulaw, ulaw2linear

from .GenCodec import GenCodec


class G711Codec(GenCodec):
    """PCMU: 8 kHz, one byte per sample."""

    ptype = 0
    ename = "PCMU"

    def encode_pcm(self, pcm: array) -> bytes:
        return linear2ulaw(pcm)

    def decode_pcm(self, data: bytes) -> array:
        return ulaw2linear(data)

    def silence(self, nframes: int) -> bytes:
        return b"\xff" * nframes


def _alaw_decode(code: int) -> int:
    code ^= 0x55
    seg = (code >> 4) & 0x07
    mag = ((code & 0x0F) << 4) + 8  # the middle of the quantisation step
    if seg > 0:
        mag = (mag + 0x100) << (seg - 1)
    return mag if code & 0x80 else -mag


def _alaw_encode(sample: int) -> int:
    """A-law byte of a 16-bit sample (its 13 most significant bits count)."""
    if sample >= 0:
        mag, sign = sample >> 3, 0x80
    else:
        mag, sign = (-sample - 1) >> 3, 0x00
    seg = max(0, mag.bit_length() - 5)
    if seg > 7:
        code = 0x7F
    else:
        code = (seg << 4) | ((mag >> max(seg, 1)) & 0x0F)
    return (code | sign) ^ 0x55


_ALAW_TO_LINEAR = array("h", (_alaw_decode(c) for c in range(256)))
# Indexed by the sample's 16 bits read as unsigned.
_LINEAR_TO_ALAW = bytes(_alaw_encode(u - 0x10000 if u >= 0x8000 else u) for u in range(0x10000))


class G711ACodec(G711Codec):
    """PCMA: 8 kHz, one byte per sample."""

    ptype = 8
    ename = "PCMA"

    def encode_pcm(self, pcm: array) -> bytes:
        return bytes(map(_LINEAR_TO_ALAW.__getitem__, memoryview(pcm).cast("B").cast("H")))

    def decode_pcm(self, data: bytes) -> array:
        return array("h", map(_ALAW_TO_LINEAR.__getitem__, data))

    def silence(self, nframes: int) -> bytes:
        return b"\xd5" * nframes
