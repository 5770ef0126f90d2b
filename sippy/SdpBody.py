"""SDP (RFC 4566) session description: parsed into objects the B2BUA edits, then regenerated.

Like Sippy, a session-level `c=` is copied into every media section that has none, so call
control can always edit `section.c_header`; on output the sections that took it write none, and the
session-level line carries their (possibly rewritten) connection again, so a body with `c=` lines
in unusual places (H.323 style: session-level for most sections, one section with its own) goes
out as it came.
"""

from __future__ import annotations

from typing import Iterable, Optional

from sippy.Exceptions.SipParseError import SdpParseError
from sippy.SdpConnecton import SdpConnecton
from sippy.SdpGeneric import SdpGeneric
from sippy.SdpMediaDescription import DIRECTIONS, SdpMediaDescription, a_header
from sippy.SdpOrigin import SdpOrigin

# Single-valued session lines before c=, in RFC 4566 order.
_FIRST_HALF = ("v", "o", "s", "i", "u", "e", "p")
_MANDATORY = ("v", "o", "s")


class SdpBody:
    """`v_header` .. `p_header` (single lines before c=), `o_header` (SdpOrigin), `c_header`
    (session-level SdpConnecton, only when there are no sections), `other_headers` (b=, t=, r=,
    z=, k= and unknown lines as (letter, SdpGeneric), in order), `a_headers` (strings) and
    `sections` (SdpMediaDescription)."""

    def __init__(self, body: Optional[str] = None, cself: Optional[SdpBody] = None) -> None:
        self.v_header: Optional[SdpGeneric] = None
        self.o_header: Optional[SdpOrigin] = None
        self.s_header: Optional[SdpGeneric] = None
        self.i_header: Optional[SdpGeneric] = None
        self.u_header: Optional[SdpGeneric] = None
        self.e_header: Optional[SdpGeneric] = None
        self.p_header: Optional[SdpGeneric] = None
        self.c_header: Optional[SdpConnecton] = None
        self.other_headers: list[tuple[str, SdpGeneric]] = []
        self.a_headers: list[str] = []
        self.sections: list[SdpMediaDescription] = []
        # The session-level c= of a body with sections (copied into those without their own).
        self._session_c: Optional[SdpConnecton] = None
        if cself is not None:
            self._session_c = None if cself._session_c is None else cself._session_c.getCopy()
            for n in _FIRST_HALF + ("c",):
                h = getattr(cself, n + "_header")
                setattr(self, n + "_header", None if h is None else h.getCopy())
            self.other_headers = [(n, h.getCopy()) for n, h in cself.other_headers]
            self.a_headers = list(cself.a_headers)
            self.sections = [s.getCopy() for s in cself.sections]
        elif body is not None:
            self._parse(body)

    def _parse(self, body: str) -> None:
        if not isinstance(body, str):
            raise SdpParseError(f"SDP body is {type(body).__name__}, not text")
        section: Optional[SdpMediaDescription] = None
        seen = set()
        for lnum, line in enumerate(body.split("\n"), 1):
            line = line.rstrip("\r")
            if not line.strip():
                continue
            name, value = line[:1], line[2:]
            if line[1:2] != "=" or not ("a" <= name <= "z"):
                raise SdpParseError(f"malformed SDP line {lnum}: {line[:40]!r}")
            if name == "m":
                section = SdpMediaDescription()
                self.sections.append(section)
            if section is not None:
                section.addHeader(name, value)
                continue
            seen.add(name)
            self.addHeader(name, value)
        for name in _MANDATORY + ("t",):
            if name not in seen:
                raise SdpParseError(f'mandatory "{name}=" session line is missing')
        for snum, sect in enumerate(self.sections, 1):
            if sect.c_header is None:
                if self.c_header is None:
                    raise SdpParseError(f'media section {snum} has no "c=" line and there is no session one')
                sect.c_header = self.c_header.getCopy()
                sect.c_inherited = True
        if self.sections:
            self._session_c, self.c_header = self.c_header, None

    def _shared_c(self, local_addr: Optional[str], local_port: Optional[int]) -> Optional[str]:
        """The session-level c= text to write, if any: the one connection of the sections that
        took the session's (they omit theirs), or the session's own when none took it."""
        if self.c_header is not None:
            return self.c_header.localStr(local_addr, local_port)
        if self._session_c is None:
            return None
        cs = {
            s.c_header.localStr(local_addr, local_port)
            for s in self.sections
            if s.c_inherited and s.c_header is not None
        }
        if not cs:
            return self._session_c.localStr(local_addr, local_port)
        return cs.pop() if len(cs) == 1 else None

    def localStr(self, local_addr: Optional[str] = None, local_port: Optional[int] = None) -> str:
        out = []
        for n in _FIRST_HALF:
            h = getattr(self, n + "_header")
            if h is not None:
                out.append(f"{n}={h.localStr(local_addr, local_port)}\r\n")
        shared_c = self._shared_c(local_addr, local_port)
        if shared_c is not None:
            out.append(f"c={shared_c}\r\n")
        out.extend(f"{n}={h}\r\n" for n, h in self.other_headers)
        out.extend(f"a={a}\r\n" for a in self.a_headers)
        for s in self.sections:
            noC = (
                s.c_inherited
                and s.c_header is not None
                and s.c_header.localStr(local_addr, local_port) == shared_c
            )
            out.append(s.localStr(local_addr, local_port, noC=noC))
        return "".join(out)

    def __str__(self) -> str:
        return self.localStr()

    def getCopy(self) -> SdpBody:
        return SdpBody(cself=self)

    def addHeader(self, name: str, value: str) -> None:
        """Append a session-level line (Sippy's API)."""
        if name == "o":
            self.o_header = SdpOrigin(value)
        elif name == "c":
            self.c_header = SdpConnecton(value)
        elif name == "a":
            self.a_headers.append(a_header(value))
        elif name in _FIRST_HALF:
            setattr(self, name + "_header", SdpGeneric(value))
        else:
            self.other_headers.append((name, SdpGeneric(value)))

    def getDirection(self) -> Optional[str]:
        """The session-level direction attribute (applies to sections that have none)."""
        for a in self.a_headers:
            if a in DIRECTIONS:
                return a
        return None

    def isOnHold(self) -> bool:
        """True when the whole offer puts the peer on hold (every section, or the session)."""
        if not self.sections:
            return False
        sess_dir = self.getDirection()
        return all(
            s.isOnHold() or (s.getDirection() is None and sess_dir in ("sendonly", "inactive"))
            for s in self.sections
        )

    def getPTbyName(self, name: str) -> Optional[int]:
        """The payload type the first media section that has encoding ``name`` gives it (see
        SdpMediaDescription.getPTbyName); None when no section has it."""
        for s in self.sections:
            pt = s.getPTbyName(name)
            if pt is not None:
                return pt
        return None

    def keep_formats(self, pts: Iterable[int]) -> None:
        """Apply SdpMediaDescription.keep_formats() to every RTP section."""
        for s in self.sections:
            if s.getPTs() or not s.m_header.formats:
                s.keep_formats(pts)
