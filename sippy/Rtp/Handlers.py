"""Which classes an RTPEPoint builds its parts from: a program swaps one in by subclassing."""

from __future__ import annotations

from .Ingest import RTPInStream
from .OutputWorker import RTPOutputWorker


class RTPHandlers:
    writer_cls: type[RTPOutputWorker] = RTPOutputWorker
    rtp_instream_cls: type[RTPInStream] = RTPInStream
