"""Commands of one RTPproxy session, in order.

An update must not overtake the create it depends on, and a delete must not overtake either:
the sequencer sends a session's next command only once the previous one was answered (or failed).
"""

from __future__ import annotations

import collections
from typing import Any, Optional

from sippy.Rtp_proxy.Client.udp import ResultCallback

__all__ = ("Rtp_proxy_cmd_sequencer",)


class Rtp_proxy_cmd_sequencer:
    """Sippy's name; ``send_command`` as on the client, one command of this session at a time."""

    def __init__(self, rtp_proxy_client: Any) -> None:
        self.rtp_proxy_client = rtp_proxy_client
        self._queue: collections.deque[tuple[str, Optional[ResultCallback], tuple]] = collections.deque()
        self._busy = False

    def send_command(
        self, command: str, result_callback: Optional[ResultCallback] = None, *params: Any
    ) -> None:
        self._queue.append((command, result_callback, params))
        if not self._busy:
            self._next()

    def _next(self) -> None:
        if not self._queue:
            self._busy = False
            return
        self._busy = True
        command, result_callback, params = self._queue.popleft()
        self.rtp_proxy_client.send_command(command, self._answered, result_callback, params)

    def _answered(
        self, result: Optional[str], result_callback: Optional[ResultCallback], params: tuple
    ) -> None:
        if result_callback is not None:
            result_callback(result, *params)
        self._next()
