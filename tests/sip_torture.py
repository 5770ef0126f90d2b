"""Helpers for feeding hand-made SIP messages to a transaction manager and reading its answers."""

from __future__ import annotations

from typing import Any, Optional

from sippy.CallMap import CallMap
from sippy.SipResponse import SipResponse
from sippy.SipTransactionManager import SipTransactionManager
from tests.test_transactions import PEER, Consumer, FakeLogger, feed, mk


def msg(*lines: str, body: bytes = b"") -> bytes:
    """CRLF-joined header lines, the blank line, then the body (bytes, kept as they are)."""
    return ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8", "surrogateescape") + body


def sdp(addr: str = "192.0.2.1", family: str = "IP4") -> bytes:
    return (
        f"v=0\r\no=- 1 1 IN {family} {addr}\r\ns=-\r\nc=IN {family} {addr}\r\nt=0 0\r\n"
        "m=audio 49217 RTP/AVP 0\r\n"
    ).encode()


class Run:
    """One manager with a CallMap-like consumer: non-INVITE requests get what the call map
    answers (200 to OPTIONS, 501 with Allow to unknown methods), INVITEs a 486."""

    def __init__(self) -> None:
        self.lg = FakeLogger()
        self.cmap = CallMap({}, lambda gc, req, t: req.genResponse(486, "Busy Here"))
        self.cons = Consumer()
        self.cons.answer = None
        self.tm: SipTransactionManager
        self.tm, self.ft, self.clock = mk(self._cb, logger=self.lg)

    def _cb(self, req: Any, t: Any) -> Any:
        self.cons.reqs.append((req, t))
        return self.cmap.recvRequest(req, t)

    def feed(self, data: bytes, src: tuple[str, int] = PEER) -> Optional[SipResponse]:
        """Feed one datagram; the last answer it got (None when it got none)."""
        n = len(self.ft.sent)
        feed(self.tm, data, src)
        out = [SipResponse(buf=d) for d, _ in self.ft.sent[n:] if d.startswith(b"SIP/2.0 ")]
        return out[-1] if out else None

    def tables_empty(self) -> bool:
        tm = self.tm
        return not (tm.tserver or tm.tclient or tm.tserver_ack or tm._retrans)

    def no_traceback(self) -> bool:
        return all("Traceback" not in line and "\n" not in line for _, line in self.lg.lines)


def refused(data: bytes, scode: int, reason: Optional[str] = None) -> SipResponse:
    """Feed data, assert it was answered scode (statelessly) and never reached the consumer."""
    r = Run()
    resp = r.feed(data)
    assert resp is not None, r.lg.lines
    assert resp.getSCodeNum() == scode, (resp.getSL(), r.lg.lines)
    if reason is not None:
        assert resp.getSCodeReason() == reason
    assert r.cons.reqs == []
    assert r.tables_empty()
    assert r.no_traceback()
    assert sum(r.tm.bad_counts.values()) == 1
    return resp


def accepted(data: bytes) -> tuple[Any, Optional[SipResponse]]:
    """Feed data, assert the consumer got it; the request as parsed and the answer."""
    r = Run()
    resp = r.feed(data)
    assert len(r.cons.reqs) == 1, (r.lg.lines, r.ft.first_lines())
    assert not r.tm.bad_counts and r.no_traceback()
    return r.cons.reqs[0][0], resp


def dropped(data: bytes, kind: Optional[str] = None) -> Run:
    r = Run()
    assert r.feed(data) is None
    assert r.ft.sent == [] and r.cons.reqs == [] and r.tables_empty() and r.no_traceback()
    if kind is not None:
        assert r.tm.bad_counts == {kind: 1}
    return r
