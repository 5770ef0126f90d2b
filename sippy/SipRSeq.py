"""RSeq header (RFC 3262): sequence number of a reliable provisional response."""

from __future__ import annotations

from sippy.SipNumericHF import SipNumericHF


class SipRSeq(SipNumericHF):
    hf_names = ("rseq",)
    can_name = "RSeq"
    default_number = 1
