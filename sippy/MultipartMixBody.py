"""multipart/mixed bodies (RFC 2046 5.1.3), e.g. SDP beside ISUP, or RFC 8147 eCall data.

Parts are `MsgBody`s, so an SDP part parses into SdpBody like a whole-message SDP does. A body
nobody changes serialises as it came: preamble, part headers in their order, and epilogue are kept.
Like Sippy 2.x, a part's content runs up to the next delimiter line and so ends with the CRLF
that precedes it.
"""

from __future__ import annotations

import re
from secrets import token_hex
from typing import TYPE_CHECKING, Any, Optional, Union

from sippy.Exceptions.SipParseError import SdpParseError, SipParseError
from sippy.SipContentType import SipContentType
from sippy.SipHeader import SipHeader

if TYPE_CHECKING:
    from sippy.MsgBody import MsgBody

_HEADERS_END = re.compile(r"\r?\n\r?\n")


def content_type(ctype: Union[SipContentType, str]) -> SipContentType:
    """A parsed SipContentType of a header object or text; SipParseError if malformed."""
    if isinstance(ctype, str):
        ctype = SipContentType(ctype)
    if not ctype.parsed:
        ctype.parse()
    return ctype


class MultipartMixBody:
    """`parts` (MsgBody each) and `part_headers` (the other headers of each part, SipHeader
    objects without its Content-Type). Malformed input raises SdpParseError (answered 488)."""

    def __init__(self, body: Optional[str] = None, ctype: Union[SipContentType, str, None] = None) -> None:
        self.parts: list[MsgBody] = []
        self.part_headers: list[list[SipHeader]] = []
        # where each part's Content-Type sat among its headers, to write them back in order
        self._ct_index: list[int] = []
        self.preamble = ""
        self.epilogue = "\r\n"
        self.mtype = SipContentType("multipart/mixed")
        self.mtype.parse()
        if body is None:
            self.setBoundary(token_hex(16))
            return
        try:
            boundary = content_type(ctype if ctype is not None else "").params.get("boundary")
        except SipParseError as ex:
            raise SdpParseError(f"multipart body with a malformed Content-Type: {ex.reason}") from None
        if not boundary:
            raise SdpParseError("multipart body without a boundary parameter")
        self.setBoundary(boundary.strip('"'))
        self._parse(body)

    def _parse(self, body: str) -> None:
        from sippy.MsgBody import MsgBody

        delimiter = re.compile(r"(?:^|(?<=\n))--" + re.escape(self.boundary))
        pieces = delimiter.split(body)
        if len(pieces) < 3 or not pieces[-1].startswith("--"):
            raise SdpParseError("multipart body without its parts or closing delimiter")
        self.preamble = pieces[0]
        self.epilogue = pieces[-1][2:]
        for piece in pieces[1:-1]:
            _padding, nl, piece = piece.partition("\n")
            if not nl:
                raise SdpParseError("multipart delimiter not followed by a line end")
            headers_end = _HEADERS_END.search("\r\n" + piece)
            if headers_end is None:
                raise SdpParseError("multipart part without the empty line after its headers")
            head, content = piece[: max(0, headers_end.start() - 2)], piece[headers_end.end() - 2 :]
            headers: list[SipHeader] = []
            ctype: Any = "text/plain"  # RFC 2046 5.1: a part without Content-Type
            ct_index = 0
            for line in head.splitlines() if head else ():
                try:
                    h = SipHeader(line)
                except SipParseError as ex:
                    raise SdpParseError(f"malformed multipart part header: {ex.reason}") from None
                if h.name == "content-type":
                    ct_index = len(headers)
                    ctype = h.getBody()
                else:
                    headers.append(h)
            self.parts.append(MsgBody(content, mtype=ctype))
            self.part_headers.append(headers)
            self._ct_index.append(ct_index)

    def setBoundary(self, bnd: str) -> None:
        self.boundary = bnd
        mtype = self.mtype.getCopy()
        mtype.params["boundary"] = bnd
        self.mtype = mtype

    def getContentType(self) -> SipContentType:
        """The Content-Type (with boundary) for the message that carries this body."""
        return self.mtype.getCopy()

    def _text(self, part_text: Any) -> str:
        out = [self.preamble]
        for i, part in enumerate(self.parts):
            headers = [str(h) for h in self.part_headers[i]] if i < len(self.part_headers) else []
            ct_index = self._ct_index[i] if i < len(self._ct_index) else 0
            headers.insert(ct_index, f"Content-Type: {part.mtype}")
            text = part_text(part)
            if text and not text.endswith("\n"):
                text += "\r\n"
            out.append(f"--{self.boundary}\r\n" + "\r\n".join(headers) + "\r\n\r\n" + text)
        out.append(f"--{self.boundary}--{self.epilogue}")
        return "".join(out)

    def __str__(self) -> str:
        return self._text(str)

    def localStr(self, local_addr: Optional[str] = None, local_port: Optional[int] = None) -> str:
        return self._text(lambda part: part.localStr(local_addr, local_port))

    def getCopy(self) -> MultipartMixBody:
        cself = MultipartMixBody.__new__(MultipartMixBody)
        cself.parts = [p.getCopy() for p in self.parts]
        cself.part_headers = [[h.getCopy() for h in hs] for hs in self.part_headers]
        cself._ct_index = list(self._ct_index)
        cself.preamble, cself.epilogue = self.preamble, self.epilogue
        cself.boundary, cself.mtype = self.boundary, self.mtype.getCopy()
        return cself
