"""SDP `o=` line; the B2BUA bumps `version` each time it re-offers a changed body (RFC 3264 8)."""

from __future__ import annotations

import random
from typing import Optional

from sippy.Exceptions.SipParseError import SdpParseError
from sippy.SipConf import SipConf


class SdpOrigin:
    """`o=<username> <session_id> <version> <network_type> <address_type> <address>`.

    Made without a body it describes a new local session (address None: this host).
    """

    def __init__(self, body: Optional[str] = None, cself: Optional[SdpOrigin] = None) -> None:
        if cself is not None:
            self.username = cself.username
            self.session_id = cself.session_id
            self.version = cself.version
            self.network_type = cself.network_type
            self.address_type = cself.address_type
            self.address = cself.address
            return
        if body is None:
            sid = random.randint(1, 2**31 - 1)
            self.username = "-"
            self.session_id = str(sid)
            self.version = sid
            self.network_type = "IN"
            self.address_type = "IP4"
            self.address: Optional[str] = None
            return
        parts = body.split()
        if len(parts) != 6:
            raise SdpParseError(f"malformed o= line: {body!r}")
        self.username, self.session_id, version, self.network_type, self.address_type, self.address = parts
        if not (version.isascii() and version.isdigit()):
            raise SdpParseError(f"non-numeric session version in o= line: {body!r}")
        self.version = int(version)

    def incVersion(self) -> None:
        self.version += 1

    def localStr(self, local_addr: Optional[str] = None, local_port: Optional[int] = None) -> str:
        address, atype = self.address, self.address_type
        if address is None:
            address = local_addr if local_addr is not None else SipConf.my_address
            atype = "IP6" if ":" in address else "IP4"
        return f"{self.username} {self.session_id} {self.version} {self.network_type} {atype} {address}"

    def __str__(self) -> str:
        return self.localStr()

    def getCopy(self) -> SdpOrigin:
        return SdpOrigin(cself=self)
