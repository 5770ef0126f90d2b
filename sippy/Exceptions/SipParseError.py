"""Errors raised by the parsers; they carry what the transaction layer needs to answer."""

from __future__ import annotations

from typing import Any


class SipParseError(Exception):
    """A SIP message or header could not be parsed.

    `reason` is a short human-readable explanation (it ends up in the 400 reason phrase);
    `sip_response` is a ready response to send back, or None when no answer is possible.
    """

    def __init__(self, reason: str, sip_response: Any = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.sip_response = sip_response


class SdpParseError(SipParseError):
    """An SDP body could not be parsed (the answer is 488, not 400)."""
