"""The hot path's shortcuts give exactly what the general code gives.

Plain URLs and name-addrs are matched in one go (SipURL.PLAIN_URL, SipAddress._PLAIN_NAME_ADDR)
and URLs are kept as text until a field is read; the transaction manager answers byte-identical
retransmissions before parsing them and arms its timers with plain reactor calls. Each test
compares the shortcut with the general path, or checks what crosses the wire.
"""

from __future__ import annotations

import gc
import re
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import sippy.SipAddress as sip_address
from sippy.Exceptions.SipParseError import SipParseError
from sippy.SipAddress import SipAddress
from sippy.SipCallId import SipCallId
from sippy.SipContact import SipContact
from sippy.SipFrom import SipFrom
from sippy.SipRecordRoute import SipRecordRoute
from sippy.SipRequest import SipRequest
from sippy.SipRoute import SipRoute
from sippy.SipTo import SipTo
from sippy.SipURL import _FIELDS as _URL_FIELDS
from sippy.SipURL import SipURL, _TextURL
from tests.test_transactions import Consumer, feed, mk, request


def general_url(text: str, relaxed: bool = False) -> SipURL:
    """A SipURL parsed by the general parser, whatever its shape."""
    url = SipURL.__new__(SipURL)
    url._orig = url._snap = url._user_raw = None
    url._porder = ()
    url._parse(text, relaxed)
    return url


def url_fields(url: SipURL) -> tuple[Any, ...]:
    return tuple(getattr(url, f) for f in _URL_FIELDS) + (url.getAddr(), str(url))


users = st.text("abcXYZ019-_.!~*'()&=+$,/", min_size=1, max_size=8)
hosts = st.one_of(
    st.text("abcxyz019-._", min_size=1, max_size=12),
    st.tuples(*[st.integers(0, 255)] * 4).map(lambda t: ".".join(map(str, t))),
)
ports = st.one_of(st.none(), st.integers(0, 70000).map(str), st.sampled_from(["05060", "00000", "065535"]))


@st.composite
def plain_urls(draw: Any) -> str:
    user = draw(st.one_of(st.none(), users))
    port = draw(ports)
    scheme = draw(st.sampled_from(["sip", "sips"]))
    transport = draw(
        st.one_of(st.none(), st.sampled_from(["udp", "UDP", "tcp", "TLS", "ws"]), st.text("aZ9", min_size=1))
    )
    return (
        f"{scheme}:"
        + (f"{user}@" if user else "")
        + draw(hosts)
        + (f":{port}" if port else "")
        + (f";transport={transport}" if transport else "")
    )


@settings(max_examples=300, deadline=None)
@given(plain_urls())
def test_plain_url_same_as_general_parser(text: str) -> None:
    try:
        expected = url_fields(general_url(text))
    except SipParseError:
        with pytest.raises(SipParseError):
            SipURL(text)
        return
    url = SipURL(text)
    assert str(url) == text
    assert url_fields(url) == expected
    assert url_fields(SipURL(text).getCopy()) == expected


@settings(max_examples=200, deadline=None)
@given(plain_urls())
def test_plain_url_field_read_alone_same_as_general_parser(text: str) -> None:
    """Each field read first and alone (scheme, user, host, port are read off the text without
    parsing the whole URL) is what the general parser gives; the URL is then changed and
    serialised as one parsed whole would be."""
    try:
        general = general_url(text)
    except SipParseError:
        return
    for name in _URL_FIELDS:
        url = SipURL(text)
        assert getattr(url, name) == getattr(general, name), name
        assert str(url) == text and url.getAddr() == general.getAddr()
        url.port = 5999
        expected = general_url(text)
        expected.port = 5999
        assert str(url) == str(expected)


def test_contact_with_a_transport_stays_text() -> None:
    # The Contact a UAC keeps as its remote target (SIPp's, many phones'): `;transport=` only.
    url = SipURL("sip:192.0.2.9:5062;transport=UDP")
    assert type(url) is _TextURL and type(url.getCopy()) is _TextURL
    assert (url.host, url.port, url.transport, url.lr) == ("192.0.2.9", 5062, "UDP", False)
    assert type(url) is _TextURL and str(url) == "sip:192.0.2.9:5062;transport=UDP"
    addr = SipAddress("<sip:u@192.0.2.9;transport=tcp>;tag=1")
    assert type(addr.url) is _TextURL and addr.url.transport == "tcp" and addr.getTag() == "1"
    for text in (
        "sip:h;transport=udp;lr",
        "sip:h;transport=",
        "sip:h;TRANSPORT=udp",
        "sip:h;transport=u%64p",
    ):
        assert type(SipURL(text)) is SipURL, text


