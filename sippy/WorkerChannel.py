"""The command pipe between the --workers parent and one worker (sippy.WorkerGroup).

The parent writes one command line at a time to the worker's stdin; the worker answers on
descriptor ``ANSWER_FD``, each answer ended by a NUL byte (answers are text and hold none). The
worker's first frame, unasked, says that it is ready to carry calls. End of file on the worker's
stdin means the parent is gone (killed even): the worker then stops as on SIGTERM, so no orphan
keeps a share of the SIP port.

Besides the control-socket commands (``B2BOperations.recvCommand``) a worker answers ``COUNTS``:
its status-line numbers as JSON, which the parent adds up for the group's status line.
"""

from __future__ import annotations

import json
from typing import Any, Callable

from twisted.internet import protocol
from twisted.internet.defer import Deferred

from sippy.CLIManager import CLIManager

__all__ = ("ANSWER_FD", "COUNTS", "ChannelClient", "serve_parent")

# The worker's descriptor for answers (0-2 are stdin, stdout, stderr).
ANSWER_FD = 3
FRAME_END = b"\0"
# The parent's question for a worker's status-line numbers.
COUNTS = "_counts"


class ChannelClient:
    """The parent's end: ``ask(cmd)`` gives a Deferred of the answer; answers come in the order
    of the questions. ``ready`` fires with the worker's first frame."""

    def __init__(self, write: Callable[[bytes], None]) -> None:
        self._write = write
        self._buf = b""
        self.ready: Deferred = Deferred()
        self._waiting: list[Deferred] = []
        self.closed = False

    def ask(self, cmd: str) -> Deferred:
        """The worker's answer to one command line; "" if the worker goes before answering."""
        d: Deferred = Deferred()
        if self.closed:
            d.callback("")
            return d
        self._waiting.append(d)
        self._write(cmd.encode() + b"\n")
        return d

    def dataReceived(self, data: bytes) -> None:
        *frames, self._buf = (self._buf + data).split(FRAME_END)
        for frame in frames:
            text = frame.decode("utf-8", "replace")
            if not self.ready.called:
                self.ready.callback(text)
            elif self._waiting:
                self._waiting.pop(0).callback(text)

    def lost(self) -> None:
        """The worker is gone: whoever waits gets an empty answer."""
        self.closed = True
        waiting, self._waiting = self._waiting, []
        for d in waiting:
            d.callback("")


class _WorkerEnd(protocol.Protocol):
    """The worker's end, on stdin (questions) and ANSWER_FD (answers)."""

    def __init__(self, command_cb: Callable[[CLIManager, str], Any], parent_gone: Callable[[], Any]) -> None:
        self.command_cb = command_cb
        self.parent_gone = parent_gone
        self._buf = b""

    def dataReceived(self, data: bytes) -> None:
        *lines, self._buf = (self._buf + data).split(b"\n")
        for line in lines:
            self._answer(line.decode("utf-8", "replace").strip())

    def _answer(self, cmd: str) -> None:
        out: list[bytes] = []
        if cmd:
            CLIManager(self.command_cb, None, out.append).handle_cmd(cmd)
        self.transport.write(b"".join(out) + FRAME_END)

    def connectionLost(self, reason: Any = None) -> None:
        self.parent_gone()


def serve_parent(
    ops: Any, ready: str, parent_gone: Callable[[], Any], reactor: Any = None
) -> protocol.Protocol:
    """In a worker: answer the parent's commands with ``ops`` (B2BOperations) and say ``ready``."""
    if reactor is None:
        from twisted.internet import reactor
    from twisted.internet.stdio import StandardIO

    def command(clim: CLIManager, cmd_line: str) -> None:
        if cmd_line == COUNTS:
            clim.send(json.dumps(ops.statusCounts()))
            return
        ops.recvCommand(clim, cmd_line)

    end = _WorkerEnd(command, parent_gone)
    StandardIO(end, stdin=0, stdout=ANSWER_FD, reactor=reactor)
    end.transport.write(ready.encode() + FRAME_END)
    return end
