"""Answers sent without a transaction: to requests refused before one exists (bad input, RFC 3261
8.2 and 16.3 checks; a full server table) and the Via rule of where a response goes (RFC 3261
18.2.2, RFC 3581).
"""

from __future__ import annotations

from typing import Any

from sippy.misc import sip_hostport
from sippy.SipHeader import SipHeader
from sippy.SipLogger import SIPLOG_WARN
from sippy.SipRequestCheck import Refusal
from sippy.SipResponse import SipResponse
from sippy.Time.MonoTime import MonoTime

# Retry-After (seconds) of the 503 given at a bound: by then the oldest transactions are gone.
RETRY_AFTER = 10


def unavailable(req: Any, retry_after: int) -> SipResponse:
    """503 Service Unavailable with Retry-After: the answer at a bound (RFC 3261 21.5.4)."""
    resp = req.genResponse(503, "Service Unavailable")
    resp.appendHeader(SipHeader(name="Retry-After", body=str(retry_after)))
    return resp


class StatelessAnswers:
    """SipTransactionManager's stateless answers. It uses the manager's badInput, log_limiter,
    refused, _send and _encode."""

    def _reply_stateless(self, userv: Any, resp: Any, address: tuple[str, int]) -> None:
        self._send(userv, self._encode(resp, userv, address), address)

    def _refuse(
        self,
        req: Any,
        bad: Refusal,
        address: tuple[str, int],
        source: Any,
        transport: Any,
        reliable: bool,
        rtime: MonoTime,
    ) -> None:
        """Answer a request refused by check_request statelessly, or drop it (an ACK); count it."""
        if req.isACK():
            self.badInput("bad_ack", address, bad.detail, rtime)
            return
        resp = req.genErrorResponse(bad.scode, bad.reason)
        if bad.unsupported:
            resp.appendHeader(SipHeader(name="unsupported", bodys=", ".join(bad.unsupported)))
        self._reply_stateless(transport, resp, self._respAddress(req.getHFBody("via"), source, reliable))
        self.badInput(bad.kind, address, bad.detail, rtime)

    def _refuseBadVia(
        self, req: Any, detail: str, address: tuple[str, int], source: Any, transport: Any, rtime: Any
    ) -> None:
        """A top Via that does not parse: when its protocol and sent-by read (only parameters are
        broken) a 400 goes to where the datagram came from, as rport would have it (RFC 4475
        3.1.2.1); with no Via to go by, or for an ACK, the request is dropped. Counted either way."""
        if not req.isACK() and req.viaSentByReadable():
            resp = req.genErrorResponse(400, "Bad Via Header", via_parsed=False)
            self._reply_stateless(transport, resp, source)
        self.badInput("bad_via", address, detail, rtime)

    def _refuseFull(
        self, req: Any, address: tuple[str, int], transport: Any, raddress: tuple[str, int]
    ) -> None:
        """The server table is full: a stateless 503 with Retry-After, nothing kept (see the bound)."""
        self.refused["server"] += 1
        self.log_limiter.write(
            "server_full",
            SIPLOG_WARN,
            "server transaction table full (",
            self.max_server_transactions,
            "): 503 to ",
            req.getMethod(),
            " from ",
            sip_hostport(*address),
        )
        resp = unavailable(req, RETRY_AFTER)
        # The To was checked with the rest of the request (check_request).
        to = resp.getHFBody("to")
        if to.getTag() is None:
            to.genTag()
        self._reply_stateless(transport, resp, raddress)

    def _respAddress(self, via: Any, source: Any, reliable: bool) -> Any:
        """Where a response goes (RFC 3261 18.2.2, RFC 3581): received/rport, else sent-by."""
        return source if reliable else via.getTAddr()
