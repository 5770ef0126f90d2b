"""SIP/SIPS/tel URIs (RFC 3261 19.1, RFC 3966), parsed into Sippy's attribute layout.

An unchanged URL serialises exactly as it was received: parsing records a snapshot of the fields
and `__str__` returns the original text while the fields still match it. Once a field changes the
URL is rebuilt, keeping the parameters in their original order and the user part in its original
escaping when the user itself did not change.

IPv6 hosts keep their brackets in `host` (that is how they appear in SIP text); `getAddr()` strips
them because socket tuples carry bare addresses.
"""

from __future__ import annotations

import re
from typing import Any, Optional
from urllib.parse import quote, unquote

from sippy.Exceptions.SipParseError import SipParseError
from sippy.LazySlot import lazy_slot
from sippy.misc import bare_host, is_ip, sip_host

# RFC 3261 user-unreserved and mark characters: legal unescaped in the user part.
USERNAME_SAFE = "&=+$,;?/#" + "-_.!~*'()"
_HVALUE_SAFE = "[]/?:+$" + "-_.!~*'()"
# A user part made only of these is written as it is (what quote() would give it, quicker).
_USER_AS_IS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-~" + USERNAME_SAFE)
_KNOWN_PARAMS = ("user", "transport", "ttl", "maddr", "method", "tag", "lr")
_DEFAULT_PORTS = {"sip": 5060, "sips": 5061, "tel": 5060}
_HOST_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._")
_IPV6_CHARS = frozenset("0123456789abcdefABCDEF:.")
# Characters never legal unescaped anywhere in a URI; seeing one means the text is not a URI.
_BAD_CHARS = frozenset(' \t\r\n<>"\x00')
# RFC 3966 phonedigit-hex plus the pause/wait dial characters some gateways send.
_TEL_CHARS = frozenset("0123456789abcdefABCDEF*#+-.()pwPW%")
# The usual From/To/Contact URL: `sip:user@host[:port][;transport=name]`, with no escapes, password
# or other parameters (the port alternatives spell 0-65535). Every text this matches is one the full
# parser accepts as it stands, so such a URL is only matched when made and its fields are filled in
# on first access. SipAddress embeds the pattern (it has no groups).
PLAIN_URL = (
    r"sips?:(?:[A-Za-z0-9\-_.!~*'()&=+$,/]+@)?[A-Za-z0-9\-._]+"
    r"(?::(?:[0-5]?[0-9]{1,4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]|6553[0-5]))?"
    r"(?:;transport=[A-Za-z0-9]+)?"
)
_PLAIN_URL = re.compile(PLAIN_URL)


# Fields of a URL that PLAIN_URL matches: those it never has, and those read off its text.
_PLAIN_ABSENT: dict[str, Any] = dict.fromkeys(
    ("password", "headers", "usertype", "ttl", "maddr", "method", "tag")
)
_PLAIN_ABSENT["lr"] = False
_PLAIN_PARTS = frozenset(("scheme", "username", "host", "port", "transport"))
_TRANSPORT_EQ = len("transport=")
_LISTS = ("other", "userparams")
_FIELDS = (
    "scheme",
    "username",
    "password",
    "host",
    "port",
    "headers",
    "usertype",
    "transport",
    "ttl",
    "maddr",
    "method",
    "tag",
    "other",
    "userparams",
    "lr",
)


def _plain_part(text: str, name: str) -> Any:
    """scheme, username, host, port or transport of a URL that PLAIN_URL matches, as _parse would
    set it."""
    scheme, _, rest = text.partition(":")
    if name == "scheme":
        return scheme
    # Neither the user part nor the host of a plain URL has a ';': the first starts the transport.
    rest, _, param = rest.partition(";")
    if name == "transport":
        return param[_TRANSPORT_EQ:] if param else None
    user, at, hostport = rest.partition("@")
    if not at:
        user, hostport = None, user
    if name == "username":
        return user
    host, _, port = hostport.partition(":")
    if name == "host":
        return host
    return int(port) if port else None


def plain_url(url: str) -> SipURL:
    """A SipURL for text the caller has matched against PLAIN_URL: kept as text."""
    new = SipURL.__new__(_TextURL)
    object.__setattr__(new, "_orig", url)
    return new


def url_text(url: Any) -> Optional[str]:
    """The text of a URL kept as text (plain_url(text) makes the same URL again), else None: what
    a long-lived object may keep of a URL it mostly only copies or keeps in case someone reads it."""
    return url._orig if type(url) is _TextURL else None


def _check_port(text: str, url: str) -> int:
    if not text.isdigit() or not text.isascii():
        raise SipParseError(f"bad port in URL: {url!r}")
    port = int(text)
    if port > 65535:
        raise SipParseError(f"port out of range in URL: {url!r}")
    return port


