"""The transport layer's contract: what every listening transport (UDP, WSS; later TCP, TLS) is to
the transaction manager, in Sippy 2.x's names so that programs written for them run.

A transport is a `Network_server` subclass. It hands each message it receives to
`uopts.data_callback(data, ra, server, rtime)`, where `ra` is a `Remote_address` (the peer and the
transport it came by), and sends with `send_to(data, address)`. A connection transport reports a
message it cannot deliver (no such connection, or the connection went) through `send_to`'s return
value and `uopts.error_callback`, so that the transaction waiting on it ends (503) instead of
waiting for a timer. docs/internals.md "Transport" has the whole contract.
"""

from __future__ import annotations

import copy
import random
import sys
from typing import Any, Callable, Iterator, Optional, Union

from sippy.misc import sip_hostport
from sippy.SipConf import SipConf
from sippy.Time.MonoTime import MonoTime


class Remote_address:
    """Where a message came from: `address` (host, port), `transport` ('udp', 'wss', ...) and
    `received`, the host a Via `received=` names (RFC 3261 18.2.1). A connection transport whose
    peers cannot be reached by address (WSS, RFC 7118 section 5) sets `received` to the name of the
    connection, which the transaction layer then writes as the host of the peer's Contact, so that
    later requests to that Contact come back to the same connection.

    It reads as the (host, port) pair too (`ra[0]`, `host, port = ra`), for code written for the
    bare tuples data_callback used to pass.
    """

    __slots__ = ("address", "transport", "received")

    def __init__(self, address: tuple[str, int], transport: str) -> None:
        self.address = address
        self.transport = transport
        self.received = address[0]

    def __str__(self) -> str:
        return f"{self.transport}:{sip_hostport(*self.address)}"

    def __repr__(self) -> str:
        return f"Remote_address({self.address!r}, {self.transport!r})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Remote_address):
            return NotImplemented
        return (self.address, self.transport, self.received) == (
            other.address,
            other.transport,
            other.received,
        )

    def __hash__(self) -> int:
        return hash((self.address, self.transport, self.received))

    def __getitem__(self, i: int) -> Any:
        return self.address[i]

    def __iter__(self) -> Iterator[Any]:
        return iter(self.address)

    def __len__(self) -> int:
        return 2


# What a transport's send_to() takes: a (host, port) pair, or the Remote_address a message came
# from (for a connection transport, the connection to answer on).
Address = Union[tuple[str, int], Remote_address]
DataCallback = Callable[[bytes, Remote_address, "Network_server", MonoTime], Any]
# error_callback(address, server): a message to address could not be delivered (connection gone).
ErrorCallback = Callable[[Address, "Network_server"], Any]


class Network_server_opts:
    """What every transport is told: where to listen (`laddress`, (host, port); port 0 picks a free
    one), whom to hand messages to (`data_callback`) and to report undeliverable ones to
    (`error_callback`, connection transports). `direct_dispatch` is Sippy's (messages are always
    handled on the reactor here, so it changes nothing). The impairment knobs drop a share of the
    messages sent / received (`ploss_out_rate`, `ploss_in_rate`) and delay the others by a uniform
    0..max seconds (`pdelay_out_max`, `pdelay_in_max`): for tests and demos; `impair_seed` seeds
    their random generator (None: unseeded), so that a run can be repeated.
    """

    def __init__(
        self,
        laddress: tuple[Optional[str], int],
        data_callback: Optional[DataCallback],
        *,
        direct_dispatch: bool = False,
        ploss_out_rate: float = 0.0,
        pdelay_out_max: float = 0.0,
        ploss_in_rate: float = 0.0,
        pdelay_in_max: float = 0.0,
        error_callback: Optional[ErrorCallback] = None,
        impair_seed: Optional[int] = None,
    ) -> None:
        self.laddress = laddress
        self.data_callback = data_callback
        self.error_callback = error_callback
        self.direct_dispatch = direct_dispatch
        self.ploss_out_rate = ploss_out_rate
        self.pdelay_out_max = pdelay_out_max
        self.ploss_in_rate = ploss_in_rate
        self.pdelay_in_max = pdelay_in_max
        self.impair_seed = impair_seed

    def getCopy(self) -> Network_server_opts:
        """A copy a server can keep and change (its actual port) without touching the caller's."""
        return copy.copy(self)

    def isWildCard(self) -> bool:
        return False


