"""One call's media anchored on an RTPproxy.

``Rtp_proxy_session(global_config, call_id=..., notify_tag=...)`` picks one of the online proxies
of ``global_config['_rtp_proxy_clients']`` (or Sippy's single ``'rtp_proxy_client'``) at random
(``RtpProxyError`` when none is online).
Each RTP media line of the call is one proxy session, ``<call_id>-<index>``, with two sides:

- ``on_caller_sdp_change(body, cb)``: the caller's SDP (offer, or answer to a callee's
  re-INVITE) becomes ``U`` for the caller's side; the body, rewritten to the proxy's address and
  port, goes to the callee;
- ``on_callee_sdp_change(body, cb)``: the same for the callee's side (``U`` with the tags the
  other way round: Sippy's way of saying ``L`` that also takes a notify socket).

``cb(body)`` gets the rewritten body, or ``cb(None)`` when the proxy did not answer or refused
(the call then fails). Commands of the session go out in order (``Rtp_proxy_cmd_sequencer``);
``delete()`` sends ``D`` for every media line once the commands before it are done.

With ``notify_tag`` and a client whose ``notify_socket`` is set and that supports notifications,
each ``U`` asks the proxy to write ``<notify_tag> <index>`` to that socket when media stops.
"""

from __future__ import annotations

import random
from secrets import token_hex
from typing import Any, Callable, Optional
from urllib.parse import quote

from sippy.Exceptions.RtpProxyError import RtpProxyError
from sippy.Exceptions.SipParseError import SdpParseError
from sippy.Rtp_proxy.Cmd.sequencer import Rtp_proxy_cmd_sequencer
from sippy.SdpBody import SdpBody
from sippy.SdpOrigin import SdpOrigin

__all__ = ("Rtp_proxy_session", "AV_TRTYPES", "SUPPORTED_TRTYPES")

AV_TRTYPES = ("rtp/avp", "rtp/savp", "rtp/avpf", "rtp/savpf", "udp/tls/rtp/savp", "udp/tls/rtp/savpf")
# Media the proxy relays (datagrams); anything else (TCP media, ...) passes untouched.
SUPPORTED_TRTYPES = AV_TRTYPES + ("udp", "udptl")
_HOLD_ADDRESSES = ("0.0.0.0", "::")

SdpCallback = Callable[[Any], None]