def test_plain_url_lists_read_are_the_urls_own() -> None:
    url = SipURL("sip:alice@192.0.2.1")
    assert url.host == "192.0.2.1" and url.username == "alice" and url.transport is None
    # Still only its text (what a held call's From/To/Contact cost in memory).
    assert type(url) is _TextURL and url._orig == "sip:alice@192.0.2.1"
    url.other.append("x-foo=1")
    url.userparams.append("phone")
    assert str(url) == "sip:alice;phone@192.0.2.1;x-foo=1"


def test_plain_url_port_range_checked_at_once() -> None:
    assert SipURL("sip:a@h:65535").port == 65535
    with pytest.raises(SipParseError):
        SipURL("sip:a@h:65536")


def test_plain_url_field_set_before_any_read_is_kept() -> None:
    url = SipURL("sip:alice@192.0.2.1:5060")
    url.port = 5070
    assert str(url) == "sip:alice@192.0.2.1:5070"
    assert url.host == "192.0.2.1" and url.port == 5070
    url = SipURL("sip:alice@192.0.2.1")
    url.username = "bob"
    assert url.getCopy().localStr() == "sip:bob@192.0.2.1"


def test_plain_url_copy_is_independent() -> None:
    url = SipURL("sip:alice@192.0.2.1")
    copy = url.getCopy()
    copy.host = "192.0.2.2"
    assert str(url) == "sip:alice@192.0.2.1" and str(copy) == "sip:alice@192.0.2.2"


def test_unknown_attribute_of_plain_url_raises_attribute_error() -> None:
    url = SipURL("sip:alice@192.0.2.1")
    with pytest.raises(AttributeError):
        url.no_such_field  # noqa: B018
    assert str(url) == "sip:alice@192.0.2.1"


def address_state(addr: SipAddress) -> tuple[Any, ...]:
    fields = {k: getattr(addr, k) for k in SipAddress.__slots__ if k not in ("url", "__dict__")}
    # A raw text that is what localStr writes anyway (`k=v`) need not be kept.
    fields["_praw"] = {k: r for k, r in fields["_praw"].items() if r[1] != f"{k}={r[0]}"}
    return (fields, url_fields(addr.url), str(addr))


def general_address(text: str, monkeypatch: Any) -> SipAddress:
    with monkeypatch.context() as m:
        m.setattr(sip_address, "_PLAIN_NAME_ADDR", re.compile(r"(?!)"))
        return SipAddress(text, relaxedparser=True)


names = st.one_of(
    st.just(""),
    st.text("abc XYZ-.!%*_+`'~\t", max_size=10).map(lambda s: s + " "),
    st.text("abc XYZ,;:<>@", max_size=10).map(lambda s: f'"{s}" '),
    st.text("abc XYZ,;:<>@", max_size=10).map(lambda s: f'"{s}"'),
)
tails = st.one_of(
    st.just(""),
    st.text("abc019-.!%*_+`'~", min_size=1, max_size=8).map(lambda s: ";tag=" + s),
    st.sampled_from([";tag=x;lr", ";TAG=x", " ;tag=x", ";tag=", ";tag", ";tag=x y", "junk", ";expires=60"]),
)


@settings(max_examples=300, deadline=None)
@given(names, plain_urls(), tails)
def test_plain_name_addr_same_as_general_parser(name: str, url: str, tail: str) -> None:
    text = f"{name}<{url}>{tail}"
    mp = pytest.MonkeyPatch()
    try:
        try:
            expected = address_state(general_address(text, mp))
        except SipParseError:
            with pytest.raises(SipParseError):
                SipAddress(text, relaxedparser=True)
            return
    finally:
        mp.undo()
    assert address_state(SipAddress(text, relaxedparser=True)) == expected


def test_from_with_tag_round_trips_and_changes_only_what_changed() -> None:
    value = '"Alice" <sip:alice@192.0.2.10:5060>;tag=9fxced76sl'
    addr = SipAddress(value)
    assert (addr.name, addr.getTag(), str(addr)) == ("Alice", "9fxced76sl", value)
    addr.setParam("tag", "new")
    addr.url.port = 5070
    assert str(addr) == '"Alice" <sip:alice@192.0.2.10:5070>;tag=new'


