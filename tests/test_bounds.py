"""Bounds on what a remote peer can grow, and the rate-limited log (README "Security").

Transaction tables, the unanswered non-INVITE transaction, the log limiter; timers on a Clock.
"""

from __future__ import annotations

import io
from typing import Any

import pytest
from twisted.internet.task import Clock

from sippy.B2BConfig import ConfigError, parse_args
from sippy.CallMap import (
    CALL_MEMORY_BUDGET,
    CALL_MEMORY_SHARE,
    MIN_MAX_CALLS,
    CallMap,
    default_max_calls,
    max_calls_from,
)
from sippy.LogLimiter import LOG_BURST, LOG_WINDOW, LogLimiter
from sippy.SipLogger import SIPLOG_INFO, SIPLOG_WARN
from sippy.SipRequest import SipRequest
from sippy.SipResponse import SipResponse
from sippy.SipTransactionManager import RETRY_AFTER, TERMINATED
from tests.test_transactions import (
    PEER,
    Consumer,
    FakeLogger,
    Responses,
    answer,
    feed,
    mk,
    out_request,
    request,
)

# ---------------------------------------------------------------------------------------------
# Server transaction table


def test_full_server_table_gets_stateless_503_with_retry_after() -> None:
    cons = Consumer(lambda req, t: None)
    log = FakeLogger()
    tm, ft, clock = mk(cons, logger=log)
    tm.max_server_transactions = 3
    for i in range(3):
        feed(tm, request("OPTIONS", branch=f"z9hG4bK-o{i}", callid=f"c{i}"))
    assert len(tm.tserver) == 3 and ft.sent == [], "unanswered: three transactions wait"
    for i in range(3, 8):
        feed(tm, request("OPTIONS", branch=f"z9hG4bK-o{i}", callid=f"c{i}"))
    assert len(tm.tserver) == 3, "nothing kept for the refused requests"
    assert len(cons.reqs) == 3, "the consumer never saw them"
    assert ft.first_lines() == ["SIP/2.0 503 Service Unavailable"] * 5
    resp = SipResponse(buf=ft.sent[0][0])
    assert f"\r\nRetry-After: {RETRY_AFTER}\r\n" in ft.sent[0][0].decode()
    assert resp.getHFBody("to").getTag() is not None, "a non-100 answer carries a To tag"
    assert str(resp.getHFBody("call-id")) == "c3" and ft.sent[0][1] == PEER
    assert tm.refused["server"] == 5
    warns = [text for level, text in log.lines if level == SIPLOG_WARN]
    assert len(warns) == 5 and "server transaction table full (3): 503 to OPTIONS" in warns[0]


def test_full_server_table_still_answers_retransmissions_and_acks() -> None:
    cons = Consumer(lambda req, t: req.genResponse(486, "Busy Here"))
    tm, ft, clock = mk(cons)
    tm.max_server_transactions = 1
    feed(tm, request("INVITE"))
    assert ft.first_lines() == ["SIP/2.0 486 Busy Here"]
    feed(tm, request("INVITE"))
    assert ft.first_lines()[-1] == "SIP/2.0 486 Busy Here", "a retransmission is no new transaction"
    feed(tm, request("ACK", cseq_method="ACK"))
    assert ft.count("SIP/2.0") == 2, "the ACK of our 486 is absorbed, no 503 to an ACK"
    feed(tm, request("INVITE", branch="z9hG4bK-b2", callid="call-2@test"))
    assert ft.first_lines()[-1] == "SIP/2.0 503 Service Unavailable"
    feed(tm, request("ACK", branch="z9hG4bK-b2", callid="call-2@test", cseq_method="ACK"))
    assert ft.count("SIP/2.0") == 3, "the ACK of a stateless 503 is dropped"
    clock.advance(5.1)
    assert tm.tserver == {}, "timer I ended the 486's transaction"
    feed(tm, request("INVITE", branch="z9hG4bK-b3", callid="call-3@test"))
    assert ft.first_lines()[-1] == "SIP/2.0 486 Busy Here", "room again once the table drained"
    assert tm.refused["server"] == 1


# ---------------------------------------------------------------------------------------------
# Client transaction table


