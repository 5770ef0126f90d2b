"""RadiusAuthorisation and RadiusAccounting as the call controller uses them, against FreeRADIUS.

What is asserted is what a billing engine sees: the Access-Request decided by the server's users
file (tests/radius/users) and the accounting records FreeRADIUS wrote to its detail file.
"""

from __future__ import annotations

import calendar
import hashlib
import re
import socket
import time
from collections.abc import Iterator
from typing import Any

import pytest
from twisted.internet.task import Clock

from sippy.CiscoCDR import cisco_time, h323_disconnect_cause
from sippy.Radius_client import Radius_client
from sippy.RadiusAccounting import RadiusAccounting
from sippy.RadiusAuthorisation import AuthResult, RadiusAuthorisation
from sippy.SipLogger import SipLogger
from tests.radius_util import FreeRadius, loopback_client, run_reactor_until, running_freeradius

CISCO_TIME_RE = re.compile(r"^\d\d:\d\d:\d\d\.\d{3} GMT [A-Z][a-z]{2} [A-Z][a-z]{2} [1-9]\d? \d{4}$")


@pytest.fixture(scope="module")
def radius() -> Iterator[FreeRadius]:
    with running_freeradius() as srv:
        yield srv


@pytest.fixture
def logfile(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[SipLogger, Any]]:
    path = tmp_path / "b2bua.log"
    monkeypatch.setenv("SIPLOG_BEND", "logfile")
    monkeypatch.setenv("SIPLOG_LVL", "INFO")
    monkeypatch.setenv("SIPLOG_LOGFILE_FILE", str(path))
    logger = SipLogger("b2bua")
    yield logger, path
    logger.shutdown()


def server_client(radius: FreeRadius) -> Radius_client:
    """A client of the test server alone (its authentication and accounting ports)."""
    return loopback_client(radius.secret, [radius.auth_port], [radius.acct_port])


def authorise(rc: Radius_client, logger: Any = None, **kw: Any) -> AuthResult:
    args = dict(
        username="127.0.0.2",
        caller="16045550000",
        callee="200",
        h323_cid="8D9A 11B2 0000 0001",
        sip_cid="cid-1@127.0.0.2",
        remote_ip="127.0.0.2",
    )
    args.update(kw)
    res: list[AuthResult] = []
    try:
        RadiusAuthorisation(rc, logger=logger).do_auth(res_cb=res.append, **args)
        run_reactor_until(lambda: res, timeout=3)
    finally:
        rc.shutdown()
    return res[0]


# --- authorisation ----------------------------------------------------------------------------


def test_remote_ip_accept_routes_in_order_and_overrides(radius: FreeRadius) -> None:
    result = authorise(server_client(radius))
    assert result.accepted and result[1] == 0 and len(result) == 2
    assert result.routes == ["200@127.0.0.1:5070;expires=30", "300@127.0.0.1:5071;cli=555"]
    assert (result.cli, result.caller_name, result.credit_time) == ("16045551234", "Alice Smith", 30)


def test_remote_ip_unknown_caller_rejected(radius: FreeRadius) -> None:
    result = authorise(server_client(radius), remote_ip="127.0.0.3")
    assert result.rcode == 1 and not result.accepted and result.routes == []


def test_nonzero_h323_return_code_is_a_reject(radius: FreeRadius) -> None:
    result = authorise(server_client(radius), remote_ip="127.0.0.4")
    assert result.return_code == 9
    assert result.rcode == 1 and not result.accepted


def digest(password: str, nonce: str, uri: str, qop: Any = None, nc: str = "", cnonce: str = "") -> str:
    ha1 = hashlib.md5(f"alice:sip.test:{password}".encode()).hexdigest()
    ha2 = hashlib.md5(f"INVITE:{uri}".encode()).hexdigest()
    mid = f"{nonce}:{nc}:{cnonce}:{qop}" if qop else nonce
    return hashlib.md5(f"{ha1}:{mid}:{ha2}".encode()).hexdigest()


def authorise_digest(radius: FreeRadius, password: str, nonce: str, **qop: str) -> AuthResult:
    """Digest authorisation of alice in realm sip.test; qop: qop, nc and cnonce, or nothing."""
    uri = "sip:400@127.0.0.1"
    response = digest(password, nonce, uri, qop.get("qop"), qop.get("nc", ""), qop.get("cnonce", ""))
    return authorise(
        server_client(radius),
        username="alice",
        realm="sip.test",
        nonce=nonce,
        uri=uri,
        response=response,
        **qop,
    )


def test_digest_accepted(radius: FreeRadius) -> None:
    result = authorise_digest(radius, "wonderland", "4f2a")
    assert result.accepted and result.routes == ["400@127.0.0.1:5072"]


