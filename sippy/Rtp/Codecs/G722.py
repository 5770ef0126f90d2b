"""G.722 (payload type 9) through the `g722` package: 16 kHz audio at 64 kbit/s.

The RTP clock runs at 8000 Hz for G.722 (RFC 3551 4.5.2, a historical error kept for
compatibility), so timestamps advance half as fast as samples.
"""

from __future__ import annotations

from array import array

from G722 import G722

from .GenCodec import GenCodec


class G722Codec(GenCodec):
    ptype = 9
    ename = "G722"
    srate = 16000
    crate = 8000
    brate = 8000
    bitrate = 64000

    def __init__(self) -> None:
        super().__init__()
        self._codec = G722(self.srate, self.bitrate, use_numpy=False)

    def encode_pcm(self, pcm: array) -> bytes:
        if len(pcm) % 2:  # the encoder codes sample pairs
            pcm = pcm + array("h", (0,))
        return self._codec.encode(pcm)

    def decode_pcm(self, data: bytes) -> array:
        return array("h", self._codec.decode(data))
