"""Final state: the UA lets go of everything and tells dead_cbs, once."""

from __future__ import annotations

from typing import Any

from sippy.UaStateGeneric import UaStateGeneric


class UaStateDead(UaStateGeneric):
    __slots__ = ()

    sname = "Dead"
    dead = True

    def __init__(self, ua: Any) -> None:
        super().__init__(ua)
        if ua.cId is not None:
            ua.tm.unregConsumer(ua, str(ua.cId))
        ua.cancelCreditTimer()
        ua.cancelSetupTimers()
        ua.tr = None
        ua.pending_tr = None
        ua.event_cb = None
        ua.conn_cbs = ua.disc_cbs = ua.fail_cbs = ua.ring_cbs = ()
        ua.on_local_sdp_change = None
        ua.on_remote_sdp_change = None
        dead_cbs, ua.dead_cbs = ua.dead_cbs, ()
        for cb in dead_cbs:
            cb(ua)
        ua.cleanup()
        # Break the ua <-> state cycle (as Sippy does): a finished call is then freed by reference
        # counting as soon as the last transaction lets go of it, not by a full cyclic GC pass.
        self.ua = None

    # A dead UA does nothing more: whatever still reaches it is dropped without a word.
    def recvRequest(self, req: Any, sip_t: Any) -> None:
        return None

    def recvResponse(self, resp: Any, tr: Any) -> None:
        return None

    def recvEvent(self, event: Any) -> None:
        return None
