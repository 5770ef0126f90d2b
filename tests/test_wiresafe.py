"""sippy.Security.WireSafe and the call controller's last check before the outgoing INVITE."""

from __future__ import annotations

import pytest
from twisted.internet.task import Clock

from sippy.B2BRoute import B2BRoute
from sippy.CallController import CallController
from sippy.Security.WireSafe import breaks_line, first_unsafe
from sippy.SipHeader import SipHeader


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
