"""sippy.Security.WireSafe and the call controller's last check before the outgoing INVITE."""

from __future__ import annotations

import pytest
from twisted.internet.task import Clock

from sippy.B2BRoute import B2BRoute
from sippy.CallController import CallController
from sippy.Security.WireSafe import breaks_line, first_unsafe
from sippy.SipHeader import SipHeader
from tests.test_load_regressions import B2B, CALLEE, CALLER, SDP, caller_request


@pytest.mark.parametrize("value", ["a\rb", "a\nb", "a\x00b", "\r\n", "X: 1\r\n\r\nbody"])
def test_line_breakers(value: str) -> None:
    assert breaks_line(value)


@pytest.mark.parametrize("value", [None, "", "16045551234", "Alice Smith", 'X-A: "q\\"x"', "é\t~%0D%0A"])
def test_harmless_values(value: str) -> None:
    assert not breaks_line(value)


def test_first_unsafe_names_the_field() -> None:
    assert (
        first_unsafe((("CLD", "200"), ("CLI", None), ("caller name", "E\nve"), ("x", "\r"))) == "caller name"
    )
    assert first_unsafe((("CLD", "200"),)) is None


def controller(pass_headers: list[SipHeader]) -> CallController:
    return CallController(
        "127.0.0.1", ("127.0.0.1", 5060), "127.0.0.1", None, {}, pass_headers, reactor=Clock()
    )


def bound_route(cc: CallController, sroute: str = "192.0.2.5") -> B2BRoute:
    route = B2BRoute(sroute)
    route.customize(1, "200", "555", None, cc.pass_headers, None)
    return route


def test_clean_route_and_headers_pass() -> None:
    cc = controller([SipHeader(name="x-pass", body="a b")])
    assert cc._wireSafe(bound_route(cc, "192.0.2.5;ash=X-A%3A%201;cnam=Eve"), "200", "Eve")


@pytest.mark.parametrize(
    "cld, caller_name, pass_body, cli",
    [
        ("200\r\nX-Evil: 1", None, "ok", None),  # e.g. from -T
        ("200", "Eve\nX-Evil: 1", "ok", None),
        ("200", None, "a\x00b", None),  # a NUL in a header passed through with -h
        ("200", None, "ok", "555\r\n"),  # a CLI set after parsing (RADIUS CLI: override)
    ],
)
def test_any_line_breaker_refuses_the_route(cld: str, caller_name: str, pass_body: str, cli: str) -> None:
    cc = controller([SipHeader(name="x-pass", body=pass_body)])
    route = bound_route(cc)
    if cli is not None:
        route.cli = cli
    assert not cc._wireSafe(route, cld, caller_name)


# ----- b2bua_simple passes the caller's values verbatim: not these ------------------------------


@pytest.mark.parametrize(
    "ruri_user, from_name, field",
    [
        ("200%0D%0AX-Injected:1", "Alice", "CLD"),
        ("200", "Al\x00ice", "caller name"),
    ],
)
def test_b2bua_simple_refuses_a_caller_value_that_breaks_a_line(
    ruri_user: str, from_name: str, field: str
) -> None:
    b2b = B2B("simple")
    invite = caller_request("INVITE", "inj-1", 1, "inj-1-1", body=SDP)
    invite = invite.replace("INVITE sip:bob@", f"INVITE sip:{ruri_user}@", 1)
    invite = invite.replace("From: <sip:alice", f'From: "{from_name}" <sip:alice', 1)
    b2b.feed(invite, CALLER)
    assert [x for x in b2b.wire.lines(CALLER) if not x.startswith("SIP/2.0 100")] == [
        f"SIP/2.0 400 Bad Request ({field})"
    ]
    assert b2b.wire.lines(CALLEE) == []
    assert b2b.tm.bad_counts["unsafe_value"] == 1
