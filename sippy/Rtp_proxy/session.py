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

A kind of session that needs the proxy's modules (``Session/webrtc.py``) overrides
``can_serve``/``unusable`` (which proxies it may use), ``_section_extras`` (where to send and the
``&&`` subcommands of each ``U``), ``_subcommands_done`` (their answers; an edit of the section) and
``_body_done``. A body it cannot take, or one the proxy's modules refuse, fails with ``refusal``
set (488) instead of 503.
"""

from __future__ import annotations

import random
from secrets import token_hex
from typing import Any, Callable, NamedTuple, Optional, Sequence
from urllib.parse import quote

from sippy.Exceptions.RtpProxyError import RtpProxyError
from sippy.Exceptions.SipParseError import SdpParseError
from sippy.Rtp_proxy.Cmd.sequencer import Rtp_proxy_cmd_sequencer
from sippy.SdpBody import SdpBody
from sippy.SdpOrigin import SdpOrigin

__all__ = ("Rtp_proxy_session", "Side", "SectionExtras", "NOT_ACCEPTABLE", "AV_TRTYPES", "SUPPORTED_TRTYPES")

AV_TRTYPES = ("rtp/avp", "rtp/savp", "rtp/avpf", "rtp/savpf", "udp/tls/rtp/savp", "udp/tls/rtp/savpf")
# Media the proxy relays (datagrams); anything else (TCP media, ...) passes untouched.
SUPPORTED_TRTYPES = AV_TRTYPES + ("udp", "udptl")
_HOLD_ADDRESSES = ("0.0.0.0", "::")
# The answer for a body the proxy was told about but refused (a module said no, or the body lacks
# what the module needs): the offer is what is wrong, not the proxy's health.
NOT_ACCEPTABLE = (488, "Not Acceptable Here")

SdpCallback = Callable[[Any], None]


class Side:
    """One side of the relay: whether the proxy knows it, and the o= line it is shown."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.session_exists = False
        self.origin = SdpOrigin()
        self.oh_remote: Optional[SdpOrigin] = None
        # Address family (IP4/IP6) of each media line this side told the proxy about.
        self.families: dict[int, str] = {}


class SectionExtras(NamedTuple):
    """What one media line's ``U`` tells the proxy besides the tags: where to send, and the
    ``&&`` subcommands for the proxy's modules."""

    address: str
    port: int
    subcommands: Sequence[str]


