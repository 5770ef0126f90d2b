"""RFC 3261 8.2 inspection of a new request before a transaction is made for it (and of a
response before its client transaction takes it).

Everything the transaction layer, the UAs and the call map read of a request (From, To, Call-ID,
CSeq, Max-Forwards, Expires, the Request-URI, and per method what the UA acts on) is parsed here
once, so that a malformed one is refused with a stateless answer that names what is wrong,
instead of failing later inside a transaction that can then never be answered, or halfway
through setting up a call. The reason phrases are fixed texts: nothing of the
request goes into them.
"""

from __future__ import annotations

from typing import Any, NamedTuple, Optional

from sippy.Exceptions.SipParseError import SipParseError
from sippy.SipHeader import hf_class
from sippy.SipURL import _DEFAULT_PORTS

# (canonical name, name in reason phrases) of the headers every request must carry once.
_MANDATORY = (("from", "From"), ("to", "To"), ("call-id", "Call-ID"), ("cseq", "CSeq"))
_SINGLETONS = {name: can for name, can in _MANDATORY}
_SINGLETONS["max-forwards"] = "Max-Forwards"
# RFC 3986 scheme characters (after a leading letter).
_SCHEME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789+-.")
# What the UA reads of a response besides the mandatory headers.
_DIALOG_READ = ("to", "contact", "record-route")
_RESPONSE_READ = {
    401: (*_DIALOG_READ, "www-authenticate"),
    407: (*_DIALOG_READ, "proxy-authenticate"),
}
# What a UA reads of a request of a method, besides what every request must have: it must
# parse before the UA acts on the request (a failure halfway would leave a call half set up).
_READ_BY_METHOD = {
    "INVITE": ("contact", "record-route", "authorization"),
    "REFER": ("refer-to",),
}
# Requests to which Require does not apply (RFC 3261 8.2.2.3).
_NO_REQUIRE = frozenset(("ACK", "CANCEL"))


class Refusal(NamedTuple):
    """Why a request is refused and how: the status, the bad_counts kind and the log detail."""

    scode: int
    reason: str
    kind: str
    detail: str
    unsupported: tuple[str, ...] = ()


def _bad_header(can: str, ex: SipParseError) -> Refusal:
    return Refusal(400, f"Bad {can} Header", "bad_header", ex.reason)


def check_request(req: Any, names: list[str], supported: frozenset[str]) -> Optional[Refusal]:
    """None for a request fit to process, else the answer it gets. `names` are the canonical
    names of its headers in order (the caller has them already)."""
    present = set(names)
    for name, can in _MANDATORY:
        if name not in present:
            return Refusal(400, f"Missing {can} Header", "missing_header", f"no {can}")
    if len(present) != len(names):
        for name, can in _SINGLETONS.items():
            if names.count(name) > 1:
                return Refusal(400, f"Multiple {can} Headers", "duplicate_header", f"{can} given twice")
    for name, can in _MANDATORY:
        try:
            req.getHFBody(name)
        except SipParseError as ex:
            return _bad_header(can, ex)
    method = req.getMethod()
    cseq_method = req.getHFBody("cseq").getCSeqMethod()
    if cseq_method != method:
        return Refusal(400, "CSeq Method Mismatch", "cseq_mismatch", f"{method} with CSeq {cseq_method}")
    mf = None
    if "max-forwards" in present:
        try:
            mf = req.getHFBody("max-forwards").getNum()
        except SipParseError as ex:
            return _bad_header("Max-Forwards", ex)
        if mf > 255:
            return Refusal(400, "Bad Max-Forwards Header", "bad_header", f"Max-Forwards {mf}")
    if "expires" in present:
        # Read by the transaction layer (an INVITE's timer) and the UAs.
        try:
            req.getHFBody("expires").getNum()
        except SipParseError as ex:
            return _bad_header("Expires", ex)
    bad = _check_ruri(req)
    if bad is not None:
        return bad
    for name in _READ_BY_METHOD.get(method, ()):
        if name in present:
            try:
                req.getHFBodys(name)
            except SipParseError as ex:
                return _bad_header(hf_class(name).can_name or name, ex)
    if mf == 0:
        return Refusal(483, "Too Many Hops", "too_many_hops", "Max-Forwards 0")
    if "require" in present and method not in _NO_REQUIRE:
        unknown = tuple(
            tag
            for h in req.getHFs("require")
            for tag in (t.strip() for t in (h.getValue() or "").split(","))
            if tag and tag not in supported
        )
        if unknown:
            return Refusal(420, "Bad Extension", "bad_extension", "Require: " + ", ".join(unknown), unknown)
    return None


def _check_ruri(req: Any) -> Optional[Refusal]:
    text = req._ruri_text
    if text is None:
        # A request built here, not read off the wire.
        return None
    scheme, colon, _ = text.partition(":")
    scheme = scheme.lower()
    if not colon or not scheme[:1].isalpha() or not _SCHEME_CHARS.issuperset(scheme):
        return Refusal(400, "Bad Request-URI", "bad_ruri", "not a URI")
    if scheme not in _DEFAULT_PORTS:
        return Refusal(416, "Unsupported URI Scheme", "bad_scheme", f"scheme {scheme[:16]}")
    try:
        # RFC 4475 3.1.2.11: headers belong in a URI to be dialled, never in a Request-URI.
        ruri = req.getRURI()
        if "?" in text and ruri.headers:
            return Refusal(400, "Bad Request-URI", "bad_ruri", "headers in Request-URI")
    except SipParseError as ex:
        return Refusal(400, "Bad Request-URI", "bad_ruri", ex.reason)
    return None


def check_response(resp: Any, scode: int) -> Optional[str]:
    """None for a response its client transaction may take, else why it is dropped: From, To,
    Call-ID and CSeq once each, and what the UA reads of it parsing: the To (its tag), and what a
    dialog, a redirection or a retry is built from (Contact, Record-Route, a 401/407's challenge).
    The CSeq parsed already (it found the transaction)."""
    names = [h.name for h in resp.headers]
    for name, can in _MANDATORY:
        n = names.count(name)
        if n != 1:
            return f"{n} {can} headers"
    for name in _RESPONSE_READ.get(scode, _DIALOG_READ):
        if name in names:
            try:
                resp.getHFBodys(name)
            except SipParseError as ex:
                return f"bad {name}: {ex.reason}"
    return None
