"""SDP `c=` line (the module name keeps Sippy's spelling so imports port unchanged)."""

from __future__ import annotations

from typing import Optional

from sippy.Exceptions.SipParseError import SdpParseError
from sippy.SipConf import SipConf


class SdpConnecton:
    """`c=<ntype> <atype> <addr>`; addr None means "this host", filled in by localStr()."""

    def __init__(
        self, body: Optional[str] = None, cself: Optional[SdpConnecton] = None, addr: Optional[str] = None
    ) -> None:
        if cself is not None:
            self.ntype, self.atype, self.addr = cself.ntype, cself.atype, cself.addr
            return
        if body is None:
            self.ntype = "IN"
            self.atype = "IP6" if addr is not None and ":" in addr else "IP4"
            self.addr: Optional[str] = addr
            return
        parts = body.split()
        if len(parts) != 3:
            raise SdpParseError(f"malformed c= line: {body!r}")
        self.ntype, self.atype, self.addr = parts

    def localStr(self, local_addr: Optional[str] = None, local_port: Optional[int] = None) -> str:
        addr, atype = self.addr, self.atype
        if addr is None:
            # "This box": the sending transport's address, bare even for IPv6 (RFC 4566 c=).
            addr = local_addr if local_addr is not None else SipConf.my_address
            atype = "IP6" if ":" in addr else "IP4"
        return f"{self.ntype} {atype} {addr}"

    def __str__(self) -> str:
        return self.localStr()

    def getCopy(self) -> SdpConnecton:
        return SdpConnecton(cself=self)
