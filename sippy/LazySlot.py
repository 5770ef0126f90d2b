"""A container field a per-call object keeps as None until it is used.

Most URLs and UAs of a held call never get a parameter list or a credit table; an empty list or dict
each would cost memory for nothing. Reading the field makes the container and keeps it, so what a
program puts in it stays.
"""

from __future__ import annotations

from typing import Any, Callable


def lazy_slot(slot: str, factory: Callable[[], Any], doc: str) -> property:
    """A property over `slot` (None until used) that makes the container with factory() on first read."""

    def get(obj: Any) -> Any:
        value = getattr(obj, slot)
        if value is None:
            value = factory()
            setattr(obj, slot, value)
        return value

    def put(obj: Any, value: Any) -> None:
        setattr(obj, slot, value)

    return property(get, put, doc=doc)
