"""A transaction's record and its states (RFC 3261 17, RFC 6026): what the transaction manager, the
UA and the control socket read of a transaction. Sippy's names."""

from __future__ import annotations

from typing import Any, Callable, Optional

from sippy.Time.MonoTime import MonoTime

# RFC 3261 magic cookie: a branch starting with it identifies the transaction on its own.
MAGIC = "z9hG4bK"


# Symbolic state names, as in Sippy; `t.state.__name__` is what the control socket shows.
class SipTransactionState:
    pass


class TRYING(SipTransactionState):
    """Request sent / received, no response yet."""


class RINGING(SipTransactionState):
    """A provisional response went by (RFC 3261 "Proceeding")."""


class COMPLETED(SipTransactionState):
    """Final response sent or received; absorbing retransmissions."""


class CONFIRMED(SipTransactionState):
    """Server INVITE: the ACK arrived; absorbing late retransmissions."""


class TERMINATED(SipTransactionState):
    """Timed out or removed."""


class UACK(SipTransactionState):
    """Client INVITE got a 2xx: the UA sends the ACK (RFC 6026 "Accepted")."""


class ACCEPTED(SipTransactionState):
    """Server INVITE sent a 2xx and retransmits it until the ACK comes (RFC 6026)."""


class SipTransaction:
    """One client or server transaction; the fields are the API the UA and control socket use.

    In slots: one or two live per call for 32 s after it is set up, and a dict for this many
    fields took about twice the room.
    """

    __slots__ = (
        "tid",
        "method",
        "call_id",
        "state",
        "rtime",
        "userv",
        "address",
        "data",
        "compact",
        "cb_ifver",
        "reliable",
        "req",
        "tout",
        "te_retr",
        "te_end",
        "resp_cb",
        "ack",
        "ack_auto",
        "ack_data",
        "ack_address",
        "ack_userv",
        "resp2xx",
        "cancel",
        "cancelPending",
        "cancel_extra",
        "expires",
        "cancel_cb",
        "noack_cb",
        "ack_cb",
        "to_tag",
        "dlg_key",
        "ack_key",
        "raw_key",
    )

    def __init__(self) -> None:
        self.tid: Any = None
        self.method: Optional[str] = None
        # The request's Call-ID, for the control socket's `lt` (the request is let go early).
        self.call_id: Optional[str] = None
        self.state: type[SipTransactionState] = TRYING
        self.rtime: Optional[MonoTime] = None
        self.userv: Any = None
        self.address: Optional[tuple[str, int]] = None
        # Last datagram sent by this transaction (request or response), resent on retransmission.
        self.data: Optional[bytes] = None
        self.compact = False
        self.cb_ifver = 1
        self.reliable = False
        self.req: Any = None
        self.tout = 0.0
        # The retransmission and the end-of-life timers (LaneTimer, see timers.py).
        self.te_retr: Any = None
        self.te_end: Any = None
        # Client side.
        self.resp_cb: Optional[Callable[..., Any]] = None
        # The ACK the UA set (sendACK), and the one made here from the INVITE when needed.
        self.ack: Any = None
        self.ack_auto: Any = None
        self.ack_data: Optional[bytes] = None
        self.ack_address: Optional[tuple[str, int]] = None
        # The transport of a 2xx's ACK when the dialog asks for another than the INVITE's.
        self.ack_userv: Any = None
        self.resp2xx: Any = None
        # The CANCEL sent for this INVITE (made only when one is sent).
        self.cancel: Any = None
        self.cancelPending = False
        self.cancel_extra: Any = None
        self.expires = 300
        # Server side.
        self.cancel_cb: Optional[Callable[..., Any]] = None
        self.noack_cb: Optional[Callable[..., Any]] = None
        self.ack_cb: Optional[Callable[..., Any]] = None
        self.to_tag: Optional[str] = None
        self.dlg_key: Any = None
        self.ack_key: Any = None
        # (datagram, source address) of the request that opened a server transaction, see _retrans.
        self.raw_key: Any = None

    def stopTimers(self) -> None:
        cancel_call(self.te_retr)
        cancel_call(self.te_end)
        self.te_retr = self.te_end = None


def cancel_call(te: Any) -> None:
    """Cancel a pending reactor call; one that already ran or was cancelled is left alone."""
    if te is not None and te.active():
        te.cancel()


class SipTransactionConsumer:
    """A UA registered for in-dialog requests of one Call-ID (Sippy's regConsumer)."""

    # Two per call, for the whole call.
    __slots__ = ("cobj", "compact")

    def __init__(self, cobj: Any, compact: bool) -> None:
        self.cobj = cobj
        self.compact = compact
