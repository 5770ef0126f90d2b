"""One RTPproxy as the B2BUA sees it: a contact, a transport, and whether it is online.

``Rtp_proxy_client(global_config, spath=contact)`` takes the contacts of ``-r``:

- ``/path``, ``unix:/path`` (a connection per command), ``cunix:/path`` (one kept connection);
- ``udp:host[:port]``, ``udp6:host[:port]`` (commands with cookies, retransmitted);
- ``tcp:host[:port]``, ``tcp6:host[:port]`` (one kept connection);

the port defaults to 22222 and IPv6 hosts may be bracketed. On start, and again every
``hrtb_retr_ival`` seconds while offline, the client asks ``V`` (protocol 20040107), then the
``VF`` capabilities and which of the ``dtls_gw``/``ice_lite`` modules it has (``modules``: what
WebRTC calls need); once they are answered it is ``online`` and sends the stats query every
``hrtb_ival`` seconds. A stats query without an answer takes it offline, so new calls go to other
proxies. ``hrtb_ival`` and ``hrtb_retr_ival`` are class attributes (Sippy's names): a program sets
them on the class before it makes clients.
"""

from __future__ import annotations

import socket
from typing import Any, Callable, Optional, Union

from sippy.misc import is_ip
from sippy.Rtp_proxy.Client.stream import Rtp_proxy_client_stream
from sippy.Rtp_proxy.Client.udp import ResultCallback, Rtp_proxy_client_udp
from sippy.SipLogger import SIPLOG_ERR, SIPLOG_INFO
from sippy.Time.Timeout import TimeoutInact, default_reactor

__all__ = ("Rtp_proxy_client", "CAPSTABLE", "MODULE_IDS", "PROTOCOL_VERSION", "DEFAULT_PORT", "parse_contact")

PROTOCOL_VERSION = "20040107"
DEFAULT_PORT = 22222
# VF version -> the capability attribute it sets (the ones call handling looks at).
CAPSTABLE = {
    "20071218": "copy_supported",
    "20080403": "stat_supported",
    "20081224": "tnot_supported",
    "20090810": "sbind_supported",
    "20150617": "wdnt_supported",
}
# Command-plane modules call handling uses, by name -> RTPproxy's fixed module id (the N of the
# `M<N>:<instance>` subcommand prefix, the same whether built in, as in rtp.io, or loaded by --dso).
MODULE_IDS = {"dtls_gw": 4, "ice_lite": 5}
# A module is there when a subcommand for it parses: `L` of a session that does not exist answers
# 0 (no such session, nothing created); with the module absent the command fails to parse (E...).
_MODULE_PROBE = "L sippy-module-probe 127.0.0.1 9 probe probe && M{}:1 S"
# One-line stats query (works on every transport): sessions created and destroyed so far.
STATS_QUERY = "Gv nsess_created nsess_destroyed"


class Contact:
    """A parsed ``-r`` contact: where to connect and how."""

    __slots__ = ("kind", "address", "family", "persistent")

    def __init__(
        self, kind: str, address: Union[str, tuple[str, int]], family: int, persistent: bool
    ) -> None:
        self.kind = kind
        self.address = address
        self.family = family
        self.persistent = persistent


def _hostport(rest: str, family: int) -> tuple[str, int]:
    if rest.startswith("["):
        host, bracket, tail = rest[1:].partition("]")
        if not bracket or (tail and not tail.startswith(":")):
            raise ValueError(f"bad RTPproxy address {rest!r}")
        port = tail[1:]
    elif family == socket.AF_INET6 and rest.count(":") > 1:
        # Unbracketed IPv6: a trailing :port only when the rest is still an address.
        head, _, tail = rest.rpartition(":")
        host, port = (head, tail) if tail.isdigit() and is_ip(head) else (rest, "")
    else:
        host, _, port = rest.partition(":")
    if not host or (port and not (port.isdigit() and 0 < int(port) < 65536)):
        raise ValueError(f"bad RTPproxy address {rest!r}")
    return _resolve(host, family), int(port) if port else DEFAULT_PORT


def _resolve(host: str, family: int) -> str:
    """An IP literal for host (resolved once, at start-up: answers are matched by address)."""
    if is_ip(host):
        return host
    try:
        return socket.getaddrinfo(host, None, family, socket.SOCK_DGRAM)[0][4][0]
    except OSError as exc:
        raise ValueError(f"cannot resolve RTPproxy host {host!r}: {exc}") from None


def parse_contact(spath: str) -> Contact:
    """Parse one ``-r`` contact; ValueError says what is wrong with it."""
    scheme, sep, rest = spath.partition(":")
    if not sep or scheme not in ("unix", "cunix", "udp", "udp6", "tcp", "tcp6"):
        scheme, rest = "unix", spath
    if scheme in ("unix", "cunix"):
        if not rest:
            raise ValueError(f"bad RTPproxy socket path {spath!r}")
        return Contact(scheme, rest, socket.AF_UNIX, scheme == "cunix")
    family = socket.AF_INET6 if scheme.endswith("6") else socket.AF_INET
    return Contact(scheme, _hostport(rest, family), family, True)


