"""What one RTP stream needs: the peer, our local address and port, codec and ptime."""

from __future__ import annotations

from functools import lru_cache
from ipaddress import ip_address
from socket import AF_INET, AF_INET6
from typing import Callable, Optional, Union

from sippy.misc import bare_host, local4remote

from .Codecs.G711 import G711Codec
from .Codecs.GenCodec import GenCodec

_WILDCARD = {"IP4": "0.0.0.0", "IP6": "::"}


@lru_cache(maxsize=256)
def canonicalize_rtp_host(host: str) -> str:
    """An IP literal in its canonical text (no brackets); a name unchanged."""
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    try:
        return str(ip_address(host))
    except ValueError:
        return host


def canonicalize_rtp_target(rtp_target: Optional[tuple[str, Union[str, int]]]) -> Optional[tuple[str, int]]:
    if rtp_target is None:
        return None
    host, port = rtp_target
    return (canonicalize_rtp_host(host), int(port))


def canonicalize_rtp_address(address: object) -> Optional[tuple[str, int]]:
    """(host, port) of a socket address (IPv6 ones carry flowinfo and scope id too)."""
    if not isinstance(address, tuple) or len(address) < 2 or not isinstance(address[0], str):
        return None
    return (canonicalize_rtp_host(address[0]), int(address[1]))


class RTPParams:
    """`rtp_target` is where we send (None: nowhere, e.g. not answered yet or on hold).
    `rtp_lport` is 0 (take one from RTPConf), a port, or a callable `f(ntry) -> port`.
    `rtp_laddr` is the local address for the SDP: the one that reaches the target (as Sippy 2.x
    does), the family's wildcard without one, or what a program sets. The socket binds to the
    wildcard unless a program set an address (`bind_laddr`), so a re-INVITE may move the media
    to a peer behind another interface. `out_sr` is the rate received audio is handed over at."""

    default_rtp_proto = "IP4"
    default_ptime = 20
    default_sr = 8000

    def __init__(
        self,
        rtp_target: Optional[tuple[str, Union[str, int]]],
        out_ptime: int = default_ptime,
        out_sr: int = default_sr,
        rtp_proto: str = default_rtp_proto,
    ) -> None:
        self._rtp_proto = self.default_rtp_proto
        self._rtp_laddr: Optional[str] = None  # set by the program
        self._auto_laddr = _WILDCARD[self._rtp_proto]
        self.rtp_lport: Union[int, Callable[[int], int]] = 0
        self._rtp_target = canonicalize_rtp_target(rtp_target)
        self.rtp_proto = rtp_proto
        self._update_laddr()
        self.out_ptime = out_ptime
        self.out_sr = out_sr
        self.codec: type[GenCodec] = G711Codec

    @property
    def rtp_target(self) -> Optional[tuple[str, int]]:
        return self._rtp_target

    @rtp_target.setter
    def rtp_target(self, rtp_target: Optional[tuple[str, Union[str, int]]]) -> None:
        if rtp_target != self._rtp_target:
            self._rtp_target = canonicalize_rtp_target(rtp_target)
            self._update_laddr()

    @property
    def rtp_laddr(self) -> str:
        return self._auto_laddr if self._rtp_laddr is None else self._rtp_laddr

    @rtp_laddr.setter
    def rtp_laddr(self, laddr: Optional[str]) -> None:
        """A program's own choice (None: back to the automatic one)."""
        self._rtp_laddr = None if laddr is None else canonicalize_rtp_host(laddr)

    @property
    def bind_laddr(self) -> str:
        return _WILDCARD[self._rtp_proto] if self._rtp_laddr is None else self._rtp_laddr

    def _update_laddr(self) -> None:
        self._auto_laddr = self._get_laddr()

    def _get_laddr(self) -> str:
        if self._rtp_target is not None:
            try:
                return bare_host(local4remote(self._rtp_target[0], family=self.rtp_family))
            except (OSError, ValueError):  # a name, or no route: the wildcard says "don't know"
                pass
        return _WILDCARD[self._rtp_proto]

    @property
    def rtp_proto(self) -> str:
        return self._rtp_proto

    @rtp_proto.setter
    def rtp_proto(self, rtp_proto: str) -> None:
        rtp_proto = rtp_proto.upper()
        if rtp_proto not in _WILDCARD:
            raise ValueError(f"rtp_proto must be IP4 or IP6, not {rtp_proto!r}")
        if rtp_proto != self._rtp_proto:
            self._rtp_proto = rtp_proto
            self._update_laddr()

    @property
    def rtp_family(self) -> int:
        return AF_INET if self._rtp_proto == "IP4" else AF_INET6

    def getCopy(self) -> RTPParams:
        copy = RTPParams(self._rtp_target, self.out_ptime, self.out_sr, self._rtp_proto)
        copy._rtp_laddr, copy.rtp_lport, copy.codec = self._rtp_laddr, self.rtp_lport, self.codec
        return copy