def test_digest_with_qop_accepted(radius: FreeRadius) -> None:
    result = authorise_digest(radius, "wonderland", "77aa", qop="auth", nc="00000001", cnonce="c0ffee")
    assert result.accepted


def test_digest_wrong_password_refused(radius: FreeRadius) -> None:
    result = authorise_digest(radius, "guess", "4f2a")
    assert result.rcode == 1 and result.attributes == ()


def test_no_server_answers_reported_and_logged(logfile: Any) -> None:
    logger, path = logfile
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as silent:
        silent.bind(("127.0.0.1", 0))  # receives, never answers
        dead = [silent.getsockname()[1]]
        start = time.monotonic()
        result = authorise(loopback_client("x", dead, dead, timeout=0.2), logger=logger)
    elapsed = time.monotonic() - start
    assert result.no_answer and result.rcode == -1
    assert 0.4 <= elapsed < 1.5
    text = path.read_text()
    assert "sending AAA request:" in text and "h323-session-protocol" in text
    m = re.search(r"/cid-1@127\.0\.0\.2/b2bua: Error sending AAA request \(delay is (\d+\.\d{3})\)\n", text)
    assert m is not None and 0.4 <= float(m.group(1)) <= elapsed


# --- accounting -------------------------------------------------------------------------------


def records_for(radius: FreeRadius, cid: str) -> list[dict[str, list[str]]]:
    return [r for r in radius.detail_records() if r.get("Acct-Session-Id") == [cid]]


def cisco(rec: dict[str, list[str]], name: str) -> str:
    (value,) = rec[name]
    prefix = name + "="
    assert value.startswith(prefix)
    return value[len(prefix) :]


def avpairs(rec: dict[str, list[str]]) -> dict[str, str]:
    return dict(v.split("=", 1) for v in rec.get("Cisco-AVPair", []))


def parse_cisco_time(s: str) -> float:
    assert CISCO_TIME_RE.match(s), s
    return calendar.timegm(time.strptime(s, "%H:%M:%S.000 GMT %a %b %d %Y"))


def test_cisco_time_format_and_cause_mapping() -> None:
    assert cisco_time(1262696709.25) == "13:05:09.000 GMT Tue Jan 5 2010"
    assert cisco_time(1262696709.25, ms_precision=True) == "13:05:09.250 GMT Tue Jan 5 2010"
    assert [h323_disconnect_cause(c) for c in (0, 486, 404, 408, 503, 699)] == [
        "10",
        "11",
        "1",
        "66",
        "3f",
        "7f",
    ]


def test_start_and_stop_records_of_a_connected_call(radius: FreeRadius) -> None:
    rc = server_client(radius)
    cid = "acct-connected@127.0.0.2"
    t0 = float(int(time.time()) - 30)
    acct = RadiusAccounting(rc, "originate", send_start=True)
    acct.setParams("127.0.0.2", "16045550000", "200", "H323 CID", cid, "127.0.0.1")
    try:
        acct.conn(t0, t0 + 2.4, remote_ua="SIPp/Linux")
        acct.disc(t0 + 12.6, "callee", setup_ts=t0)
        run_reactor_until(lambda: len(records_for(radius, cid)) == 2)
    finally:
        rc.shutdown()
    # Start and Stop leave back to back: FreeRADIUS (two threads) may write them in either order.
    by_status = {r["Acct-Status-Type"][0]: r for r in records_for(radius, cid)}
    assert sorted(by_status) == ["Start", "Stop"], by_status
    start, stop = by_status["Start"], by_status["Stop"]
    for rec in (start, stop):
        assert rec["User-Name"] == ["127.0.0.2"]
        assert rec["Calling-Station-Id"] == ["16045550000"] and rec["Called-Station-Id"] == ["200"]
        assert cisco(rec, "h323-call-origin") == "originate" and cisco(rec, "h323-call-type") == "VoIP"
        assert cisco(rec, "h323-remote-address") == "127.0.0.1" and cisco(rec, "h323-conf-id") == "H323 CID"
        assert parse_cisco_time(cisco(rec, "h323-setup-time")) == t0
        assert parse_cisco_time(cisco(rec, "h323-connect-time")) == t0 + 2
        pairs = avpairs(rec)
        assert pairs["call-id"] == cid and pairs["h323-session-protocol"] == "sipv2"
        assert pairs["h323-ivr-out"] == "sip_ua:SIPp/Linux"
    assert "h323-disconnect-time" not in start and "Acct-Session-Time" not in start
    assert stop["Acct-Session-Time"] == ["10"]
    assert parse_cisco_time(cisco(stop, "h323-disconnect-time")) == t0 + 12
    assert cisco(stop, "h323-disconnect-cause") == "10"
    assert avpairs(stop)["release-source"] == "4"
    # Sent about 17.4 s after the hang-up it reports.
    assert 16 <= int(stop["Acct-Delay-Time"][0]) <= 19


