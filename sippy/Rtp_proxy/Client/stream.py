"""RTPproxy commands over stream sockets (unix-domain path, ``unix:``, ``cunix:``, ``tcp:``, ``tcp6:``).

Stream commands carry no cookie, so they go out one at a time and each answer belongs to the
command in flight. On a ``unix:`` socket the proxy closes the connection after each answer (the
answer is everything it wrote); ``cunix:`` and TCP connections stay open and each answer is one
line. A lost connection is opened again for the next command; a command whose connection broke
before any answer is sent once more on a new one, and a command with no answer within
``cmd_timeout`` seconds fails (``None``) and its connection is dropped.
"""

from __future__ import annotations

import collections
from typing import Any, Optional, Union

from twisted.internet.protocol import ClientCreator, Protocol

from sippy.Rtp_proxy.Client.udp import ResultCallback
from sippy.Time.Timeout import Timeout, default_reactor

__all__ = ("Rtp_proxy_client_stream",)


class _Command:
    __slots__ = ("data", "result_callback", "callback_parameters", "retried")

    def __init__(self, data: bytes, result_callback: Optional[ResultCallback], params: tuple) -> None:
        self.data = data
        self.result_callback = result_callback
        self.callback_parameters = params
        self.retried = False


class _Protocol(Protocol):
    def __init__(self, owner: Rtp_proxy_client_stream) -> None:
        self.owner = owner

    def dataReceived(self, data: bytes) -> None:
        self.owner._data(self, data)

    def connectionLost(self, reason: Any = None) -> None:
        self.owner._lost(self)


class Rtp_proxy_client_stream:
    """One connection at a time towards one proxy, commands queued in order."""

    cmd_timeout = 3.0
    connect_timeout = 3.0

    def __init__(
        self, address: Union[str, tuple[str, int]], *, persistent: bool, reactor: Any = None
    ) -> None:
        self.reactor = reactor if reactor is not None else default_reactor()
        self.address = address
        self.persistent = persistent
        self._queue: collections.deque[_Command] = collections.deque()
        self._conn: Optional[_Protocol] = None
        self._connecting = False
        self._inflight: Optional[_Command] = None
        self._buf = b""
        self._timer: Optional[Timeout] = None
        self._shut_down = False

    def send_command(
        self, command: str, result_callback: Optional[ResultCallback] = None, *params: Any
    ) -> None:
        self._queue.append(_Command(f"{command}\n".encode(), result_callback, params))
        self._kick()

    def _kick(self) -> None:
        if self._shut_down or self._inflight is not None or not self._queue:
            return
        if self._conn is None:
            if not self._connecting:
                self._connect()
            return
        cmd = self._inflight = self._queue.popleft()
        self._buf = b""
        self._timer = Timeout(self._timeout, self.cmd_timeout, 1, reactor=self.reactor)
        self._conn.transport.write(cmd.data)

    def _connect(self) -> None:
        self._connecting = True
        creator = ClientCreator(self.reactor, _Protocol, self)
        if isinstance(self.address, str):
            d = creator.connectUNIX(self.address, timeout=self.connect_timeout)
        else:
            d = creator.connectTCP(self.address[0], self.address[1], timeout=self.connect_timeout)
        d.addCallbacks(self._connected, self._connectFailed)

    def _connected(self, proto: _Protocol) -> None:
        self._connecting = False
        if self._shut_down:
            proto.transport.loseConnection()
            return
        self._conn = proto
        self._kick()

    def _connectFailed(self, failure: Any) -> None:
        # Nobody listens: every queued command fails now rather than piling up behind it.
        self._connecting = False
        queue, self._queue = self._queue, collections.deque()
        for cmd in queue:
            self._answer(cmd, None)

    def _data(self, proto: _Protocol, data: bytes) -> None:
        if proto is not self._conn or self._inflight is None:
            return
        self._buf += data
        if self.persistent and b"\n" in self._buf:
            line, _, self._buf = self._buf.partition(b"\n")
            self._complete(line.decode("utf-8", "replace").strip())

    def _lost(self, proto: _Protocol) -> None:
        if proto is not self._conn:
            return
        self._conn = None
        cmd = self._inflight
        if cmd is not None:
            if self._buf:
                self._complete(self._buf.decode("utf-8", "replace").strip())
                return
            self._inflight = None
            self._cancelTimer()
            if not cmd.retried and not self._shut_down:
                cmd.retried = True
                self._queue.appendleft(cmd)
            else:
                self._answer(cmd, None)
        self._kick()

    def _timeout(self) -> None:
        self._timer = None
        cmd, self._inflight = self._inflight, None
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.transport.abortConnection()
        if cmd is not None:
            self._answer(cmd, None)
        self._kick()

    def _complete(self, result: str) -> None:
        cmd, self._inflight = self._inflight, None
        self._cancelTimer()
        if cmd is not None:
            self._answer(cmd, result)
        self._kick()

    def _cancelTimer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    @staticmethod
    def _answer(cmd: _Command, result: Optional[str]) -> None:
        if cmd.result_callback is not None:
            cmd.result_callback(result, *cmd.callback_parameters)

    def shutdown(self) -> None:
        """Close the connection; commands still waiting are dropped without an answer."""
        self._shut_down = True
        self._cancelTimer()
        self._queue.clear()
        self._inflight = None
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.transport.loseConnection()
