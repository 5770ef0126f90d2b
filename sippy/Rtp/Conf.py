"""Per-program RTP settings: where local RTP ports come from."""

from __future__ import annotations

import random
from typing import Optional


class PortAllocationError(Exception):
    pass


class RTP_port_allocator:
    """Picks a random even port in [min_port, max_port] (RTP on even ports, RFC 3550 11);
    `ntry` counts the attempts, so a crowded range ends in PortAllocationError, not a loop."""

    def __init__(self, min_port: Optional[int] = None, max_port: Optional[int] = None) -> None:
        min_port = 1024 if min_port is None else min_port
        max_port = 65535 if max_port is None else max_port
        min_port += min_port % 2
        if min_port > max_port:
            raise ValueError(f"empty RTP port range {min_port}-{max_port}")
        self.min_port = min_port
        self.max_port = max_port

    def __call__(self, ntry: int) -> int:
        nports = (self.max_port - self.min_port) // 2 + 1
        if ntry >= nports:
            raise PortAllocationError(
                f"no free RTP port in {self.min_port}-{self.max_port} after {ntry} tries"
            )
        return self.min_port + 2 * random.randrange(nports)


class RTPConf:
    def __init__(self, min_port: Optional[int] = None, max_port: Optional[int] = None) -> None:
        self.palloc = RTP_port_allocator(min_port, max_port)
