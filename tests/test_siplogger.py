"""SipLogger: backends chosen by environment, levels, line format, reopen after rotation."""

from __future__ import annotations

import os
import re

import pytest

from sippy.SipLogger import SIPLOG_DBUG, SIPLOG_ERR, SIPLOG_INFO, SIPLOG_WARN, SipLogger
from sippy.Time.MonoTime import MonoTime

LINE_RE = re.compile(
    r"^\d\d [A-Z][a-z]{2} \d\d:\d\d:\d\d\.\d{3}/(?P<cid>[^/]+)/(?P<app>[^:]+): (?P<text>.*)$"
)


@pytest.fixture
def logenv(monkeypatch, tmp_path):
    for k in ("SIPLOG_BEND", "SIPLOG_LVL", "SIPLOG_LOGFILE_FILE"):
        monkeypatch.delenv(k, raising=False)
    path = tmp_path / "sip.log"
    monkeypatch.setenv("SIPLOG_BEND", "logfile")
    monkeypatch.setenv("SIPLOG_LOGFILE_FILE", str(path))
    return monkeypatch, path


def lines(path):
    return path.read_text().splitlines()


def test_stderr_default_format(monkeypatch, capsys):
    monkeypatch.delenv("SIPLOG_BEND", raising=False)
    monkeypatch.delenv("SIPLOG_LVL", raising=False)
    log = SipLogger("b2bua")
    log.write("a", 1, " b")
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1
    m = LINE_RE.match(err[0])
    assert m and m["cid"] == "GLOBAL" and m["app"] == "b2bua" and m["text"] == "a1 b"


def test_logfile_levels_and_call_id(logenv):
    mp, path = logenv
    mp.setenv("SIPLOG_LVL", "WARN")
    log = SipLogger("b2bua", call_id="abc@host")
    assert log.level == SIPLOG_WARN
    assert not log.isEnabledFor(SIPLOG_INFO) and log.isEnabledFor(SIPLOG_ERR)
    log.write("info dropped")
    log.write("debug dropped", level=SIPLOG_DBUG)
    log.write("warn kept", level=SIPLOG_WARN)
    log.ewrite("err kept", call_id="other")
    got = [LINE_RE.match(x) for x in lines(path)]
    assert [(m["cid"], m["text"]) for m in got] == [("abc@host", "warn kept"), ("other", "err kept")]


def test_ltime_monotime_and_float(logenv):
    _, path = logenv
    log = SipLogger("b2bua")
    t = MonoTime(monot=0.0, realt=1732600222.5)
    log.write("x", ltime=t)
    log.write("y", ltime=1732600222.25)
    a, b = lines(path)
    assert a.startswith(t.fptime() + "/GLOBAL/b2bua: x")
    assert ".250/GLOBAL/b2bua: y" in b


def test_toggle_debug_and_set_level(logenv):
    mp, path = logenv
    mp.setenv("SIPLOG_LVL", "ERR")
    log = SipLogger("b2bua")
    log.toggleDebug()
    assert log.level == SIPLOG_DBUG
    log.write("dbg", level=SIPLOG_DBUG)
    log.toggleDebug()
    assert log.level == SIPLOG_ERR
    log.write("dbg2", level=SIPLOG_DBUG)
    log.setLevel(SIPLOG_INFO)
    log.write("info")
    assert [LINE_RE.match(x)["text"] for x in lines(path)] == ["dbg", "info"]


def test_unknown_level_name_means_info(logenv):
    mp, _ = logenv
    mp.setenv("SIPLOG_LVL", "__import__('os')")
    assert SipLogger("b2bua").level == SIPLOG_INFO


def test_reopen_after_rotation(logenv):
    _, path = logenv
    log = SipLogger("b2bua")
    log.write("before")
    rotated = path.with_name("sip.log.1")
    os.rename(path, rotated)
    log.write("still old inode")
    log.reopen()
    log.write("after")
    assert [LINE_RE.match(x)["text"] for x in lines(rotated)] == ["before", "still old inode"]
    assert [LINE_RE.match(x)["text"] for x in lines(path)] == ["after"]


def test_unwritable_logfile_falls_back_to_stderr(monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("SIPLOG_BEND", "logfile")
    monkeypatch.delenv("SIPLOG_LVL", raising=False)
    log = SipLogger("b2bua", logfile=str(tmp_path / "missing-dir" / "sip.log"))
    log.write("hello")
    err = capsys.readouterr().err
    assert "cannot open" in err and "/GLOBAL/b2bua: hello" in err


def test_none_backend_writes_nothing(monkeypatch, capsys):
    monkeypatch.setenv("SIPLOG_BEND", "none")
    SipLogger("b2bua").write("x", level=SIPLOG_ERR)
    assert capsys.readouterr().err == ""
