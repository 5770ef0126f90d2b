"""CallMap on its own: what it answers, and its books (counters, listing, discAll, shutdown hooks).

The controllers here are minimal stand-ins for the controller protocol (uaA/uaO/disconnect); the
requests are real parsed SIP.
"""

from __future__ import annotations

from typing import Any, Optional

from sippy.CallMap import CallMap
from sippy.SipRequest import SipRequest


def request(method: str, call_id: str = "cid-1@h", to_tag: str = "") -> SipRequest:
    text = (
        f"{method} sip:5551234@127.0.0.1 SIP/2.0\r\n"
        "Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bKx1\r\n"
        "From: Alice <sip:alice@127.0.0.1>;tag=ft\r\n"
        f"To: <sip:5551234@127.0.0.1>{to_tag}\r\n"
        f"Call-ID: {call_id}\r\nCSeq: 1 {method}\r\nContact: <sip:alice@127.0.0.1:5070>\r\n"
        "Content-Length: 0\r\n\r\n"
    )
    return SipRequest(buf=text.encode())


class FakeUA:
    def __init__(self) -> None:
        self.requests: list[Any] = []
        self.state = "Trying(UAS)"
        self.connect_ts = None
        self.disconnect_ts = None

    def recvRequest(self, req: Any, sip_t: Any) -> tuple:
        self.requests.append(req)
        return (None, "cancel_cb", "noack_cb")

    def getRAddr0(self) -> tuple[str, int]:
        return ("127.0.0.1", 5070)

    def getCLD(self) -> str:
        return "alice"

    def getCLI(self) -> str:
        return "5551234"

    def getTransport(self) -> str:
        return ""


class FakeCC:
    def __init__(self) -> None:
        self.uaA = FakeUA()
        self.uaO: Optional[FakeUA] = None
        self.disconnects: list[Any] = []

    def disconnect(self, rtime: Any = None) -> None:
        self.disconnects.append(rtime)


def code(rval: Optional[tuple]) -> int:
    assert rval is not None
    return rval[0].getSCodeNum()


def test_new_invite_goes_to_a_new_controller_and_its_call_id_is_known() -> None:
    made: list[FakeCC] = []
    cmap = CallMap({}, lambda gc, req, t: made.append(FakeCC()) or made[-1])
    rval = cmap.recvRequest(request("INVITE"), "sip_t")
    assert rval == (None, "cancel_cb", "noack_cb")
    (cc,) = made
    assert cc.uaA.requests and cmap.getCall("cid-1@h") is cc
    assert (cmap.ncalls_active, cmap.ncalls_total, cmap.ncalls_failed) == (1, 1, 0)
    # The same Call-ID again without a tag is a merged request or a loop, not a new call.
    assert code(cmap.recvRequest(request("INVITE"), "sip_t")) == 482
    assert len(made) == 1


def test_answers_to_requests_no_dialog_claimed() -> None:
    cmap = CallMap({}, lambda gc, req, t: FakeCC())
    assert code(cmap.recvRequest(request("BYE", to_tag=";tag=x"), None)) == 481
    assert code(cmap.recvRequest(request("INVITE", to_tag=";tag=x"), None)) == 481
    assert code(cmap.recvRequest(request("BYE"), None)) == 481
    assert code(cmap.recvRequest(request("OPTIONS", to_tag=";tag=x"), None)) == 481
    resp = cmap.recvRequest(request("OPTIONS"), None)[0]
    assert resp.getSCodeNum() == 200 and "INVITE" in str(resp.getHFBody("allow"))
    assert code(cmap.recvRequest(request("SUBSCRIBE"), None)) == 501
    assert cmap.recvRequest(request("ACK", to_tag=";tag=x"), None) is None
    assert cmap.ncalls_total == 0


def test_refused_call_counts_as_failed() -> None:
    cmap = CallMap({}, lambda gc, req, t: req.genResponse(503, "Service Unavailable"))
    assert code(cmap.recvRequest(request("INVITE"), None)) == 503
    assert (cmap.ncalls_active, cmap.ncalls_total, cmap.ncalls_failed) == (0, 1, 1)


def test_legs_listing_drop_and_discall() -> None:
    ccs: list[FakeCC] = []
    cmap = CallMap({}, lambda gc, req, t: ccs.append(FakeCC()) or ccs[-1])
    cmap.recvRequest(request("INVITE", "a@h"), None)
    cmap.recvRequest(request("INVITE", "b@h"), None)
    cc1, cc2 = ccs
    cc1.uaO = FakeUA()
    cmap.addLeg(cc1, "a-out@h")
    assert cmap.getCall("a-out@h") is cc1
    (info1, info2) = cmap.listCalls()
    assert info1["call_ids"] == ("a@h", "a-out@h") and info1["a"]["cli"] == "alice"
    assert info1["o"]["cld"] == "alice" and info2["o"] is None
    rtime = object()
    cmap.discAll(rtime)
    assert cc1.disconnects == [rtime] and cc2.disconnects == [rtime]
    cmap.dropCall(cc1, failed=False)
    cmap.dropCall(cc1, failed=True)  # idempotent: counted once
    cmap.dropCall(cc2, failed=True)
    assert cmap.getCall("a@h") is None and cmap.getCall("a-out@h") is None
    assert (cmap.ncalls_active, cmap.ncalls_total, cmap.ncalls_failed) == (0, 2, 1)
    assert cmap.listCalls() == []


def test_shutdown_disconnects_then_runs_hooks_once() -> None:
    order: list[str] = []
    cc = FakeCC()
    cc.disconnect = lambda rtime=None: order.append("disc")  # type: ignore[method-assign]
    cmap = CallMap({}, lambda gc, req, t: cc)
    cmap.recvRequest(request("INVITE"), None)
    cmap.shutdown_hooks.append(lambda: order.append("hook"))
    cmap.shutdown()
    cmap.shutdown()
    assert order == ["disc", "hook", "disc"]
