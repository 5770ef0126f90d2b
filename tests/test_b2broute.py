"""Route strings as b2bua_radius gets them from -s and from RADIUS h323-ivr-in."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sippy.B2BRoute import B2BRoute, RouteError, parse_radius_routes
from sippy.B2BTransforms import VAL2Xattrs


def test_full_route_fields():
    r = B2BRoute(
        "16046288900@sip.example.com:5070;credit-time=600;expires=30;np_expires=5;nr_expires=10;"
        "auth=alice:s3cret;cli=15551234;cnam=Alice%20Smith;rtpp=0;op=10.0.0.1:5080;"
        "hs_scodes=486,603;gt=5,2;bill-to=acct1;bill-cli=1;bill-cld=2;rid=-1;forward_on_fail"
    )
    assert (r.cld, r.cld_set) == ("16046288900", True)
    assert (r.host, r.port, r.hostport, r.hostonly) == (
        "sip.example.com",
        5070,
        "sip.example.com:5070",
        "sip.example.com",
    )
    assert (r.credit_time, r.crt_set, r.expires) == (600, True, 30)
    assert (r.no_progress_expires, r.no_reply_expires) == (5, 10)
    assert (r.user, r.passw, r.pass_auth) == ("alice", "s3cret", False)
    assert (r.cli, r.cli_set) == ("15551234", True)
    assert r.forward_on_fail
    assert r.params["caller_name"] == "Alice Smith"
    assert r.params["rtpp"] is False
    assert r.params["outbound_proxy"] == ("10.0.0.1", 5080)
    assert r.params["huntstop_scodes"] == (486, 603)
    assert (r.params["bill-to"], r.params["bill-cli"], r.params["bill-cld"]) == ("acct1", "1", "2")
    assert r.params["rid"] == "-1"


def test_defaults_and_cld_forms():
    plain = B2BRoute("192.0.2.5")
    assert (plain.cld, plain.cld_set, plain.port, plain.credit_time, plain.pass_auth) == (
        None,
        False,
        5060,
        None,
        True,
    )
    cleared = B2BRoute("@192.0.2.5")
    assert (cleared.cld, cleared.cld_set) == (None, True)
    plain.customize(1, "123", "456", None, (), None)
    cleared.customize(1, "123", "456", None, (), None)
    assert plain.cld == "123"  # number taken from the incoming leg
    assert cleared.cld is None  # "@host" removes it
    assert plain.cli == "456"


def test_negative_timers_mean_unset_and_empty_cli_clears():
    r = B2BRoute("h;credit-time=-1;expires=-1;np_expires=-5;cli=")
    assert (r.credit_time, r.expires, r.no_progress_expires) == (None, None, None)
    assert r.crt_set and r.cli_set and r.cli is None
    r.customize(1, "1", "999", 300, (), None)
    assert r.credit_time is None  # the route said "no limit" explicitly
    assert r.cli is None


def test_ipv6_route_and_next_hop():
    r = B2BRoute("100@[2001:db8::1]:5070")
    assert (r.host, r.port, r.hostonly) == ("2001:db8::1", 5070, "[2001:db8::1]")
    assert r.getNHAddr(("2001:db8::9", 5060)) == (("2001:db8::1", 5070), True)
    assert r.getNHAddr(("192.0.2.9", 5060)) == (("2001:db8::1", 5070), False)
    v4 = B2BRoute("192.0.2.1")
    assert v4.getNHAddr(("192.0.2.9", 5060)) == (("192.0.2.1", 5060), True)
    assert B2BRoute("[::1]").port == 5060
    named = B2BRoute("gw.example.net:5062")
    assert named.getNHAddr(("192.0.2.9", 5060)) == (("gw.example.net", 5062), True)


def test_radius_prefix_forms():
    r = B2BRoute("Routing:1234@192.168.0.1;cli=16046288900;rid=-1;expires=30;np_expires=5;ash=Name%3AValue")
    assert (r.cld, r.host, r.cli, r.expires, r.no_progress_expires) == (
        "1234",
        "192.168.0.1",
        "16046288900",
        30,
        5,
    )
    assert r.ash == ("Name:Value",)
    assert B2BRoute("h323-ivr-in=Routing:5@10.0.0.1").cld == "5"
    assert B2BRoute("Routing:5060").host == "Routing"  # a host called Routing, not a prefix
    avps = [
        ("h323-credit-time", "60"),
        ("h323-ivr-in", "CLI:123"),
        ("h323-ivr-in", "Routing:1@10.0.0.1"),
        ("h323-ivr-in", "Routing:2@10.0.0.2;expires=9"),
    ]
    routes = parse_radius_routes(avps)
    assert [(x.cld, x.host, x.expires) for x in routes] == [("1", "10.0.0.1", None), ("2", "10.0.0.2", 9)]


def test_customize_credit_time_and_headers():
    from sippy.SipHeader import SipHeader

    r = B2BRoute("h;ash=X-Foo%3A%20bar;ash=X-Baz%3Aqux;gt=5,2")
    passed = SipHeader("X-Passed: 1")
    r.customize(3, "cld", "cli", 120, [passed], 60)
    assert r.credit_time == 60  # capped by max_credit_time
    assert r.params["group_timeout"] == (5, 5)
    assert [str(h) for h in r.extra_headers] == ["X-Foo: bar", "X-Baz:qux", "X-Passed: 1"]
    r2 = B2BRoute("h")
    r2.customize(1, "cld", "cli", 120, (), None)
    assert r2.credit_time == 120  # RADIUS h323-credit-time applies when the route has none
    r3 = B2BRoute("h;credit-time=30")
    r3.customize(1, "cld", "cli", 120, (), 60)
    assert r3.credit_time == 30


def test_getcopy_is_independent():
    base = B2BRoute("h;cli=1;rid=7")
    copy = base.getCopy()
    copy.params["rid"] = "8"
    copy.customize(1, "5", "6", 10, (), None)
    assert base.params["rid"] == "7"
    assert base.cld is None and base.rnum is None and base.credit_time is None
    assert copy.cld == "5" and copy.rnum == 1


def test_po_proc_builds_routine():
    r = B2BRoute("h;po_proc=VAL2Xattrs[x-attr=val1,y-attr=val2]")
    proc = r.params["po_proc"]
    assert isinstance(proc, VAL2Xattrs)
    assert proc.attributes == (("x-attr", "val1"), ("y-attr", "val2"))


@pytest.mark.parametrize(
    "route, fragment",
    [
        ("", "no host"),
        ("1@", "no host"),
        ("host:0", "bad port '0'"),
        ("host:99999", "bad port '99999'"),
        ("[::1", "missing ']'"),
        ("[nothex]:5", "bad IPv6 address 'nothex'"),
        ("bad host", "bad host 'bad host'"),
        ("h;credit-time=ten", "credit-time: not an integer: 'ten'"),
        ("h;expires=", "expires: not an integer"),
        ("h;auth=nocolon", "auth: expected user:password"),
        ("h;cli", "'cli' needs a value"),
        ("h;ash=NoColon", "ash: expected URL-quoted Name:Value"),
        ("h;rtpp=yes", "rtpp: expected 0 or 1"),
        ("h;op=:5", "op: no host"),
        ("h;hs_scodes=48x", "hs_scodes"),
        ("h;gt=5", "gt: expected timeout,skip"),
        ("h;po_proc=Unknown[x]", "unknown routine 'Unknown'"),
        ("h;po_proc=VAL2Xattrs[novalue]", "key=value"),
        # anything that would split a header of the outgoing INVITE
        ("1\r\n@h", "CR, LF or NUL in it"),
        ("h;cli=1\nX-Evil: 1", "CR, LF or NUL in it"),
        ("h;auth=u\x00:p", "CR, LF or NUL in it"),
        ("h;ash=X-A%3A%20b%0D%0AX-Evil%3A%201", "ash: CR, LF or NUL in"),
        ("h;ash=X-A%3A%20b%00", "ash: CR, LF or NUL in"),
        ("h;cnam=Eve%0AX-Evil%3A%201", "cnam: CR, LF or NUL in"),
    ],
)
def test_bad_routes_name_the_bad_part(route, fragment):
    with pytest.raises(RouteError) as exc:
        B2BRoute(route)
    assert fragment in str(exc.value)


_num = st.text(alphabet="0123456789+", min_size=1, max_size=12)
_host = st.sampled_from(["192.0.2.1", "[2001:db8::5]", "gw.example.com", "h-1"])
_port = st.one_of(st.just(""), st.integers(1, 65535).map(lambda p: f":{p}"))
_param = st.one_of(
    st.integers(-1, 10000).map(lambda v: f"credit-time={v}"),
    st.integers(0, 600).map(lambda v: f"expires={v}"),
    st.integers(0, 600).map(lambda v: f"np_expires={v}"),
    _num.map(lambda v: f"cli={v}"),
    st.text(alphabet="abc XYZ:", max_size=8).map(
        lambda v: "cnam=" + v.replace(" ", "%20").replace(":", "%3A")
    ),
    st.sampled_from(["X-A%3A%201", "Foo%3Abar"]).map(lambda v: f"ash={v}"),
    st.sampled_from(["auth=u:p", "auth=nopass", "rtpp=0", "rtpp=1", "op=10.0.0.1:5061", "rid=-1"]),
)


@settings(max_examples=200, deadline=None)
@given(
    cld=st.one_of(st.none(), st.just(""), _num), host=_host, port=_port, params=st.lists(_param, max_size=6)
)
def test_str_round_trips(cld, host, port, params):
    text = ("" if cld is None else f"{cld}@") + host + port + "".join(f";{p}" for p in params)
    route = B2BRoute(text)
    again = B2BRoute(str(route))
    assert str(again) == str(route)
    for attr in ("cld", "cld_set", "host", "port", "credit_time", "expires", "cli", "user", "passw", "ash"):
        assert getattr(again, attr) == getattr(route, attr)
    assert again.params == route.params
