"""Base of the dialog state classes: what a state does with what it does not accept."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Optional, Union

from sippy.CCEvents import CCEventDisconnect
from sippy.Exceptions.SipParseError import SipParseError

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

    # One per UA, the held call's for its whole length: slots, no per-instance dict.
    __slots__ = ("ua",)

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

    def disconnected(self, rtime: Any, origin: Optional[str], *cb_args: Any) -> NextState:
        """The dialog is over: note when, and go to Disconnected running disc_cbs(ua, rtime, origin,
        *cb_args)."""
        # Imported here: every state module, UaStateDisconnected included, imports this one first.
        from sippy.UaStateDisconnected import UaStateDisconnected

        self.ua.disconnect_ts = rtime
        return (UaStateDisconnected, self.ua.disc_cbs, rtime, origin, *cb_args)

    def remoteDisconnected(self, rtime: Any, msg: Any = None, also: Any = None) -> NextState:
        """The remote side ended the dialog (BYE, CANCEL): tell call control, passing on the
        message's Reason, then go to Disconnected."""
        ua = self.ua
        event = CCEventDisconnect(also, rtime=rtime, origin=ua.origin)
        copy_reason(msg, event)
        ua.equeue.append(event)
        return self.disconnected(rtime, ua.origin)

    def __str__(self) -> str:
        return self.sname


def copy_reason(msg: Any, event: CCEventGeneric) -> None:
    """Pass a message's Reason header (RFC 3326) on to the other leg with the event it caused."""
    if msg is not None and msg.countHFs("reason") > 0:
        try:
            event.reason = msg.getHFBody("reason").getCopy()
        except SipParseError:
            # Only informative: a malformed one is not passed on, and fails nothing.
            pass


def contact_url(msg: Any) -> Any:
    """The URL of a message's first Contact (the remote target), or None when it has none."""
    return msg.getHFBody("contact").getUrl() if msg.countHFs("contact") > 0 else None
