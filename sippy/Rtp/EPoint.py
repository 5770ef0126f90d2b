"""One RTP endpoint: a UDP socket on the reactor, an output worker pacing the program's audio to
the peer, and an input stream decoding the peer's audio for the program."""

from __future__ import annotations

import errno
import weakref
from functools import lru_cache
from typing import Any, Callable, Optional

from twisted.internet.error import CannotListenError
from twisted.internet.protocol import DatagramProtocol

from sippy.DatagramPort import listen_udp
from sippy.misc import is_ip
from sippy.Time.Timeout import default_reactor

from .Conf import RTPConf
from .Core.AudioChunk import AudioChunk
from .Handlers import RTPHandlers
from .Params import RTPParams, canonicalize_rtp_address

# Asked for every packet sent: the few targets a process has are remembered.
_is_ip = lru_cache(maxsize=256)(is_ip)


class _RTPProtocol(DatagramProtocol):
    # Holds its endpoint weakly: a program that drops an endpoint without shutdown() still gets
    # its port closed (by RTPEPoint.__del__) instead of a socket the reactor keeps forever.
    def __init__(self, epoint: RTPEPoint) -> None:
        self._epoint = weakref.ref(epoint)

    def datagramReceived(self, datagram: bytes, addr: Any) -> None:
        epoint = self._epoint()
        if epoint is not None:
            epoint.rtp_received(datagram, addr, epoint.reactor.seconds())


def _weak_send(epoint: RTPEPoint) -> Callable[[bytes], None]:
    ref = weakref.ref(epoint)

    def send_pkt(pkt: bytes) -> None:
        target = ref()
        if target is not None:
            target.send_pkt(pkt)

    return send_pkt


class RTPEPoint:
    """`rtp_params.rtp_lport` holds the bound port once made. Sends nothing while
    `rtp_target` is None; receives only from `rtp_target` while one is set.
    Counters: `nsend_errors` (packets the socket refused), `nforeign` (datagrams from elsewhere)."""

    def __init__(
        self,
        rc: RTPConf,
        rtp_params: RTPParams,
        audio_in: Callable[[AudioChunk], Any],
        handlers: Optional[RTPHandlers] = None,
        reactor: Any = None,
    ) -> None:
        self.rtp_params = rtp_params
        self.handlers = handlers if handlers is not None else RTPHandlers()
        self.reactor = reactor if reactor is not None else default_reactor()
        self.writer: Any = None
        self.rserv: Any = None
        self._sock: Any = None
        self.nsend_errors = 0
        self.nforeign = 0
        self._palloc = rc.palloc
        self.rsess = self.handlers.rtp_instream_cls(rtp_params, audio_in)
        self.rserv = self._listen(rtp_params, None)
        if rtp_params.rtp_target is not None:
            self.writer_setup()

    def _listen(self, rtp_params: RTPParams, preferred_port: Optional[int]) -> Any:
        lport = rtp_params.rtp_lport
        palloc = self._palloc if lport == 0 else lport
        ports: Any
        if preferred_port is not None:
            ports = _preferred_then(preferred_port, palloc)
        elif callable(palloc):
            ports = (palloc(ntry) for ntry in range(1 << 30))
        else:
            ports = (int(palloc),)
        protocol = _RTPProtocol(self)
        for port in ports:
            try:
                rserv = listen_udp(self.reactor, port, protocol, rtp_params.bind_laddr)
            except CannotListenError as ex:
                if getattr(ex.socketError, "errno", None) != errno.EADDRINUSE or not callable(palloc):
                    raise
                continue
            rtp_params.rtp_lport = rserv.getHost().port
            self._sock = rserv.socket
            return rserv
        raise AssertionError("unreachable: the allocator raises when out of ports")

    def writer_setup(self) -> None:
        writer = self.handlers.writer_cls(self.rtp_params)
        writer.set_pkt_send_f(_weak_send(self))
        self.writer = writer
        writer.start(self.reactor)

    def _writer_stop(self) -> None:
        writer, self.writer = self.writer, None
        if writer is not None:
            writer.end()

    def send_pkt(self, pkt: bytes) -> None:
        """Straight to the socket: Twisted's write() re-validates the address on every packet,
        a tenth of the CPU of a stream. A host name is never resolved here (it would block)."""
        target = self.rtp_params.rtp_target
        sock = self._sock
        if sock is None or target is None:
            return
        if not _is_ip(target[0]):
            self.nsend_errors += 1
            return
        try:
            sock.sendto(pkt, target)
        except OSError:  # full buffer, unreachable peer, wrong family: this packet is lost
            self.nsend_errors += 1

    def rtp_received(self, data: bytes, address: Any, rtime: float) -> None:
        target = self.rtp_params.rtp_target
        if target is not None and canonicalize_rtp_address(address) != target:
            self.nforeign += 1
            return
        self.rsess.rtp_received(data, address, rtime)

    def update(self, rtp_params: RTPParams) -> None:
        """Apply new stream parameters (a re-INVITE): target, codec, ptime, address family."""
        mine = self.rtp_params
        new_stream = rtp_params.codec is not mine.codec or (rtp_params.out_ptime, rtp_params.out_sr) != (
            mine.out_ptime,
            mine.out_sr,
        )
        proto_changed = rtp_params.rtp_proto != mine.rtp_proto
        target_changed = rtp_params.rtp_target != mine.rtp_target
        mine.rtp_target = rtp_params.rtp_target
        mine.codec, mine.out_ptime, mine.out_sr = rtp_params.codec, rtp_params.out_ptime, rtp_params.out_sr
        if proto_changed:
            mine.rtp_proto = rtp_params.rtp_proto
            mine.rtp_laddr = rtp_params._rtp_laddr
            self._rebind()
        if mine.rtp_target is None or new_stream or proto_changed:
            self._writer_stop()
        if mine.rtp_target is not None and self.writer is None and self.rserv is not None:
            self.writer_setup()
        if new_stream or target_changed or proto_changed:
            self.rsess.stream_update(mine)

    def _rebind(self) -> None:
        """Move to a socket of the new address family, on the same port if it is free."""
        old, self.rserv, self._sock = self.rserv, None, None
        if old is None:
            return
        port = old.getHost().port
        _close(old)
        self.rserv = self._listen(self.rtp_params, port)

    def connect(self, audio_in: Callable[[AudioChunk], Any]) -> None:
        self.rsess.stream_connect(audio_in)

    def soundout(self, chunk: AudioChunk) -> Any:
        """Queue audio for the peer; dropped while there is no target."""
        if self.writer is None:
            return None
        return self.writer.soundout(chunk)

    def shutdown(self) -> None:
        """Stop sending and close the socket; safe to call more than once."""
        self._writer_stop()
        rserv, self.rserv, self._sock = self.rserv, None, None
        if rserv is not None:
            _close(rserv)

    def __del__(self) -> None:
        if getattr(self, "rserv", None) is not None:
            self.shutdown()


def _close(rserv: Any) -> None:
    """Stop listening and release the port now: Twisted closes the socket only on the next reactor
    turn, while a program (and a rebind to the other family on the same port) expects it free at
    once. Closing it here is safe: stopListening() has taken it out of the reactor already."""
    rserv.stopListening()
    sock = getattr(rserv, "socket", None)
    if sock is not None:
        sock.close()


def _preferred_then(preferred: int, palloc: Any) -> Any:
    yield preferred
    if callable(palloc):
        for ntry in range(1 << 30):
            yield palloc(ntry)
