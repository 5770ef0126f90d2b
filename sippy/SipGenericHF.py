"""Base class of every header-field body: raw text kept until first access."""

from __future__ import annotations

from typing import Callable, Optional, TypeVar

F = TypeVar("F", bound=Callable[..., None])


def keeps_text(init: F) -> F:
    """Marks a constructor that, given text (`body`), does nothing but keep it unparsed, as
    SipGenericHF's does: the parser then makes bodies of that class without calling it (one
    constructor chain less for every header read off the wire). A subclass that overrides
    `__init__` is not marked unless it says so."""
    init.keeps_text = True  # type: ignore[attr-defined]
    return init


class SipGenericHF:
    """A header-field body that is parsed lazily.

    Subclasses set `hf_names` (lower-case full name first, then the compact form if any) and
    `can_name` (canonical spelling on the wire), override `parse()` to fill their fields from
    `self.body` and set `self.parsed = True`, and `__str__()` to rebuild the text once parsed.
    Until `parse()` runs, the header serialises exactly as it arrived.
    """

    # The text and the flag in slots: a header class that declares its own __slots__ keeps no
    # per-instance dict (the From, To and Call-ID a held call keeps); the others still have one.
    __slots__ = ("body", "parsed")

    hf_names: tuple[str, ...] = ()
    can_name: Optional[str] = None
    compact_name: Optional[str] = None
    # Several values may share one line, separated by top-level commas (Via, Contact, Route...).
    isMulti: bool = False

    @keeps_text
    def __init__(self, body: Optional[str] = None) -> None:
        self.body = body
        self.parsed = False

    def parse(self) -> None:
        self.parsed = True

    def __str__(self) -> str:
        return self.body if self.body is not None else ""

    def localStr(self, local_addr: Optional[str] = None, local_port: Optional[int] = None) -> str:
        return str(self)

    def getCopy(self) -> SipGenericHF:
        """Shallow copy; subclasses with mutable parsed state copy that state too."""
        cls = self.__class__
        new = cls.__new__(cls)
        new.body = self.body
        new.parsed = self.parsed
        if _has_dict(self):
            # A class without __slots__ of its own: its fields are in the instance dict.
            new.__dict__.update(self.__dict__)
        return new

    def getCanName(self, name: str, compact: bool = False) -> str:
        if compact and self.compact_name is not None:
            return self.compact_name
        if self.can_name is not None:
            return self.can_name
        return name


def _has_dict(obj: object) -> bool:
    """Whether obj's class gives its instances a dict. On CPython without reading obj.__dict__,
    which would make an empty dict to keep; PyPy has no __dictoffset__ and makes none."""
    offset = getattr(type(obj), "__dictoffset__", None)
    return hasattr(obj, "__dict__") if offset is None else offset != 0