class Rtp_proxy_client:
    """Sippy's ``Rtp_proxy_client``: ``send_command``, ``online``, the ``*_supported`` capabilities
    (also as ``caps``), the last stats, ``shutdown``. ``notify_socket``: where the proxy reports
    media timeouts (the B2BUA's control socket), None for none."""

    hrtb_ival = 1.0
    hrtb_retr_ival = 60.0

    def __init__(
        self,
        global_config: dict,
        *,
        spath: str,
        reactor: Any = None,
        no_version_check: bool = False,
        on_state_change: Optional[Callable[[Rtp_proxy_client], None]] = None,
    ) -> None:
        self.global_config = global_config
        self.reactor = reactor if reactor is not None else default_reactor()
        self.spath = spath
        contact = parse_contact(spath)
        self.transport: Union[Rtp_proxy_client_udp, Rtp_proxy_client_stream]
        if contact.kind.startswith("udp"):
            assert isinstance(contact.address, tuple)
            self.transport = Rtp_proxy_client_udp(contact.address, contact.family, reactor=self.reactor)
        else:
            self.transport = Rtp_proxy_client_stream(
                contact.address, persistent=contact.persistent, reactor=self.reactor
            )
        # The media address the proxy stands for when its answers name none.
        if isinstance(contact.address, tuple):
            self.proxy_address = contact.address[0]
        else:
            self.proxy_address = global_config.get("_sip_address", "127.0.0.1")
        self.on_state_change = on_state_change
        self.notify_socket: Optional[str] = None
        self.online = False
        self.caps_done = False
        self.shut_down = False
        self.copy_supported = self.stat_supported = self.tnot_supported = False
        self.sbind_supported = self.wdnt_supported = False
        # The MODULE_IDS modules the proxy has (known once caps_done).
        self.modules: frozenset[str] = frozenset()
        self.sessions_created: Optional[int] = None
        self.active_sessions: Optional[int] = None
        self._timer: Optional[TimeoutInact] = None
        self._silence_logged = False
        if no_version_check:
            self.caps_done = self.online = True
        else:
            self.version_check()

    def __str__(self) -> str:
        return self.spath

    @property
    def caps(self) -> dict[str, bool]:
        """The VF capabilities as last answered (``caps_done``): attribute name -> supported."""
        return {attr: getattr(self, attr) for attr in CAPSTABLE.values()}

    def send_command(
        self, command: str, result_callback: Optional[ResultCallback] = None, *params: Any
    ) -> None:
        """Send one command; ``result_callback(result, *params)`` gets the answer text, or None
        when none came (or the client is shut down)."""
        if self.shut_down:
            if result_callback is not None:
                result_callback(None, *params)
            return
        self.transport.send_command(command, result_callback, *params)

    # ----- health -----

    def _arm(self, cb: Callable[[], None], ival: float) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer = TimeoutInact(cb, ival, reactor=self.reactor)
        self._timer.spread_runs(0.1)
        self._timer.go()

    def version_check(self) -> None:
        if not self.shut_down:
            self.send_command("V", self._version_reply)

    def _version_reply(self, version: Optional[str]) -> None:
        if self.shut_down:
            return
        if version == PROTOCOL_VERSION:
            self._check_caps()
            return
        self.go_offline()

    def _check_caps(self) -> None:
        """Ask every VF capability and module; online once all are answered, offline if one is
        not."""
        waiting = set(CAPSTABLE) | set(MODULE_IDS)
        self.modules = frozenset()
        for vers in CAPSTABLE:
            self.send_command(f"VF {vers}", self._caps_reply, vers, waiting)
        for name, mod_id in MODULE_IDS.items():
            self.send_command(_MODULE_PROBE.format(mod_id), self._caps_reply, name, waiting)

    def _caps_reply(self, result: Optional[str], key: str, waiting: set[str]) -> None:
        if self.shut_down or key not in waiting:
            return
        if result is None:
            # The proxy went away between V and VF: the late answers of this round count for nothing.
            waiting.clear()
            self.go_offline()
            return
        if key in MODULE_IDS:
            if not result.startswith("E"):
                self.modules |= {key}
        else:
            setattr(self, CAPSTABLE[key], result == "1")
        waiting.discard(key)
        if not waiting:
            self.caps_done = True
            self.go_online()

    def heartbeat(self) -> None:
        if not self.shut_down:
            self.send_command(STATS_QUERY, self._heartbeat_reply)

    def _heartbeat_reply(self, stats: Optional[str]) -> None:
        if self.shut_down or not self.online:
            return
        if stats is None:
            self.go_offline()
            return
        values = dict(x.partition("=")[::2] for x in stats.split())
        created, destroyed = values.get("nsess_created", ""), values.get("nsess_destroyed", "")
        if created.isdigit() and destroyed.isdigit():
            self.sessions_created = int(created)
            self.active_sessions = int(created) - int(destroyed)
        self._arm(self.heartbeat, self.hrtb_ival)

    def go_online(self) -> None:
        if self.shut_down or self.online:
            return
        self.online = True
        self._silence_logged = False
        if self.modules:
            mods = f"modules: {' '.join(sorted(self.modules))}"
        else:
            mods = "without dtls_gw/ice_lite: WebRTC calls get 488"
        self._log(f"RTPproxy {self.spath} is online, {mods}", SIPLOG_INFO)
        if self.on_state_change is not None:
            self.on_state_change(self)
        self.heartbeat()

    def go_offline(self) -> None:
        """No answer: no new calls here; version checks every ``hrtb_retr_ival`` until it answers."""
        if self.shut_down:
            return
        was_online, self.online = self.online, False
        self.caps_done = False
        self.active_sessions = None
        if was_online or not self._silence_logged:
            self._silence_logged = True
            self._log(f"RTPproxy {self.spath} does not answer: offline", SIPLOG_ERR)
        if was_online and self.on_state_change is not None:
            self.on_state_change(self)
        self._arm(self.version_check, self.hrtb_retr_ival)

    def shutdown(self) -> None:
        """Stop the heartbeat and close the transport; calling it twice is harmless."""
        if self.shut_down:
            return
        self.shut_down = True
        self.online = False
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self.transport.shutdown()

    def _log(self, msg: str, level: int) -> None:
        logger = self.global_config.get("_sip_logger")
        if logger is not None and logger.isEnabledFor(level):
            logger.write(msg, level=level)
