"""SipURL: parsing, exact round trips, edits, IPv6, escapes, tel:, and malformed input."""

from __future__ import annotations

import pytest
from hypothesis import given, settings

from sippy.Exceptions.SipParseError import SipParseError
from sippy.SipURL import SipURL
from tests.conftest import mutated_text

ROUND_TRIP = [
    "sip:alice@example.com",
    "sip:example.com",
    "SIP:Alice@Example.COM:5070",
    "sips:bob@secure.example.org",
    "sip:alice:secret@example.com;transport=tcp",
    "sip:[2001:db8::1]:5070;lr",
    "sip:user@[::1]",
    "sip:%61lice@example.com",
    "sip:a%2fb%3Ac@example.com",
    "sip:*21#!~'()&=+$,?/@h.example",
    "sip:+15551234567;npdi;rn=+15550000000@gw.example;user=phone",
    "sip:proxy.example;lr=on;maddr=239.1.1.1;ttl=015;method=INVITE;Transport=UDP",
    "sip:h;foo;bar=baz;transport=udp;foo2",
    "sip:h?Subject=hello%20world&Priority=urgent",
    "sip:alice@h;transport=tls?Replaces=abc%40host%3Bto-tag%3D1%3Bfrom-tag%3D2",
    "sip:h:5060:5060",
    "tel:+1-201-555-0123",
    "tel:7042;phone-context=example.com;ext=22",
]


@pytest.mark.parametrize("text", ROUND_TRIP)
def test_unchanged_url_serialises_exactly(text: str) -> None:
    url = SipURL(text)
    assert str(url) == text
    assert str(url.getCopy()) == text
    # Re-parsing the output gives the same fields.
    assert SipURL(str(url))._state() == url._state()


def test_fields_of_a_full_url() -> None:
    u = SipURL(
        "sips:alice:pw@[2001:db8::1]:5070;transport=tcp;user=phone;ttl=3;maddr=m.example;method=BYE;lr;x=1?h=v"
    )
    assert u.scheme == "sips"
    assert (u.username, u.password) == ("alice", "pw")
    assert u.host == "[2001:db8::1]" and u.getHost() == "[2001:db8::1]"
    assert u.port == 5070
    assert u.getAddr() == ("2001:db8::1", 5070)
    assert (u.transport, u.usertype, u.ttl, u.maddr, u.method, u.lr) == (
        "tcp",
        "phone",
        3,
        "m.example",
        "BYE",
        True,
    )
    assert u.other == ["x=1"]
    assert u.headers == {"h": "v"}


@pytest.mark.parametrize(
    "text,addr",
    [
        ("sip:h", ("h", 5060)),
        ("sips:h", ("h", 5061)),
        ("sip:[::1]", ("::1", 5060)),
        ("sips:[fe80::1]:1234", ("fe80::1", 1234)),
        ("sip:10.0.0.1:0", ("10.0.0.1", 0)),
    ],
)
def test_getaddr_default_ports_and_bare_ipv6(text: str, addr: tuple) -> None:
    u = SipURL(text)
    assert u.getAddr() == addr
    assert u.getPort() == addr[1]


def test_escaped_user_is_decoded_and_kept_as_sent() -> None:
    u = SipURL("sip:%41l%69ce%20x@h")
    assert u.username == "Alice x"
    u.port = 5062
    # The user did not change: its original escaping is kept even though the URL is rebuilt.
    assert str(u) == "sip:%41l%69ce%20x@h:5062"
    u.username = "bob smith<>"
    assert str(u) == "sip:bob%20smith%3C%3E@h:5062"
    assert SipURL(str(u)).username == "bob smith<>"


def test_odd_but_legal_user_characters_survive_edits() -> None:
    u = SipURL("sip:*21#!~'()&=+$,?/@h")
    u.host = "other"
    assert str(u) == "sip:*21#!~'()&=+$,?/@other"


def test_edits_keep_parameter_order() -> None:
    u = SipURL("sip:h;foo=1;transport=udp;bar;lr")
    u.transport = "tcp"
    assert str(u) == "sip:h;foo=1;transport=tcp;bar;lr"
    u.lr = False
    u.maddr = "1.2.3.4"
    u.other.append("new")
    assert str(u) == "sip:h;foo=1;transport=tcp;bar;maddr=1.2.3.4;new"
    u.transport = None
    assert str(u) == "sip:h;foo=1;bar;maddr=1.2.3.4;new"


