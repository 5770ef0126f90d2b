"""SDP `m=` line."""

from __future__ import annotations

from typing import Optional, Union

from sippy.Exceptions.SipParseError import SdpParseError


def _is_num(s: str) -> bool:
    # str.isdigit() alone accepts non-ASCII digits that int() may reject.
    return s.isascii() and s.isdigit()


class SdpMedia:
    """`m=<stype> <port>[/<nports>] <transport> <fmt> ...`.

    For RTP transports `formats` holds payload types as ints (what codec filtering compares);
    for anything else (e.g. `TCP/BFCP *`) the format tokens stay strings.
    """

    def __init__(self, body: Optional[str] = None, cself: Optional[SdpMedia] = None) -> None:
        if cself is not None:
            self.stype, self.port, self.nports = cself.stype, cself.port, cself.nports
            self.transport = cself.transport
            self.formats: list[Union[int, str]] = list(cself.formats)
            return
        if body is None:
            self.stype, self.port, self.nports, self.transport = "audio", 0, None, "RTP/AVP"
            self.formats = []
            return
        parts = body.split()
        if len(parts) < 3:
            raise SdpParseError(f"malformed m= line: {body!r}")
        self.stype = parts[0]
        port, _, nports = parts[1].partition("/")
        if not _is_num(port) or not (nports == "" or _is_num(nports)) or int(port) > 65535:
            raise SdpParseError(f"bad port in m= line: {body!r}")
        self.port = int(port)
        self.nports: Optional[int] = int(nports) if nports else None
        self.transport = parts[2]
        fmts = parts[3:]
        if "RTP" in self.transport.upper() and all(_is_num(f) for f in fmts):
            self.formats = [int(f) for f in fmts]
        else:
            self.formats = list(fmts)

    def __str__(self) -> str:
        port = str(self.port) if self.nports is None else f"{self.port}/{self.nports}"
        return " ".join([self.stype, port, self.transport, *(str(f) for f in self.formats)])

    def localStr(self, local_addr: Optional[str] = None, local_port: Optional[int] = None) -> str:
        return str(self)

    def getCopy(self) -> SdpMedia:
        return SdpMedia(cself=self)
