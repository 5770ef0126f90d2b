"""Base of SipRequest and SipResponse: one datagram split into start line, headers and body.

Parsing does the least it can: headers are split into name and raw value and nothing more; a
header's class is loaded and its value parsed only when someone asks for it. Content-Length and
Content-Type are consumed by the parser (they describe the body) and written back from the body
on serialisation, so the length is always right.
"""

from __future__ import annotations

from typing import Any, Optional

from sippy.Exceptions.SipParseError import SipParseError
from sippy.MsgBody import MsgBody
from sippy.SipHeader import SipHeader, _wire_names, _WireHeader, canonical_name, hf_class, wire_name

# Headers that describe the body: the parser consumes them, serialisation writes them afresh.
_BODY_HEADERS = frozenset(("content-length", "content-type"))


def _unfold(lines: list[str]) -> list[str]:
    """Join continuation lines (starting with SP or HT) to the header line they continue."""
    out = [lines[0]]
    for line in lines[1:]:
        if line[:1] in (" ", "\t") and len(out) > 1:
            stripped = line.strip()
            if stripped:
                out[-1] = out[-1].rstrip() + " " + stripped
        elif line:
            out.append(line)
    return out


def _bad_header(h: SipHeader) -> str:
    """The reason phrase for a header that does not parse: its name, nothing of its value."""
    return f"Bad {hf_class(h.name).can_name or h.rawname} Header"


def body_len(s: str) -> int:
    """Length in bytes of a body string as it goes on the wire."""
    return len(s) if s.isascii() else len(s.encode("utf-8", "surrogateescape"))


