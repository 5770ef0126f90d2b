"""Rate limit for log lines a remote peer can provoke (bad requests, full tables, send errors).

Under a flood every bad datagram would otherwise write a line, and the log would grow as fast as
the attacker sends. Per kind of line, the first `burst` lines of a `window` are written; the rest
are only counted, and when the window ends one summary line says how many were left out
("<kind>: N more like this in the last 60 s"). Time comes from the reactor, so a
`twisted.internet.task.Clock` drives it in tests.

Kinds are short fixed strings chosen by the code ("bad_request", "server_full", ...), never text
taken from a message: the table of kinds must not grow with what peers send.
"""

from __future__ import annotations

import traceback
from typing import Any, Callable

# Length of a rate-limit window, seconds, and how many lines of one kind each window writes.
LOG_WINDOW = 60.0
LOG_BURST = 10


class CurrentTraceback:
    """The exception being handled, formatted only if the line is written: pass it to
    `LogLimiter.write` from inside the `except` block."""

    def __str__(self) -> str:
        return traceback.format_exc()


class _KindWindow:
    """Lines of one kind in the current window (`level`: that of the last suppressed line)."""

    __slots__ = ("start", "written", "suppressed", "level", "timer")

    def __init__(self, start: float) -> None:
        self.start = start
        self.written = 0
        self.suppressed = 0
        self.level = 0
        self.timer: Any = None


class LogLimiter:
    """Writes through `write(level, *args)` at most `burst` lines of a kind per `window` seconds."""

    def __init__(
        self,
        write: Callable[..., None],
        reactor: Any,
        window: float = LOG_WINDOW,
        burst: int = LOG_BURST,
    ) -> None:
        self._write = write
        self.reactor = reactor
        self.window = window
        self.burst = burst
        self._kinds: dict[str, _KindWindow] = {}

    def write(self, kind: str, level: int, *args: Any) -> None:
        """Log `args` (joined only if written) unless this window already had `burst` of `kind`."""
        now = self.reactor.seconds()
        kw = self._kinds.get(kind)
        if kw is None or now - kw.start >= self.window:
            if kw is not None and kw.timer is not None and kw.timer.active():
                # Its timer is due but has not run yet (a busy reactor): summarise it first.
                kw.timer.cancel()
                self._summarise(kind, kw)
            kw = self._kinds[kind] = _KindWindow(now)
        if kw.written < self.burst:
            kw.written += 1
            self._write(level, *args)
            return
        kw.suppressed += 1
        kw.level = level
        if kw.timer is None:
            kw.timer = self.reactor.callLater(kw.start + self.window - now, self._summarise, kind, kw)

    def _summarise(self, kind: str, kw: _KindWindow) -> None:
        if self._kinds.get(kind) is kw:
            del self._kinds[kind]
        took = min(self.window, self.reactor.seconds() - kw.start)
        self._write(kw.level, f"{kind}: {kw.suppressed} more like this in the last {took:.0f} s")

    def flush(self) -> None:
        """Write the pending summaries now (over the part of the window that passed) and forget
        every window: at shutdown, so that nothing counted goes unsaid."""
        for kind, kw in tuple(self._kinds.items()):
            if kw.timer is not None and kw.timer.active():
                kw.timer.cancel()
                self._summarise(kind, kw)
        self._kinds.clear()