class _Side:
    """One side of the relay: whether the proxy knows it, and the o= line it is shown."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.session_exists = False
        self.origin = SdpOrigin()
        self.oh_remote: Optional[SdpOrigin] = None
        # Address family (IP4/IP6) of each media line this side told the proxy about.
        self.families: dict[int, str] = {}


class _Update:
    """One SDP body being rewritten: one U per media line, the body is done when all answered."""

    __slots__ = ("body", "sdp", "sects", "waiting", "failed", "result_callback")

    def __init__(self, body: Any, sdp: SdpBody, sects: list, result_callback: SdpCallback) -> None:
        self.body = body
        self.sdp = sdp
        self.sects = sects
        self.waiting = len(sects)
        self.failed = False
        self.result_callback = result_callback


class Rtp_proxy_session:
    """Sippy's ``Rtp_proxy_session``: ``caller``/``callee`` sides, ``call_id``, ``from_tag``,
    ``to_tag``, ``notify_tag``, ``rtp_proxy_client``, ``on_caller_sdp_change``,
    ``on_callee_sdp_change``, ``delete``."""

    AV_TRTYPES = AV_TRTYPES
    SUPPORTED_TRTYPES = SUPPORTED_TRTYPES

    def __init__(
        self,
        global_config: dict,
        call_id: Optional[str] = None,
        from_tag: Optional[str] = None,
        to_tag: Optional[str] = None,
        notify_tag: Optional[str] = None,
    ) -> None:
        clients = global_config.get("_rtp_proxy_clients")
        if clients is None:
            # Sippy programs with one proxy set it alone.
            single = global_config.get("rtp_proxy_client")
            clients = [single] if single is not None else []
        online = [c for c in clients if c.online]
        if not online:
            names = ", ".join(str(c) for c in clients) or "none configured"
            raise RtpProxyError(f"no RTPproxy online ({names})")
        self.global_config = global_config
        self.rtp_proxy_client = random.choice(online)
        self.rtpp_seq = Rtp_proxy_cmd_sequencer(self.rtp_proxy_client)
        # The media address for answers that name none (kept: the client is let go at delete()).
        self.proxy_address: str = self.rtp_proxy_client.proxy_address
        self.call_id = call_id if call_id is not None else token_hex(16)
        self.from_tag = from_tag if from_tag is not None else token_hex(16)
        self.to_tag = to_tag if to_tag is not None else token_hex(16)
        self.notify_socket: Optional[str] = self.rtp_proxy_client.notify_socket
        self.notify_tag = notify_tag
        # The media line whose session the proxy already ended (it reported the timeout).
        self.media_timeout_index: Optional[int] = None
        self.max_index = -1
        # Why the last update failed (the proxy's answer, or "no answer"), for the log.
        self.last_error: Optional[str] = None
        # The tag of the side whose U created the proxy sessions: it alone names them in D.
        self._first_tag: Optional[str] = None
        self.caller = _Side("caller")
        self.callee = _Side("callee")

    # ----- SDP hooks (what the UA calls) -----

    def on_caller_sdp_change(self, sdp_body: Any, result_callback: SdpCallback) -> None:
        self._on_sdp_change(self.caller, sdp_body, result_callback)

    def on_callee_sdp_change(self, sdp_body: Any, result_callback: SdpCallback) -> None:
        self._on_sdp_change(self.callee, sdp_body, result_callback)

    def _on_sdp_change(self, side: _Side, body: Any, result_callback: SdpCallback) -> None:
        if self.rtp_proxy_client is None:
            result_callback(None)
            return
        try:
            sdp = body.getContent()
        except SdpParseError:
            result_callback(None)
            return
        if not isinstance(sdp, SdpBody):
            result_callback(body)  # not SDP: nothing to relay
            return
        sects = [s for s in sdp.sections if s.m_header.transport.lower() in SUPPORTED_TRTYPES]
        if not sects:
            result_callback(body)
            return
        up = _Update(body, sdp, sects, result_callback)
        for index, sect in enumerate(sects):
            self.max_index = max(self.max_index, index)
            self.rtpp_seq.send_command(self._u_command(side, sect, index), self._u_result, side, up, index)

    def _u_command(self, side: _Side, sect: Any, index: int) -> str:
        other = self.callee if side is self.caller else self.caller
        mine, theirs = (self.from_tag, self.to_tag) if side is self.caller else (self.to_tag, self.from_tag)
        if self._first_tag is None:
            self._first_tag = mine
        side.families[index] = sect.c_header.atype
        opts = "6" if sect.c_header.atype == "IP6" else ""
        cmd = f"U{opts} {self.call_id}-{index} {sect.c_header.addr} {sect.m_header.port} {mine}"
        if other.session_exists:
            cmd += f" {theirs}"
        if (
            self.notify_socket is not None
            and self.notify_tag is not None
            and self.rtp_proxy_client.tnot_supported
        ):
            cmd += f" {self.notify_socket} {quote(self.get_notify_tag(index))}"
        return cmd

    def get_notify_tag(self, index: int) -> str:
        """What the proxy writes to the notify socket when media line ``index`` times out."""
        return f"{self.notify_tag} {index}"

    def _u_result(self, result: Optional[str], side: _Side, up: _Update, index: int) -> None:
        if up.failed:
            return
        parts = result.split() if result is not None else []
        if not parts or not parts[0].isdigit() or int(parts[0]) == 0:
            self.last_error = "no answer" if result is None else repr(result)
            up.failed = True
            up.result_callback(None)
            return
        side.session_exists = True
        sect = up.sects[index]
        port = int(parts[0])
        address = parts[1] if len(parts) > 1 else self.proxy_address
        family = "IP6" if (len(parts) > 2 and parts[2] == "6") or ":" in address else "IP4"
        hold = sect.c_header.addr in _HOLD_ADDRESSES
        sect.c_header.atype, sect.c_header.addr = family, address
        if sect.m_header.port != 0:
            sect.m_header.port = port
        if hold and sect.getDirection() in (None, "sendrecv"):
            # Old-style hold (c=0.0.0.0): once it is the proxy's address, the attribute says it.
            sect.setDirection("sendonly")
        for i, a in enumerate(sect.a_headers):
            if a.name == "rtcp":
                sect.a_headers[i] = type(a)(f"rtcp:{port + 1} IN {family} {address}")
        up.waiting -= 1
        if up.waiting == 0:
            self._origin(side, up.sdp)
            up.body.needs_update = False
            up.result_callback(up.body)

    @staticmethod
    def _origin(side: _Side, sdp: SdpBody) -> None:
        """Show the other party our o= line (topology hiding), versioned as the original is."""
        remote = sdp.o_header
        if remote is None:
            return
        if side.oh_remote is not None:
            if side.oh_remote.session_id != remote.session_id:
                side.origin = SdpOrigin()
            elif side.oh_remote.version != remote.version:
                side.origin.version += 1
        side.oh_remote = remote.getCopy()
        sdp.o_header = side.origin.getCopy()

    # ----- end of the call -----

    def callee_reset(self) -> None:
        """Failover: the callee of the abandoned route gets no more of the caller's media (port 0:
        no destination; the proxy keeps its ports, so what the caller was told stays valid); the
        next route's answer gives the callee side its new address."""
        if self.rtp_proxy_client is None:
            return
        for index, atype in self.callee.families.items():
            opts, nowhere = ("6", "::1") if atype == "IP6" else ("", "127.0.0.1")
            self.rtpp_seq.send_command(
                f"U{opts} {self.call_id}-{index} {nowhere} 0 {self.to_tag} {self.from_tag}"
            )
        self.callee.families.clear()

    def delete(self) -> None:
        """``D`` for every media line (after the commands still queued); then the session is inert."""
        if self.rtp_proxy_client is None:
            return
        # The creating side's tag alone names the whole session (with both tags, a session whose
        # other side was never set up would be left alone).
        for index in range(self.max_index + 1):
            if index != self.media_timeout_index:
                self.rtpp_seq.send_command(f"D {self.call_id}-{index} {self._first_tag}")
        self.rtp_proxy_client = None