class Network_server_stats:
    """Counters for the control socket: messages in and out, errors, messages dropped on purpose
    (the impairment knobs). Sippy's UDP names (`dgrams_in`, `dgrams_out`) are the same counters."""

    __slots__ = ("dgrams_in", "dgrams_out", "errors", "emulated_losses")

    def __init__(self) -> None:
        self.dgrams_in = 0
        self.dgrams_out = 0
        self.errors = 0
        self.emulated_losses = 0


class Network_server:
    """Base of every listening transport.

    Class attributes say what the transaction layer needs to know of it:
    `transport` (lower case, as in Via and `transport=`: 'udp', 'wss'; later 'tcp', 'tls'),
    `is_reliable` (RFC 3261 17: no retransmissions, timers D/I/J/K zero, answers on the connection),
    `uri_transport` (the `transport=` parameter our Contact carries over it; None: none, as UDP),
    `names_connections` (peers are reached only over the connection they opened; see
    Remote_address.received).
    """

    transport: str = ""
    is_reliable: bool = False
    uri_transport: Optional[str] = None
    names_connections: bool = False

    def __init__(self, global_config: Any, uopts: Network_server_opts, reactor: Any = None) -> None:
        from sippy.Time.Timeout import default_reactor

        self.global_config = global_config if global_config is not None else {}
        self.uopts = uopts.getCopy()
        self.reactor = reactor if reactor is not None else default_reactor()
        self.stats = Network_server_stats()
        o = self.uopts
        self._impair_out = o.ploss_out_rate > 0 or o.pdelay_out_max > 0
        self._impair_in = o.ploss_in_rate > 0 or o.pdelay_in_max > 0
        # Only an impaired server draws random numbers.
        self._rng = random.Random(o.impair_seed) if self._impair_out or self._impair_in else None

    def _held(self, loss: float, delay_max: float, deliver: Callable[..., None], *args: Any) -> bool:
        """Impair one message (when `_impair_in` / `_impair_out` say so): True when it was dropped
        (counted in stats.emulated_losses) or handed to `deliver` for later."""
        assert self._rng is not None
        if loss > 0 and self._rng.random() < loss:
            self.stats.emulated_losses += 1
            return True
        if delay_max > 0:
            self.reactor.callLater(self._rng.random() * delay_max, deliver, *args)
            return True
        return False

    def send_to(self, data: Union[bytes, str], address: Address) -> bool:
        """Queue data for address (never blocks). False when it cannot be sent at all (a
        connection transport with no such connection); a failure found later goes to
        `uopts.error_callback`."""
        raise NotImplementedError

    def getSIPaddr(self, raddress: Optional[Address] = None) -> tuple[str, int]:
        """Host and port to advertise in Via/Contact of a message to raddress (a wildcard
        listener advertises this host's address)."""
        host, port = self.uopts.laddress
        if host in (None, "0.0.0.0", "::"):
            host = SipConf.my_address
        return (host, port)  # type: ignore[return-value]

    def addr2str(self, address: Address) -> str:
        """How logs and the control socket show a peer of this transport: 'udp:host:port'."""
        if isinstance(address, Remote_address):
            address = address.address
        return f"{self.transport}:{sip_hostport(*address)}"

    def _log_args(self, level: int, *args: Any) -> None:
        """Write one line to the SIP logger of global_config (stderr without one)."""
        logger = self.global_config.get("_sip_logger")
        text = "".join(str(x) for x in args)
        if logger is not None:
            logger.write(text, level=level)
        else:
            sys.stderr.write(text + "\n")

    def reportFailed(self, address: Address) -> None:
        """A message to address could not be delivered: count it, tell the error_callback."""
        self.stats.errors += 1
        cb = self.uopts.error_callback
        if cb is not None:
            cb(address, self)

    def shutdown(self) -> Any:
        """Stop listening and sending."""
        raise NotImplementedError
