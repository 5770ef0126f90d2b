"""Accounting records no server acknowledged, kept on disk until one does.

Accounting records are money: a record that got no answer after the client's retries (every
server, `radius_timeout * radius_retries` each) is written to the spool directory and sent again,
oldest first, once a server answers. The spool is read at start, so a restart (or a crash after the
write) loses nothing already spooled; a safe stop (SIGTERM) spools what is still unanswered.

On disk: the records spooled within SPOOL_FLUSH seconds of each other share a file,
`<20-digit sequence of its first record>.acct`, one JSON object per line (``seq``, ``session``,
``event_time``, ``spooled_at``, ``attributes`` as [name, value] pairs). Names sort in spool order,
so ``ls`` shows the oldest first and ``cat * | wc -l`` counts the records. A file is written under
a dot-name, fsync'd, renamed into place and the directory fsync'd: two fsyncs for a whole batch
instead of two per record, which during an outage at 20 calls/s (80 records a second, ~5 ms each)
stalled the reactor a third of the time. A file is deleted once a server acknowledged every record
in it; a kill while the spool drains may so send again records already acknowledged (same
identity, see below). A file holding one indented JSON object (the format before batches) is read
as one record.

Identity: the attributes of a record are built once, at the event (times, Acct-Session-Id, status
type), and every copy sent carries the same ones, so the billing side can drop duplicates (a lost
acknowledgement makes one). Only Acct-Delay-Time changes: it is the real delay of each copy.

Order: the records of one session (Acct-Session-Id: both legs of a call) go out one at a time, in
the order they were made, so the server sees Start before Stop even after an outage.
"""

from __future__ import annotations

import json
import os
import time
from collections import OrderedDict, deque
from typing import Any, Callable, Optional

from sippy.Radius_client import RESULT_ACCEPT, Radius_client
from sippy.SipLogger import SIPLOG_ERR, SIPLOG_INFO
from sippy.Time.Timeout import Timeout, default_reactor

__all__ = (
    "AcctRecord",
    "AcctSpool",
    "SpoolFile",
    "default_spool_dir",
    "SPOOL_FLUSH",
    "SPOOL_MAX",
    "SPOOL_RETRY",
    "SPOOL_WINDOW",
)

# Default bound of the spool, in records (about 1.5 kB each on disk).
SPOOL_MAX = 100000
# With records spooled and no server answering: seconds between two tries of the oldest one.
SPOOL_RETRY = 5.0
# Spooled records in flight at once while a server answers (the drain rate).
SPOOL_WINDOW = 16
# Records spooled within this many seconds are written together (one file, one fsync). A record
# waited radius_timeout * radius_retries seconds in memory before it was spooled already.
SPOOL_FLUSH = 0.1
SUFFIX = ".acct"

ResultCallback = Callable[[tuple[Any, int]], None]


def default_spool_dir(pidfile: str) -> str:
    """Beside the pidfile: `/var/run/b2bua.pid` -> `/var/run/b2bua.acct-spool`."""
    base, ext = os.path.splitext(pidfile)
    return (base if ext == ".pid" else pidfile) + ".acct-spool"


def spool_status(c: dict[str, int]) -> str:
    """The status line's part for the spool, from ``AcctSpool.counts()`` (or a sum of them)."""
    return f"accounting spool {c['waiting']} waiting, {c['delivered']} delivered, {c['lost']} lost"


class SpoolFile:
    """One file of the spool and how many of its records no server acknowledged yet."""

    __slots__ = ("name", "left")

    def __init__(self, name: str, left: int) -> None:
        self.name = name
        self.left = left


class AcctRecord:
    """One accounting record: its fixed attributes and the time of the event it reports."""

    __slots__ = ("session", "attributes", "event_time", "seq", "file", "in_flight", "result_cb")

    def __init__(
        self,
        session: str,
        attributes: list[tuple[str, Any]],
        event_time: float,
        result_cb: Optional[ResultCallback] = None,
    ) -> None:
        self.session = session
        self.attributes = attributes
        self.event_time = event_time
        # Place in the spool (None: not spooled) and the file holding it (None: not written yet).
        self.seq: Optional[int] = None
        self.file: Optional[SpoolFile] = None
        self.in_flight = False
        # Told the outcome of the first try only (the accounting's log line).
        self.result_cb = result_cb

    @property
    def saved(self) -> bool:
        return self.file is not None

    def describe(self) -> str:
        values = dict(self.attributes)
        status, origin = values.get("Acct-Status-Type", "?"), values.get("h323-call-origin", "?")
        return f"{status} record ({origin}) of {self.session}"