def test_headers_edit_and_escape() -> None:
    u = SipURL("sip:a@h?Subject=hi%20there")
    assert u.headers == {"Subject": "hi there"}
    u.headers["Replaces"] = "x@y;to-tag=1"
    assert str(u) == "sip:a@h?Subject=hi%20there&Replaces=x%40y%3Bto-tag%3D1"


def test_tel_url_keeps_number_in_username() -> None:
    u = SipURL("tel:+1-201-555-0123;phone-context=example.com")
    assert u.scheme == "tel"
    assert u.username == "+1-201-555-0123"
    assert u.userparams == ["phone-context=example.com"]
    u.username = "+12015550123"
    assert str(u) == "tel:+12015550123;phone-context=example.com"


def test_new_url_and_copy_are_independent() -> None:
    u = SipURL(username="bob", host="example.com", port=5070, transport="udp", lr=True, other=["x"])
    assert str(u) == "sip:bob@example.com:5070;transport=udp;lr;x"
    c = u.getCopy()
    c.other.append("y")
    c.username = "carol"
    assert str(u) == "sip:bob@example.com:5070;transport=udp;lr;x"
    assert str(c) == "sip:carol@example.com:5070;transport=udp;lr;x;y"


def test_placeholder_host_filled_by_localstr() -> None:
    u = SipURL(username="alice")
    assert u.localStr("192.0.2.1", 5070) == "sip:alice@192.0.2.1:5070"
    assert u.localStr("2001:db8::5", 5060) == "sip:alice@[2001:db8::5]:5060"
    u2 = SipURL(host="example.com")
    assert u2.localStr("192.0.2.1", 5070) == "sip:example.com"


def test_setaddr_brackets_ipv6() -> None:
    u = SipURL("sip:a@h")
    u.setAddr(("2001:db8::7", 5080))
    assert str(u) == "sip:a@[2001:db8::7]:5080"
    assert u.getAddr() == ("2001:db8::7", 5080)


def test_relaxed_parser_accepts_empty_host() -> None:
    assert SipURL("sip:123@", relaxedparser=True).host == ""
    with pytest.raises(SipParseError):
        SipURL("sip:123@")


BAD = [
    "",
    "alice@example.com",
    "http://example.com",
    "sip:",
    "sip:@h",
    "sip:a@",
    "sip:a b@h",
    "sip:a@h:port",
    "sip:a@h:70000",
    "sip:a@h:",
    "sip:a@h:5060:5061",
    "sip:a@[::1",
    "sip:a@[::1]x",
    "sip:a@[::1]:",
    "sip:a@[zz::1]",
    "sip:a@[]",
    "sip:a@h;",
    "sip:a@h;=x",
    "sip:a@h;ttl=abc",
    "sip:a@h?x",
    "sip:a@h?=v",
    "sip:a@ho$t",
    "sip:%ff@h",
    "sip:<a>@h",
    'sip:"a"@h',
    "tel:",
    "tel:12x4",
    "tel:+1@host",
]


@pytest.mark.parametrize("text", BAD)
def test_malformed_urls_raise_sip_parse_error_with_reason(text: str) -> None:
    with pytest.raises(SipParseError) as ei:
        SipURL(text)
    assert ei.value.reason


@settings(max_examples=400, deadline=None)
@given(mutated_text(ROUND_TRIP, ":;@[]?&=%<>\"' \t,.#!~*+-/\\0aZ\x00é"))
def test_mutated_urls_raise_only_sip_parse_error(text: str) -> None:
    try:
        u = SipURL(text)
    except SipParseError:
        return
    # Whatever parsed must serialise, survive a copy and re-parse to the same fields.
    assert str(u) == text
    u.getAddr()
    if u.scheme == "tel":
        u.username = "+100"
        assert SipURL(str(u)).username == "+100"
    else:
        u.port = 1
        assert SipURL(str(u)).port == 1


def test_built_url_user_escaped_only_where_needed_and_params_written() -> None:
    assert str(SipURL(username="alice.b-1_~+$,;?/&=!*'()", host="h")) == "sip:alice.b-1_~+$,;?/&=!*'()@h"
    assert str(SipURL(username="al ice@x%", host="h")) == "sip:al%20ice%40x%25@h"
    assert str(SipURL(username="ünï", host="h", port=5070)) == "sip:%C3%BCn%C3%AF@h:5070"
    assert str(SipURL(username="a", host="h")) == "sip:a@h"
    assert str(SipURL(username="a", host="h", lr=True)) == "sip:a@h;lr"
    assert str(SipURL(host="h", transport="tcp", other=["x=1"])) == "sip:h;transport=tcp;x=1"