def test_failed_call_gets_stop_with_zero_session_time_and_cause(radius: FreeRadius) -> None:
    rc = server_client(radius)
    cid = "acct-failed@127.0.0.2"
    t0 = float(int(time.time()) - 5)
    acct = RadiusAccounting(rc, "answer", send_start=True)
    acct.setParams("127.0.0.2", None, "200", "H323 CID", cid, "127.0.0.2")
    try:
        acct.disc(t0 + 3, "caller", 486, setup_ts=t0)
        acct.disc(t0 + 4, "caller", 486)  # a second disc must not send a second Stop
        run_reactor_until(lambda: records_for(radius, cid))
    finally:
        rc.shutdown()
    (stop,) = records_for(radius, cid)
    assert rc.stats["sent"] == 1
    assert stop["Acct-Status-Type"] == ["Stop"] and stop["Acct-Session-Time"] == ["0"]
    assert cisco(stop, "h323-disconnect-cause") == "11"
    assert cisco(stop, "h323-call-origin") == "answer"
    assert "Calling-Station-Id" not in stop  # no CLI: no empty attribute on the wire
    assert parse_cisco_time(cisco(stop, "h323-setup-time")) == t0
    assert cisco(stop, "h323-connect-time") == cisco(stop, "h323-disconnect-time")
    assert parse_cisco_time(cisco(stop, "h323-disconnect-time")) == t0 + 3
    assert avpairs(stop)["release-source"] == "2"


def test_alive_records_while_connected_then_stop(radius: FreeRadius) -> None:
    rc = server_client(radius)
    cid = "acct-alive@127.0.0.2"
    acct = RadiusAccounting(rc, "answer", lperiod=0.3)
    acct.setParams("127.0.0.2", "1", "2", "H323 CID", cid, "127.0.0.2")
    now = time.time()
    try:
        acct.conn(now - 1, now)
        run_reactor_until(lambda: len(records_for(radius, cid)) >= 2, timeout=3)
        acct.disc(time.time(), "caller")
        run_reactor_until(lambda: any(r["Acct-Status-Type"] == ["Stop"] for r in records_for(radius, cid)))
    finally:
        rc.shutdown()
    recs = records_for(radius, cid)
    # FreeRADIUS names status 3 Interim-Update; sippy's dictionary calls it Alive.
    assert [r["Acct-Status-Type"][0] for r in recs] == ["Interim-Update", "Interim-Update", "Stop"]
    assert all(cisco(r, "h323-call-origin") == "answer" for r in recs)
    assert "release-source" not in avpairs(recs[0])


def test_alive_timer_on_test_clock() -> None:
    """lperiod drives Alive records on the reactor's clock; disc stops them."""
    sent: list[list[tuple[str, Any]]] = []

    class Recorder:
        def do_acct(self, attributes: list[tuple[str, Any]], *_: Any) -> None:
            sent.append(attributes)

    clock = Clock()
    acct = RadiusAccounting(Recorder(), "originate", lperiod=60, reactor=clock)  # type: ignore[arg-type]
    acct.setParams("u", "1", "2", "h", "cid", "127.0.0.1")
    t0 = time.time()
    acct.conn(t0 - 2, t0)
    clock.advance(60)
    clock.advance(60)
    acct.disc(t0 + 150, "callee")
    clock.advance(600)
    kinds = [dict(a)["Acct-Status-Type"] for a in sent]
    assert kinds == ["Alive", "Alive", "Stop"]
    assert [dict(a)["Acct-Session-Time"] for a in sent] == [60, 120, 150]


def test_remote_ip_request_carries_cisco_attributes(radius: FreeRadius) -> None:
    """The users entry for 127.0.0.5 matches only if every attribute arrived as Cisco sends it."""
    kw: dict[str, Any] = dict(remote_ip="127.0.0.5", h323_cid="CONF 5", sip_cid="cid-5@127.0.0.5")
    ok = authorise(
        server_client(radius),
        extra_attributes=[("x-pre-auth", "yes")],
        **kw,
    )
    assert ok.accepted and ok.routes == ["500@127.0.0.1"]
    missing = authorise(server_client(radius), **kw)
    assert not missing.accepted
    kw["sip_cid"] = "other-call"
    wrong_cid = authorise(
        server_client(radius),
        extra_attributes=[("x-pre-auth", "yes")],
        **kw,
    )
    assert not wrong_cid.accepted
