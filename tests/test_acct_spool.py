"""The accounting spool's rules, with the RADIUS exchange replaced by a hand-answered stand-in and
time driven by a Clock: what gets written, in which order records go out again, what survives a
restart, and what happens when the spool is full. End to end with FreeRADIUS:
test_b2bua_radius_spool.py."""

from __future__ import annotations

import json
import os
from typing import Any, Callable

from twisted.internet.task import Clock

from sippy.Radius_client import RESULT_ACCEPT, RESULT_NO_ANSWER
from sippy.RadiusAcctSpool import SPOOL_FLUSH, AcctSpool, default_spool_dir
from tests.conftest import ListLog


class Server:
    """Stands in for Radius_client: keeps each do_acct() until the test answers it."""

    def __init__(self) -> None:
        self.requests: list[tuple[list[tuple[str, Any]], Callable[..., None], tuple[Any, ...]]] = []

    def do_acct(self, attributes: list[tuple[str, Any]], cb: Callable[..., None], *params: Any) -> None:
        self.requests.append((attributes, cb, params))

    def answer(self, rcode: int = RESULT_ACCEPT) -> list[tuple[str, Any]]:
        """Answer the oldest request in flight; returns its attributes."""
        attributes, cb, params = self.requests.pop(0)
        cb(((), rcode), *params)
        return attributes

    def answer_all(self, rcode: int = RESULT_ACCEPT) -> list[list[tuple[str, Any]]]:
        out = []
        while self.requests:
            out.append(self.answer(rcode))
        return out


class Wallclock:
    def __init__(self, clock: Clock) -> None:
        self.clock = clock

    def __call__(self) -> float:
        return 1_700_000_000.0 + self.clock.seconds()


def record(session: str, status: str, origin: str = "answer") -> list[tuple[str, Any]]:
    return [
        ("Acct-Session-Id", session),
        ("h323-call-origin", origin),
        ("Acct-Status-Type", status),
        ("h323-setup-time", "10:00:00.000 GMT Tue Nov 14 2023"),
    ]


def make(tmp_path: Any, **kw: Any) -> tuple[AcctSpool, Server, Clock, ListLog]:
    clock, server, logger = Clock(), Server(), ListLog()
    spool = AcctSpool(
        server,  # type: ignore[arg-type]
        str(tmp_path / "spool"),
        reactor=clock,
        logger=logger,
        retry_interval=5.0,
        wallclock=Wallclock(clock),
        **kw,
    )
    return spool, server, clock, logger


def files(tmp_path: Any) -> list[str]:
    d = tmp_path / "spool"
    return sorted(os.listdir(d)) if d.exists() else []


def on_disk(tmp_path: Any) -> list[dict[str, Any]]:
    """The records in the spool's files, as an operator reads them (one JSON object a line)."""
    out = []
    for name in files(tmp_path):
        if name.endswith(".acct") and not name.startswith("."):
            with open(tmp_path / "spool" / name, encoding="utf-8") as f:
                out += [json.loads(line) for line in f]
    return out


def value(attributes: list[tuple[str, Any]], name: str) -> Any:
    (v,) = [v for n, v in attributes if n == name]
    return v


def test_unanswered_record_is_written_and_sent_again_with_its_real_delay(tmp_path: Any) -> None:
    spool, server, clock, _ = make(tmp_path)
    event = Wallclock(clock)()
    spool.send_record("c1", record("c1", "Stop"), event)
    first = server.requests[0][0]
    assert value(first, "Acct-Delay-Time") == 0
    clock.advance(2.0)  # the client's retries
    server.answer(RESULT_NO_ANSWER)
    assert spool.unsaved() == 1 and files(tmp_path) == []  # written with what follows it shortly
    clock.advance(SPOOL_FLUSH)
    (name,) = files(tmp_path)
    (data,) = on_disk(tmp_path)
    assert data["session"] == "c1" and data["event_time"] == event and name == f"{data['seq']:020d}.acct"
    assert [tuple(a) for a in data["attributes"]] == record("c1", "Stop")
    assert spool.unsaved() == 0 and spool.waiting == 1
    # No server: one probe every retry interval, the file stays.
    clock.advance(5.0)
    server.answer(RESULT_NO_ANSWER)
    assert files(tmp_path) == [name] and server.requests == []
    clock.advance(5.0)
    again = server.answer(RESULT_ACCEPT)
    # Same identity, the real delay.
    assert [a for a in again if a[0] != "Acct-Delay-Time"] == record("c1", "Stop")
    assert value(again, "Acct-Delay-Time") == 12  # 2 + SPOOL_FLUSH + 5 + 5 s
    assert files(tmp_path) == [] and spool.waiting == 0 and spool.delivered == 1
    assert "0 waiting, 1 delivered, 0 lost" in spool.status()


