"""RTPproxy commands over datagrams (``udp:`` and ``udp6:`` contacts).

Each command goes out as ``<cookie> <command>``; the proxy answers ``<cookie> <result>``, so
answers are matched by cookie whatever their order, and a retransmitted command that the proxy
already executed gets the cached answer instead of running twice. ``retr_ivals`` are the waits
after each sending: the command is sent ``len(retr_ivals)`` times, and fails (``None``) when the
last wait ends without an answer.
"""

from __future__ import annotations

import socket
from secrets import token_hex
from typing import Any, Callable, Optional

from twisted.internet.protocol import DatagramProtocol

from sippy.DatagramPort import listen_udp
from sippy.Time.Timeout import Timeout, default_reactor
from sippy.Udp_server import RCVBUF_SIZE

__all__ = ("Rtp_proxy_client_udp", "ResultCallback")

# result_callback(result, *callback_parameters); result is None when no answer came.
ResultCallback = Callable[..., None]


class _Command:
    __slots__ = ("cookie", "data", "result_callback", "callback_parameters", "timer", "nsent")

    def __init__(
        self, cookie: str, data: bytes, result_callback: Optional[ResultCallback], params: tuple
    ) -> None:
        self.cookie = cookie
        self.data = data
        self.result_callback = result_callback
        self.callback_parameters = params
        self.timer: Optional[Timeout] = None
        self.nsent = 0


class _Protocol(DatagramProtocol):
    def __init__(self, owner: Rtp_proxy_client_udp) -> None:
        self.owner = owner

    def datagramReceived(self, data: bytes, addr: Any) -> None:
        self.owner._recv(data, addr)


class Rtp_proxy_client_udp:
    """One UDP socket towards one proxy; any number of commands in flight."""

    # Waits after each sending, seconds: 4 sendings, failure 3 s after the first.
    retr_ivals: tuple[float, ...] = (0.5, 0.5, 1.0, 1.0)

    def __init__(
        self, address: tuple[str, int], family: int = socket.AF_INET, *, reactor: Any = None
    ) -> None:
        self.reactor = reactor if reactor is not None else default_reactor()
        self.address = address
        interface = "::" if family == socket.AF_INET6 else "0.0.0.0"
        self._port = listen_udp(self.reactor, 0, _Protocol(self), interface)
        skt = getattr(self._port, "socket", None)
        if skt is not None:
            # Answers queue up while the reactor is busy; the default buffer drops them (as SIP's).
            try:
                skt.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RCVBUF_SIZE)
            except OSError:
                pass
        # A fresh prefix per client: a restarted B2BUA never reuses a cookie the proxy still caches.
        self._prefix = token_hex(4)
        self._seq = 0
        self._pending: dict[str, _Command] = {}

    def send_command(
        self, command: str, result_callback: Optional[ResultCallback] = None, *params: Any
    ) -> None:
        self._seq += 1
        cookie = f"{self._prefix}_{self._seq}"
        cmd = _Command(cookie, f"{cookie} {command}\n".encode(), result_callback, params)
        self._pending[cookie] = cmd
        self._transmit(cmd)

    def _transmit(self, cmd: _Command) -> None:
        try:
            self._port.write(cmd.data, self.address)
        except OSError:
            pass  # the retransmission timer and, in the end, the failure handle it
        cmd.timer = Timeout(self._timeout, self.retr_ivals[cmd.nsent], 1, cmd, reactor=self.reactor)
        cmd.nsent += 1

    def _timeout(self, cmd: _Command) -> None:
        if cmd.nsent < len(self.retr_ivals):
            self._transmit(cmd)
            return
        self._finish(cmd, None)

    def _recv(self, data: bytes, addr: Any) -> None:
        if (addr[0], addr[1]) != self.address:
            return
        cookie, _, result = data.decode("utf-8", "replace").partition(" ")
        cmd = self._pending.get(cookie)
        if cmd is not None:
            self._finish(cmd, result.strip())

    def _finish(self, cmd: _Command, result: Optional[str]) -> None:
        self._pending.pop(cmd.cookie, None)
        if cmd.timer is not None:
            cmd.timer.cancel()
            cmd.timer = None
        if cmd.result_callback is not None:
            cmd.result_callback(result, *cmd.callback_parameters)

    def shutdown(self) -> None:
        """Close the socket; commands still waiting are dropped without an answer."""
        for cmd in self._pending.values():
            if cmd.timer is not None:
                cmd.timer.cancel()
        self._pending.clear()
        self._port.stopListening()