def test_full_client_table_fails_the_request_with_a_local_503() -> None:
    tm, ft, clock = mk()
    tm.max_client_transactions = 2
    got = [Responses() for _ in range(3)]
    tm.newTransaction(out_request("OPTIONS"), got[0])
    tm.newTransaction(out_request("OPTIONS"), got[1])
    t = tm.newTransaction(out_request("INVITE"), got[2], cb_ifver=2)
    assert ft.count("OPTIONS") == 2 and ft.count("INVITE") == 0, "nothing sent over the bound"
    assert len(tm.tclient) == 2 and t.state is TERMINATED
    assert got[2].codes() == [], "not inside newTransaction"
    clock.advance(0)
    assert got[2].codes() == [503] and got[2].got[0][1] is t
    tm.cancelTransaction(t)
    assert ft.count("CANCEL") == 0, "nothing to cancel"
    assert tm.refused["client"] == 1
    # The OPTIONS complete; the table has room again.
    for data, _ in list(ft.sent):
        feed(tm, answer(ft, data, 200, "OK"))
    clock.advance(5.1)
    assert tm.tclient == {}
    tm.newTransaction(out_request("INVITE"), got[2])
    assert ft.count("INVITE") == 1


# ---------------------------------------------------------------------------------------------
# A non-INVITE request the consumer never answers


def test_unanswered_non_invite_ends_after_64T1_and_late_answer_is_dropped() -> None:
    cons = Consumer(lambda req, t: None)
    log = FakeLogger()
    tm, ft, clock = mk(cons, logger=log)
    feed(tm, request("INFO", to_tag="tt1"))
    t = cons.reqs[0][1]
    clock.advance(31.9)
    assert len(tm.tserver) == 1
    feed(tm, request("INFO", to_tag="tt1"))
    assert ft.sent == [] and len(cons.reqs) == 1, "a retransmission while unanswered is absorbed"
    clock.advance(0.1)
    assert tm.tserver == {} and tm._retrans == {}, "timer F's worth (64*T1) later it is gone"
    assert t.state is TERMINATED and clock.getDelayedCalls() == []
    tm.sendResponse(SipRequest(buf=request("INFO", to_tag="tt1")).genResponse(200, "OK"), t)
    assert ft.sent == [], "a late answer is dropped"
    assert any("INFO not answered in 64*T1" in text for _, text in log.lines)


def test_non_invite_answered_in_time_keeps_timer_J_only() -> None:
    cons = Consumer(lambda req, t: None)
    tm, ft, clock = mk(cons)
    feed(tm, request("OPTIONS"))
    t = cons.reqs[0][1]
    clock.advance(10)
    tm.sendResponse(t.req.genResponse(200, "OK"), t)
    clock.advance(31.9)
    assert len(tm.tserver) == 1, "timer J runs from the answer (64*T1), not from the request"
    clock.advance(0.2)
    assert tm.tserver == {} and clock.getDelayedCalls() == []


def test_unanswered_invite_is_left_to_its_consumer() -> None:
    cons = Consumer(lambda req, t: None)
    tm, ft, clock = mk(cons)
    feed(tm, request("INVITE"))
    clock.advance(100)
    assert len(tm.tserver) == 1, "the UA owns an INVITE's life (Expires, its own timers)"


# ---------------------------------------------------------------------------------------------
# The log limiter


class Lines:
    def __init__(self) -> None:
        self.lines: list[tuple[int, str]] = []

    def __call__(self, level: int, *args: object) -> None:
        self.lines.append((level, "".join(str(a) for a in args)))


def test_log_limiter_writes_a_burst_then_one_summary_per_window() -> None:
    clock = Clock()
    out = Lines()
    lim = LogLimiter(out, clock, window=60.0, burst=3)
    for i in range(1000):
        lim.write("bad_request", SIPLOG_INFO, "bad request #", i)
        lim.write("server_full", SIPLOG_WARN, "full")
        clock.advance(0.01)
    assert [t for _, t in out.lines if t.startswith("bad")] == [
        "bad request #0",
        "bad request #1",
        "bad request #2",
    ]
    assert len(out.lines) == 6
    clock.advance(60 - clock.seconds() - 0.001)
    assert len(out.lines) == 6, "the summary comes when the window ends"
    clock.advance(0.002)
    assert out.lines[6:] == [
        (SIPLOG_INFO, "bad_request: 997 more like this in the last 60 s"),
        (SIPLOG_WARN, "server_full: 997 more like this in the last 60 s"),
    ]
    assert clock.getDelayedCalls() == []
    lim.write("bad_request", SIPLOG_INFO, "again")
    assert out.lines[-1] == (SIPLOG_INFO, "again"), "a new window writes again"


