"""Values that enter SIP text from outside the message being relayed must not break it.

RADIUS replies (CLI, CNAM, routes), routes (``-s``, ``Routing:``), the caller's escaped URI parts
and headers passed through (``-h``) end up in headers of the outgoing INVITE. A CR or LF in one
would end the header line there and start another (header injection, or a body of the sender's
choosing after an empty line); a NUL cuts the message short for many parsers. No legitimate number,
name or header value contains one, so such a value fails the call instead of being cleaned up.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Optional

__all__ = ("breaks_line", "first_unsafe")

_LINE_BREAKERS = re.compile("[\r\n\0]")


def breaks_line(value: Optional[str]) -> bool:
    """True when value holds a CR, LF or NUL."""
    return value is not None and _LINE_BREAKERS.search(value) is not None


def first_unsafe(fields: Iterable[tuple[str, Optional[str]]]) -> Optional[str]:
    """The name of the first (name, value) pair whose value breaks a line, or None."""
    for name, value in fields:
        if breaks_line(value):
            return name
    return None
