"""Server header (RFC 3261 20.35): free text naming the software, like User-Agent."""

from __future__ import annotations

from sippy.SipUserAgent import SipUserAgent


class SipServer(SipUserAgent):
    """Same body as User-Agent, sent in responses; a new one says SipConf.my_uaname."""

    hf_names = ("server",)
    can_name = "Server"