class SipURL:
    """A sip:, sips: or tel: URI with Sippy's attribute names.

    `host=None` in a new URL is a placeholder for "this box": `localStr(local_addr, local_port)`
    fills in the address of the transport that sends it (and the port when `port` is None too).
    """

    # A held call keeps several (From, To, Contact, targets on each leg): fields in slots, no
    # per-instance dict. `_orig` is the text as received (all a URL kept as text holds). The lists
    # `other` and `userparams` are None until a parameter is there or the list is read (_LISTS).
    __slots__ = tuple("_" + f if f in _LISTS else f for f in _FIELDS) + (
        "_orig",
        "_snap",
        "_user_raw",
        "_porder",
    )

    def __init__(
        self,
        url: Optional[str] = None,
        username: Optional[str] = None,
        password: Optional[str] = None,
        host: Optional[str] = None,
        port: Optional[int] = None,
        headers: Optional[dict[str, str]] = None,
        usertype: Optional[str] = None,
        transport: Optional[str] = None,
        ttl: Optional[int] = None,
        maddr: Optional[str] = None,
        method: Optional[str] = None,
        tag: Optional[str] = None,
        other: Optional[list[str]] = None,
        userparams: Optional[list[str]] = None,
        lr: bool = False,
        scheme: str = "sip",
        relaxedparser: bool = False,
    ) -> None:
        if url is not None and type(self) is SipURL and _PLAIN_URL.fullmatch(url) is not None:
            # Fast path: a plain URL stays text until it is changed (see _TextURL).
            self._orig: Optional[str] = url
            object.__setattr__(self, "__class__", _TextURL)
            return
        self._orig = None
        self._snap: Optional[tuple[Any, ...]] = None
        self._user_raw: Optional[tuple[str, str]] = None
        self._porder: tuple[str, ...] = ()
        if url is not None:
            self._parse(url, relaxedparser)
            return
        self.scheme = scheme
        self.username = username
        self.password = password
        # A bare IPv6 address (as socket tuples carry it) gets the brackets SIP text needs.
        self.host = sip_host(host) if host else host
        self.port = port
        self.headers = dict(headers) if headers else None
        self.usertype = usertype
        self.transport = transport
        self.ttl = ttl
        self.maddr = maddr
        self.method = method
        self.tag = tag
        self._other = list(other) if other else None
        self._userparams = list(userparams) if userparams else None
        self.lr = lr

    other = lazy_slot(
        "_other", list, "Parameters other than the known ones, as written (`name` or `name=value`)."
    )
    userparams = lazy_slot(
        "_userparams", list, "Parameters of the user part (`sip:user;npdi@host`), as written."
    )

    def _state(self) -> tuple[Any, ...]:
        return (
            self.scheme,
            self.username,
            self.password,
            self.host,
            self.port,
            None if self.headers is None else tuple(self.headers.items()),
            self.usertype,
            self.transport,
            self.ttl,
            self.maddr,
            self.method,
            self.tag,
            tuple(self._other) if self._other else (),
            tuple(self._userparams) if self._userparams else (),
            self.lr,
        )

    def _parse(self, url: str, relaxed: bool) -> None:
        if not url or not _BAD_CHARS.isdisjoint(url):
            raise SipParseError(f"bad URL: {url!r}")
        scheme, colon, rest = url.partition(":")
        scheme = scheme.lower()
        if not colon or scheme not in _DEFAULT_PORTS:
            raise SipParseError(f"unsupported URL scheme: {url!r}")
        self.scheme = scheme
        self.password = None
        self.host = None
        self.port = None
        self.headers = None
        self.usertype = None
        self.transport = None
        self.ttl = None
        self.maddr = None
        self.method = None
        self.tag = None
        self._other = None
        self._userparams = None
        self.lr = False
        if scheme == "tel":
            self._parse_tel(rest, url)
        else:
            self._parse_sip(rest, url, relaxed)
        self._orig = url
        self._snap = self._state()

    def _parse_tel(self, rest: str, url: str) -> None:
        number, *params = rest.split(";")
        if not number or not _TEL_CHARS.issuperset(number):
            raise SipParseError(f"bad number in tel URL: {url!r}")
        self._set_user(number)
        self._userparams = params or None

    def _set_user(self, raw: str) -> None:
        if "%" in raw:
            try:
                self.username = unquote(raw, errors="strict")
            except UnicodeDecodeError as ex:
                raise SipParseError(f"bad escape in URL user part: {raw!r}") from ex
        else:
            self.username = raw
        self._user_raw = (raw, self.username)

    def _parse_sip(self, rest: str, url: str, relaxed: bool) -> None:
        userinfo, at, hostpart = rest.partition("@")
        if at:
            user, pcolon, password = userinfo.partition(":")
            if pcolon:
                self.password = password
            user, *userparams = user.split(";")
            if not user and not userparams:
                raise SipParseError(f"empty user part in URL: {url!r}")
            self._set_user(user)
            self._userparams = userparams or None
        else:
            self.username = None
            hostpart = userinfo
        hostpart, q, hdrs = hostpart.partition("?")
        if q:
            self._parse_headers(hdrs, url)
        hostport, *params = hostpart.split(";")
        self._parse_hostport(hostport, url, relaxed)
        order = []
        for p in params:
            name, eq, value = p.partition("=")
            lname = name.lower()
            if not name:
                raise SipParseError(f"empty URL parameter: {url!r}")
            if lname in _KNOWN_PARAMS and (eq or lname == "lr") and lname not in order:
                if lname == "lr":
                    # RFC 3261 gives lr no value, but some devices send lr=on: accept it.
                    self.lr = True
                elif lname == "ttl":
                    if not value.isdigit() or not value.isascii():
                        raise SipParseError(f"bad ttl in URL: {url!r}")
                    self.ttl = int(value)
                else:
                    setattr(self, "usertype" if lname == "user" else lname, value)
                order.append(lname)
            else:
                if self._other is None:
                    self._other = []
                self._other.append(p)
                order.append("")
        self._porder = tuple(order)

    def _parse_hostport(self, hostport: str, url: str, relaxed: bool) -> None:
        if hostport.startswith("["):
            host, rb, port = hostport.partition("]")
            if not rb or len(host) < 3 or not _IPV6_CHARS.issuperset(host[1:]) or ":" not in host:
                raise SipParseError(f"bad IPv6 reference in URL: {url!r}")
            if not is_ip(host[1:], 6):
                # RFC 5118 4.10: "2001:db8:::192.0.2.1" has the right characters but is no address.
                raise SipParseError(f"bad IPv6 address in URL: {url!r}")
            self.host = host + "]"
            if port:
                if port[0] != ":":
                    raise SipParseError(f"junk after IPv6 reference in URL: {url!r}")
                self.port = _check_port(port[1:], url)
            return
        host, colon, port = hostport.partition(":")
        if not host:
            if not relaxed or colon:
                raise SipParseError(f"URL without a host: {url!r}")
            self.host = ""
            return
        if not _HOST_CHARS.issuperset(host):
            raise SipParseError(f"bad host in URL: {url!r}")
        self.host = host
        if colon:
            first, colon2, second = port.partition(":")
            # Some devices repeat the port ("host:5060:5060"); Sippy accepts that, so do we.
            if colon2 and first != second:
                raise SipParseError(f"bad port in URL: {url!r}")
            self.port = _check_port(first, url)

    def _parse_headers(self, hdrs: str, url: str) -> None:
        self.headers = {}
        for h in hdrs.split("&"):
            name, eq, value = h.partition("=")
            if not name or not eq:
                raise SipParseError(f"bad URL header: {url!r}")
            try:
                self.headers[name] = unquote(value, errors="strict")
            except UnicodeDecodeError as ex:
                raise SipParseError(f"bad escape in URL header: {url!r}") from ex

    def __str__(self) -> str:
        return self.localStr()

    def localStr(self, local_addr: Optional[str] = None, local_port: Optional[int] = None) -> str:
        """Text form; a placeholder host (None) becomes local_addr (default SipConf.my_address)."""
        if self._orig is not None and self._state() == self._snap:
            return self._orig
        parts = [self.scheme, ":"]
        w = parts.append
        if self.username is not None:
            if self._user_raw is not None and self._user_raw[1] == self.username:
                w(self._user_raw[0])
            elif _USER_AS_IS.issuperset(self.username):
                w(self.username)
            else:
                w(quote(self.username, USERNAME_SAFE))
            for up in self._userparams or ():
                w(";" + up)
            if self.scheme == "tel":
                return "".join(parts)
            if self.password is not None:
                w(":" + self.password)
            w("@")
        host, port = self.host, self.port
        if host is None:
            if local_addr is None:
                from sippy.SipConf import SipConf

                local_addr, local_port = SipConf.my_address, SipConf.my_port
            host = sip_host(local_addr)
            if port is None:
                port = local_port
        w(host)
        if port is not None:
            w(f":{port}")
        self._write_params(w)
        if self.headers:
            w("?")
            w("&".join(f"{k}={quote(v, _HVALUE_SAFE)}" for k, v in self.headers.items()))
        return "".join(parts)

    def _write_params(self, w: Any) -> None:
        if (
            not (self._porder or self._other or self.lr)
            and self.usertype is None
            and self.transport is None
            and self.ttl is None
            and self.maddr is None
            and self.method is None
            and self.tag is None
        ):
            # No parameters (the usual Contact, From, To, Request-URI).
            return
        known = {
            "user": self.usertype,
            "transport": self.transport,
            "ttl": self.ttl,
            "maddr": self.maddr,
            "method": self.method,
            "tag": self.tag,
        }
        others = iter(self._other or ())
        order = list(self._porder) + [n for n in _KNOWN_PARAMS if n not in self._porder]
        for name in order:
            if name == "":
                p = next(others, None)
                if p is not None:
                    w(";" + p)
            elif name == "lr":
                if self.lr:
                    w(";lr")
            elif known[name] is not None:
                w(f";{name}={known[name]}")
        for p in others:
            w(";" + p)

    def getCopy(self) -> SipURL:
        new = SipURL.__new__(SipURL)
        new.scheme = self.scheme
        new.username = self.username
        new.password = self.password
        new.host = self.host
        new.port = self.port
        new.usertype = self.usertype
        new.transport = self.transport
        new.ttl = self.ttl
        new.maddr = self.maddr
        new.method = self.method
        new.tag = self.tag
        new.lr = self.lr
        # The raw texts and the snapshot are never changed in place: shared.
        new._orig = self._orig
        new._snap = self._snap
        new._user_raw = self._user_raw
        new._porder = self._porder
        new.headers = None if self.headers is None else dict(self.headers)
        new._other = list(self._other) if self._other else None
        new._userparams = list(self._userparams) if self._userparams else None
        return new

    def getHost(self) -> Optional[str]:
        """Host as written in SIP text (IPv6 with brackets)."""
        return self.host

    def getPort(self) -> int:
        return self.port if self.port is not None else _DEFAULT_PORTS[self.scheme]

    def getAddr(self) -> tuple[Optional[str], int]:
        """(host, port) for a socket: IPv6 without brackets, default port by scheme."""
        host = self.host
        return (bare_host(host) if host is not None else None, self.getPort())

    def setAddr(self, addr: tuple[str, Optional[int]]) -> None:
        """Set host and port from a socket tuple (bare IPv6 gets its brackets back)."""
        host, self.port = addr
        self.host = sip_host(host)


