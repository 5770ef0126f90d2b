"""A list of IP addresses and networks that a peer's address is checked against.

Used wherever trust depends on where a datagram or connection comes from: the control socket's
allow list (``--b2bua_socket_allow``) and the proxies whose Via is believed (``--trusted_proxies``).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Iterator
from typing import Any, Union

__all__ = ("AddressList",)

Network = Union[ipaddress.IPv4Network, ipaddress.IPv6Network]


class AddressList:
    """``192.0.2.7``, ``192.0.2.0/24``, ``::1``...; ``host in alist`` for an address as text (a
    name or junk is never in it)."""

    __slots__ = ("networks",)

    def __init__(self, items: Iterable[str]) -> None:
        networks = []
        for item in items:
            try:
                networks.append(ipaddress.ip_network(item.strip(), strict=False))
            except ValueError:
                raise ValueError(f"not an IP address or network: {item.strip()!r}") from None
        self.networks: tuple[Network, ...] = tuple(networks)

    def __contains__(self, host: object) -> bool:
        if not isinstance(host, str):
            return False
        try:
            ip: Any = ipaddress.ip_address(host.strip("[]"))
        except ValueError:
            return False
        # A socket on "::" sees IPv4 peers as ::ffff:a.b.c.d.
        if ip.version == 6 and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        return any(ip in net for net in self.networks)

    def __iter__(self) -> Iterator[Network]:
        return iter(self.networks)

    def __str__(self) -> str:
        return ",".join(str(n) for n in self.networks)