class SipMsg:
    """Common message model; subclasses parse and produce the start line (`setSL`, `getSL`)."""

    # What most messages keep as it is: class-level (immutable) defaults instead of a store in
    # every message parsed.
    body: Any = None
    target: Optional[tuple[str, int]] = None
    source: Optional[tuple[str, int]] = None
    nated = False
    rtime: Any = None
    _answering = False
    # Content-Type and Content-Length values as received, and why the headers do not parse.
    _ctype: Optional[str] = None
    _clen: Optional[str] = None
    _bad: Optional[str] = None
    # Names whose raw lines carry a comma and may hold several values (split on first access);
    # a set of its own once there is one.
    _unsplit: frozenset[str] | set[str] = frozenset()

    def __init__(self, buf: Optional[bytes | str] = None) -> None:
        self.headers: list[SipHeader] = []
        if buf is not None:
            self._parse(buf)

    # Parsing

    def _parse(self, buf: bytes | str) -> None:
        if buf.__class__ is not bytes:
            buf = buf.encode("utf-8", "surrogateescape") if isinstance(buf, str) else bytes(buf)
        # The first line ending tells CRLF from bare-LF messages: one search for the blank line.
        eol = buf.find(b"\n")
        hend = -1
        if eol > 0 and buf[eol - 1] == 13:
            hend = buf.find(b"\r\n\r\n")
            bstart = hend + 4
        if hend == -1:
            hend = buf.find(b"\n\n")
            bstart = hend + 2
            if hend == -1:
                hend = bstart = len(buf)
        head = buf[:hend].decode("utf-8", "replace")
        lines = head.split("\r\n")
        if "\n" in lines[0]:
            # Bare LF line endings (alone or mixed with CRLF).
            lines = head.replace("\r\n", "\n").split("\n")
        self.setSL(lines[0])
        if not self._parseHeaders(lines):
            # A bare LF after the start line, or a continuation line (folding, RFC 3261 7.3.1):
            # split again on any line ending, unfold and start over.
            self.headers.clear()
            self.__dict__.pop("_unsplit", None)
            lines = head.replace("\r\n", "\n").split("\n")
            if not self._parseHeaders(_unfold(lines)):
                raise SipParseError("Continuation Line Without Header")
        if self._bad is not None:
            raise SipParseError(self._bad)
        self._checkSL()
        clen = self._clen
        if clen is None:
            body = buf[bstart:]
        else:
            if not (clen.isascii() and clen.isdigit()):
                raise SipParseError("Bad Content-Length")
            blen = int(clen)
            if bstart + blen > len(buf):
                raise SipParseError("Body Shorter Than Content-Length")
            body = buf[bstart : bstart + blen]
        if body:
            # Binary parts (RFC 4475 3.1.1.11) survive the round trip: see body_len and _encode.
            content = body.decode("utf-8", "surrogateescape")
            ctype = self._ctype
            self.body = MsgBody(content) if ctype is None else MsgBody(content, ctype)

    def _parseHeaders(self, lines: list[str]) -> bool:
        """Split header lines into SipHeader objects; False when a line holds a bare LF (split
        on CRLF only) or a folded line needs unfolding.

        Malformed lines are skipped and remembered in `_bad`, so that the headers after them are
        still there to answer with a 400.
        """
        headers = self.headers
        unsplit = None
        names = _wire_names
        new = _WireHeader
        ctype = clen = bad = None
        for line in lines[1:]:
            if "\n" in line:
                return False
            # One call (partition) is quicker than find and a slice.
            rawname, colon, value = line.partition(":")
            if not rawname or not colon:
                if line[:1] in (" ", "\t"):
                    return False
                if line:
                    bad = "Header Line Without Colon" if not colon else "Header Line Without Name"
                continue
            name = names.get(rawname)
            if name is None:
                if rawname[0] in (" ", "\t"):
                    return False
                rawname = rawname.rstrip()
                name = wire_name(rawname)
                if name is None:
                    bad = "Bad Header Name"
                    continue
            if name in _BODY_HEADERS:
                value = value.strip()
                if name == "content-length":
                    if clen is not None and value != clen:
                        bad = "Conflicting Content-Length Headers"
                    clen = value
                else:
                    if ctype is not None and value != ctype:
                        bad = "Conflicting Content-Type Headers"
                    ctype = value
                continue
            # Inlined SipHeader construction: this loop is the hot path of every datagram.
            h = new()
            h.name = name
            h.rawname = rawname
            h.raw = line
            h.value = None
            h._body = None
            headers.append(h)
            if "," in line:
                if unsplit is None:
                    unsplit = self._unsplit = set()
                unsplit.add(name)
        if ctype is not None:
            self._ctype = ctype
        if clen is not None:
            self._clen = clen
        if bad is not None:
            self._bad = bad
        return True

    def _checkSL(self) -> None:
        """Hook for errors in the start line that are reported once the headers are known."""

    def setSL(self, startline: str) -> None:
        raise NotImplementedError

    def getSL(self) -> str:
        raise NotImplementedError

    # Errors

    def _errorResponse(self, reason: str) -> Any:
        """The answer to send for a parse error (requests only; None for a response)."""
        return None

    def _attach(self, e: SipParseError, phrase: Optional[str] = None) -> None:
        """Give e the answer to send (`phrase` as its reason, else e.reason). Not while an
        answer is being built: its own failures must not recurse."""
        if e.sip_response is None and not self._answering:
            e.sip_response = self._errorResponse(phrase or e.reason)

    # Header access

    def _split(self, name: str) -> None:
        """Give each value of a comma-joined multi-value line (Via, Contact...) its own header."""
        self._unsplit.discard(name)
        if not hf_class(name).isMulti:
            return
        from sippy.SipAddressHF import split_top_level

        out = []
        for h in self.headers:
            if h.name == name and h.isPristine():
                parts = split_top_level(h.getValue())
                if len(parts) > 1:
                    out.extend(SipHeader(h.rawname + ": " + p) for p in parts)
                    continue
            out.append(h)
        self.headers[:] = out

    def getHFs(self, name: str) -> list[SipHeader]:
        name = canonical_name(name)
        if name in self._unsplit:
            self._split(name)
        return [h for h in self.headers if h.name == name]

    def countHFs(self, name: str) -> int:
        return len(self.getHFs(name))

    def delHFs(self, name: str) -> None:
        name = canonical_name(name)
        if name in self._unsplit:
            self._unsplit.discard(name)
        self.headers = [h for h in self.headers if h.name != name]

    def getHF(self, name: str, idx: int = 0) -> SipHeader:
        """The idx-th header of that name; a missing one is a parse error (400 for a request)."""
        cname = _wire_names.get(name)
        if cname is None:
            cname = canonical_name(name)
        if cname in self._unsplit:
            self._split(cname)
        for h in self.headers:
            if h.name == cname:
                if idx == 0:
                    return h
                idx -= 1
        e = SipParseError(f"Missing {hf_class(cname).can_name or cname} Header")
        self._attach(e)
        raise e

    def getHFBody(self, name: str, idx: int = 0) -> Any:
        h = self.getHF(name, idx)
        b = h._body
        if b is not None and b.parsed:
            # Read again and again by the transaction layer and the UA: answer without a call.
            return b
        try:
            return h.getBody()
        except SipParseError as e:
            self._attach(e, _bad_header(h))
            raise

    def getHFBodys(self, name: str) -> list[Any]:
        out = []
        for h in self.getHFs(name):
            try:
                out.append(h.getBody())
            except SipParseError as e:
                self._attach(e, _bad_header(h))
                raise
        return out

    def getHFBCopy(self, name: str, idx: int = 0) -> Any:
        return self.getHF(name, idx).getBCopy()

    def getHFBCopys(self, name: str) -> list[Any]:
        return [h.getBCopy() for h in self.getHFs(name)]

    def replaceHeader(self, oheader: SipHeader, nheader: SipHeader) -> None:
        self.headers[self.headers.index(oheader)] = nheader

    def removeHeader(self, header: SipHeader) -> None:
        self.headers.remove(header)

    def appendHeader(self, header: SipHeader) -> None:
        self.headers.append(header)

    def appendHeaders(self, headers: list[SipHeader]) -> None:
        self.headers.extend(headers)

    def insertHeaderAfter(self, iheader: SipHeader, header: SipHeader) -> None:
        self.headers.insert(self.headers.index(iheader) + 1, header)

    def insertHeaderBefore(self, iheader: SipHeader, header: SipHeader) -> None:
        self.headers.insert(self.headers.index(iheader), header)

    # Body, addresses

    def getBody(self) -> Any:
        return self.body

    def setBody(self, body: Any) -> None:
        self.body = body

    def getTarget(self) -> Optional[tuple[str, int]]:
        return self.target

    def setTarget(self, address: Optional[tuple[str, int]]) -> None:
        self.target = address

    def getSource(self) -> Optional[tuple[str, int]]:
        return self.source

    def setSource(self, address: Optional[tuple[str, int]]) -> None:
        self.source = address

    # Transaction ids

    def getTId(self, wCSM: bool = False, wBRN: bool = False, wTTG: bool = False) -> tuple:
        """(Call-ID, From tag, CSeq number[, CSeq method][, top Via branch][, To tag])."""
        cseq, method = self.getHFBody("cseq").getCSeq()
        rval: list[Any] = [str(self.getHFBody("call-id")), self.getHFBody("from").getTag(), cseq]
        if wCSM:
            rval.append(method)
        if wBRN:
            rval.append(self.getHFBody("via").getBranch())
        if wTTG:
            rval.append(self.getHFBody("to").getTag())
        return tuple(rval)

    # Serialisation

    def localStr(
        self, local_addr: Optional[str] = None, local_port: Optional[int] = None, compact: bool = False
    ) -> str:
        """The message as text, placeholders (host None) filled with the sending address."""
        parts = [self.getSL()]
        append = parts.append
        for h in self.headers:
            # SipHeader.localStr's first case inlined: most headers go out as they came in.
            raw = h.raw
            if raw is not None and not compact:
                b = h._body
                if b is None or not b.parsed:
                    append(raw)
                    continue
            append(h.localStr(local_addr, local_port, compact))
        self._appendBody(parts, self.body, compact, local_addr, local_port)
        return "\r\n".join(parts)

    def __str__(self) -> str:
        return self.localStr()

    @staticmethod
    def _appendBody(
        parts: list[str], body: Any, compact: bool, laddr: Optional[str], lport: Optional[int]
    ) -> None:
        if body is None:
            parts.append("l: 0" if compact else "Content-Length: 0")
            parts.append("")
            parts.append("")
            return
        mbody = str(body) if laddr is None and lport is None else body.localStr(laddr, lport)
        blen = body_len(mbody)
        if compact:
            parts.extend((f"c: {body.mtype}", f"l: {blen}", "", mbody))
        else:
            parts.extend((f"Content-Type: {body.mtype}", f"Content-Length: {blen}", "", mbody))

    def getCopy(self) -> SipMsg:
        """A deep enough copy: headers and body may be changed without touching the original."""
        cls = self.__class__
        cself = cls.__new__(cls)
        cself.__dict__.update(self.__dict__)
        cself.headers = [h.getCopy() for h in self.headers]
        if self._unsplit:
            cself._unsplit = set(self._unsplit)
        if self.body is not None:
            cself.body = self.body.getCopy()
        return cself