_SLOTS = SipURL.__slots__


class _TextURL(SipURL):
    """A URL that PLAIN_URL matched, kept as its text (`_orig`) while nobody changes it: the fields
    it never has and those read off the text are answered without parsing, so the usual From, To
    and Contact stay small, are copied as text and written back as they came. Setting any field or
    reading a list (which could be changed in place) parses it into a plain SipURL first."""

    __slots__ = ()

    def __getattr__(self, name: str) -> Any:
        # Reached only for the slots a URL kept as text leaves empty, other than the fields the
        # class answers itself (_text_field: below).
        if name not in _SLOTS and name not in _LISTS:
            raise AttributeError(name)
        self._unlazy()
        return getattr(self, name)

    def __setattr__(self, name: str, value: Any) -> None:
        self._unlazy()
        setattr(self, name, value)

    def _unlazy(self) -> None:
        """Become a parsed SipURL (the text is one the full parser accepts as it stands)."""
        object.__setattr__(self, "__class__", SipURL)
        self._snap = None
        self._user_raw = None
        self._porder = ()
        self._parse(self._orig, False)

    def localStr(self, local_addr: Optional[str] = None, local_port: Optional[int] = None) -> str:
        return self._orig

    def getCopy(self) -> SipURL:
        return plain_url(self._orig)

    # Read off the text: an empty slot read first would raise (and drop) an AttributeError on the
    # way to __getattr__. A plain URL's host is never a bracketed IPv6 one (bare as it stands).
    def getHost(self) -> Optional[str]:
        return _plain_part(self._orig, "host")

    def getPort(self) -> int:
        port = _plain_part(self._orig, "port")
        return port if port is not None else _DEFAULT_PORTS[_plain_part(self._orig, "scheme")]

    def getAddr(self) -> tuple[Optional[str], int]:
        return (_plain_part(self._orig, "host"), self.getPort())


def _text_field(name: str) -> property:
    """A field of a URL kept as text, as the parsed URL would have it. A property of _TextURL
    hides SipURL's empty slot, whose read would raise (and drop) an AttributeError before
    __getattr__ answered; setting the field still goes through __setattr__ (parse first)."""
    if name in _PLAIN_PARTS:
        return property(lambda self: _plain_part(self._orig, name))
    value = _PLAIN_ABSENT[name]
    return property(lambda self: value)


for _name in (*_PLAIN_PARTS, *_PLAIN_ABSENT):
    setattr(_TextURL, _name, _text_field(_name))
del _name
