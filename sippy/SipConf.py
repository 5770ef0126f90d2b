"""Process-wide SIP defaults, Sippy style: programs read (or override) class attributes."""

from __future__ import annotations

import socket


def _local_address() -> str:
    """Best guess of this host's address for Via/Contact when no -l address is given."""
    try:
        return socket.gethostbyname(socket.gethostname())
    except OSError:
        return "127.0.0.1"


class SipConf:
    """Defaults only; every value is immutable so that sharing the class is safe."""

    default_port: int = 5060
    default_transport: str = "udp"
    my_address: str = _local_address()
    my_port: int = default_port
    my_transport: str = default_transport
    my_uaname: str = "Sippy"
    allow_formats: tuple[int, ...] | None = None
    autoconvert_tel_url: bool = True

    @staticmethod
    def port_needed(port: int, transport: str | None, local_transport: str) -> bool:
        """Whether a Via/Contact must spell the port out (not the default port and transport)."""
        return not (
            (transport is None or transport == local_transport)
            and local_transport == SipConf.default_transport
            and int(port) == SipConf.default_port
        )
