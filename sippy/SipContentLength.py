"""Content-Length header; the message writes its own from the body."""

from __future__ import annotations

from sippy.SipNumericHF import SipNumericHF


class SipContentLength(SipNumericHF):
    hf_names = ("content-length", "l")
    can_name = "Content-Length"
    compact_name = "l"
    default_number = 0
