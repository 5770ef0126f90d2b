"""name-addr / addr-spec (RFC 3261 20.10): display name, URL and header parameters.

Each piece keeps its original text while its value is unchanged, so adding a tag to a To header
leaves the display name, the URL and the other parameters byte-for-byte as the peer sent them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from types import MappingProxyType
from typing import Optional, Union

from sippy.Exceptions.SipParseError import SipParseError
from sippy.SipURL import _DEFAULT_PORTS, PLAIN_URL, SipURL, plain_url

_TOKEN_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-.!%*_+`'~")
# The usual shape of From/To/Contact: a display name (quoted without escapes, or tokens) or none,
# then a plain URL in brackets (see SipURL.PLAIN_URL), then a `;tag=token` or nothing. Matched in
# one go, it gives the same fields as the general parser; anything else takes the general path.
# Groups: quoted name, token name, URL, tag.
_PLAIN_NAME_ADDR = re.compile(
    r'(?:"([^"\\]*)"[ \t]*|([-A-Za-z0-9.!%*_+`\'~ \t]*))'
    r"<(" + PLAIN_URL + r")>"
    r"(?:;tag=([-A-Za-z0-9.!%*_+`'~]+))?"
)


def plain_name_addr(text: str) -> Optional[re.Match]:
    """The _PLAIN_NAME_ADDR match of all of text (less surrounding blanks), or None: such a text
    is written back exactly as it is by the address it parses into."""
    return _PLAIN_NAME_ADDR.fullmatch(text.strip())


def split_unquoted(s: str, sep: str, angles: bool = False) -> list[str]:
    """Split s on sep outside quoted strings (and outside <...> when angles is set).

    Pieces are returned unstripped so callers can keep the original spacing.
    """
    if sep not in s:
        return [s]
    if '"' not in s and (not angles or "<" not in s):
        return s.split(sep)
    out = []
    start = 0
    inquote = False
    depth = 0
    i = 0
    n = len(s)
    while i < n:
        c = s[i]
        if inquote:
            if c == "\\":
                i += 1
            elif c == '"':
                inquote = False
        elif c == '"':
            inquote = True
        elif angles and c == "<":
            depth += 1
        elif angles and c == ">" and depth > 0:
            depth -= 1
        elif c == sep and depth == 0:
            out.append(s[start:i])
            start = i + 1
        i += 1
    out.append(s[start:])
    return out


def _unescape(q: str) -> str:
    if "\\" not in q:
        return q
    out = []
    i = 0
    while i < len(q):
        if q[i] == "\\" and i + 1 < len(q):
            i += 1
        out.append(q[i])
        i += 1
    return "".join(out)


def _closing_quote(s: str) -> int:
    """Index of the quote that closes the quoted-string opening s (escapes honoured), or -1."""
    i, n = 1, len(s)
    while i < n:
        c = s[i]
        if c == "\\":
            i += 2
        elif c == '"':
            return i
        else:
            i += 1
    return -1


def _is_quoted_string(v: str) -> bool:
    """True when v is exactly one quoted-string: a closing quote only at the very end."""
    return len(v) >= 2 and v[0] == '"' and _closing_quote(v) == len(v) - 1


_SCHEME_RE = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:[^\s<>\"]+")


class OpaqueURL:
    """A URI of a scheme SIP does not define (isbn:, http:, urn:...), which To, From and Contact
    may carry (RFC 4475 3.3.4): kept as text and written back unchanged; it has no SIP parts."""

    username = password = host = port = headers = None
    other: tuple[str, ...] = ()
    userparams: tuple[str, ...] = ()

    def __init__(self, text: str) -> None:
        self.text = text
        self.scheme = text.partition(":")[0].lower()

    def __str__(self) -> str:
        return self.text

    def localStr(self, local_addr: Optional[str] = None, local_port: Optional[int] = None) -> str:
        return self.text

    def getCopy(self) -> OpaqueURL:
        return OpaqueURL(self.text)


def _url(text: str, relaxed: bool) -> Union[SipURL, OpaqueURL]:
    scheme = text.partition(":")[0].lower()
    if scheme not in _DEFAULT_PORTS and _SCHEME_RE.fullmatch(text) is not None:
        return OpaqueURL(text)
    return SipURL(text, relaxedparser=relaxed)


def _is_tokens(name: str) -> bool:
    """True when name is a run of tokens separated by single spaces (no quoting needed)."""
    return all(t and _TOKEN_CHARS.issuperset(t) for t in name.split(" "))


# What a parsed address without raw parameter texts shares (never changed in place).
_NO_RAW: Mapping[str, tuple[Optional[str], str]] = MappingProxyType({})


class SipAddress:
    """Display name, URL and parameters of an address header value."""

    # A call keeps several (its From, To and Contact on each leg): slots, no per-instance dict
    # (`__dict__` is there for what a program sets of its own, made only when it does).
    __slots__ = ("name", "url", "params", "hadbrace", "_name_raw", "_praw", "_plead", "_bare_url", "__dict__")

    def __init__(
        self,
        address: Optional[str] = None,
        name: Optional[str] = None,
        url: Optional[SipURL] = None,
        params: Union[Mapping[str, Optional[str]], Iterable[tuple[str, Optional[str]]], None] = None,
        hadbrace: Optional[bool] = None,
        relaxedparser: bool = False,
    ) -> None:
        self._name_raw: Optional[tuple[str, Optional[str]]] = None
        self._praw: Mapping[str, tuple[Optional[str], str]] = _NO_RAW
        self._plead = ""
        self._bare_url: Optional[str] = None
        if address is not None:
            self._parse(address, relaxedparser)
            return
        self.name = name
        self.url = url
        self.params: dict[str, Optional[str]] = {}
        if params is not None:
            items = params.items() if isinstance(params, Mapping) else params
            for k, v in items:
                self.params[k.lower()] = v
        self.hadbrace = True if hadbrace is None else hadbrace

    def _parse(self, address: str, relaxed: bool) -> None:
        s = address.strip()
        self.params = {}
        self.name = None
        m = _PLAIN_NAME_ADDR.match(s)
        if m is not None:
            self._parse_plain(s, m, address)
            return
        if not s:
            raise SipParseError("empty address")
        if s[0] == '"':
            end = s.find('"', 1)
            if end == -1 or "\\" in s[1:end]:
                # Escapes in the display name: walk it char by char.
                end = _closing_quote(s)
                if end == -1:
                    raise SipParseError(f"unterminated quoted display name: {address!r}")
            self.name = _unescape(s[1:end])
            lt = s.find("<", end + 1)
            if lt == -1 or (lt > end + 1 and s[end + 1 : lt].strip()):
                raise SipParseError(f"quoted display name without <URI>: {address!r}")
            self._name_raw = (s[:lt], self.name)
        else:
            lt = s.find("<")
            if lt > 0:
                raw = s[:lt]
                tname = raw.strip()
                # A comma would make the header read as two (RFC 4475 3.1.2.15).
                if '"' in tname or ">" in tname or "," in tname:
                    raise SipParseError(f"bad display name: {address!r}")
                self.name = tname or None
                self._name_raw = (raw, self.name)
        if lt == -1:
            self.hadbrace = False
            # addr-spec: RFC 3261 20.10 says a URI with ';' must be bracketed, so the first ';'
            # after the host starts the header parameters.
            at = s.find("@")
            semi = s.find(";", at + 1 if at != -1 else 0)
            urltext, rest = (s, "") if semi == -1 else (s[:semi].rstrip(), s[semi:])
            self._bare_url = urltext
            if "," in urltext:
                raise SipParseError(f"unbracketed URI with a comma: {address!r}")
        else:
            self.hadbrace = True
            gt = s.find(">", lt)
            if gt == -1:
                raise SipParseError(f"missing '>' in address: {address!r}")
            urltext, rest = s[lt + 1 : gt], s[gt + 1 :]
        self.url = _url(urltext, relaxed)
        if rest:
            self._parse_params(rest, address)

    def _parse_plain(self, s: str, m: re.Match, address: str) -> None:
        """Fields from a _PLAIN_NAME_ADDR match, exactly as the general path would set them."""
        quoted, tokens, urltext, tag = m.groups()
        lt = m.start(3) - 1
        if quoted is not None:
            self.name = quoted
            self._name_raw = (s[:lt], quoted)
        elif lt > 0:
            self.name = tokens.strip() or None
            self._name_raw = (tokens, self.name)
        self.hadbrace = True
        self.url = plain_url(urltext)
        end = m.end()
        if end < len(s):
            # More parameters (or a tag that is not a plain token): the general way, from ';'.
            self._parse_params(s[m.end(3) + 1 :], address)
        elif tag is not None:
            # No raw text kept: `;tag=` + a token is what localStr writes for it anyway.
            self.params["tag"] = tag

    def _parse_params(self, rest: str, address: str) -> None:
        body = rest.lstrip()
        if body[:1] != ";":
            raise SipParseError(f"junk after URI in address: {address!r}")
        self._plead = rest[: len(rest) - len(body)]
        params = self.params
        praw: dict[str, tuple[Optional[str], str]] = {}
        self._praw = praw
        for raw in split_unquoted(body[1:], ";"):
            k, eq, v = raw.partition("=")
            k = k.strip().lower()
            if not k or not _TOKEN_CHARS.issuperset(k):
                raise SipParseError(f"bad address parameter: {address!r}")
            value: Optional[str] = v.strip() if eq else None
            if value is not None and not value:
                raise SipParseError(f"empty value of address parameter {k!r}: {address!r}")
            if value is not None and '"' in value and not _is_quoted_string(value):
                raise SipParseError(f"badly quoted parameter {k!r}: {address!r}")
            params[k] = value
            praw[k] = (value, raw)

    def __str__(self) -> str:
        return self.localStr()

    def localStr(self, local_addr: Optional[str] = None, local_port: Optional[int] = None) -> str:
        url = self.url.localStr(local_addr, local_port)
        name_raw = self._name_raw
        if name_raw is not None and name_raw[1] == self.name:
            text = f"{name_raw[0]}<{url}>"
        elif self.name:
            if _is_tokens(self.name):
                text = f"{self.name} <{url}>"
            else:
                text = '"' + self.name.replace("\\", "\\\\").replace('"', '\\"') + f'" <{url}>'
        elif self.hadbrace or (url != self._bare_url and any(c in url for c in ";?,")):
            # A changed URL that grew parameters needs brackets or they would read as ours.
            text = f"<{url}>"
        else:
            text = url
        params = self.params
        if not params:
            return text
        parts = [text, self._plead]
        w = parts.append
        praw = self._praw
        for k, v in params.items():
            raw = praw.get(k) if praw else None
            if raw is not None and raw[0] == v:
                w(";" + raw[1])
            elif v is None:
                w(";" + k)
            else:
                w(f";{k}={v}")
        return "".join(parts)

    def getCopy(self) -> SipAddress:
        new = SipAddress.__new__(SipAddress)
        new.name = self.name
        new.url = self.url.getCopy()
        new.params = dict(self.params)
        new.hadbrace = self.hadbrace
        # The raw texts are never changed in place: shared.
        new._name_raw = self._name_raw
        new._praw = self._praw
        new._plead = self._plead
        new._bare_url = self._bare_url
        own = self.__dict__
        if own:
            new.__dict__.update(own)
        else:
            # Reading it made an empty dict: drop that again (a held call keeps several addresses).
            del self.__dict__
        return new

    def getParam(self, name: str) -> Optional[str]:
        return self.params.get(name.lower())

    def setParam(self, name: str, value: Optional[str] = None) -> None:
        self.params[name.lower()] = value

    def delParam(self, name: str) -> None:
        self.params.pop(name.lower(), None)

    def getTag(self) -> Optional[str]:
        return self.params.get("tag")