# Transactions: retransmissions answered before parsing, timers as plain reactor calls.


def test_identical_retransmission_gets_the_last_response_without_the_consumer() -> None:
    cons = Consumer(lambda req, t: req.genResponse(486, "Busy Here"))
    tm, ft, clock = mk(cons)
    feed(tm, request())
    feed(tm, request())
    assert cons.methods() == ["INVITE"]
    assert ft.first_lines() == ["SIP/2.0 486 Busy Here"] * 2
    assert ft.sent[0] == ft.sent[1]


def test_bytes_of_an_answered_request_go_and_its_copies_are_still_absorbed() -> None:
    """The datagram kept to match byte-identical copies goes once the request will not be sent
    again (its ACK came, or a non-INVITE was answered): a late copy is still answered with the
    last response through the parsing path, and the consumer never sees it."""
    cons = Consumer(lambda req, t: req.genResponse(486, "Busy Here"))
    tm, ft, clock = mk(cons)
    feed(tm, request())
    assert len(tm._retrans) == 1
    tag = ft.msgs("SIP/2.0 486")[0].getHFBody("to").getTag()
    feed(tm, request("ACK", to_tag=tag, cseq_method="ACK"))
    assert tm._retrans == {} and len(tm.tserver) == 1
    feed(tm, request())
    feed(tm, request("OPTIONS", branch="z9hG4bK-o1"))
    assert tm._retrans == {}
    feed(tm, request("OPTIONS", branch="z9hG4bK-o1"))
    assert cons.methods() == ["INVITE", "OPTIONS"]
    assert ft.first_lines() == ["SIP/2.0 486 Busy Here"] * 4


def test_client_transaction_lets_its_request_bytes_go_when_answered() -> None:
    tm, ft, clock = mk(Consumer())
    got: list[Any] = []
    req = SipRequest(request().decode())
    t = tm.newTransaction(req, got.append)
    assert t.data is not None
    resp = req.genResponse(486, "Busy Here")
    resp.getHFBody("to").setTag("callee")
    feed(tm, str(resp).encode(), ("127.0.0.1", 5060))
    assert t.data is None and ft.first_lines()[-1].startswith("ACK ")
    # The final response again: the ACK again, nothing else.
    feed(tm, str(resp).encode(), ("127.0.0.1", 5060))
    assert [line.split()[0] for line in ft.first_lines()] == ["INVITE", "ACK", "ACK"]
    assert [r.getSCodeNum() for r in got] == [486]


def test_retransmission_with_other_bytes_still_matches() -> None:
    cons = Consumer()
    tm, ft, _ = mk(cons)
    feed(tm, request())
    feed(tm, request().replace(b"Max-Forwards: 70", b"Max-Forwards: 69"))
    assert cons.methods() == ["INVITE"]
    assert ft.first_lines() == ["SIP/2.0 100 Trying"] * 2


def test_same_bytes_from_another_address_is_not_taken_for_a_retransmission() -> None:
    cons = Consumer()
    tm, ft, _ = mk(cons)
    feed(tm, request(), ("127.0.0.1", 5062))
    feed(tm, request(), ("127.0.0.2", 5062))
    # The Via is the same, so the full path matches it to the transaction all the same, and the
    # answer goes where that transaction answers.
    assert cons.methods() == ["INVITE"]
    assert [a for _, a in ft.sent] == [("127.0.0.1", 5062)] * 2


def test_request_after_its_transaction_ended_opens_a_new_one() -> None:
    cons = Consumer(lambda req, t: req.genResponse(404, "Not Here"))
    tm, ft, clock = mk(cons)
    data = request("OPTIONS")
    feed(tm, data)
    clock.advance(64 * tm.T1 + 0.1)
    assert tm.tserver == {} and tm._retrans == {}
    assert clock.getDelayedCalls() == []
    feed(tm, data)
    assert cons.methods() == ["OPTIONS", "OPTIONS"]


def test_timers_leave_no_pending_reactor_calls() -> None:
    cons = Consumer(lambda req, t: req.genResponse(486, "Busy Here"))
    tm, ft, clock = mk(cons)
    feed(tm, request())
    assert len(clock.getDelayedCalls()) == 2, "timers G and H"
    resp = ft.msgs("SIP/2.0 486")[0]
    feed(tm, request("ACK", to_tag=resp.getHFBody("to").getTag(), cseq_method="ACK"))
    assert len(clock.getDelayedCalls()) == 1, "timer I only"
    clock.advance(tm.T4 + 0.1)
    assert clock.getDelayedCalls() == [] and tm.tserver == {}


