"""Addresses as SIP writes them and as sockets see them.

SIP text puts an IPv6 host in brackets (RFC 3261 25.1 ``IPv6reference``, RFC 5118); socket tuples
and SDP carry the bare address. ``sip_host``/``sip_hostport`` are the one way a host[:port] is
written into SIP text. ``local4remote`` (Sippy 2.x's name) tells which local address the kernel
would use to reach a peer: what a B2BUA listening on every address puts in Via and Contact.
"""

from __future__ import annotations

import ipaddress
import socket
import time
from collections import OrderedDict
from typing import Optional

# Peers whose facing local address is remembered: for LOCAL4REMOTE_TTL seconds (an address or
# route that changes is seen again after that) and at most LOCAL4REMOTE_CACHE_SIZE of them (the
# oldest answer is forgotten first, so that a scan from many peers cannot grow the cache).
LOCAL4REMOTE_CACHE_SIZE = 1024
LOCAL4REMOTE_TTL = 300.0
_l4r_cache: OrderedDict[tuple[str, int], tuple[str, float]] = OrderedDict()


def sip_host(host: str) -> str:
    """``host`` as written in SIP text: an IPv6 address in brackets, anything else unchanged."""
    if ":" in host and host[0] != "[":
        return f"[{host}]"
    return host


def sip_hostport(host: str, port: Optional[int]) -> str:
    """``host:port`` for SIP text (``[v6]:port``); just the host when port is None."""
    host = sip_host(host)
    return host if port is None else f"{host}:{port}"


def listen_address(global_config: dict) -> str:
    """Where a B2BUA listens, for its start line and errors: ``*:port`` on every address."""
    host = "*" if global_config.get("_sip_wildcard") else global_config["_sip_address"]
    return sip_hostport(host, global_config["_sip_port"])


def bare_host(host: str) -> str:
    """``host`` for a socket: an IPv6 reference without its brackets."""
    return host[1:-1] if host[:1] == "[" and host[-1:] == "]" else host


def parse_hostport(text: str, default_port: int) -> tuple[str, int]:
    """``host``, ``host:port``, ``[v6]``, ``[v6]:port`` or a bare IPv6 address -> (host, port),
    the host without brackets. ValueError names what is wrong."""
    v6 = text[:1] == "["
    if v6:
        host, sep, rest = text[1:].partition("]")
        if not sep:
            raise ValueError(f"missing ']' in {text!r}")
        if rest and rest[0] != ":":
            raise ValueError(f"junk after ']' in {text!r}")
        sport: Optional[str] = rest[1:] if rest else None
    elif text.count(":") > 1:
        host, sport, v6 = text, None, True
    else:
        host, sep, sport = text.partition(":")
        if not sep:
            sport = None
    if not host:
        raise ValueError(f"no host in {text!r}")
    if v6:
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            raise ValueError(f"bad IPv6 address {host!r}") from None
    if sport is None:
        return host, default_port
    if not sport.isascii() or not sport.isdigit() or not 0 < int(sport) < 65536:
        raise ValueError(f"bad port {sport!r}")
    return host, int(sport)


# is_ip's answers (4, 6 or 0 for no address) by text: every datagram sent asks about its peer,
# and parsing one with ipaddress costs more than the rest of the send. Peers choose the text, so
# the table is emptied when it reaches IP_CACHE_SIZE.
IP_CACHE_SIZE = 4096
_ip_versions: dict[str, int] = {}


def is_ip(text: str, version: Optional[int] = None) -> bool:
    """True for an IP address literal (bare, no brackets); `version` 4 or 6 asks for that one."""
    found = _ip_versions.get(text)
    if found is None:
        try:
            found = ipaddress.ip_address(text).version
        except ValueError:
            found = 0
        if len(_ip_versions) >= IP_CACHE_SIZE:
            _ip_versions.clear()
        _ip_versions[text] = found
    return found != 0 if version is None else found == version


def address_family(host: str) -> int:
    """AF_INET6 for an IPv6 address (with or without brackets), AF_INET for anything else."""
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def ipv6_available() -> bool:
    """Whether this host can open an IPv6 socket (a kernel without IPv6 refuses)."""
    try:
        socket.socket(socket.AF_INET6, socket.SOCK_DGRAM).close()
    except OSError:
        return False
    return True


def local4remote(address: str, family: int = socket.AF_INET) -> str:
    """The local address this host would send from to reach ``address`` (an IP literal, bare or
    bracketed), learnt without sending anything: a UDP socket ``connect()``ed to the peer is
    bound by the kernel to the source address of the route, which ``getsockname()`` reads.
    Answers are cached per (address, family) for LOCAL4REMOTE_TTL seconds. Unlike Sippy's, an
    IPv6 answer has no brackets (it is a socket address; ``sip_host`` writes it into SIP text).
    Raises OSError when the peer is unreachable (no route), ValueError for a host name.
    """
    key = (bare_host(address), family)
    now = time.monotonic()
    cached = _l4r_cache.get(key)
    if cached is not None:
        if cached[1] > now:
            return cached[0]
        del _l4r_cache[key]
    if not is_ip(key[0]):
        # A name would make connect() resolve it, blocking the reactor: literals only.
        raise ValueError(f"not an IP address: {address!r}")
    with socket.socket(family, socket.SOCK_DGRAM) as skt:
        # Any port does: connect() on UDP only picks the route, no datagram leaves.
        skt.connect((key[0], 5060))
        laddr = skt.getsockname()[0]
    _l4r_cache[key] = (laddr, now + LOCAL4REMOTE_TTL)
    if len(_l4r_cache) > LOCAL4REMOTE_CACHE_SIZE:
        _l4r_cache.popitem(last=False)
    return laddr
