"""Proxy-Authenticate header: a digest challenge from a proxy (407); answered with
Proxy-Authorization."""

from __future__ import annotations

from sippy.SipProxyAuthorization import SipProxyAuthorization
from sippy.SipWWWAuthenticate import SipWWWAuthenticate


class SipProxyAuthenticate(SipWWWAuthenticate):
    hf_names = ("proxy-authenticate",)
    can_name = "Proxy-Authenticate"
    aclass = SipProxyAuthorization