class _Update:
    """One SDP body being rewritten: one U per media line, the body is done when all answered."""

    __slots__ = ("body", "sdp", "sects", "extras", "waiting", "failed", "result_callback")

    def __init__(
        self, body: Any, sdp: SdpBody, sects: list, extras: list[SectionExtras], result_callback: SdpCallback
    ) -> None:
        self.body = body
        self.sdp = sdp
        self.sects = sects
        self.extras = extras
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
        usable = [c for c in online if self.can_serve(c)]
        if not usable:
            raise self.unusable(online)
        self.global_config = global_config
        self.rtp_proxy_client = random.choice(usable)
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
        # (code, reason) for the caller when that failure was a refusal of the SDP (else 503).
        self.refusal: Optional[tuple[int, str]] = None
        # The tag of the side whose U created the proxy sessions: it alone names them in D.
        self._first_tag: Optional[str] = None
        self.caller = Side("caller")
        self.callee = Side("callee")

    @classmethod
    def can_serve(cls, client: Any) -> bool:
        """Whether an online proxy can carry this kind of session (any can, here)."""
        return True

    @classmethod
    def unusable(cls, online: list) -> RtpProxyError:
        """What to raise when proxies are online but none ``can_serve``."""
        return RtpProxyError(f"no usable RTPproxy ({', '.join(str(c) for c in online)})")

    # ----- SDP hooks (what the UA calls) -----

    def on_caller_sdp_change(self, sdp_body: Any, result_callback: SdpCallback) -> None:
        self._on_sdp_change(self.caller, sdp_body, result_callback)

    def on_callee_sdp_change(self, sdp_body: Any, result_callback: SdpCallback) -> None:
        self._on_sdp_change(self.callee, sdp_body, result_callback)

    def _on_sdp_change(self, side: Side, body: Any, result_callback: SdpCallback) -> None:
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
        try:
            extras = [self._section_extras(side, sdp, sect, index) for index, sect in enumerate(sects)]
        except SdpParseError as exc:
            # An offer or answer the proxy cannot be told about: refused as such, nothing set up.
            self.last_error = str(exc)
            self.refusal = NOT_ACCEPTABLE
            result_callback(None)
            return
        up = _Update(body, sdp, sects, extras, result_callback)
        for index, sect in enumerate(sects):
            self.max_index = max(self.max_index, index)
            self.rtpp_seq.send_command(
                self._u_command(side, sect, index, extras[index]), self._u_result, side, up, index
            )

    def _section_extras(self, side: Side, sdp: SdpBody, sect: Any, index: int) -> SectionExtras:
        """Where the proxy sends this section's media, and the ``&&`` subcommands its ``U``
        carries (none here; a subclass adds module commands). SdpParseError refuses the body."""
        return SectionExtras(sect.c_header.addr, sect.m_header.port, ())

    def _u_command(self, side: Side, sect: Any, index: int, extras: SectionExtras) -> str:
        other = self.callee if side is self.caller else self.caller
        mine, theirs = (self.from_tag, self.to_tag) if side is self.caller else (self.to_tag, self.from_tag)
        if self._first_tag is None:
            self._first_tag = mine
        side.families[index] = sect.c_header.atype
        opts = "6" if sect.c_header.atype == "IP6" else ""
        cmd = f"U{opts} {self.call_id}-{index} {extras.address} {extras.port} {mine}"
        if other.session_exists:
            cmd += f" {theirs}"
        if (
            self.notify_socket is not None
            and self.notify_tag is not None
            and self.rtp_proxy_client.tnot_supported
        ):
            cmd += f" {self.notify_socket} {quote(self.get_notify_tag(index))}"
        if extras.subcommands:
            cmd = " && ".join((cmd, *extras.subcommands))
        return cmd

    def get_notify_tag(self, index: int) -> str:
        """What the proxy writes to the notify socket when media line ``index`` times out."""
        return f"{self.notify_tag} {index}"

    def _u_result(self, result: Optional[str], side: Side, up: _Update, index: int) -> None:
        if up.failed:
            return
        head, *subresults = result.split("&&") if result is not None else ("",)
        parts = head.split()
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
        try:
            finish = self._subcommands_done(side, index, up.extras[index], [r.strip() for r in subresults])
        except RtpProxyError as exc:
            # The session exists but a module refused its part: delete() at the call's end
            # removes it; the call is refused, never half set up.
            self.last_error = str(exc)
            self.refusal = NOT_ACCEPTABLE
            up.failed = True
            up.result_callback(None)
            return
        hold = up.extras[index].address in _HOLD_ADDRESSES
        sect.c_header.atype, sect.c_header.addr = family, address
        if sect.m_header.port != 0:
            sect.m_header.port = port
        if hold and sect.getDirection() in (None, "sendrecv"):
            # Old-style hold (c=0.0.0.0): once it is the proxy's address, the attribute says it.
            sect.setDirection("sendonly")
        for i, a in enumerate(sect.a_headers):
            if a.name == "rtcp":
                sect.a_headers[i] = type(a)(f"rtcp:{port + 1} IN {family} {address}")
        if finish is not None:
            finish(up.sdp, sect)
        up.waiting -= 1
        if up.waiting == 0:
            self._origin(side, up.sdp)
            self._body_done(side, up.sdp)
            up.body.needs_update = False
            up.result_callback(up.body)

    def _subcommands_done(
        self, side: Side, index: int, extras: SectionExtras, subresults: list[str]
    ) -> Optional[Callable[[SdpBody, Any], None]]:
        """The answers to the subcommands of a ``U`` (RTPproxy leaves out trailing ``0``s); what
        to do to the section once it points at the proxy, or None. RtpProxyError: refused."""
        if subresults:
            raise RtpProxyError(f"unexpected subcommand answers {subresults!r}")
        return None

    def _body_done(self, side: Side, sdp: SdpBody) -> None:
        """Every section of the body is done: a subclass's session-level edits."""

    @staticmethod
    def _origin(side: Side, sdp: SdpBody) -> None:
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
