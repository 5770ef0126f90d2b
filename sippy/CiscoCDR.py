"""Cisco CDR conventions that RADIUS billing engines expect from a VoIP gateway.

Billing platforms written for Cisco IOS voice gateways parse the h323-*-time strings and the
hexadecimal Q.850 disconnect cause literally, so these must match what Sippy has always sent.
"""

from __future__ import annotations

import time
from typing import Any, Iterable, Optional, Union

# SIP final response -> Q.850 cause value, as Sippy's b2bua_radius reports them (a superset of
# RFC 3398 section 8.2.6.1 with a few choices of its own, e.g. 401/403 -> 57).
_SIP_TO_Q850: dict[int, int] = {
    400: 127,  # interworking, unspecified
    401: 57,  # bearer capability not authorized
    402: 21,  # call rejected
    403: 57,
    404: 1,  # unallocated number
    405: 127,
    406: 127,
    407: 21,
    408: 102,  # recovery on timer expiry
    409: 41,  # temporary failure
    410: 1,
    411: 127,
    413: 127,
    414: 127,
    415: 79,  # service or option not implemented
    420: 127,
    480: 18,  # no user responding
    481: 127,
    482: 127,
    483: 127,
    484: 28,  # invalid number format (address incomplete)
    485: 1,
    486: 17,  # user busy
    487: 18,
    488: 127,
    500: 41,
    501: 79,
    502: 38,  # network out of order
    503: 63,  # service or option unavailable
    504: 102,
    505: 127,
    580: 47,  # resource unavailable, unspecified
    600: 17,
    603: 21,
    604: 1,
    606: 58,  # bearer capability not presently available
}
Q850_NORMAL_CLEARING = 16
Q850_INTERWORKING = 127


def sip2q850(code: int) -> int:
    """Q.850 cause for how a call ended: a SIP error code, or < 200 for a normal hang-up.

    A 2xx/3xx result is reported as cause 0, as Sippy does.
    """
    if code >= 400:
        return _SIP_TO_Q850.get(code, Q850_INTERWORKING)
    if code < 200:
        return Q850_NORMAL_CLEARING
    return 0


def h323_disconnect_cause(code: int) -> str:
    """The h323-disconnect-cause value: the Q.850 cause in lower-case hex (`10`, `11`, `7f`)."""
    return f"{sip2q850(code):x}"


def party_attributes(
    caller: Optional[str], callee: Optional[str], h323_cid: str, sip_cid: str
) -> list[tuple[str, Any]]:
    """Who called whom in which call, as both authorisation and accounting records name it
    (a missing number is sent empty, as Sippy does)."""
    return [
        ("Calling-Station-Id", caller if caller is not None else ""),
        ("Called-Station-Id", callee if callee is not None else ""),
        ("h323-conf-id", h323_cid),
        ("call-id", sip_cid),
    ]


def format_attributes(attributes: Iterable[tuple[str, Any]]) -> str:
    """One `name = 'value'` line per attribute, for the log of what was sent or received; a value
    is quoted as a Python string literal, so a CR or LF from a peer cannot start a log line."""
    return "".join(f"{name:<32} = {str(value)!r}\n" for name, value in attributes)


def realtime(t: Union[float, Any]) -> float:
    """Seconds since the epoch of a MonoTime (its `.realt`) or of a plain float."""
    return float(getattr(t, "realt", t))


def cisco_time(t: Union[float, Any], ms_precision: bool = False) -> str:
    """`%H:%M:%S.mmm GMT %a %b %d %Y` with the day not zero-padded, e.g.
    `13:05:09.000 GMT Tue Jan 5 2010`; milliseconds are 000 unless ms_precision."""
    rt = realtime(t)
    gt = time.gmtime(rt)
    msec = int((rt % 1) * 1000) if ms_precision else 0
    hms, wday_month = time.strftime("%H:%M:%S", gt), time.strftime("%a %b", gt)
    return f"{hms}.{msec:03d} GMT {wday_month} {gt.tm_mday} {gt.tm_year}"
