"""The Sippy 2.x names programs import: sippy.B2B homes, test id generators, Udp_server's
self-check, and output-worker counters used under the program's own locks."""

from __future__ import annotations

import threading

import pytest
from twisted.internet.task import Clock

import sippy.B2BRoute
import sippy.B2BTransforms
from sippy.Rtp.Core.AudioChunk import AudioChunk
from sippy.Rtp.OutputWorker import RTPOutputWorker
from sippy.Rtp.Params import RTPParams
from sippy.SipCallId import CALL_ID_CHARSET, gen_test_cid
from sippy.SipFrom import TOKEN_CHARSET, gen_test_tag
from sippy.SipRequest import SipRequest
from sippy.Udp_server import self_test
from tests.conftest import has_ipv6


def test_b2b_homes_are_the_same_classes_and_work():
    from sippy.B2B.Route import B2BRoute
    from sippy.B2B.Transforms import HDR2Xattrs, getTransProc

    assert B2BRoute is sippy.B2BRoute.B2BRoute
    assert getTransProc is sippy.B2BTransforms.getTransProc
    r = B2BRoute("12345@192.0.2.9:5070;credit-time=60;np_expires=5")
    assert (r.cld, r.hostport, r.credit_time, r.no_progress_expires) == ("12345", "192.0.2.9:5070", 60, 5)
    assert isinstance(getTransProc("HDR2Xattrs[X-Foo]"), HDR2Xattrs)


def _request(call_id: str, tag: str) -> SipRequest:
    return SipRequest(
        (
            "INVITE sip:100@192.0.2.1 SIP/2.0\r\n"
            "Via: SIP/2.0/UDP 192.0.2.2:5060;branch=z9hG4bK1\r\n"
            f"From: <sip:200@192.0.2.2>;tag={tag}\r\n"
            "To: <sip:100@192.0.2.1>\r\n"
            f"Call-ID: {call_id}\r\n"
            "CSeq: 1 INVITE\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
        ).encode()
    )


def test_test_ids_use_the_whole_grammar_and_survive_the_parser():
    seen_cid, seen_tag = set(), set()
    for _ in range(300):
        cid, tag = gen_test_cid(), gen_test_tag()
        assert len(cid) == 49 and cid[32] == "@" and set(cid) - {"@"} <= set(CALL_ID_CHARSET)
        assert len(tag) == 32 and set(tag) <= set(TOKEN_CHARSET)
        seen_cid |= set(cid)
        seen_tag |= set(tag)
        req = _request(cid, tag)
        assert str(req.getHFBody("call-id")) == cid
        assert req.getHFBody("from").getTag() == tag
        again = _request(cid, tag)
        assert str(again) == str(req)
    assert {'"', "\\", "<", "}", "a"} <= seen_cid and {"~", "`", "!"} <= seen_tag  # odd ones drawn
    assert len(gen_test_cid((4, 2))) == 7 and len(gen_test_tag(5)) == 5


@pytest.mark.skipif(not has_ipv6(), reason="no IPv6 loopback")
def test_udp_server_self_test_pings_and_pongs_over_ipv4_and_ipv6():
    t = self_test()
    t.run()
    assert t.npongs == 0 and t.servers == []


def test_udp_server_self_test_reports_a_wrong_pong():
    t = self_test()
    real_answer = t._answer
    t._answer = lambda ping, pong, pair: real_answer(ping, b"not a pong", pair)
    with pytest.raises(RuntimeError, match="unexpected pong"):
        t.run(timeout=2.0)
    assert t.servers == []


class LockingWriter(RTPOutputWorker):
    """A threaded Sippy program's habit: its own lock around the counters, and the worker's
    state_lock around a super() call."""

    def __init__(self, rtp_params):
        super().__init__(rtp_params)
        self.my_lock = threading.Lock()
        self.seen = []

    def update_frm_ctrs(self, rcvd_inc=0, prcsd_inc=0):
        with self.my_lock, self.state_lock:
            ctrs = super().update_frm_ctrs(rcvd_inc, prcsd_inc)
        with self.my_lock:
            self.seen.append(self.get_frm_ctrs())
        return ctrs


def test_counters_under_the_programs_own_locks():
    clock = Clock()
    sent = []
    w = LockingWriter(RTPParams(("127.0.0.1", 9)))
    w.set_pkt_send_f(sent.append)
    w.soundout(AudioChunk(bytes(2 * 400), 8000))
    w.start(clock)
    for _ in range(5):
        clock.advance(0.02)
    assert len(sent) == 3  # 400 samples: two packets and a padded third
    assert w.get_frm_ctrs() == (400, 400)
    assert w.seen[0] == (400, 0) and w.seen[-1] == (400, 400)
    w.end()
    w.join()
    assert clock.getDelayedCalls() == []


def test_route_headers_and_po_proc_pairs_read_as_in_sippy():
    from sippy.B2B.Route import B2BRoute

    r = B2BRoute("12345@192.0.2.9;ash=X-Name%3A%20Value;po_proc=VAL2Xattrs[x-attr=val1,y-attr=val2]")
    assert [str(h) for h in r.extra_headers] == ["X-Name: Value"]  # before customize(), as in Sippy
    assert r.params["po_proc"].radius_parameters == [("x-attr", "val1"), ("y-attr", "val2")]
    r.customize(1, "cld", "cli", None, (), None)
    r.customize(1, "cld", "cli", None, (), None)
    assert [str(h) for h in r.extra_headers] == ["X-Name: Value"]  # not once per customize()
    assert B2BRoute("12345@192.0.2.9").extra_headers is None