def test_records_of_a_call_go_one_at_a_time_in_order(tmp_path: Any) -> None:
    spool, server, clock, _ = make(tmp_path)
    now = Wallclock(clock)()
    spool.send_record("c1", record("c1", "Start"), now)
    spool.send_record("c1", record("c1", "Stop"), now)
    spool.send_record("c2", record("c2", "Stop"), now)
    # The Stop of c1 waits for its Start; c2 goes at once.
    assert [value(r[0], "Acct-Session-Id") for r in server.requests] == ["c1", "c2"]
    server.answer(RESULT_NO_ANSWER)  # c1 Start: no server
    clock.advance(SPOOL_FLUSH)
    # Both of c1's records spooled, in order, in one file.
    assert len(files(tmp_path)) == 1
    assert [(r["session"], value(r["attributes"], "Acct-Status-Type")) for r in on_disk(tmp_path)] == [
        ("c1", "Start"),
        ("c1", "Stop"),
    ]
    assert spool.unsaved() == 1  # c2's Stop, still in flight
    server.answer(RESULT_ACCEPT)  # c2's Stop: the server is back, the spool drains at once
    sent = server.answer(RESULT_ACCEPT)
    assert value(sent, "Acct-Status-Type") == "Start"
    sent = server.answer(RESULT_ACCEPT)
    assert value(sent, "Acct-Status-Type") == "Stop"
    assert files(tmp_path) == [] and server.requests == []


def test_restart_reads_the_spool_and_sends_oldest_first(tmp_path: Any) -> None:
    spool, server, clock, _ = make(tmp_path)
    now = Wallclock(clock)()
    for i in range(3):
        spool.send_record(f"c{i}", record(f"c{i}", "Start"), now + i)
    spool.send_record("c0", record("c0", "Stop"), now + 5)  # waits behind c0's Start, in memory
    server.answer(RESULT_NO_ANSWER)
    clock.advance(SPOOL_FLUSH)
    assert spool.unsaved() == 2
    # Stop: what is in flight or waiting is spooled too (the process may not come back soon).
    spool.shutdown()
    assert len(on_disk(tmp_path)) == 4
    spool2, server2, clock2, logger2 = make(tmp_path)
    assert spool2.load() == 4
    assert any("4 record(s) waiting" in line for line in logger2.lines)
    spool2.start()
    assert len(server2.requests) == 1  # a single probe until a server answers
    got = [(value(a, "Acct-Session-Id"), value(a, "Acct-Status-Type")) for a in server2.answer_all()]
    got += [(value(a, "Acct-Session-Id"), value(a, "Acct-Status-Type")) for a in server2.answer_all()]
    # c0's Start had no answer first, and its Stop joined it in the spool; c1 and c2 at the stop.
    assert got == [("c0", "Start"), ("c0", "Stop"), ("c1", "Start"), ("c2", "Start")]
    assert files(tmp_path) == []


