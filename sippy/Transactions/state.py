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

    The defaults are class attributes (all immutable): one transaction is made per request, and
    most fields keep their default for its whole life.
    """

    tid: Any = None
    method: Optional[str] = None
    # The request's Call-ID, for the control socket's `lt` (the request itself is let go early).
    call_id: Optional[str] = None
    state: type[SipTransactionState] = TRYING
    rtime: Optional[MonoTime] = None
    userv: Any = None
    address: Optional[tuple[str, int]] = None
    # Last datagram sent by this transaction (request or response), resent on retransmission.
    data: Optional[bytes] = None
    compact = False
    cb_ifver = 1
    reliable = False
    req: Any = None
    tout = 0.0
    # Pending reactor calls (IDelayedCall) of the retransmission and the end-of-life timers.
    te_retr: Any = None
    te_end: Any = None
    # Client side.
    resp_cb: Optional[Callable[..., Any]] = None
    # The ACK the UA set (sendACK), and the one made here from the INVITE when needed.
    ack: Any = None
    ack_auto: Any = None
    ack_data: Optional[bytes] = None
    ack_address: Optional[tuple[str, int]] = None
    # The transport of a 2xx's ACK when the dialog asks for another than the INVITE's.
    ack_userv: Any = None
    resp2xx: Any = None
    # The CANCEL sent for this INVITE (made only when one is sent).
    cancel: Any = None
    cancelPending = False
    cancel_extra: Any = None
    expires = 300
    # Server side.
    cancel_cb: Optional[Callable[..., Any]] = None
    noack_cb: Optional[Callable[..., Any]] = None
    ack_cb: Optional[Callable[..., Any]] = None
    to_tag: Optional[str] = None
    dlg_key: Any = None
    ack_key: Any = None
    # (datagram, source address) of the request that opened a server transaction, see _retrans.
    raw_key: Any = None

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

    def __init__(self, cobj: Any, compact: bool) -> None:
        self.cobj = cobj
        self.compact = compact
