"""Why a media relay step failed (no proxy online, no answer, an error reply)."""

from __future__ import annotations


class RtpProxyError(Exception):
    """The RTPproxy could not do what a call needed; the call fails cleanly with it."""
