"""A Twisted UDP port that reads every datagram into one buffer it keeps, so that a long run's
memory stays flat.

Twisted's `udp.Port` reads with `socket.recvfrom(maxPacketSize)`: CPython asks malloc for a
`maxPacketSize` bytes object (64 KiB for SIP, which must take whole datagrams), then shrinks it to
the datagram's length, and the rest of the block goes back to the heap as a hole. A datagram that
is kept (a message a transaction or a lingering call holds) pins its hole, the next 64 KiB request
does not fit in it, and glibc's heap grows with holes it can neither reuse nor return: about
1.3 MiB a minute at 20 calls/s in `bench/soak.py`, with the Python objects and the memory malloc
has in use both flat. Here the datagram is read into a buffer allocated once and copied out at its
own length.

Writes to an IP address of the port's family go straight to `sendto`: `udp.Port.write` checks
every address three times over, one of them failing with an exception for each IPv4 datagram
(about 1 us per datagram sent; the answer of the shared `sippy.misc.is_ip` cache is one lookup).

`listen_udp` and `adopt_udp` stand for `reactor.listenUDP` and `reactor.adoptDatagramPort`. A
reactor that watches file descriptors gets this port; anything else (a test double) is asked
through its own method.
"""

from __future__ import annotations

import errno
import socket
from typing import Any

from twisted.internet import error, udp
from twisted.internet.interfaces import IReactorFDSet
from twisted.python import log

from sippy.misc import is_ip

__all__ = ("DatagramPort", "listen_udp", "adopt_udp")

# Errors that mean "nothing more to read now", and the one that reports an ICMP refusal.
_READ_AGAIN = (errno.EAGAIN, errno.EWOULDBLOCK, errno.EINTR)
_READ_REFUSED = (errno.ECONNREFUSED,)


class DatagramPort(udp.Port):
    """`udp.Port` reading with `recvfrom_into` one reused buffer of `maxPacketSize` bytes."""

    _buffer: memoryview

    def startListening(self) -> None:
        self._buffer = memoryview(bytearray(self.maxPacketSize))
        super().startListening()

    def doRead(self) -> None:
        """Called when the socket is ready for reading (same contract as udp.Port.doRead)."""
        buf = self._buffer
        read = 0
        while read < self.maxThroughput:
            try:
                size, addr = self.socket.recvfrom_into(buf)
            except OSError as ex:
                if ex.errno in _READ_AGAIN:
                    return
                if ex.errno in _READ_REFUSED:
                    if self._connectedAddr:
                        self.protocol.connectionRefused()
                    return
                raise
            read += size
            if self.addressFamily == socket.AF_INET6:
                # (host, port) only, as udp.Port hands it over.
                addr = addr[:2]
            try:
                self.protocol.datagramReceived(bytes(buf[:size]), addr)
            except BaseException:
                log.err()

    def write(self, datagram: bytes, addr: Any = None) -> Any:
        """`udp.Port.write`, without its address checks for an IP address of the port's family;
        any other address (a name, the other family, '<broadcast>') gets `udp.Port.write`'s own
        checks and errors. A send error is handled as `udp.Port.write` handles it."""
        if self._connectedAddr or addr is None:
            return super().write(datagram, addr)
        if not is_ip(addr[0], 6 if self.addressFamily == socket.AF_INET6 else 4):
            return super().write(datagram, addr)
        while True:
            try:
                return self.socket.sendto(datagram, addr)
            except OSError as ex:
                if ex.errno == errno.EINTR:
                    continue
                if ex.errno == errno.EMSGSIZE:
                    raise error.MessageLengthError("message too long") from ex
                if ex.errno == errno.ECONNREFUSED:
                    return None
                raise


def listen_udp(reactor: Any, port: int, protocol: Any, interface: str = "", maxPacketSize: int = 8192) -> Any:
    """`reactor.listenUDP(port, protocol, interface, maxPacketSize)` with a DatagramPort."""
    if not IReactorFDSet.providedBy(reactor):
        return reactor.listenUDP(port, protocol, interface=interface, maxPacketSize=maxPacketSize)
    p = DatagramPort(port, protocol, interface, maxPacketSize, reactor)
    p.startListening()
    return p


def adopt_udp(reactor: Any, fileno: int, family: int, protocol: Any, maxPacketSize: int = 8192) -> Any:
    """`reactor.adoptDatagramPort(fileno, family, protocol, maxPacketSize)` with a DatagramPort;
    the descriptor stays the caller's (the port holds a copy)."""
    if not IReactorFDSet.providedBy(reactor):
        return reactor.adoptDatagramPort(fileno, family, protocol, maxPacketSize=maxPacketSize)
    p = DatagramPort._fromListeningDescriptor(reactor, fileno, family, protocol, maxPacketSize=maxPacketSize)
    p.startListening()
    return p
