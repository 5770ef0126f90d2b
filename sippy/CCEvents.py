"""Call-control events: what one leg of a call tells the call controller, and through it the other leg.

Only the parameters an event carries cross from one UA to the other, which keeps the legs isolated.
Each event keeps Sippy's positional `data` tuple (`getData()`), so Sippy programs work unchanged, and
exposes the same values as named read-only fields (`ev.cli`, `ev.scode`, `ev.body`...).
"""

from __future__ import annotations

import itertools
from typing import Any, Optional

from sippy.SipHeader import SipHeader
from sippy.Time.MonoTime import MonoTime

# Events from one UA are delivered in the order they were made; the number records that order.
_seq = itertools.count(1)


class _Field:
    """A named view of an event's data tuple. No __set__: an instance attribute of the same name
    set by a program hides it, and a subclass whose fields lack the name has no such field."""

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def __get__(self, event: Any, owner: Any = None) -> Any:
        if event is None:
            return self
        fields = type(event).fields
        if self.name not in fields:
            raise AttributeError(self.name)
        idx = fields.index(self.name)
        data = event.__dict__.get("data")
        if data is None:
            defaults = type(event).defaults
            return defaults[idx] if idx < len(defaults) else None
        if not isinstance(data, tuple):
            return data if idx == 0 else None
        return data[idx] if idx < len(data) else None


class CCEventGeneric:
    """Base of all events: data tuple, time of the triggering message, origin and extra headers."""

    name = "CCEventGeneric"
    # Names of the positions of the data tuple, for the named accessors.
    fields: tuple[str, ...] = ()
    # Values the named accessors return when the event carries no data.
    defaults: tuple[Any, ...] = ()

    def __init__(
        self,
        data: Any = None,
        rtime: Optional[MonoTime] = None,
        origin: Optional[str] = None,
        extra_headers: Optional[Any] = None,
    ) -> None:
        self.data = data
        self.rtime: MonoTime = rtime if rtime is not None else MonoTime()
        self.origin = origin
        self.extra_headers: Optional[tuple[SipHeader, ...]] = (
            tuple(extra_headers) if extra_headers is not None else None
        )
        # A SipReason header body (RFC 3326) to pass to the other leg.
        self.reason: Optional[Any] = None
        self.seq = next(_seq)

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        # The named views of the data tuple are descriptors on the class: a read is one call, not
        # a failed lookup (an AttributeError made and dropped) and then __getattr__.
        for name in cls.fields:
            if name not in cls.__dict__:
                setattr(cls, name, _Field(name))

    # Sippy's name for the Reason header.
    @property
    def reason_rfc3326(self) -> Optional[Any]:
        return self.reason

    @reason_rfc3326.setter
    def reason_rfc3326(self, value: Optional[Any]) -> None:
        self.reason = value

    def getData(self) -> Any:
        return self.data

    def _copy_extras(self, cself: CCEventGeneric) -> None:
        if self.extra_headers is not None:
            cself.extra_headers = tuple(x.getCopy() for x in self.extra_headers)
        if self.reason is not None:
            cself.reason = self.reason.getCopy()
        cself.seq = self.seq

    def getCopy(self) -> CCEventGeneric:
        cself = self.__class__(self.data, self.rtime, self.origin)
        self._copy_extras(cself)
        return cself

    def withData(self, data: Any) -> CCEventGeneric:
        """A copy carrying other data (e.g. an SDP body rewritten by a media relay)."""
        cself = self.getCopy()
        cself.data = data
        return cself

    def withBody(self, body: Any) -> CCEventGeneric:
        """A copy whose SDP body is replaced; events without a body are returned as they are."""
        if "body" not in self.fields:
            return self
        idx = self.fields.index("body")
        data = self.data
        if data is None:
            data = self.defaults
        if not isinstance(data, tuple):
            return self.withData(body)
        data = data + (None,) * (idx + 1 - len(data))
        return self.withData(data[:idx] + (body,) + data[idx + 1 :])

    def getExtraHeaders(self) -> Optional[tuple[SipHeader, ...]]:
        """Headers to add to the SIP message this event turns into, or None."""
        extra: list[SipHeader] = []
        if self.extra_headers is not None:
            extra.extend(self.extra_headers)
        if self.reason is not None:
            extra.append(SipHeader(name="reason", body=self.reason))
        return tuple(extra) if extra else None

    def __str__(self) -> str:
        return self.name

    def __repr__(self) -> str:
        return f"{self.name}({self.data!r}, origin={self.origin!r})"


