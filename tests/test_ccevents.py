"""CCEvents: Sippy's positional data and the named fields over it, copies and extra headers."""

from __future__ import annotations

from sippy.CCEvents import (
    CCEventConnect,
    CCEventDisconnect,
    CCEventFail,
    CCEventRedirect,
    CCEventRing,
    CCEventTry,
    CCEventUpdate,
)
from sippy.MsgBody import MsgBody
from sippy.SipCallId import SipCallId
from sippy.SipHeader import SipHeader
from sippy.SipReason import SipReason
from sippy.Time.MonoTime import MonoTime


def test_try_keeps_sippy_tuple_and_named_fields() -> None:
    cid = SipCallId("abc@host")
    body = MsgBody("v=0\r\n")
    rtime = MonoTime()
    ev = CCEventTry((cid, "alice", "bob", body, None, "Alice"), rtime=rtime, origin="caller")
    assert ev.getData() == (cid, "alice", "bob", body, None, "Alice")
    assert (ev.call_id, ev.cli, ev.cld, ev.body, ev.auth, ev.caller_name) == (
        cid,
        "alice",
        "bob",
        body,
        None,
        "Alice",
    )
    assert ev.rtime is rtime and ev.origin == "caller" and str(ev) == "CCEventTry"
    assert ev.max_forwards is None and ev.extra_headers is None


def test_defaults_and_short_tuples() -> None:
    ring = CCEventRing()
    assert ring.getData() is None
    assert (ring.scode, ring.scode_reason, ring.body) == (180, "Ringing", None)
    fail = CCEventFail((486, "Busy Here"))
    assert (fail.scode, fail.scode_reason, fail.body) == (486, "Busy Here", None)
    assert CCEventFail().scode == 500
    assert CCEventDisconnect().also is None
    upd = CCEventUpdate(MsgBody("v=0\r\n"))
    assert str(upd.body) == "v=0\r\n"
    red = CCEventRedirect((302, "Moved", None, ("x",)))
    assert red.contacts == ("x",)
    assert isinstance(CCEventRing().rtime, MonoTime)


def test_unknown_attribute_raises() -> None:
    ev = CCEventConnect((200, "OK", None))
    try:
        ev.no_such_field  # noqa: B018
    except AttributeError:
        pass
    else:
        raise AssertionError("expected AttributeError")


def test_copy_is_deep_for_headers_and_keeps_order_number() -> None:
    hdr = SipHeader(name="x-account", body="42")
    ev = CCEventTry((None, "a", "b", None, None, None), extra_headers=(hdr,))
    ev.reason = SipReason(protocol="Q.850", cause=16)
    ev.max_forwards = 5
    cp = ev.getCopy()
    assert cp is not ev and cp.seq == ev.seq and cp.max_forwards == 5
    assert cp.extra_headers[0] is not hdr and str(cp.extra_headers[0]) == str(hdr)
    assert cp.reason is not ev.reason and str(cp.reason) == str(ev.reason)
    assert cp.reason_rfc3326 is cp.reason


def test_extra_headers_carry_reason_warning_and_challenges() -> None:
    ev = CCEventFail((403, "Forbidden"), extra_headers=[SipHeader(name="x-a", body="1")])
    ev.reason = SipReason(protocol="SIP", cause=403)
    ev.setWarning('bad "route"')
    ev.challenges = [SipHeader(name="www-authenticate", body='Digest realm="r", nonce="n"')]
    lines = [str(h) for h in ev.getExtraHeaders()]
    assert lines[0] == "x-a: 1"
    assert lines[1].startswith("Reason: SIP") and "cause=403" in lines[1]
    assert any(x.startswith("WWW-Authenticate: Digest") for x in lines)
    assert any(x.startswith("Warning: 399") and "route" in x for x in lines)
    assert CCEventConnect((200, "OK", None)).getExtraHeaders() is None


def test_with_body_replaces_only_the_body() -> None:
    old, new = MsgBody("v=0\r\nold\r\n"), MsgBody("v=0\r\nnew\r\n")
    ev = CCEventConnect((200, "OK", old), origin="callee")
    ev2 = ev.withBody(new)
    assert ev2.getData() == (200, "OK", new) and ev.body is old and ev2.origin == "callee"
    assert CCEventRing().withBody(new).getData() == (180, "Ringing", new)
    assert CCEventUpdate(old).withBody(new).body is new
    assert CCEventDisconnect().withBody(new).getData() is None
