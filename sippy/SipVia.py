"""Via header (RFC 3261 20.42, RFC 3581 rport): where responses go back to."""

from __future__ import annotations

import os
from typing import Optional

from sippy.Exceptions.SipParseError import SipParseError
from sippy.misc import bare_host, sip_host
from sippy.SipConf import SipConf
from sippy.SipGenericHF import SipGenericHF, keeps_text


def _parse_port(text: str) -> int:
    if not text.isdigit():
        text = text.strip()
    if not (text.isascii() and text.isdigit()) or len(text) > 5:
        raise SipParseError("Malformed port in Via")
    port = int(text)
    if not 0 < port < 65536:
        raise SipParseError("Malformed port in Via")
    return port


class SipVia(SipGenericHF):
    """One Via value: `sipver`/`transport`, sent-by `hostname`/`port` and ordered `params`.

    `hostname=None` is a placeholder for "this box": `localStr(local_addr, local_port)` writes the
    sending transport's address there, so a UA can build requests before it knows the socket.
    IPv6 hosts are kept with brackets, as written in SIP text.
    """

    # One or more per message, kept with it (a transaction keeps its requests and answers):
    # fields in slots, no per-instance dict.
    __slots__ = ("sipver", "transport", "hostname", "port", "params")

    hf_names = ("via", "v")
    can_name = "Via"
    compact_name = "v"
    isMulti = True

    @keeps_text
    def __init__(
        self,
        body: Optional[str] = None,
        sipver: Optional[str] = None,
        hostname: Optional[str] = None,
        port: Optional[int] = None,
        params: Optional[dict[str, Optional[str]]] = None,
        transport: Optional[str] = None,
    ) -> None:
        super().__init__(body)
        if body is not None:
            return
        self.parsed = True
        if sipver is not None and sipver.count("/") == 2:
            # Sippy spells the whole sent-protocol as sipver ("SIP/2.0/UDP").
            sipver, transport = sipver.rsplit("/", 1)
        self.sipver: str = sipver or "SIP/2.0"
        self.transport: str = transport or "UDP"
        # A bare IPv6 address (as socket tuples carry it) gets the brackets SIP text needs.
        self.hostname: Optional[str] = sip_host(hostname) if hostname else hostname
        self.port: Optional[int] = port
        if params is not None:
            self.params: dict[str, Optional[str]] = dict(params)
        elif hostname is None:
            self.params = {"rport": None}
        else:
            self.params = {}

    def parse(self) -> None:
        body = self.body
        proto, sep, rest = body.partition(" ")
        if proto.count("/") != 2 or "\t" in body:
            # Tabs, or LWS around the slashes of sent-protocol: rare, so done the slow way.
            text = " ".join(body.split()).replace(" /", "/").replace("/ ", "/")
            proto, sep, rest = text.partition(" ")
            if proto.count("/") != 2:
                raise SipParseError("Malformed sent-protocol in Via")
        sipver, _, transport = proto.rpartition("/")
        if not sep or not transport or sipver[0] == "/" or sipver[-1] == "/":
            raise SipParseError("Malformed sent-protocol in Via")
        hostport, _, params = rest.partition(";")
        if " " in hostport:
            hostport = hostport.strip()
        if "[" in hostport and hostport[0] == "[":
            end = hostport.find("]")
            if end < 2:
                raise SipParseError("Malformed IPv6 host in Via")
            hostname = hostport[: end + 1]
            tail = hostport[end + 1 :].strip()
            if tail and tail[0] != ":":
                raise SipParseError("Malformed host in Via")
            port = _parse_port(tail[1:].strip()) if tail else None
        else:
            hostname, colon, portstr = hostport.partition(":")
            port = _parse_port(portstr) if colon else None
            if " " in hostname:
                hostname = hostname.strip()
            if not hostname or " " in hostname or "(" in hostname:
                raise SipParseError("Malformed host in Via")
        pdict: dict[str, Optional[str]] = {}
        if params:
            for param in params.split(";"):
                pname, eq, pval = param.partition("=")
                if " " in param:
                    pname = pname.strip()
                    pval = pval.strip()
                if not pname:
                    raise SipParseError("Empty parameter in Via")
                pdict[pname] = pval if eq else None
        self.sipver = sipver
        self.transport = transport
        self.hostname = hostname
        self.port = port
        self.params = pdict
        self.parsed = True

    def localStr(self, local_addr: Optional[str] = None, local_port: Optional[int] = None) -> str:
        if not self.parsed:
            return self.body
        host = self.hostname
        port = self.port
        if host is None:
            host = sip_host(local_addr or SipConf.my_address)
            if port is None:
                port = local_port or SipConf.my_port
        if port is None:
            s = f"{self.sipver}/{self.transport} {host}"
        else:
            s = f"{self.sipver}/{self.transport} {host}:{port}"
        for k, v in self.params.items():
            s += ";" + k if v is None else f";{k}={v}"
        return s

    __str__ = localStr

    def getCopy(self) -> SipVia:
        new = super().getCopy()
        if self.parsed:
            new.sipver = self.sipver
            new.transport = self.transport
            new.hostname = self.hostname
            new.port = self.port
            new.params = dict(self.params)
        return new

    def genBranch(self) -> str:
        """A fresh RFC 3261 branch (magic cookie + 96 random bits), set and returned."""
        branch = "z9hG4bK" + os.urandom(12).hex()
        self.params["branch"] = branch
        return branch

    def getBranch(self) -> Optional[str]:
        return self.params.get("branch")

    def setBranch(self, branch: str) -> None:
        self.params["branch"] = branch

    def getParam(self, name: str) -> Optional[str]:
        return self.params.get(name)

    def setParam(self, name: str, value: Optional[str] = None) -> None:
        self.params[name] = value

    def delParam(self, name: str) -> None:
        self.params.pop(name, None)

    def getAddr(self) -> tuple[Optional[str], int]:
        """Sent-by as a socket address: IPv6 without brackets, port 5060 when absent."""
        host = self.hostname
        port = self.port if self.port is not None else SipConf.default_port
        return (bare_host(host) if host is not None else None, port)

    def getTAddr(self) -> tuple[Optional[str], int]:
        """Where to send responses (RFC 3261 18.2.2 with RFC 3581): received and rport first."""
        host, port = self.getAddr()
        received = self.params.get("received")
        if received:
            # RFC 3261 writes received bare; RFC 5118 4.5 asks to take a bracketed one too.
            host = bare_host(received)
        rport = self.params.get("rport")
        if rport and rport.isascii() and rport.isdigit() and 0 < int(rport) < 65536:
            port = int(rport)
        return (host, port)
