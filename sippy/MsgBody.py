"""A SIP message body. The text is kept as received and parsed only when someone asks for its
content, so proxied bodies that nobody edits cost nothing and go out byte for byte."""

from __future__ import annotations

from typing import Any, Callable, Optional, Union

from sippy.MultipartMixBody import MultipartMixBody
from sippy.SdpBody import SdpBody
from sippy.SipContentType import SipContentType


def _base_type(mtype: Union[str, SipContentType]) -> str:
    if isinstance(mtype, SipContentType) and mtype.parsed:
        return str(mtype.name).lower()
    return str(mtype).split(";", 1)[0].strip().lower()


# What each content type parses into: f(text, content type as given).
_PARSERS: dict[str, Callable[[str, Any], Any]] = {
    "application/sdp": lambda text, mtype: SdpBody(text),
    "multipart/mixed": lambda text, mtype: MultipartMixBody(text, ctype=mtype),
}


class MsgBody:
    """`content` is the raw text until `parse()`/`getContent()`, then the parsed object
    (SdpBody for application/sdp, MultipartMixBody for multipart/mixed; other types stay text).
    `mtype` is the Content-Type as text or a SipContentType (Sippy 2.x passes the header object).
    `needs_update` tells media handling (RTPproxy) whether the body still has to be rewritten."""

    # A held call keeps one or two per leg (the offer and answer its UAs remember): slots. A body
    # may still be weakly referenced (tests prove an ended call frees its SDP that way).
    __slots__ = ("content", "mtype", "parsed", "needs_update", "__weakref__")

    def __init__(
        self,
        content: Union[str, bytes, Any, None] = None,
        mtype: Union[str, SipContentType] = "application/sdp",
        cself: Optional[MsgBody] = None,
    ) -> None:
        if cself is not None:
            self.mtype: Union[str, SipContentType] = (
                cself.mtype.getCopy() if isinstance(cself.mtype, SipContentType) else cself.mtype
            )
            self.parsed: bool = cself.parsed
            self.needs_update: bool = cself.needs_update
            content = cself.content
            self.content: Any = content.getCopy() if hasattr(content, "getCopy") else content
            return
        if isinstance(content, bytes):
            content = content.decode("utf-8", errors="replace")
        self.mtype = mtype
        self.needs_update = True
        self.content = "" if content is None else content
        # An already parsed object (e.g. an SdpBody built by call control) counts as parsed.
        self.parsed = not isinstance(self.content, str)

    def parse(self) -> None:
        """Parse into the content type's class; raises SdpParseError on a broken body."""
        if self.parsed:
            return
        parser = _PARSERS.get(_base_type(self.mtype))
        if parser is not None:
            self.content = parser(self.content, self.mtype)
        self.parsed = True

    def getContent(self) -> Any:
        self.parse()
        return self.content

    def getType(self) -> str:
        """The media type, lower case, without parameters (e.g. 'application/sdp')."""
        return _base_type(self.mtype)

    def __str__(self) -> str:
        return str(self.content)

    def localStr(self, local_addr: Optional[str] = None, local_port: Optional[int] = None) -> str:
        if self.parsed and hasattr(self.content, "localStr"):
            return self.content.localStr(local_addr, local_port)
        return str(self.content)

    def getCopy(self) -> MsgBody:
        return MsgBody(cself=self)