def test_client_timers_cancelled_by_a_final_response() -> None:
    tm, ft, clock = mk(Consumer())
    got: list[Any] = []
    req = SipRequest(request("OPTIONS").decode())
    t = tm.newTransaction(req, got.append)
    assert len(clock.getDelayedCalls()) == 2, "timers E and F"
    resp = req.genResponse(200, "OK")
    feed(tm, str(resp).encode(), ("127.0.0.1", 5060))
    assert [r.getSCodeNum() for r in got] == [200]
    assert len(clock.getDelayedCalls()) == 1, "timer K only"
    clock.advance(tm.T4 + 0.1)
    assert clock.getDelayedCalls() == [] and t.tid not in tm.tclient


@pytest.mark.parametrize("compact", [False, True])
def test_trying_is_what_genresponse_gives_and_leaves_the_request_alone(compact: bool) -> None:
    """The 100 Trying shares the request's headers instead of copying them: the same bytes as
    genResponse(100) (also in compact form), and the request serialises as before."""
    data = request(rport=True).replace(b"Via: ", b"Via: SIP/2.0/UDP 192.0.2.9;branch=z9hG4bK-up,\r\n v: ", 1)
    req = SipRequest(data.decode())
    req.getHFBody("via").setParam("received", "127.0.0.1")
    for name in ("from", "to", "cseq", "call-id"):
        req.getHFBody(name)
    before = req.localStr("127.0.0.1", 5060)
    expected = req.genResponse(100, "Trying").localStr("127.0.0.1", 5060, compact)
    assert req.genTrying().localStr("127.0.0.1", 5060, compact) == expected
    assert req.localStr("127.0.0.1", 5060) == before
    assert expected.startswith("SIP/2.0 100 Trying\r\n") and expected.count("z9hG4bK") == 2


def test_new_invite_gets_its_100_trying_from_the_manager() -> None:
    tm, ft, clock = mk(Consumer())
    feed(tm, request())
    (trying,) = ft.msgs("SIP/2.0 100")
    req = SipRequest(request().decode())
    assert str(trying.getHFBody("call-id")) == str(req.getHFBody("call-id"))
    assert trying.getHFBody("to").getTag() is None and trying.getHFBody("cseq").getCSeq() == (1, "INVITE")


def test_urls_keep_no_per_instance_dict() -> None:
    # A held call keeps several: fields in slots, a plain one only its text until changed.
    for url in (SipURL("sip:alice@192.0.2.1"), SipURL("sip:alice@192.0.2.1;lr"), SipURL(host="h")):
        assert not hasattr(url, "__dict__")
        assert not hasattr(url.getCopy(), "__dict__")
    url = SipURL("sip:alice@192.0.2.1")
    url.port = 5070
    assert type(url) is SipURL and str(url) == "sip:alice@192.0.2.1:5070"


def test_plain_tag_keeps_no_raw_text() -> None:
    addr = SipAddress('"A" <sip:a@192.0.2.1>;tag=a.b-c')
    assert not addr._praw  # what a held call's From/To cost in memory
    assert str(addr) == str(addr.getCopy()) == '"A" <sip:a@192.0.2.1>;tag=a.b-c'
    addr.setParam("tag", "x")
    assert str(addr) == '"A" <sip:a@192.0.2.1>;tag=x'


def test_copied_address_keeps_no_empty_dict() -> None:
    # getCopy reads the address's own-attribute dict; it must not leave an empty one behind.
    addr = SipAddress('"A" <sip:a@192.0.2.1>;tag=x')
    addr.getCopy()
    assert [r for r in gc.get_referents(addr) if type(r) is dict] == [{"tag": "x"}]
    addr.note = "mine"
    assert addr.getCopy().note == "mine"


