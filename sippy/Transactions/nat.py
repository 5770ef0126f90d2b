"""Where a request really came from, written into it: Via received/rport (RFC 3261 18.2.1, RFC
3581), Sippy's -t NAT fix-ups of Contacts, and a connection's name as the Contact host of a peer
reached only over its connection (RFC 7118 section 5)."""

from __future__ import annotations

import ipaddress
from typing import Any, Optional

_NETS_1918 = tuple(ipaddress.IPv4Network(n) for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"))


def check1918(host: Optional[str]) -> bool:
    """True for an RFC 1918 (private IPv4) address."""
    if not host or not host[0].isdigit():
        return False
    try:
        addr = ipaddress.IPv4Address(host)
    except ValueError:
        return False
    return any(addr in net for net in _NETS_1918)


def nat_request(req: Any, host: str, port: int, address: tuple[str, int]) -> None:
    """Sippy's -t: a UA behind NAT gets answers at its public address and its Contact fixed."""
    if address[1] != port and check1918(host):
        req.nated = True
    if req.countHFs("contact") > 0 and req.countHFs("via") == 1:
        cbody = req.getHFBody("contact")
        if not cbody.asterisk:
            curl = cbody.getUrl()
            if check1918(curl.host) or curl.port == 0 or curl.host == "255.255.255.255":
                curl.setAddr(address)
                req.nated = True


def nat_response(resp: Any, target: Any, address: tuple[str, int]) -> None:
    """Sippy's -t: a private Contact in a response from a public peer becomes its source address."""
    if resp.countHFs("contact") > 0 and not check1918(target[0]):
        cbody = resp.getHFBody("contact")
        if not cbody.asterisk:
            curl = cbody.getUrl()
            if check1918(curl.host):
                curl.setAddr(address)


def stamp_via(via: Any, address: tuple[str, int], nated: bool, received: str) -> None:
    """RFC 3261 18.2.1 and RFC 3581: note on the top Via where the request really came from
    (`received`: the source host, or the connection's name, see Remote_address)."""
    rhost, rport = address
    if via.getAddr()[0] != rhost:
        via.setParam("received", received)
    if "rport" in via.params or nated:
        via.setParam("rport", str(rport))


def contact_by_connection(msg: Any, ra: Any) -> None:
    """A peer reached only over its connection (WSS, RFC 7118 5: a `*.invalid` Contact): its
    Contact host becomes the connection's name, so requests to it go back on that connection."""
    if msg.countHFs("contact") == 0:
        return
    cbody = msg.getHFBody("contact")
    if not cbody.asterisk:
        cbody.getUrl().host = ra.received
