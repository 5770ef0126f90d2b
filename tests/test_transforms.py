"""PROCSPEC routines and s/regexp/replacement/ number translation."""

from __future__ import annotations

import pytest

from sippy.B2BTransforms import (
    HDR2Xattrs,
    Nop,
    NumberTranslator,
    TranslationError,
    TransProcError,
    VAL2Xattrs,
    VAL2XattrsA,
    VAL2XattrsO,
    getTransProc,
    hdr_values_to_xattrs,
)


class _Acct:
    def __init__(self):
        self.added = []

    def addAttributes(self, attrs):
        self.added.extend(attrs)


class _CC:
    def __init__(self):
        self.extra_attributes = None
        self.acctA = _Acct()
        self.acctO = _Acct()


def test_hdr_values_split_into_pairs():
    assert hdr_values_to_xattrs(["a=1;b=2", "c=3; d = 4 ;novalue;=x"]) == [
        ("a", "1"),
        ("b", "2"),
        ("c", "3"),
        ("d", "4"),
    ]


def test_hdr2xattrs_on_a_parsed_request():
    from sippy.SipRequest import SipRequest

    raw = (
        "INVITE sip:100@192.0.2.1 SIP/2.0\r\n"
        "Via: SIP/2.0/UDP 192.0.2.2:5060;branch=z9hG4bK1\r\n"
        "From: <sip:200@192.0.2.2>;tag=1\r\n"
        "To: <sip:100@192.0.2.1>\r\n"
        "Call-ID: abc@192.0.2.2\r\n"
        "CSeq: 1 INVITE\r\n"
        "Max-Forwards: 70\r\n"
        "X-Foo-Hdr: acct=42;zone=eu\r\n"
        "X-Foo-Hdr: tier=gold\r\n"
        "Content-Length: 0\r\n\r\n"
    )
    req = SipRequest(buf=raw)
    cc = _CC()
    proc = getTransProc("HDR2Xattrs[X-Foo-Hdr]")
    assert isinstance(proc, HDR2Xattrs)
    proc(cc, req)
    assert cc.extra_attributes == [("acct", "42"), ("zone", "eu"), ("tier", "gold")]
    proc(cc, req)  # a second routine extends what is there
    assert len(cc.extra_attributes) == 6
    other = _CC()
    getTransProc("HDR2Xattrs[X-Absent]")(other, req)
    assert other.extra_attributes is None


def test_val2xattrs_targets_the_right_legs():
    both, a_only, o_only = _CC(), _CC(), _CC()
    getTransProc("VAL2Xattrs[x-attr=val1,y-attr=val2]")(both, None)
    getTransProc("VAL2XattrsA[k=v]")(a_only, None)
    getTransProc("VAL2XattrsO[k=v]")(o_only, None)
    assert both.acctA.added == both.acctO.added == [("x-attr", "val1"), ("y-attr", "val2")]
    assert (a_only.acctA.added, a_only.acctO.added) == ([("k", "v")], [])
    assert (o_only.acctA.added, o_only.acctO.added) == ([], [("k", "v")])
    cc = _CC()
    cc.acctO = None  # forward_on_fail routes have no originate accounting
    VAL2XattrsO("k=v")(cc, None)
    assert cc.acctA.added == []


def test_spec_text_survives():
    for spec in ("HDR2Xattrs[X-Foo]", "VAL2Xattrs[a=b,c=d]", "VAL2XattrsA[a=b]", "VAL2XattrsO[a=b]", "Nop[]"):
        assert str(getTransProc(spec)) == spec
    assert isinstance(getTransProc("Nop[anything]"), Nop)
    assert isinstance(getTransProc("VAL2XattrsA[a=b]"), VAL2XattrsA)
    assert isinstance(getTransProc("VAL2XattrsO[a=b]"), VAL2XattrsO)
    assert isinstance(getTransProc(" VAL2Xattrs[a=b] "), VAL2Xattrs)


@pytest.mark.parametrize(
    "spec, fragment",
    [
        ("HDR2Xattrs", "Name[argument]"),
        ("HDR2Xattrs[X-Foo", "Name[argument]"),
        ("Bogus[x]", "unknown routine 'Bogus'"),
        ("getTransProc[x]", "unknown routine"),
        ("HDR2Xattrs[bad header]", "bad header name"),
        ("VAL2Xattrs[a=b,c]", "key=value"),
        ("VAL2Xattrs[]", "key=value"),
    ],
)
def test_bad_procspecs(spec, fragment):
    with pytest.raises(TransProcError) as exc:
        getTransProc(spec)
    assert fragment in str(exc.value)


@pytest.mark.parametrize(
    "spec, number, expected",
    [
        ("s/^00/+/", "0044123", "+44123"),
        ("s/0/X/", "100200", "1X0200"),  # first match only without g
        ("s/0/X/g", "100200", "1XX2XX"),
        ("s/^1//;s/^00/+/g", "100123", "+123"),
        ("s/^1//; s/^00/+/g ;", "100123", "+123"),
        (r"s/^(\d{3})(\d+)$/\2-\1/", "5551234", "1234-555"),
        ("s/^nat-//i", "NAT-123", "123"),
        (r"s/\//-/g", "1/2/3", "1-2-3"),
        ("s/^9//", "123", "123"),
    ],
)
def test_translation_rules(spec, number, expected):
    assert NumberTranslator(spec)(number) == expected


@pytest.mark.parametrize(
    "spec, fragment",
    [
        ("", "no rules"),
        ("s/a/b", "unterminated"),
        ("y/a/b/", "should look like s/regexp/replacement/"),
        ("s/(/x/", "bad rule"),
        (r"s/a/\2/", "invalid group reference"),
        ("s/a/b/q", "unknown flags 'q'"),
        ("s/a/b/;junk", "should look like"),
    ],
)
def test_bad_translation_rules(spec, fragment):
    with pytest.raises(TranslationError) as exc:
        NumberTranslator(spec)
    assert fragment in str(exc.value)