def test_log_limiter_quiet_kind_needs_no_timer_and_flush_writes_pending() -> None:
    clock = Clock()
    out = Lines()
    lim = LogLimiter(out, clock, window=60.0, burst=2)
    lim.write("k", SIPLOG_INFO, "a")
    lim.write("k", SIPLOG_INFO, "b")
    assert clock.getDelayedCalls() == [], "nothing suppressed, nothing to summarise"
    clock.advance(61)
    lim.write("k", SIPLOG_INFO, "c")
    lim.write("k", SIPLOG_INFO, "d")
    lim.write("k", SIPLOG_INFO, "e")
    assert [t for _, t in out.lines] == ["a", "b", "c", "d"]
    clock.advance(12)
    lim.flush()
    assert out.lines[-1] == (SIPLOG_INFO, "k: 1 more like this in the last 12 s"), "the time it covers"
    assert clock.getDelayedCalls() == []


def test_log_limiter_does_not_format_suppressed_lines() -> None:
    class Boom:
        def __str__(self) -> str:
            raise AssertionError("formatted")

    clock = Clock()
    out = Lines()
    lim = LogLimiter(out, clock, burst=0)
    lim.write("k", SIPLOG_INFO, Boom())
    assert out.lines == []
    lim.flush()


# ---------------------------------------------------------------------------------------------
# Calls in memory (--max_calls)


def test_max_calls_flag_config_file_and_default(tmp_path) -> None:
    assert parse_args(["-s", "h", "--max_calls=250"])["max_calls"] == 250
    for bad in ("0", "-3", "x"):
        with pytest.raises(ConfigError, match="max_calls"):
            parse_args(["-s", "h", f"--max_calls={bad}"])
    conf = tmp_path / "b.conf"
    conf.write_text("[general]\nmax_calls = 42\n")
    cfg = parse_args(["-s", "h", "-C", str(conf)])
    assert cfg["max_calls"] == 42
    out = io.StringIO()
    cfg.write(out)
    assert "max_calls = 42\n" in out.getvalue(), "-W writes it back"
    assert "max_calls" not in parse_args(["-s", "h"]), "no flag: derived at start from memory"


def test_default_max_calls_is_a_memory_budget() -> None:
    assert default_max_calls(8 * 1024**3) == int(8 * 1024**3 * CALL_MEMORY_SHARE) // CALL_MEMORY_BUDGET
    assert default_max_calls(8 * 1024**3) == 65536
    assert default_max_calls(0) == MIN_MAX_CALLS, "a floor on a starved machine"
    assert default_max_calls() >= MIN_MAX_CALLS


def test_callmap_at_max_calls_answers_503_and_counts() -> None:
    made = []

    def factory(gc: dict, req: Any, sip_t: Any) -> Any:
        made.append(req)
        return req.genResponse(403, "Forbidden")

    cmap = CallMap({}, factory, max_calls=0)
    log = Lines()
    cmap.log_limiter = LogLimiter(log, Clock())
    resp, _, _ = cmap.recvRequest(SipRequest(buf=request("INVITE")), None)
    assert resp.getSCodeNum() == 503 and str(resp.getHFBody("retry-after")) == str(RETRY_AFTER)
    assert made == [] and (cmap.ncalls_total, cmap.ncalls_failed, cmap.ncalls_refused) == (1, 1, 1)
    assert log.lines == [(SIPLOG_WARN, "0 calls in memory: 503 to a new INVITE")]
    cmap.max_calls = 1
    resp, _, _ = cmap.recvRequest(SipRequest(buf=request("INVITE", callid="c2")), None)
    assert resp.getSCodeNum() == 403 and len(made) == 1, "below the bound the factory decides"


