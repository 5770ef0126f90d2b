"""One SDP media section (`m=` and the lines up to the next `m=`), with the edits call control
needs: point it at another address/port, filter codecs, read or change the direction."""

from __future__ import annotations

from typing import Iterable, Optional, Union

from sippy.SdpConnecton import SdpConnecton
from sippy.SdpGeneric import SdpGeneric
from sippy.SdpMedia import SdpMedia

DIRECTIONS = ("sendrecv", "sendonly", "recvonly", "inactive")
# Attributes whose value starts with a payload type and that go away with it.
_PT_ATTRS = ("rtpmap", "fmtp", "rtcp-fb")


class a_header(str):
    """An `a=` value: a plain string (`'rtpmap:0 PCMU/8000'`) that also offers Sippy's
    `.name` / `.value` split (`'rtpmap'`, `'0 PCMU/8000'`; value None for flags like `sendonly`)."""

    __slots__ = ()

    @property
    def name(self) -> str:
        return self.partition(":")[0]

    @property
    def value(self) -> Optional[str]:
        name, sep, value = self.partition(":")
        return value if sep else None

    def getCopy(self) -> a_header:
        return self


class SdpMediaDescription:
    """`m_header`, optional `i_header`/`c_header`, `other_headers` (b=, k= and unknown lines as
    (letter, SdpGeneric) in order) and `a_headers` (list of strings, in order)."""

    def __init__(self, cself: Optional[SdpMediaDescription] = None) -> None:
        if cself is not None:
            self.m_header: SdpMedia = cself.m_header.getCopy()
            self.i_header = None if cself.i_header is None else cself.i_header.getCopy()
            self.c_header = None if cself.c_header is None else cself.c_header.getCopy()
            self.other_headers = [(n, h.getCopy()) for n, h in cself.other_headers]
            self.a_headers: list[str] = list(cself.a_headers)
            self.needs_update = cself.needs_update
            self.c_inherited: bool = cself.c_inherited
            return
        self.m_header = SdpMedia()
        self.i_header: Optional[SdpGeneric] = None
        self.c_header: Optional[SdpConnecton] = None
        self.other_headers: list[tuple[str, SdpGeneric]] = []
        self.a_headers = []
        self.needs_update = True
        # c_header is a copy of the session-level c= (written there, not here)
        self.c_inherited = False

    def addHeader(self, name: str, value: str) -> None:
        if name == "m":
            self.m_header = SdpMedia(value)
        elif name == "c":
            self.c_header = SdpConnecton(value)
            self.c_inherited = False
        elif name == "i":
            self.i_header = SdpGeneric(value)
        elif name == "a":
            self.a_headers.append(a_header(value))
        else:
            self.other_headers.append((name, SdpGeneric(value)))

    def localStr(
        self, local_addr: Optional[str] = None, local_port: Optional[int] = None, noC: bool = False
    ) -> str:
        out = [f"m={self.m_header.localStr(local_addr, local_port)}\r\n"]
        if self.i_header is not None:
            out.append(f"i={self.i_header}\r\n")
        if self.c_header is not None and not noC:
            out.append(f"c={self.c_header.localStr(local_addr, local_port)}\r\n")
        out.extend(f"{n}={h}\r\n" for n, h in self.other_headers)
        out.extend(f"a={a}\r\n" for a in self.a_headers)
        return "".join(out)

    def __str__(self) -> str:
        return self.localStr()

    def getCopy(self) -> SdpMediaDescription:
        return SdpMediaDescription(cself=self)

    # Media address

    def setConnection(self, addr: str, port: Optional[int] = None) -> None:
        """Send this stream to addr (and port), e.g. to an RTPproxy."""
        atype = "IP6" if ":" in addr else "IP4"
        if self.c_header is None:
            self.c_header = SdpConnecton(addr=addr)
            self.c_inherited = False
        self.c_header.atype, self.c_header.addr = atype, addr
        if port is not None:
            self.m_header.port = port

    # Codecs

    def getPTs(self) -> list[int]:
        """Payload types offered in m=, in preference order (non-RTP formats skipped)."""
        return [f for f in self.m_header.formats if isinstance(f, int)]

    def getPTbyName(self, name: str) -> Optional[int]:
        """The payload type this section gives to encoding ``name`` (Sippy's API): ``G729``,
        ``G726-32/8000`` or ``opus/48000/2``, case-insensitive (RFC 4855 3); a name without a
        clock rate matches any. Static types (RFC 3551 6) count even without an rtpmap line."""
        wanted = name.lower().split("/")
        for a in self.a_headers:
            if a.name != "rtpmap" or a.value is None:
                continue
            pt, _, encoding = a.value.partition(" ")
            if pt.isdigit() and encoding.lower().split("/")[: len(wanted)] == wanted:
                return int(pt)
        mapped = {_pt_of(a) for a in self.a_headers if a.name == "rtpmap"}
        for pt in self.getPTs():
            encoding = _STATIC_PTS.get(pt)
            if (
                pt not in mapped
                and encoding is not None
                and encoding.lower().split("/")[: len(wanted)] == wanted
            ):
                return pt
        return None

    def optimize_a(self) -> None:
        """Drop rtpmap/fmtp/rtcp-fb lines of payload types no longer listed in m=."""
        keep = set(self.m_header.formats)
        self.a_headers = [a for a in self.a_headers if _pt_of(a) is None or _pt_of(a) in keep]

    def keep_formats(self, pts: Iterable[int]) -> None:
        """Keep only payload types in pts (m= order is kept) and their attribute lines."""
        allowed = set(pts)
        self.m_header.formats = [f for f in self.m_header.formats if f in allowed]
        self.optimize_a()

    # Direction (RFC 3264 5.1, 8.4)

    def getDirection(self) -> Optional[str]:
        """The section's direction attribute, or None when it has none (sendrecv by default)."""
        for a in self.a_headers:
            if a in DIRECTIONS:
                return a
        return None

    def setDirection(self, direction: Optional[str]) -> None:
        """Replace any direction attribute with direction (None: remove it)."""
        if direction is not None and direction not in DIRECTIONS:
            raise ValueError(f"unknown SDP direction {direction!r}")
        self.a_headers = [a for a in self.a_headers if a not in DIRECTIONS]
        if direction is not None:
            self.a_headers.append(a_header(direction))

    def isOnHold(self) -> bool:
        """Hold as old and new UAs signal it: c=0.0.0.0 (RFC 2543) or sendonly/inactive."""
        c = self.c_header
        if c is not None and c.addr in ("0.0.0.0", "::"):
            return True
        return self.getDirection() in ("sendonly", "inactive")


# RFC 3551 table 4/5: static payload types, used when an offer has no rtpmap for them.
_STATIC_PTS = {
    0: "PCMU/8000",
    3: "GSM/8000",
    4: "G723/8000",
    5: "DVI4/8000",
    6: "DVI4/16000",
    7: "LPC/8000",
    8: "PCMA/8000",
    9: "G722/8000",
    10: "L16/44100/2",
    11: "L16/44100/1",
    12: "QCELP/8000",
    13: "CN/8000",
    14: "MPA/90000",
    15: "G728/8000",
    16: "DVI4/11025",
    17: "DVI4/22050",
    18: "G729/8000",
    25: "CelB/90000",
    26: "JPEG/90000",
    28: "nv/90000",
    31: "H261/90000",
    32: "MPV/90000",
    33: "MP2T/90000",
    34: "H263/90000",
}


def _pt_of(a: str) -> Union[int, None]:
    """The payload type an rtpmap/fmtp/rtcp-fb attribute refers to, else None."""
    name, sep, value = a.partition(":")
    if not sep or name not in _PT_ATTRS:
        return None
    pt = value.split(" ", 1)[0]
    return int(pt) if pt.isascii() and pt.isdigit() else None
