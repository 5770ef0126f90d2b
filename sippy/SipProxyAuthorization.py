"""Proxy-Authorization header: the same digest credentials, answering a 407."""

from __future__ import annotations

from sippy.SipAuthorization import SipAuthorization


class SipProxyAuthorization(SipAuthorization):
    hf_names = ("proxy-authorization",)
    can_name = "Proxy-Authorization"