def test_bad_input_flood_logs_a_burst_and_a_summary_but_counts_all() -> None:
    log = FakeLogger()
    tm, ft, clock = mk(Consumer(), logger=log)
    for i in range(500):
        feed(tm, request("OPTIONS", branch=f"z9hG4bK-n{i}", skip=("Via",)))
        feed(tm, b"\x00\xff garbage garbage garbage garbage garbage \r\n\r\n")
    assert tm.bad_counts == {"no_via": 500, "unparsable": 500}
    assert len(log.lines) == 2 * LOG_BURST
    clock.advance(LOG_WINDOW)
    assert sorted(text for _, text in log.lines[2 * LOG_BURST :]) == [
        f"no_via: {500 - LOG_BURST} more like this in the last 60 s",
        f"unparsable: {500 - LOG_BURST} more like this in the last 60 s",
    ]


def test_tracebacks_are_rate_limited_too() -> None:
    def broken(req: Any, t: Any) -> Any:
        raise RuntimeError("consumer bug")

    log = FakeLogger()
    tm, ft, clock = mk(broken, logger=log)
    for i in range(50):
        feed(tm, request("OPTIONS", branch=f"z9hG4bK-e{i}", callid=f"e{i}"))
    assert ft.count("SIP/2.0 500") == 50, "each still answered"
    tracebacks = [text for _, text in log.lines if "Traceback" in text]
    assert len(tracebacks) == LOG_BURST and "RuntimeError: consumer bug" in tracebacks[0]
    clock.advance(LOG_WINDOW)
    assert log.lines[-1][1] == f"exception: {50 - LOG_BURST} more like this in the last 60 s"


def test_non_invite_whose_answer_fails_still_ends_at_64T1() -> None:
    def answer_fails(req: Any, t: Any) -> Any:
        raise ValueError("consumer bug after the transaction was made")

    tm, ft, clock = mk(lambda req, t: answer_fails(req, t) if t is not None else None)
    tm.sendResponse = lambda *a, **kw: answer_fails(None, None)  # type: ignore[method-assign]
    feed(tm, request("OPTIONS"))
    assert len(tm.tserver) == 1
    clock.advance(64 * tm.T1)
    assert tm.tserver == {} and tm._retrans == {}


def test_shutdown_writes_the_pending_summaries() -> None:
    log = FakeLogger()
    tm, ft, clock = mk(Consumer(), logger=log)
    for _ in range(LOG_BURST + 7):
        feed(tm, request("OPTIONS", skip=("Via",)))
    clock.advance(5)
    tm.shutdown()
    assert log.lines[-1][1] == "no_via: 7 more like this in the last 5 s"


def test_the_programs_bound_is_logged_with_its_origin() -> None:
    log = FakeLogger()
    assert max_calls_from({"max_calls": 7}) == 7 and max_calls_from({}) == default_max_calls()
    CallMap({"max_calls": 7, "_sip_logger": log}, Consumer(), max_calls=7).logBound()
    CallMap({"_sip_logger": log}, Consumer(), max_calls=1234).logBound()
    CallMap({"_sip_logger": log}, Consumer()).logBound()
    assert [text for _, text in log.lines] == [
        "at most 7 calls in memory (--max_calls), more get 503",
        "at most 1234 calls in memory (from the memory available at start), more get 503",
    ]


def test_log_limiter_late_timer_loses_no_count() -> None:
    """A line that comes when the window's summary timer is due but has not run yet."""
    clock = Clock()
    out = Lines()
    lim = LogLimiter(out, clock, window=60.0, burst=1)
    for _ in range(4):
        lim.write("k", SIPLOG_INFO, "x")
    clock.rightNow = 61.0  # the reactor is late: the timer due at 60 has not fired
    lim.write("k", SIPLOG_INFO, "y")
    lim.write("k", SIPLOG_INFO, "z")
    assert [t for _, t in out.lines] == ["x", "k: 3 more like this in the last 60 s", "y"]
    clock.advance(60)
    assert out.lines[-1] == (SIPLOG_INFO, "k: 1 more like this in the last 60 s")
    assert clock.getDelayedCalls() == []