@pytest.mark.parametrize(
    "text",
    [
        '"A" <sip:a@192.0.2.1>',
        "Bob <sip:b@h.example:5070>;tag=t1",
        "<sip:c@192.0.2.3>",
        '"A B" <sips:a@h>;tag=z',
    ],
)
def test_kept_plain_address_stays_text_and_reads_the_same(text: str) -> None:
    # What a dialog keeps of its From and To: the text, which reads as the address it came from.
    addr = SipAddress(text)
    kept = SipTo.kept(addr)
    assert not kept.parsed and kept.body == text
    assert kept.getTag() == addr.getParam("tag") and not kept.parsed
    assert str(kept.getCopy()) == str(kept) == text
    assert address_state(kept.getUri()) == address_state(addr)
    assert kept.getUrl().username == addr.url.username


def test_kept_address_takes_a_tag_as_text_the_way_the_parsed_one_does() -> None:
    kept = SipFrom.kept(SipAddress(' "A" <sip:a@192.0.2.1> '))
    parsed = SipFrom(address=SipAddress(' "A" <sip:a@192.0.2.1> '))
    kept.setTag("x.1")
    parsed.setTag("x.1")
    assert not kept.parsed and str(kept) == str(parsed) == '"A" <sip:a@192.0.2.1>;tag=x.1'
    assert kept.getTag() == "x.1"
    # A tagged one is parsed to change its tag, as before.
    kept.setTag("y")
    assert kept.parsed and str(kept) == '"A" <sip:a@192.0.2.1>;tag=y'


@pytest.mark.parametrize(
    "address",
    [
        SipAddress("<sip:a@192.0.2.1;lr>;tag=x"),
        SipAddress('"A\\"B" <sip:a@192.0.2.1>'),
        SipAddress("sip:a@192.0.2.1"),
        SipAddress("<sip:a@192.0.2.1>;tag=x;other=1"),
        SipAddress(url=SipURL(username="a")),  # placeholder host: filled in when sent
        SipAddress(name="", url=SipURL("sip:a@192.0.2.1")),
    ],
)
def test_kept_address_not_plain_is_a_copy(address: SipAddress) -> None:
    kept = SipTo.kept(address)
    assert kept.parsed and kept.address is not address
    assert address_state(kept.address) == address_state(address)
    assert str(kept) == str(address)


@settings(max_examples=300, deadline=None)
@given(names, plain_urls(), tails)
def test_kept_address_reads_as_the_address_it_was_made_of(name: str, url: str, tail: str) -> None:
    try:
        addr = SipAddress(f"{name}<{url}>{tail}", relaxedparser=True)
    except SipParseError:
        return
    kept = SipTo.kept(addr)
    assert kept.getTag() == addr.getParam("tag")
    assert str(kept) == str(addr)
    assert address_state(kept.getUri()) == address_state(addr)


@pytest.mark.parametrize(
    "url", [SipURL(host="h", username="u"), SipURL("sip:u@h;transport=udp"), SipURL("sip:u@h;lr")]
)
def test_url_keeps_no_empty_parameter_lists_yet_reads_and_copies_them(url: SipURL) -> None:
    # A held call keeps several URLs; most have neither kind of parameter.
    assert (url._other, url._userparams) == (None, None)
    copy = url.getCopy()
    assert (copy._other, copy._userparams) == (None, None)
    text = str(url)
    assert url.other == [] and url.userparams == [] and str(url) == text
    url.other.append("x=1")
    url.userparams.append("npdi")
    assert copy.other == [] and "npdi" in str(url) and str(url).endswith("x=1")
    assert str(copy) == text


def test_dialog_headers_keep_no_per_instance_dict() -> None:
    # A held call keeps its From, To and Call-ID per leg (and a Contact or route when it has them).
    hfs = [
        SipFrom('"A" <sip:a@192.0.2.1>;tag=x'),
        SipTo(address=SipAddress("<sip:b@192.0.2.2>")),
        SipContact("*"),
        SipContact("<sip:c@192.0.2.3>"),
        SipCallId("c1@192.0.2.1"),
        SipRoute("<sip:p.example;lr>"),
        SipRecordRoute("<sip:p.example;lr>"),
    ]
    for hf in hfs:
        copy = hf.getCopy()
        assert not hasattr(hf, "__dict__") and not hasattr(copy, "__dict__")
        assert str(copy) == str(hf) and copy.parsed == hf.parsed
    assert hfs[2].getCopy().asterisk and not hfs[3].getCopy().asterisk
    assert hfs[0].getTag() == "x" and hfs[0].getCopy().getTag() == "x"
    to = hfs[1].getCopy()
    to.setTag("y")
    assert to.getTag() == "y" and hfs[1].getTag() is None
