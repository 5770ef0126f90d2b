"""Route strings: where and how to place the outgoing leg of a call.

A route is ``[[cld]@]host[:port][;key=value]...`` and comes from ``-s`` or from RADIUS
``h323-ivr-in=Routing:...`` attributes (one per route, tried in order). Routes from RADIUS are
parsed per call, so parsing does no DNS: host names are resolved by the transport, on the reactor.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Sequence
from typing import Any, Optional
from urllib.parse import quote, unquote

from sippy.B2BTransforms import TransProcError, getTransProc
from sippy.misc import parse_hostport, sip_host, sip_hostport
from sippy.Security.WireSafe import breaks_line
from sippy.SipConf import SipConf

__all__ = (
    "B2BRoute",
    "RouteError",
    "parse_radius_routes",
    "SRC_WSS",
    "SRC_PROXY",
    "DST_SIP_UA",
    "DST_WSS_UA",
)

SRC_WSS = "[[WSS]]"
SRC_PROXY = "[[PROXY]]"
DST_SIP_UA = "sip-ua"
DST_WSS_UA = "wss-ua"

_RADIUS_PREFIX = "Routing:"
_HOSTNAME = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?")
_HEADER_NAME = re.compile(r"[A-Za-z0-9!%*_+`'~.-]+")
# params kept by their parsed form; everything else lands in .params verbatim
_TIMERS = {
    "credit-time": "credit_time",
    "expires": "expires",
    "np_expires": "no_progress_expires",
    "nr_expires": "no_reply_expires",
}


class RouteError(ValueError):
    """A route string that cannot be used; the message names the bad part."""


def _split_hostport(text: str, what: str) -> tuple[str, int]:
    """``host``, ``host:port``, ``[v6]`` or ``[v6]:port`` -> (host without brackets, port)."""
    try:
        host, port = parse_hostport(text, SipConf.default_port)
    except ValueError as exc:
        raise RouteError(f"{what}: {exc}") from None
    if ":" not in host and not _HOSTNAME.fullmatch(host):
        raise RouteError(f"{what}: bad host {host!r}")
    return host, port


def _int_param(name: str, value: Optional[str]) -> Optional[int]:
    """Timer-style value: an integer, negative meaning 'not set'."""
    try:
        ival = int(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise RouteError(f"{name}: not an integer: {value!r}") from None
    return None if ival < 0 else ival


class B2BRoute:
    """One parsed route; ``customize()`` binds it to a call, ``getCopy()`` before doing so."""

    __slots__ = (
        "rnum",
        "cld",
        "cld_set",
        "hostport",
        "hostonly",
        "host",
        "port",
        "credit_time",
        "crt_set",
        "expires",
        "no_progress_expires",
        "no_reply_expires",
        "forward_on_fail",
        "user",
        "passw",
        "pass_auth",
        "cli",
        "cli_set",
        "params",
        "ash",
        "extra_headers",
    )

    def __init__(self, sroute: Optional[str] = None, cself: Optional[B2BRoute] = None) -> None:
        if cself is not None:
            self._copy_from(cself)
            return
        if sroute is None:
            raise RouteError("no route given")
        self.rnum: Optional[int] = None
        self.cld: Optional[str] = None
        self.cld_set = False
        self.credit_time: Optional[int] = None
        self.crt_set = False
        self.expires: Optional[int] = None
        self.no_progress_expires: Optional[int] = None
        self.no_reply_expires: Optional[int] = None
        self.forward_on_fail = False
        self.user: Optional[str] = None
        self.passw: Optional[str] = None
        self.pass_auth = True
        self.cli: Optional[str] = None
        self.cli_set = False
        self.params: dict[str, Any] = {}
        self.ash: tuple[str, ...] = ()
        self.extra_headers: Optional[tuple[Any, ...]] = None
        self._parse(sroute)

    def _copy_from(self, other: B2BRoute) -> None:
        for name in self.__slots__:
            setattr(self, name, getattr(other, name))
        self.params = dict(other.params)
        if other.extra_headers is not None:
            self.extra_headers = tuple(hf.getCopy() for hf in other.extra_headers)

    def _parse(self, sroute: str) -> None:
        if breaks_line(sroute):
            # Every part of a route ends up in SIP text: a CR, LF or NUL would split a header.
            raise RouteError(f"route {sroute!r}: CR, LF or NUL in it")
        text = sroute.strip()
        if text.startswith("h323-ivr-in="):
            text = text[len("h323-ivr-in=") :]
        if text.startswith(_RADIUS_PREFIX) and not text[len(_RADIUS_PREFIX) :].split(";", 1)[0].isdigit():
            text = text[len(_RADIUS_PREFIX) :]
        parts = text.split(";")
        target = parts[0].strip()
        if "@" in target:
            cld, target = target.rsplit("@", 1)
            # "@host" clears the number; plain "host" keeps the caller's
            self.cld = cld or None
            self.cld_set = True
        if not target:
            raise RouteError(f"route {sroute!r}: no host")
        self.hostport = target
        self.host, self.port = _split_hostport(target, f"route {sroute!r}")
        self.hostonly = sip_host(self.host)
        ash = []
        for item in parts[1:]:
            item = item.strip()
            if not item:
                continue
            name, sep, value = item.partition("=")
            self._parse_param(name.strip(), value if sep else None, ash)
        self.ash = tuple(ash)
        if self.ash:  # as in Sippy, the route's own headers are there before customize()
            self.extra_headers = self._ash_headers()

    def _ash_headers(self) -> tuple[Any, ...]:
        # imported here so that parsing routes without ash= (config checks) needs no SIP stack
        from sippy.SipHeader import SipHeader

        return tuple(SipHeader(line) for line in self.ash)

    def _parse_param(self, name: str, value: Optional[str], ash: list[str]) -> None:
        if name == "forward_on_fail":
            self.forward_on_fail = True
            return
        if value is None:
            raise RouteError(f"route parameter {name!r} needs a value")
        if name in _TIMERS:
            setattr(self, _TIMERS[name], _int_param(name, value))
            if name == "credit-time":
                self.crt_set = True
        elif name == "auth":
            self.pass_auth = False
            if value != "nopass":
                user, sep, passw = value.partition(":")
                if not sep:
                    raise RouteError(f"auth: expected user:password or nopass, got {value!r}")
                self.user, self.passw = user, passw
        elif name == "cli":
            self.cli = value or None
            self.cli_set = True
        elif name == "cnam":
            cnam = unquote(value)
            if breaks_line(cnam):
                raise RouteError(f"cnam: CR, LF or NUL in {value!r}")
            self.params["caller_name"] = cnam or None
        elif name == "ash":
            line = unquote(value)
            if breaks_line(line):
                raise RouteError(f"ash: CR, LF or NUL in {value!r}")
            hname, sep, _ = line.partition(":")
            if not sep or not _HEADER_NAME.fullmatch(hname.strip()):
                raise RouteError(f"ash: expected URL-quoted Name:Value, got {value!r}")
            ash.append(line)
        elif name == "rtpp":
            if value not in ("0", "1"):
                raise RouteError(f"rtpp: expected 0 or 1, got {value!r}")
            self.params["rtpp"] = value == "1"
        elif name == "op":
            self.params["outbound_proxy"] = _split_hostport(value, "op")
        elif name == "hs_scodes":
            codes = [x.strip() for x in value.split(",") if x.strip()]
            if not all(x.isdigit() and 100 <= int(x) <= 699 for x in codes):
                raise RouteError(f"hs_scodes: expected comma-separated SIP status codes, got {value!r}")
            self.params["huntstop_scodes"] = tuple(int(x) for x in codes)
        elif name == "po_proc":
            try:
                self.params["po_proc"] = getTransProc(value)
            except TransProcError as exc:
                raise RouteError(f"po_proc: {exc}") from None
        elif name == "gt":
            timeout, sep, skip = value.partition(",")
            if not sep or not timeout.strip().isdigit() or not skip.strip().lstrip("-").isdigit():
                raise RouteError(f"gt: expected timeout,skip, got {value!r}")
            self.params["gt"] = value
        else:
            self.params[name] = value

    def customize(
        self,
        rnum: int,
        default_cld: Optional[str],
        default_cli: Optional[str],
        default_credit_time: Optional[int],
        pass_headers: Sequence[Any],
        max_credit_time: Optional[int],
    ) -> None:
        """Bind the route to a call: fill what the route left open and cap the credit time."""
        self.rnum = rnum
        if not self.cld_set:
            self.cld = default_cld
        if not self.cli_set:
            self.cli = default_cli
        if not self.crt_set:
            self.credit_time = default_credit_time
        if "gt" in self.params:
            timeout, skip = self.params["gt"].split(",", 1)
            self.params["group_timeout"] = (int(timeout), rnum + int(skip))
        self.extra_headers = (self._ash_headers() if self.ash else ()) + tuple(pass_headers)
        if max_credit_time is not None and (self.credit_time is None or self.credit_time > max_credit_time):
            self.credit_time = max_credit_time

    def getCopy(self) -> B2BRoute:
        return self.__class__(cself=self)

    def getNHAddr(self, source: tuple[str, int]) -> tuple[tuple[str, int], bool]:
        """Next-hop address and whether it shares the address family of ``source``.

        IPv6 hosts come back without brackets; names stay names (the transport resolves them).
        """
        src_v6 = ":" in source[0]
        try:
            same_af = (ipaddress.ip_address(self.host).version == 6) == src_v6
        except ValueError:
            same_af = True
        return (self.host, self.port), same_af

    def __str__(self) -> str:
        out = [f"{self.cld or ''}@{self.hostport}" if self.cld_set else self.hostport]
        if self.crt_set:
            out.append(f"credit-time={-1 if self.credit_time is None else self.credit_time}")
        for pname, attr in _TIMERS.items():
            value = getattr(self, attr)
            if pname != "credit-time" and value is not None:
                out.append(f"{pname}={value}")
        if self.forward_on_fail:
            out.append("forward_on_fail")
        if not self.pass_auth:
            out.append("auth=nopass" if self.user is None else f"auth={self.user}:{self.passw}")
        if self.cli_set:
            out.append(f"cli={self.cli or ''}")
        out.extend(f"ash={quote(line, safe='')}" for line in self.ash)
        for key, value in self.params.items():
            if key == "caller_name":
                out.append(f"cnam={quote(value or '', safe='')}")
            elif key == "rtpp":
                out.append(f"rtpp={int(value)}")
            elif key == "outbound_proxy":
                out.append(f"op={sip_hostport(*value)}")
            elif key == "huntstop_scodes":
                out.append("hs_scodes=" + ",".join(str(x) for x in value))
            elif key != "group_timeout":
                out.append(f"{key}={value}")
        return ";".join(out)

    def __repr__(self) -> str:
        return f"B2BRoute({str(self)!r})"


def parse_radius_routes(avps: Iterable[tuple[str, str]]) -> list[B2BRoute]:
    """Routes from the ``h323-ivr-in=Routing:...`` attributes of a RADIUS reply, in order."""
    return [
        B2BRoute(value[len(_RADIUS_PREFIX) :])
        for name, value in avps
        if name == "h323-ivr-in" and value.startswith(_RADIUS_PREFIX)
    ]
