"""Sippy's line logger: `26 Nov 05:50:22.123/<call-id>/<app>: text`, one line per write().

Writes are synchronous to a line-buffered file (no thread, no queue); callers on the hot path
check `isEnabledFor(level)` before building the text, so a disabled level costs one comparison.
Environment, as in Sippy: SIPLOG_BEND (`stderr`, `logfile`, `syslog`, `none`), SIPLOG_LVL
(`DBUG`, `INFO`, `WARN`, `ERR`, `CRIT`) and SIPLOG_LOGFILE_FILE.
"""

from __future__ import annotations

import os
import sys
import syslog
import time
from typing import Any, Optional, TextIO

SIPLOG_DBUG = 0
SIPLOG_INFO = 1
SIPLOG_WARN = 2
SIPLOG_ERR = 3
SIPLOG_CRIT = 4

_LEVELS = {
    "DBUG": SIPLOG_DBUG,
    "INFO": SIPLOG_INFO,
    "WARN": SIPLOG_WARN,
    "ERR": SIPLOG_ERR,
    "CRIT": SIPLOG_CRIT,
}
_SYSLOG_PRIO = {
    SIPLOG_DBUG: syslog.LOG_DEBUG,
    SIPLOG_INFO: syslog.LOG_INFO,
    SIPLOG_WARN: syslog.LOG_WARNING,
    SIPLOG_ERR: syslog.LOG_ERR,
    SIPLOG_CRIT: syslog.LOG_CRIT,
}
DEFAULT_LOGFILE = "/var/log/sip.log"


class SipLogger:
    """A logger bound to one application name and a default call-id."""

    def __init__(self, app: str, call_id: str = "GLOBAL", logfile: Optional[str] = None) -> None:
        self.app = app
        self.call_id = call_id
        self.pid: Optional[int] = None
        self.discarded = 0
        self.bend = os.environ.get("SIPLOG_BEND", "stderr").lower()
        lvl = os.environ.get("SIPLOG_LVL", "INFO").upper()
        self.level: int = _LEVELS.get(lvl, SIPLOG_INFO)
        self._saved_level = self.level
        self.logfile = logfile or os.environ.get("SIPLOG_LOGFILE_FILE", DEFAULT_LOGFILE)
        self._file: Optional[TextIO] = None
        if self.bend == "logfile":
            self._open()
        elif self.bend == "syslog":
            syslog.openlog(app, syslog.LOG_PID)

    def _open(self) -> None:
        try:
            self._file = open(self.logfile, "a", buffering=1, encoding="utf-8", errors="replace")
        except OSError as ex:
            # Losing the log must not stop the B2BUA: say why once and fall back to stderr.
            self._file = None
            sys.stderr.write(f"SipLogger: cannot open {self.logfile} ({ex}), logging to stderr\n")

    def isEnabledFor(self, level: int) -> bool:
        return level >= self.level

    def setLevel(self, level: int) -> None:
        self.level = level
        self._saved_level = level

    def toggleDebug(self, *_signal_args: Any) -> None:
        """SIGUSR2: switch to DBUG, or back to the level in force before."""
        if self.level == SIPLOG_DBUG and self._saved_level != SIPLOG_DBUG:
            self.level = self._saved_level
        else:
            self._saved_level = self.level
            self.level = SIPLOG_DBUG

    def reopen(self, *_signal_args: Any) -> None:
        """SIGUSR1 (logrotate): close and reopen the log file under its configured name."""
        if self.bend != "logfile":
            return
        if self._file is not None:
            self._file.close()
        self._open()

    def ftime(self, ltime: float) -> str:
        secs, msec = divmod(round(ltime * 1000), 1000)
        return f"{time.strftime('%d %b %H:%M:%S', time.localtime(secs))}.{msec:03d}"

    def format(self, args: tuple[Any, ...], ltime: Any = None, call_id: Optional[str] = None) -> str:
        if ltime is None:
            ltime = time.time()
        else:
            # A MonoTime (message arrival time) or a plain epoch float.
            ltime = getattr(ltime, "realt", ltime)
        pid = "" if self.pid is None else f"[{self.pid}]"
        text = "".join(str(x) for x in args)
        cid = self.call_id if call_id is None else call_id
        return f"{self.ftime(ltime)}/{cid}/{self.app}{pid}: {text}\n"

    def write(
        self,
        *args: Any,
        ltime: Any = None,
        level: Optional[int] = None,
        discarded: bool = False,
        call_id: Optional[str] = None,
    ) -> None:
        """Log the concatenation of args at level (INFO when not given).

        `discarded=True` marks a line about a message that was dropped; such lines are counted in
        `self.discarded` so the control socket can report them.
        """
        if level is None:
            level = SIPLOG_INFO
        if level < self.level or self.bend == "none":
            return
        if discarded:
            self.discarded += 1
        if self.bend == "syslog":
            syslog.syslog(_SYSLOG_PRIO.get(level, syslog.LOG_NOTICE), "".join(str(x) for x in args))
            return
        line = self.format(args, ltime, call_id)
        out = self._file if self._file is not None else sys.stderr
        try:
            out.write(line)
        except OSError:
            # A full disk or a vanished stderr must not break call processing.
            self.discarded += 1

    def ewrite(self, *args: Any, ltime: Any = None, call_id: Optional[str] = None) -> None:
        """Log at ERR level."""
        self.write(*args, ltime=ltime, level=SIPLOG_ERR, call_id=call_id)

    def shutdown(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
