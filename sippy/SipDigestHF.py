"""What digest credentials and challenges share: lazy parsing of `Digest k=v,...` and exact
re-serialisation while nothing was changed."""

from __future__ import annotations

from typing import Any, Optional

from sippy.Exceptions.SipParseError import SipParseError
from sippy.SipGenericHF import SipGenericHF


def parse_auth_params(body: str) -> tuple[str, list[tuple[str, str, bool]]]:
    """Split `Scheme name=value, name="quoted, value"` into the scheme and (name, value, quoted).

    Quoted values are returned with their escapes removed.
    """
    scheme, _, rest = body.strip().partition(" ")
    if not scheme or not rest.strip():
        raise SipParseError(f"bad credentials/challenge: {body!r}")
    params = []
    i, n = 0, len(rest)
    while i < n:
        while i < n and rest[i] in " \t,":
            i += 1
        if i >= n:
            break
        eq = rest.find("=", i)
        if eq == -1:
            raise SipParseError(f"auth parameter without a value: {body!r}")
        name = rest[i:eq].strip()
        if not name or any(c in name for c in ' \t,"'):
            raise SipParseError(f"bad auth parameter name: {body!r}")
        i = eq + 1
        while i < n and rest[i] in " \t":
            i += 1
        if i < n and rest[i] == '"':
            i += 1
            out = []
            while i < n and rest[i] != '"':
                if rest[i] == "\\" and i + 1 < n:
                    i += 1
                out.append(rest[i])
                i += 1
            if i >= n:
                raise SipParseError(f"unterminated quoted auth parameter: {body!r}")
            i += 1
            params.append((name, "".join(out), True))
        else:
            end = rest.find(",", i)
            end = n if end == -1 else end
            value = rest[i:end].strip()
            if not value or any(c in value for c in ' \t"'):
                raise SipParseError(f"bad auth parameter value: {body!r}")
            params.append((name, value, False))
            i = end
        while i < n and rest[i] in " \t":
            i += 1
        if i < n and rest[i] != ",":
            raise SipParseError(f"junk after auth parameter: {body!r}")
    if not params:
        raise SipParseError(f"no auth parameters: {body!r}")
    return scheme, params


def quote_param(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


class SipDigestHF(SipGenericHF):
    """Base of SipAuthorization and SipWWWAuthenticate.

    Subclasses give `_init_fields()` (empty fields), `_state()` (a tuple of every field, compared
    with the state right after parsing to tell whether the header was changed), `_take(lname,
    value)` (store a known parameter; False for an unknown one), `_check()` (raise for a missing
    mandatory field) and `_build()` (the text of a changed header).
    """

    def _init_fields(self) -> None:
        raise NotImplementedError

    def _state(self) -> tuple:
        raise NotImplementedError

    def _take(self, lname: str, value: str) -> bool:
        raise NotImplementedError

    def _check(self) -> None:
        raise NotImplementedError

    def _build(self) -> str:
        raise NotImplementedError

    def __getattr__(self, name: str) -> Any:
        # Only reached for fields of a header still in raw form: parse it, then answer.
        if name.startswith("__") or name == "parsed" or getattr(self, "parsed", True):
            raise AttributeError(name)
        self.parse()
        return getattr(self, name)

    def parse(self) -> None:
        self._init_fields()
        scheme = self.body.strip().partition(" ")[0]
        if scheme.lower() != "digest":
            # Another scheme (RFC 4475 3.3.7): kept as opaque text with no digest fields, so a
            # consumer sees no usable credentials and the header goes on unchanged.
            if not scheme:
                raise SipParseError("empty credentials/challenge")
            self.scheme = scheme
            self.parsed = True
            self._snap = self._state()
            return
        self.scheme, params = parse_auth_params(self.body)
        for name, value, quoted in params:
            if not self._take(name.lower(), value):
                self.otherparams.append((name, quote_param(value) if quoted else value))
        self._check()
        self.parsed = True
        self._snap = self._state()

    def _ensure(self) -> None:
        if not self.parsed:
            self.parse()

    def __str__(self) -> str:
        return self.localStr()

    def localStr(self, local_addr: Optional[str] = None, local_port: Optional[int] = None) -> str:
        if self.body is not None and (not self.parsed or self._state() == self._snap):
            return self.body
        return self._build() + "".join(f",{k}={v}" for k, v in self.otherparams)

    def getCopy(self) -> SipDigestHF:
        new = super().getCopy()
        if self.parsed:
            new.otherparams = list(self.otherparams)
        return new