class CCEventTry(CCEventGeneric):
    """New call: `(call_id, cli, cld, body, auth, caller_name)`."""

    name = "CCEventTry"
    fields = ("call_id", "cli", "cld", "body", "auth", "caller_name")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Max-Forwards of the incoming INVITE, so the outgoing one can be decremented from it.
        self.max_forwards: Optional[int] = None

    def getCopy(self) -> CCEventTry:
        cself = super().getCopy()
        cself.max_forwards = self.max_forwards
        return cself

    def onUacSetupComplete(self, uac: Any) -> None:
        """Hook for subclasses: tweak the originating UA after set-up, before its INVITE goes out."""


class CCEventRing(CCEventGeneric):
    """Provisional response: `(scode, scode_reason, body)`; None means a plain 180 Ringing."""

    name = "CCEventRing"
    fields = ("scode", "scode_reason", "body")
    defaults = (180, "Ringing", None)


class CCEventPreConnect(CCEventGeneric):
    """2xx that still waits for the other side's SDP in the ACK (late media)."""

    name = "CCEventPreConnect"
    fields = ("scode", "scode_reason", "body")
    defaults = (200, "OK", None)


class CCEventConnect(CCEventGeneric):
    """Answer: `(scode, scode_reason, body)`."""

    name = "CCEventConnect"
    fields = ("scode", "scode_reason", "body")
    defaults = (200, "OK", None)


class CCEventUpdate(CCEventGeneric):
    """Re-INVITE within the call; data is the new SDP body."""

    name = "CCEventUpdate"
    fields = ("body",)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.max_forwards: Optional[int] = None

    def getCopy(self) -> CCEventUpdate:
        cself = super().getCopy()
        cself.max_forwards = self.max_forwards
        return cself


class CCEventInfo(CCEventGeneric):
    """INFO within the call (DTMF and the like); data is its body."""

    name = "CCEventInfo"
    fields = ("body",)


class CCEventDisconnect(CCEventGeneric):
    """Hang-up; data is None or the transfer target (Also / Refer-To address)."""

    name = "CCEventDisconnect"
    fields = ("also",)


class CCEventFail(CCEventGeneric):
    """Call failed: `(scode, scode_reason)` or `(scode, scode_reason, body)`."""

    name = "CCEventFail"
    fields = ("scode", "scode_reason", "body")
    defaults = (500, "Failed", None)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # WWW-/Proxy-Authenticate headers to relay to the caller (pass_auth).
        self.challenges: Optional[list[SipHeader]] = None
        self.warning: Optional[SipHeader] = None

    def getCopy(self) -> CCEventFail:
        cself = super().getCopy()
        if self.challenges is not None:
            cself.challenges = [x.getCopy() for x in self.challenges]
        if self.warning is not None:
            cself.warning = self.warning.getCopy()
        return cself

    def getExtraHeaders(self) -> Optional[tuple[SipHeader, ...]]:
        extra = list(super().getExtraHeaders() or ())
        if self.challenges is not None:
            extra.extend(self.challenges)
        if self.warning is not None:
            extra.append(self.warning)
        return tuple(extra) if extra else None

    def setWarning(self, eistr: str) -> None:
        """Explain the failure to the caller in a Warning header (399, RFC 3261 20.43)."""
        text = eistr.replace('"', "'")
        self.warning = SipHeader(name="warning", body=f'399 sippy "{text}"')


class CCEventRedirect(CCEventGeneric):
    """3xx: `(scode, scode_reason, body, contacts)` with contacts a tuple of SipAddress."""

    name = "CCEventRedirect"
    fields = ("scode", "scode_reason", "body", "contacts")
    defaults = (500, "Failed", None, None)
