"""A browser's call on RTPproxy: the caller's side speaks WebRTC, the callee's plain RTP.

``Rtp_proxy_session_webrtc2sip`` (Sippy's name) is an ``Rtp_proxy_session`` whose caller is a
browser (a call that came in over WSS). For each of the browser's DTLS-SRTP media sections the
proxy's ``ice_lite`` module answers the browser's ICE checks and muxes RTCP, and its ``dtls_gw``
module terminates DTLS-SRTP, so the SIP side gets (and sends) plain RTP:

- the browser's SDP (its offer, or its answer to a re-INVITE from the callee): ``U`` with
  ``M4:1 A|P <fingerprint>`` (its certificate and role), ``M5:1 A <ufrag> <pwd>`` and one
  ``M5:1 C <candidate>`` per usable candidate; the body goes on as ``RTP/AVP`` without the
  ICE/DTLS/BUNDLE lines;
- the SIP party's SDP: ``U`` with ``M4:1 S`` and ``M5:1 S``, whose answers (the proxy's role and
  fingerprint, its ICE credentials and candidates) go into the body for the browser, in the
  browser's transport profile, with ``rtcp-mux``, the browser's mid, ``a=ice-lite`` and (one
  media section) ``a=group:BUNDLE``.

Only proxies that have both modules (``Rtp_proxy_client.modules``) are used; with none, the
session cannot be made and the call is refused with 488. Sections the browser offers without
DTLS (``RTP/AVP`` over WSS) are relayed as in ``Rtp_proxy_session``.
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple, Optional

from sippy.Exceptions.RtpProxyError import RtpProxyError
from sippy.Rtp_proxy.client import MODULE_IDS
from sippy.Rtp_proxy.session import NOT_ACCEPTABLE, Rtp_proxy_session, SectionExtras, Side
from sippy.Rtp_proxy.Session.webrtc_sdp import (
    browser_media,
    dtls_result,
    ice_result,
    is_webrtc,
    set_bundle,
    to_plain_rtp,
    to_webrtc,
)
from sippy.SdpBody import SdpBody
from sippy.SipLogger import SIPLOG_DBUG

__all__ = ("Rtp_proxy_session_webrtc2sip", "WEBRTC_MODULES")

WEBRTC_MODULES = ("dtls_gw", "ice_lite")
DTLS = f"M{MODULE_IDS['dtls_gw']}:1"
ICE = f"M{MODULE_IDS['ice_lite']}:1"

SectionFinish = Optional[Callable[[SdpBody, Any], None]]


class _BrowserLeg(NamedTuple):
    """What the browser offered for one media line, to dress the SIP side's SDP the same way."""

    transport: str
    mid: Optional[str]


class Rtp_proxy_session_webrtc2sip(Rtp_proxy_session):
    """Sippy's ``Rtp_proxy_session_webrtc2sip``: the caller is a WebRTC browser."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Media line index -> the browser's leg, for the lines the browser offered as WebRTC.
        self.browser_legs: dict[int, _BrowserLeg] = {}

    @classmethod
    def can_serve(cls, client: Any) -> bool:
        return all(m in client.modules for m in WEBRTC_MODULES)

    @classmethod
    def unusable(cls, online: list) -> RtpProxyError:
        lacking = "; ".join(
            f"{c} lacks {', '.join(m for m in WEBRTC_MODULES if m not in c.modules)}" for c in online
        )
        return RtpProxyError(
            f"WebRTC call refused: no RTPproxy with the dtls_gw and ice_lite modules ({lacking}; "
            "rtp.io has them built in, a stock rtpproxy loads them with --dso)",
            response=NOT_ACCEPTABLE,
        )

    def _section_extras(self, side: Side, sdp: SdpBody, sect: Any, index: int) -> SectionExtras:
        if side is self.caller:
            if not is_webrtc(sect):
                self.browser_legs.pop(index, None)
                return super()._section_extras(side, sdp, sect, index)
            media = browser_media(sdp, sect)
            self.browser_legs[index] = _BrowserLeg(sect.m_header.transport, media.mid)
            if media.candidates.dropped:
                self._debug(
                    f"media line {index}: browser candidates not given to the proxy: "
                    + "; ".join(f"{c!r} ({why})" for c, why in media.candidates.dropped)
                )
            return SectionExtras(media.address, media.port, media.commands(DTLS, ICE))
        if index not in self.browser_legs:
            return super()._section_extras(side, sdp, sect, index)
        return SectionExtras(sect.c_header.addr, sect.m_header.port, (f"{DTLS} S", f"{ICE} S"))

    def _subcommands_done(
        self, side: Side, index: int, extras: SectionExtras, subresults: list[str]
    ) -> SectionFinish:
        if index not in self.browser_legs:
            return super()._subcommands_done(side, index, extras, subresults)
        if len(subresults) > len(extras.subcommands):
            raise RtpProxyError(f"RTPproxy answered more than asked: {subresults!r}")
        for cmd, res in zip(extras.subcommands, subresults):
            if res == "-1":
                raise RtpProxyError(f"RTPproxy refused {cmd!r}")
        if side is self.caller:
            # All accepted (RTPproxy leaves out the trailing 0s of a success).
            return to_plain_rtp
        if len(subresults) != 2:
            raise RtpProxyError(f"RTPproxy gave no DTLS/ICE parameters: {subresults!r}")
        try:
            dtls, ice = dtls_result(subresults[0]), ice_result(subresults[1])
        except ValueError as exc:
            raise RtpProxyError(str(exc)) from None
        leg = self.browser_legs[index]
        return lambda sdp, sect: to_webrtc(sdp, sect, leg.transport, leg.mid, dtls, ice)

    def _body_done(self, side: Side, sdp: SdpBody) -> None:
        if side is self.caller or not self.browser_legs:
            return
        # One media line: BUNDLE it as offered. With several, each has its own proxy port, so
        # they are left unbundled (a browser's "balanced" bundle policy accepts that).
        mids = [leg.mid for leg in self.browser_legs.values() if leg.mid is not None]
        set_bundle(sdp, mids if len(self.browser_legs) == 1 else [])

    def _debug(self, msg: str) -> None:
        logger = self.global_config.get("_sip_logger")
        if logger is not None and logger.isEnabledFor(SIPLOG_DBUG):
            logger.write(msg, level=SIPLOG_DBUG, call_id=self.call_id)
