"""A SIP message body. The text is kept as received and parsed only when someone asks for its
content, so proxied bodies that nobody edits cost nothing and go out byte for byte."""

from __future__ import annotations

from typing import Any, Optional, Union

from sippy.SdpBody import SdpBody


def _base_type(mtype: str) -> str:
    return mtype.split(";", 1)[0].strip().lower()


class MsgBody:
    """`content` is the raw text until `parse()`/`getContent()`, then the parsed object
    (SdpBody for application/sdp; other types stay text). `needs_update` tells media handling
    (RTPproxy) whether the body still has to be rewritten."""

    def __init__(
        self,
        content: Union[str, bytes, Any, None] = None,
        mtype: str = "application/sdp",
        cself: Optional[MsgBody] = None,
    ) -> None:
        if cself is not None:
            self.mtype: str = cself.mtype
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
        """Parse application/sdp into SdpBody; raises SdpParseError on a broken body."""
        if self.parsed:
            return
        if _base_type(self.mtype) == "application/sdp":
            self.content = SdpBody(self.content)
        self.parsed = True

    def getContent(self) -> Any:
        self.parse()
        return self.content

    def getType(self) -> str:
        return self.mtype

    def __str__(self) -> str:
        return str(self.content)

    def localStr(self, local_addr: Optional[str] = None, local_port: Optional[int] = None) -> str:
        if self.parsed and hasattr(self.content, "localStr"):
            return self.content.localStr(local_addr, local_port)
        return str(self.content)

    def getCopy(self) -> MsgBody:
        return MsgBody(cself=self)
