"""Base of the dialog state classes: what a state does with what it does not accept."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Optional, Union

if TYPE_CHECKING:
    from sippy.CCEvents import CCEventGeneric
    from sippy.UA import UA

# What a handler returns: None to stay, a state class, or Sippy's tuple
# (state class, callbacks, *callback args) whose callbacks run as cb(ua, *args) after the change.
NextState = Optional[Union[type, tuple]]


class UaStateGeneric:
    """A state accepts the messages and events it names; everything else is answered or dropped here.

    Handlers never change `ua.state` themselves: they return the next state, and the UA switches.
    """

    sname = "Generic"
    connected = False
    dead = False

    def __init__(self, ua: UA) -> None:
        self.ua = ua

    def recvRequest(self, req: Any, sip_t: Any) -> NextState:
        """A request this state does not handle: there is no dialog it could belong to (RFC 3261
        12.2.2), so 481."""
        self.ua.logWrong("request", req.getMethod(), self)
        resp = req.genResponse(481, "Call Leg/Transaction Does Not Exist", server=self.ua.local_ua)
        self.ua.sendResponse(resp, sip_t)
        return None

    def recvResponse(self, resp: Any, tr: Any) -> NextState:
        self.ua.logWrong("response", resp.getSCode()[0], self)
        return None

    def recvEvent(self, event: CCEventGeneric) -> NextState:
        self.ua.logWrong("event", event, self)
        return None

    def recvACK(self, req: Any) -> NextState:
        return None

    def cancel(self, rtime: Any, req: Any) -> NextState:
        """CANCEL of our INVITE server transaction; only the early UAS states care."""
        return None

    def onStateChange(self, newstate: type) -> None:
        """Release what this state holds (timers, pending transactions) before the UA leaves it."""

    def __str__(self) -> str:
        return self.sname