def test_full_spool_loses_loudly_and_counts(tmp_path: Any) -> None:
    spool, server, clock, logger = make(tmp_path, max_records=2)
    now = Wallclock(clock)()
    for i in range(3):
        spool.send_record(f"c{i}", record(f"c{i}", "Stop"), now)
    server.answer_all(RESULT_NO_ANSWER)
    clock.advance(SPOOL_FLUSH)
    assert len(on_disk(tmp_path)) == 2 and spool.lost == 1
    (line,) = [x for x in logger.lines if "FULL" in x]
    assert "limit 2" in line and "Stop record (answer) of c2 LOST" in line
    assert "2 waiting, 0 delivered, 1 lost" in spool.status()


def test_unreadable_file_is_set_aside(tmp_path: Any) -> None:
    d = tmp_path / "spool"
    d.mkdir()
    (d / "00000000000000000001.acct").write_text("{not json")
    spool, server, _, logger = make(tmp_path)
    assert spool.load() == 0
    assert files(tmp_path) == ["00000000000000000001.acct.bad"]
    assert any("cannot read" in x for x in logger.lines)


def test_write_cut_by_a_kill_is_finished_or_set_aside(tmp_path: Any) -> None:
    spool, server, clock, _ = make(tmp_path)
    spool.send_record("c0", record("c0", "Stop"), Wallclock(clock)())
    server.answer(RESULT_NO_ANSWER)
    clock.advance(SPOOL_FLUSH)
    (name,) = files(tmp_path)
    d = tmp_path / "spool"
    # Killed after the temporary file was written but before its rename; another cut short.
    os.rename(d / name, d / ("." + name))
    (d / ".00000000000000000002.acct").write_text('{"session": "c1", "attr')
    spool2, server2, _, logger2 = make(tmp_path)
    assert spool2.load() == 1
    assert files(tmp_path) == sorted([name, "00000000000000000002.acct.bad"])
    assert any("cannot read" in x for x in logger2.lines)
    spool2.start()
    (sent,) = server2.answer_all()
    assert value(sent, "Acct-Session-Id") == "c0" and value(sent, "Acct-Status-Type") == "Stop"
    assert files(tmp_path) == ["00000000000000000002.acct.bad"]


def test_records_spooled_together_share_one_file_until_all_are_acknowledged(
    tmp_path: Any, monkeypatch: Any
) -> None:
    spool, server, clock, logger = make(tmp_path)
    now = Wallclock(clock)()
    syncs: list[int] = []
    real_fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: syncs.append(fd) or real_fsync(fd))
    for i in range(10):
        spool.send_record(f"c{i}", record(f"c{i}", "Stop"), now)
    server.answer_all(RESULT_NO_ANSWER)
    clock.advance(SPOOL_FLUSH)
    # One file, written once: the file and the directory fsync'd, not two fsyncs per record.
    assert len(files(tmp_path)) == 1 and len(syncs) == 2
    assert [r["session"] for r in on_disk(tmp_path)] == [f"c{i}" for i in range(10)]
    assert sum("spooled, 10 waiting" in line for line in logger.lines) == 10
    # The server is back (the next probe): the file stays until its last record is acknowledged.
    clock.advance(5.0)
    server.answer(RESULT_ACCEPT)
    for _ in range(8):
        server.answer(RESULT_ACCEPT)
        assert len(files(tmp_path)) == 1
    server.answer(RESULT_ACCEPT)
    assert files(tmp_path) == [] and spool.delivered == 10


def test_a_file_in_the_format_before_batches_is_one_record(tmp_path: Any) -> None:
    d = tmp_path / "spool"
    d.mkdir()
    old = {"session": "c9", "event_time": 1.0, "spooled_at": 2.0, "attributes": record("c9", "Stop")}
    (d / "00000000000000000007.acct").write_text(json.dumps(old, indent=1) + "\n")
    spool, server, _, _ = make(tmp_path)
    assert spool.load() == 1
    spool.start()
    (sent,) = server.answer_all()
    assert value(sent, "Acct-Session-Id") == "c9" and files(tmp_path) == []


def test_default_directory_is_beside_the_pidfile() -> None:
    assert default_spool_dir("/var/run/b2bua.pid") == "/var/run/b2bua.acct-spool"
    assert default_spool_dir("/run/sippy") == "/run/sippy.acct-spool"