class AcctSpool:
    """How accounting records reach the server: live, and through the spool when none answers."""

    def __init__(
        self,
        client: Radius_client,
        directory: Optional[str],
        max_records: int = SPOOL_MAX,
        *,
        reactor: Any = None,
        logger: Any = None,
        retry_interval: float = SPOOL_RETRY,
        window: int = SPOOL_WINDOW,
        flush_delay: float = SPOOL_FLUSH,
        wallclock: Callable[[], float] = time.time,
    ) -> None:
        self.client = client
        self.directory = directory
        self.max_records = max_records
        self.reactor = reactor if reactor is not None else default_reactor()
        self.logger = logger
        self.retry_interval = retry_interval
        self.window = window
        self.flush_delay = flush_delay
        self.wallclock = wallclock
        # Unacknowledged records per session, oldest first; only the head is ever in flight.
        self._sessions: dict[str, deque[AcctRecord]] = {}
        # Spooled records by sequence, oldest first.
        self._spooled: OrderedDict[int, AcctRecord] = OrderedDict()
        self._last_seq = 0
        self._spool_flight = 0
        # A server answered since the last record that got no answer: drain at full window.
        self._server_answers = False
        self._retry: Optional[Timeout] = None
        # Spooled records not written yet, and the timer that writes them.
        self._unwritten: list[AcctRecord] = []
        self._flush_timer: Optional[Timeout] = None
        self.lost = 0
        self.delivered = 0

    # --- public API -------------------------------------------------------------------------

    def load(self) -> int:
        """Read the spool directory (at start); returns how many records wait in it."""
        if self.directory is None or not os.path.isdir(self.directory):
            return 0
        self._finish_cut_writes()
        found: list[AcctRecord] = []
        for fname in sorted(os.listdir(self.directory)):
            if fname.startswith(".") or not fname.endswith(SUFFIX):
                continue
            path = os.path.join(self.directory, fname)
            try:
                recs = _read_file(path, int(fname[: -len(SUFFIX)]))
            except (OSError, ValueError, KeyError, TypeError) as ex:
                # Kept for the operator under another name, never silently dropped.
                self._log(SIPLOG_ERR, f"accounting spool: cannot read {path} ({ex}), renamed to {fname}.bad")
                os.replace(path, path + ".bad")
                continue
            sfile = SpoolFile(fname, len(recs))
            for rec in recs:
                rec.file = sfile
            found += recs
        for rec in sorted(found, key=lambda r: r.seq or 0):
            assert rec.seq is not None
            self._last_seq = max(self._last_seq, rec.seq)
            self._spooled[rec.seq] = rec
            self._sessions.setdefault(rec.session, deque()).append(rec)
        if self._spooled:
            self._log(
                SIPLOG_INFO, f"accounting spool: {len(self._spooled)} record(s) waiting in {self.directory}"
            )
        return len(self._spooled)

    def _finish_cut_writes(self) -> None:
        """A process killed between writing a record's temporary file and renaming it left a
        '.NAME' behind: give it its real name, so that a complete one is sent and a cut one is
        set aside like any unreadable file."""
        assert self.directory is not None
        for fname in os.listdir(self.directory):
            if fname.startswith(".") and fname.endswith(SUFFIX) and fname[1:2].isdigit():
                os.replace(os.path.join(self.directory, fname), os.path.join(self.directory, fname[1:]))

    def start(self) -> None:
        """Begin sending what load() found."""
        self._pump(probe=True)

    def send_record(
        self,
        session: str,
        attributes: list[tuple[str, Any]],
        event_time: float,
        result_cb: Optional[ResultCallback] = None,
    ) -> None:
        """Send a new record: `attributes` without Acct-Delay-Time, `event_time` in epoch seconds.

        result_cb((attrs, rcode)) learns how the first try went (RESULT_NO_ANSWER: spooled)."""
        rec = AcctRecord(session, attributes, event_time, result_cb)
        queue = self._sessions.get(session)
        if queue is None:
            self._sessions[session] = deque((rec,))
            self._transmit(rec)
            return
        queue.append(rec)
        if queue[0].seq is not None:
            # The session waits for a server already: the record joins it in the spool.
            self._store(rec)

    @property
    def waiting(self) -> int:
        """Records in the spool."""
        return len(self._spooled)

    def unsaved(self) -> int:
        """Unacknowledged records with no spool file (a safe stop waits a little for these)."""
        return sum(1 for q in self._sessions.values() for r in q if r.file is None)

    def counts(self) -> dict[str, int]:
        """For the status line: records on disk waiting, delivered and lost since start."""
        return {"waiting": len(self._spooled), "delivered": self.delivered, "lost": self.lost}

    def status(self) -> str:
        return spool_status(self.counts())

    def shutdown(self) -> None:
        """Spool every unacknowledged record not on disk yet, then forget them all."""
        if self._retry is not None:
            self._retry.cancel()
            self._retry = None
        for queue in list(self._sessions.values()):
            for rec in list(queue):
                if rec.seq is None:
                    self._store(rec)
        # Every spooled record not on disk (also one whose write failed before), in one file.
        self._unwritten = [
            r for q in self._sessions.values() for r in q if r.seq is not None and r.file is None
        ]
        self._flush()
        for queue in self._sessions.values():
            for rec in queue:
                if rec.file is None:
                    self.lost += 1
                    self._log(SIPLOG_ERR, f"accounting spool: {rec.describe()} LOST at stop (not written)")
        self._sessions.clear()
        self._spooled.clear()

    # --- sending ----------------------------------------------------------------------------

    def _transmit(self, rec: AcctRecord) -> None:
        rec.in_flight = True
        if rec.seq is not None:
            self._spool_flight += 1
        # RFC 2866: seconds between the event and this copy leaving; the rest of the record is fixed.
        delay = max(0, round(self.wallclock() - rec.event_time))
        self.client.do_acct([*rec.attributes, ("Acct-Delay-Time", delay)], self._answered, rec)

    def _answered(self, result: tuple[Any, int], rec: AcctRecord) -> None:
        rec.in_flight = False
        if rec.seq is not None:
            self._spool_flight -= 1
        cb, rec.result_cb = rec.result_cb, None
        queue = self._sessions.get(rec.session)
        if queue is None or not queue or queue[0] is not rec:
            return  # shut down meanwhile
        if result[1] == RESULT_ACCEPT:
            self._server_answers = True
            self._acknowledged(rec, queue)
        else:
            self._server_answers = False
            for r in list(queue):
                if r.seq is None:
                    self._store(r)
        if cb is not None:
            cb(result)
        self._pump()

    def _acknowledged(self, rec: AcctRecord, queue: deque[AcctRecord]) -> None:
        queue.popleft()
        if rec.seq is not None:
            del self._spooled[rec.seq]
            self.delivered += 1
            sfile = rec.file
            if sfile is not None:
                sfile.left -= 1
                if sfile.left == 0:
                    self._unlink(sfile.name)
        if not queue:
            del self._sessions[rec.session]
        elif queue[0].seq is None:
            self._transmit(queue[0])

    def _pump(self, probe: bool = False) -> None:
        """Send the oldest spooled records whose session has nothing older in flight: up to the
        window while a server answers, else only a single probe when `probe` (start, retry)."""
        if self._server_answers or probe:
            limit = self.window if self._server_answers else 1
            for rec in self._spooled.values():
                if self._spool_flight >= limit:
                    break
                if not rec.in_flight and self._sessions[rec.session][0] is rec:
                    self._transmit(rec)
        if self._spooled and not self._server_answers and self._spool_flight == 0 and self._retry is None:
            # No server answers: try the oldest again a while later.
            self._retry = Timeout(self._on_retry, self.retry_interval, 1, reactor=self.reactor)

    def _on_retry(self) -> None:
        self._retry = None
        self._pump(probe=True)

    # --- the directory ----------------------------------------------------------------------

    def _store(self, rec: AcctRecord) -> bool:
        """Put rec in the spool (its file written at the next flush); False if the spool is full."""
        if len(self._spooled) >= self.max_records:
            self.lost += 1
            self._log(
                SIPLOG_ERR,
                f"accounting spool FULL ({len(self._spooled)} records, limit {self.max_records}, "
                f"in {self.directory}): {rec.describe()} LOST",
            )
            queue = self._sessions[rec.session]
            queue.remove(rec)
            if not queue:
                del self._sessions[rec.session]
            return False
        # Wall-clock microseconds, so that the order holds across restarts as well.
        self._last_seq = max(self._last_seq + 1, int(self.wallclock() * 1e6))
        rec.seq = self._last_seq
        self._spooled[rec.seq] = rec
        # Nobody is told about a spooled record any more: let go of the call's accounting.
        rec.result_cb = None
        self._unwritten.append(rec)
        if self._flush_timer is None:
            self._flush_timer = Timeout(self._flush, self.flush_delay, 1, reactor=self.reactor)
        return True

    def _flush(self) -> None:
        """Write the records spooled since the last flush (those still waiting) as one file."""
        if self._flush_timer is not None:
            self._flush_timer.cancel()
            self._flush_timer = None
        batch = sorted(
            (r for r in self._unwritten if r.seq is not None and self._spooled.get(r.seq) is r),
            key=lambda r: r.seq or 0,
        )
        self._unwritten = []
        if not batch:
            return
        sfile = self._write(batch)
        if sfile is None:
            return
        for rec in batch:
            rec.file = sfile
        if self.logger is not None and self.logger.isEnabledFor(SIPLOG_INFO):
            for rec in batch:
                self._log(
                    SIPLOG_INFO, f"accounting spool: {rec.describe()} spooled, {len(self._spooled)} waiting"
                )

    def _write(self, batch: list[AcctRecord]) -> Optional[SpoolFile]:
        if self.directory is None:
            return None
        spooled_at = self.wallclock()
        data = b"".join(
            json.dumps(
                {
                    "seq": rec.seq,
                    "session": rec.session,
                    "event_time": rec.event_time,
                    "spooled_at": spooled_at,
                    "attributes": rec.attributes,
                }
            ).encode()
            + b"\n"
            for rec in batch
        )
        name = f"{batch[0].seq:020d}{SUFFIX}"
        final = os.path.join(self.directory, name)
        tmp = os.path.join(self.directory, "." + name)
        try:
            os.makedirs(self.directory, mode=0o700, exist_ok=True)
            with open(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, final)
            dfd = os.open(self.directory, os.O_RDONLY)
            try:
                os.fsync(dfd)
            finally:
                os.close(dfd)
        except OSError as ex:
            self._log(
                SIPLOG_ERR,
                f"accounting spool: cannot write {final} ({ex}): {len(batch)} record(s) kept in memory, "
                f"the first {batch[0].describe()}",
            )
            return None
        return SpoolFile(name, len(batch))

    def _unlink(self, name: str) -> None:
        assert self.directory is not None
        try:
            os.unlink(os.path.join(self.directory, name))
        except OSError as ex:
            self._log(SIPLOG_ERR, f"accounting spool: cannot remove {name} ({ex}): it will be sent again")

    def _log(self, level: int, text: str) -> None:
        if self.logger is not None and self.logger.isEnabledFor(level):
            self.logger.write(text, level=level)


def _read_file(path: str, file_seq: int) -> list[AcctRecord]:
    """The records of one spool file, oldest first (ValueError when it holds none)."""
    with open(path, encoding="utf-8") as f:
        text = f.read()
    try:
        # One record: a one-line file, or an indented object (the format before batches).
        items = [json.loads(text)]
    except ValueError:
        items = [json.loads(line) for line in text.splitlines() if line.strip()]
    if not items:
        raise ValueError("no record in it")
    recs = []
    for data in items:
        rec = AcctRecord(
            str(data["session"]),
            [(str(n), v) for n, v in data["attributes"]],
            float(data["event_time"]),
        )
        rec.seq = int(data.get("seq", file_seq))
        recs.append(rec)
    return recs
