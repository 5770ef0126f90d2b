"""One header field of a SIP message, and the registry of header classes.

A header read off the wire keeps its raw line; the body object is made and parsed only when someone
asks for it (`getBody()`), and until then the header serialises exactly as it arrived.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any, Optional

from sippy.Exceptions.SipParseError import SipParseError
from sippy.SipGenericHF import SipGenericHF

# Canonical (lower-case, full) header name -> module (and class) name under `sippy`.
_hf_modules: dict[str, str] = {
    "via": "SipVia",
    "call-id": "SipCallId",
    "cseq": "SipCSeq",
    "max-forwards": "SipMaxForwards",
    "content-length": "SipContentLength",
    "content-type": "SipContentType",
    "expires": "SipExpires",
    "supported": "SipSupported",
    "allow": "SipAllow",
    "reason": "SipReason",
    "rseq": "SipRSeq",
    "rack": "SipRAck",
    "cisco-guid": "SipCiscoGUID",
    "h323-conf-id": "SipCiscoGUID",
    "warning": "SipWarning",
    "user-agent": "SipUserAgent",
    "server": "SipServer",
    "from": "SipFrom",
    "to": "SipTo",
    "contact": "SipContact",
    "route": "SipRoute",
    "record-route": "SipRecordRoute",
    "diversion": "SipDiversion",
    "p-asserted-identity": "SipPAssertedIdentity",
    "refer-to": "SipReferTo",
    "referred-by": "SipReferredBy",
    "replaces": "SipReplaces",
    "authorization": "SipAuthorization",
    "proxy-authorization": "SipProxyAuthorization",
    "www-authenticate": "SipWWWAuthenticate",
    "proxy-authenticate": "SipProxyAuthenticate",
}

# Compact forms (RFC 3261 7.3.3 and the IANA registry) -> canonical names.
_compact_names: dict[str, str] = {
    "v": "via",
    "f": "from",
    "t": "to",
    "m": "contact",
    "i": "call-id",
    "l": "content-length",
    "c": "content-type",
    "k": "supported",
    "s": "subject",
    "e": "content-encoding",
    "r": "refer-to",
    "b": "referred-by",
    "o": "event",
    "u": "allow-events",
    "x": "session-expires",
    "a": "accept-contact",
    "j": "reject-contact",
    "d": "request-disposition",
    "y": "identity",
    "n": "identity-info",
}

_hf_classes: dict[str, type] = {}
# The registered classes whose constructor only keeps the text it is given (see keeps_text).
_text_keepers: set[type] = set()
# The registered classes that write their can_name whatever the name they came with (they do not
# override getCanName): a header of one is written without the call.
_fixed_names: set[type] = set()

_TOKEN_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-.!%*_+`'~")

# Header names exactly as spelled on the wire -> canonical name, so that parsing a header name is
# one dict lookup. Only valid tokens go in, and the size is capped so junk names cannot grow it.
_wire_names: dict[str, str] = {}
_WIRE_NAMES_MAX = 4096


# The methods of RFC 3261 and its extensions: tokens, known without a look at each character
# (`method in SIP_METHODS or is_token(method)` on the hot paths: Request-Line, CSeq).
SIP_METHODS = frozenset(
    ("INVITE", "ACK", "BYE", "CANCEL", "OPTIONS", "REGISTER", "PRACK", "SUBSCRIBE", "NOTIFY")
    + ("PUBLISH", "INFO", "REFER", "MESSAGE", "UPDATE")
)


def is_token(s: str) -> bool:
    """RFC 3261 token: method names, header names, transport names."""
    return bool(s) and _TOKEN_CHARS.issuperset(s)


def canonical_name(name: str) -> str:
    """Lower-case full name for any spelling or compact form of a header name."""
    cname = _wire_names.get(name)
    if cname is None:
        lname = name.lower()
        cname = _compact_names.get(lname, lname)
        if len(_wire_names) < _WIRE_NAMES_MAX and is_token(name):
            _wire_names[name] = cname
    return cname


def wire_name(rawname: str) -> Optional[str]:
    """Canonical name of a header name as read off the wire, or None when it is not a token."""
    cname = _wire_names.get(rawname)
    if cname is None and is_token(rawname):
        cname = canonical_name(rawname)
    return cname


def hf_class(name: str) -> type:
    """The header class for a canonical name (SipGenericHF when none is registered).

    Modules are imported on first use so that parsing a message loads only what it touches.
    """
    cls = _hf_classes.get(name)
    if cls is None:
        modname = _hf_modules.get(name)
        cls = SipGenericHF if modname is None else getattr(import_module("sippy." + modname), modname)
        _hf_classes[name] = cls
        if getattr(cls.__init__, "keeps_text", False):
            _text_keepers.add(cls)
        if cls.can_name is not None and cls.getCanName is SipGenericHF.getCanName:
            _fixed_names.add(cls)
    return cls


# Exceptions a header parser may raise on malformed text; they are turned into SipParseError.
_PARSE_FAILURES = (ValueError, IndexError, KeyError, TypeError, AttributeError, UnicodeError)


class SipHeader:
    """A header field: canonical `name`, the spelling it came with, raw text and a lazy body."""

    __slots__ = ("name", "rawname", "raw", "value", "_body")

    def __init__(
        self,
        s: Optional[str] = None,
        name: Optional[str] = None,
        body: Any = None,
        bodys: Optional[str] = None,
        fixname: bool = False,
    ) -> None:
        """`s` is a whole "Name: value" line; otherwise `name` with a body object or a body string.

        `bodys` (a body string) and `fixname` are accepted for compatibility with Sippy code; the
        name is always canonical here, so `fixname` changes nothing.
        """
        if isinstance(body, str):
            body, bodys = None, body
        if s is not None:
            rawname, sep, value = s.partition(":")
            rawname = rawname.strip()
            if not sep or not rawname:
                raise SipParseError("Malformed header line")
            self.raw: Optional[str] = s
            self.value: Optional[str] = value.strip()
        else:
            if name is None:
                if body is None:
                    raise TypeError("SipHeader needs a line, a name or a body")
                name = body.getCanName(body.hf_names[0])
            rawname = name
            self.raw = None
            self.value = bodys
        self.rawname: str = rawname
        self.name: str = canonical_name(rawname)
        if body is None and s is None and bodys is None:
            body = hf_class(self.name)()
        self._body: Optional[SipGenericHF] = body

    @property
    def body(self) -> SipGenericHF:
        """The body object, made on demand but not parsed (see getBody)."""
        b = self._body
        if b is None:
            b = self._body = hf_class(self.name)(self.getValue())
        return b

    @body.setter
    def body(self, b: SipGenericHF) -> None:
        self._body = b

    def getValue(self) -> Optional[str]:
        """The value text as received (or as given); None for a header built from an object."""
        value = self.value
        if value is None and self.raw is not None:
            value = self.value = self.raw.partition(":")[2].strip()
        return value

    def getBody(self) -> Any:
        """The parsed body object; a malformed value raises SipParseError (and stays unparsed)."""
        b = self._body
        if b is None:
            # What the body property makes, inlined: every header read off the wire comes here.
            cls = _hf_classes.get(self.name) or hf_class(self.name)
            value = self.value
            if value is None:
                value = self.value = self.raw.partition(":")[2].strip()
            if cls in _text_keepers:
                # cls(value) without its constructor chain (see keeps_text).
                b = cls.__new__(cls)
                b.body = value
                b.parsed = False
            else:
                b = cls(value)
            self._body = b
        if not b.parsed:
            try:
                b.parse()
            except SipParseError:
                raise
            except _PARSE_FAILURES as ex:
                raise SipParseError(f"Malformed {self.rawname} header") from ex
        return b

    def getBCopy(self) -> Any:
        return self.body.getCopy()

    def getCopy(self) -> SipHeader:
        cself = SipHeader.__new__(SipHeader)
        cself.name = self.name
        cself.rawname = self.rawname
        cself.raw = self.raw
        cself.value = self.value
        b = self._body
        cself._body = None if b is None else b.getCopy()
        return cself

    def isPristine(self) -> bool:
        """True while the header is as it arrived, so its raw line is what goes out."""
        b = self._body
        return self.raw is not None and (b is None or not b.parsed)

    def __str__(self) -> str:
        return self.localStr()

    def localStr(
        self, local_addr: Optional[str] = None, local_port: Optional[int] = None, compact: bool = False
    ) -> str:
        b = self._body
        if b is None:
            raw = self.raw
            if raw is not None and not compact:
                return raw
            b = self.body
        elif not b.parsed and not compact and self.raw is not None:
            return self.raw
        if not compact and b.__class__ in _fixed_names:
            return b.can_name + ": " + b.localStr(local_addr, local_port)
        return b.getCanName(self.rawname, compact) + ": " + b.localStr(local_addr, local_port)

    def __repr__(self) -> str:
        return f"SipHeader({str(self)!r})"


class _WireHeader(SipHeader):
    """A header the message parser makes (SipMsg._parseHeaders sets its fields): without
    SipHeader's constructor, calling the class is the cheapest way CPython makes an object of
    it, and the parser makes one for every header line of every datagram."""

    __slots__ = ()
    __init__ = object.__init__  # type: ignore[assignment]
