"""sippy.Rtp: endpoints exchanging audio over loopback, pacing, refill, re-targeting; codecs."""

from __future__ import annotations

import gc
import socket
import struct
import threading
from array import array

import pytest

from sippy.Rtp.Codecs.G711 import G711ACodec, G711Codec
from sippy.Rtp.Codecs.G722 import G722Codec
from sippy.Rtp.Conf import PortAllocationError, RTP_port_allocator, RTPConf
from sippy.Rtp.Core.AudioChunk import AudioChunk
from sippy.Rtp.EPoint import RTPEPoint
from sippy.Rtp.Handlers import RTPHandlers
from sippy.Rtp.OutputWorker import RTPOutputWorker
from sippy.Rtp.Params import RTPParams
from tests.conftest import free_port, has_ipv6
from tests.rtp_util import ClockedReactor, RecordingInStream, pump, tone


class Side:
    """One endpoint of a test call and what it received."""

    def __init__(self, cr, host, port, target, codec=G711Codec, writer_cls=None):
        self.got: list[AudioChunk] = []
        params = RTPParams(target, rtp_proto="IP6" if ":" in host else "IP4")
        params.codec = codec
        params.rtp_laddr = host
        params.rtp_lport = port
        handlers = RTPHandlers()
        handlers.rtp_instream_cls = RecordingInStream
        if writer_cls is not None:
            handlers.writer_cls = writer_cls
        self.ep = RTPEPoint(RTPConf(), params, self.got.append, handlers=handlers, reactor=cr)

    @property
    def audio(self) -> array:
        out = array("h")
        for c in self.got:
            out.extend(c.audio)
        return out


@pytest.fixture
def cr():
    made = ClockedReactor()
    yield made
    pump(lambda: False, 0.02)


def pair(cr, host="127.0.0.1", codec=G711Codec, writer_cls=None):
    pa, pb = free_port(host), free_port(host)
    a = Side(cr, host, pa, (host, pb), codec, writer_cls)
    b = Side(cr, host, pb, (host, pa), codec)
    return a, b


def assert_continuous(headers, nframes_per_pkt, npkts):
    assert len(headers) == npkts
    seqs = [h[0] for h in headers]
    tss = [h[1] for h in headers]
    assert all((s2 - s1) & 0xFFFF == 1 for s1, s2 in zip(seqs, seqs[1:])), seqs
    assert all((t2 - t1) & 0xFFFFFFFF == nframes_per_pkt for t1, t2 in zip(tss, tss[1:])), tss
    assert len({h[2] for h in headers}) == 1  # one SSRC
    assert [h[3] for h in headers] == [1] + [0] * (npkts - 1)  # marker on the first only


def g711_close(sent: array, got: array) -> None:
    """Within G.711's quantisation error: about 1/16 of the amplitude, plus a small floor."""
    assert len(got) == len(sent)
    worst = max(abs(g - s) - abs(s) / 16 for s, g in zip(sent, got))
    assert worst <= 16, worst


@pytest.mark.parametrize("host", ["127.0.0.1", "::1"])
@pytest.mark.parametrize("codec", [G711Codec, G711ACodec])
def test_two_endpoints_exchange_audio_both_ways(cr, host, codec):
    if ":" in host and not has_ipv6():
        pytest.skip("no IPv6 loopback")
    a, b = pair(cr, host, codec)
    try:
        npkts = 50
        sent_a, sent_b = tone(440, 160 * npkts), tone(1000, 160 * npkts, amp=20000)
        for i in range(npkts):  # fed in 20 ms pieces, as a program would
            a.ep.soundout(AudioChunk(sent_a[i * 160 : (i + 1) * 160], 8000))
            b.ep.soundout(AudioChunk(sent_b[i * 160 : (i + 1) * 160], 8000))
        for i in range(npkts + 5):
            cr.step(0.02, lambda: min(a.ep.rsess.npkts, b.ep.rsess.npkts), min(i + 1, npkts))
        for side in (a, b):
            assert side.ep.rsess.npkts == npkts
            assert side.ep.writer.get_frm_ctrs() == (160 * npkts, 160 * npkts)
            assert_continuous(side.ep.rsess.headers, 160, npkts)
            assert {h[4] for h in side.ep.rsess.headers} == {codec.ptype}
            side.ep.rsess.flush()
        g711_close(sent_a, b.audio)
        g711_close(sent_b, a.audio)
        assert all(c.samplerate == 8000 for c in a.got + b.got)
    finally:
        a.ep.shutdown()
        b.ep.shutdown()


def test_g722_endpoints_carry_wideband_audio(cr):
    a, b = pair(cr, codec=G722Codec)
    try:
        b.ep.rtp_params.out_sr = 16000
        b.ep.rsess.stream_update(b.ep.rtp_params)
        sent = tone(3000, 16000, rate=16000)  # above what 8 kHz audio can carry
        a.ep.soundout(AudioChunk(sent, 16000))
        for i in range(55):
            cr.step(0.02, lambda: b.ep.rsess.npkts, min(i + 1, 50))
        b.ep.rsess.flush()
        assert b.ep.rsess.npkts == 50
        hdrs = b.ep.rsess.headers
        assert_continuous(hdrs, 160, 50)  # G.722's RTP clock is 8 kHz
        assert all(h[4] == 9 for h in hdrs)
        got = b.audio
        assert len(got) == 16000 and b.got[0].samplerate == 16000
        # the tone comes through: its energy at 3 kHz dominates (codec delay aside)
        tail = got[4000:12000]
        ref = tone(3000, len(tail) + 200, rate=16000)
        best = max(abs(sum(x * y for x, y in zip(tail, ref[lag:]))) for lag in range(0, 12))
        energy = (sum(x * x for x in tail) * sum(y * y for y in ref[: len(tail)])) ** 0.5
        assert best > 0.8 * energy
    finally:
        a.ep.shutdown()
        b.ep.shutdown()


class RefillingWriter(RTPOutputWorker):
    """Feeds itself 20 ms more whenever less than one packet is left; takes its own
    (non-reentrant) lock around the counters, like threaded Sippy programs do."""

    def __init__(self, rtp_params):
        super().__init__(rtp_params)
        self.my_lock = threading.Lock()
        self.nrefills = 0
        self.limit = 0

    def update_frm_ctrs(self, rcvd_inc=0, prcsd_inc=0):
        with self.my_lock:
            rcvd, prcsd = super().update_frm_ctrs(rcvd_inc, prcsd_inc)
        if rcvd - prcsd < 160 and self.nrefills < self.limit:
            self.nrefills += 1
            self.soundout(AudioChunk(tone(440, 160, phase0=160 * self.nrefills), 8000))
        return rcvd, prcsd


def test_output_worker_refilling_on_drain_keeps_the_stream_going(cr):
    a, b = pair(cr, writer_cls=RefillingWriter)
    try:
        writer = a.ep.writer
        writer.limit = 100
        for i in range(110):
            cr.step(0.02, lambda: b.ep.rsess.npkts, min(i, 100))
        assert writer.nrefills == 100
        assert b.ep.rsess.npkts == 100
        assert_continuous(b.ep.rsess.headers, 160, 100)  # no gap: refilled in time every time
        assert writer.get_frm_ctrs() == (16000, 16000)
    finally:
        a.ep.shutdown()
        b.ep.shutdown()


def test_pacing_does_not_drift_when_timers_fire_late(cr):
    a, b = pair(cr)
    try:
        a.ep.soundout(AudioChunk(tone(440, 160 * 200), 8000))
        sent_at = []
        send = a.ep.writer.pkt_send_f
        a.ep.writer.set_pkt_send_f(lambda pkt: (sent_at.append(cr.seconds()), send(pkt)))
        t0 = cr.seconds()
        for _ in range(100):
            cr.clock.advance(0.027)  # every timer fires 7 ms (or more) late
        # one packet per 20 ms of elapsed time: 2.7 s -> 135, not one per late timer (100)
        assert len(sent_at) == 135
        assert all(t - t0 >= 0.02 * k - 1e-9 for k, t in enumerate(sent_at, 1))
    finally:
        a.ep.shutdown()
        b.ep.shutdown()


def test_a_stalled_reactor_skips_ahead_instead_of_bursting(cr):
    a, b = pair(cr)
    try:
        a.ep.soundout(AudioChunk(tone(440, 160 * 50), 8000))
        for i in range(10):
            cr.step(0.02, lambda: b.ep.rsess.npkts, i + 1)
        cr.step(1.0)  # a one-second stall
        for i in range(5):
            cr.step(0.02, lambda: b.ep.rsess.npkts, 12 + i)
        hdrs = b.ep.rsess.headers
        assert 15 <= len(hdrs) <= 16  # no burst of the 50 packets due during the stall
        jump = (hdrs[10][1] - hdrs[9][1]) & 0xFFFFFFFF
        assert 8000 <= jump <= 8000 + 2 * 160  # the timestamps tell the receiver time went by
        assert hdrs[10][3] == 1  # a new talkspurt
    finally:
        a.ep.shutdown()
        b.ep.shutdown()


def test_silence_keeps_the_rtp_clock_and_marks_the_next_talkspurt(cr):
    a, b = pair(cr)
    try:
        a.ep.soundout(AudioChunk(tone(440, 160 * 3), 8000))
        for _ in range(13):  # 3 packets, then 10 ptimes of nothing
            cr.step(0.02)
        a.ep.soundout(AudioChunk(tone(440, 160 * 2), 8000))
        for _i in range(4):
            cr.step(0.02, lambda: b.ep.rsess.npkts, 5)
        hdrs = b.ep.rsess.headers
        assert [h[3] for h in hdrs] == [1, 0, 0, 1, 0]
        assert [(h[0] - hdrs[0][0]) & 0xFFFF for h in hdrs] == [0, 1, 2, 3, 4]
        assert (hdrs[3][1] - hdrs[2][1]) & 0xFFFFFFFF == 160 * 11
    finally:
        a.ep.shutdown()
        b.ep.shutdown()


def test_a_short_last_chunk_goes_out_padded_with_silence(cr):
    a, b = pair(cr)
    try:
        a.ep.soundout(AudioChunk(tone(440, 200), 8000))
        for i in range(3):
            cr.step(0.02, lambda: b.ep.rsess.npkts, min(i + 1, 2))
        assert b.ep.rsess.npkts == 2
        assert a.ep.writer.get_frm_ctrs() == (200, 200)
        b.ep.rsess.flush()
        assert len(b.audio) == 320 and max(map(abs, b.audio[200:])) <= 8
    finally:
        a.ep.shutdown()
        b.ep.shutdown()


def test_update_moves_the_stream_holds_it_and_resumes(cr):
    a, b = pair(cr)
    pc = free_port()
    c = Side(cr, "127.0.0.1", pc, ("127.0.0.1", a.ep.rtp_params.rtp_lport))
    try:
        a.ep.soundout(AudioChunk(tone(440, 160 * 100), 8000))
        for i in range(10):
            cr.step(0.02, lambda: b.ep.rsess.npkts, i + 1)
        assert b.ep.rsess.npkts == 10
        moved = a.ep.rtp_params.getCopy()
        moved.rtp_target = ("127.0.0.1", pc)  # a re-INVITE moved the peer's media
        a.ep.update(moved)
        writer = a.ep.writer
        for i in range(10):
            cr.step(0.02, lambda: c.ep.rsess.npkts, i + 1)
        assert c.ep.rsess.npkts == 10 and b.ep.rsess.npkts == 10
        assert_continuous(b.ep.rsess.headers + c.ep.rsess.headers, 160, 20)
        assert a.ep.writer is writer  # same stream, new destination
        # b's packets are no longer accepted by a (not from its target)
        b.ep.soundout(AudioChunk(tone(440, 160), 8000))
        cr.step(0.02, lambda: a.ep.nforeign, 1)
        assert a.ep.nforeign == 1 and a.ep.rsess.npkts == 0
        pump(lambda: c.ep.rsess.npkts >= 11, 1.0)
        assert c.ep.rsess.npkts == 11
        hold = moved.getCopy()
        hold.rtp_target = None
        a.ep.update(hold)
        assert a.ep.writer is None
        for _ in range(5):
            cr.step(0.02)
        pump(lambda: False, 0.05)
        assert c.ep.rsess.npkts == 11  # on hold: nothing sent
        a.ep.update(moved)
        a.ep.soundout(AudioChunk(tone(440, 160 * 3), 8000))
        for i in range(3):
            cr.step(0.02, lambda: c.ep.rsess.npkts, 12 + i)
        assert c.ep.rsess.npkts == 14  # audio flows again (a new stream, a new SSRC)
        assert c.ep.rsess.headers[11][2] != c.ep.rsess.headers[10][2]
    finally:
        for s in (a, b, c):
            s.ep.shutdown()


def test_update_to_another_address_family_rebinds(cr):
    if not has_ipv6():
        pytest.skip("no IPv6 loopback")
    a, b = pair(cr)
    p6 = free_port("::1")
    c = Side(cr, "::1", p6, None)
    try:
        new = a.ep.rtp_params.getCopy()
        new.rtp_proto = "IP6"
        new.rtp_laddr = "::1"
        new.rtp_target = ("[::1]", p6)
        a.ep.update(new)
        assert a.ep.rserv.getHost().host == "::1"
        c.ep.update(RTPParams(("::1", a.ep.rtp_params.rtp_lport), rtp_proto="IP6"))
        a.ep.soundout(AudioChunk(tone(440, 160 * 3), 8000))
        for i in range(3):
            cr.step(0.02, lambda: c.ep.rsess.npkts, i + 1)
        assert c.ep.rsess.npkts == 3
    finally:
        for s in (a, b, c):
            s.ep.shutdown()


def test_a_wildcard_endpoint_moves_to_ipv6_on_its_port(cr):
    if not has_ipv6():
        pytest.skip("no IPv6 loopback")
    port = free_port("0.0.0.0")
    ep = RTPEPoint(RTPConf(), _wild(port, None), lambda chunk: None, reactor=cr)
    try:
        assert ep.rserv.getHost().host == "0.0.0.0"
        new = ep.rtp_params.getCopy()
        new.rtp_proto = "IP6"
        ep.update(new)  # '::' on the same port: the IPv4 socket must be gone already
        assert (ep.rserv.getHost().host, ep.rtp_params.rtp_lport) == ("::", port)
    finally:
        ep.shutdown()


def _wild(port, target):
    params = RTPParams(target)
    params.rtp_lport = port
    return params


def test_garbage_and_strangers_are_counted_not_raised(cr):
    a, b = pair(cr)
    try:
        port = a.ep.rtp_params.rtp_lport
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.sendto(b"\x00junk", ("127.0.0.1", port))  # from a stranger
        pump(lambda: a.ep.nforeign >= 1, 1.0)
        assert a.ep.nforeign == 1
        b_sock = b.ep.rserv
        for junk in (b"", b"\x80", b"\x00" * 11, b"\x40" * 40, b"\xff" * 200):
            b_sock.write(junk, ("127.0.0.1", port))
        pump(lambda: a.ep.rsess.nerrors >= 4, 1.0)
        assert a.ep.rsess.npkts == 0 and a.ep.rsess.nerrors >= 4
        assert a.got == []
    finally:
        a.ep.shutdown()
        b.ep.shutdown()


def test_other_payload_types_are_not_played_as_audio(cr):
    a, b = pair(cr)
    try:
        b.ep.soundout(AudioChunk(tone(440, 160 * 12), 8000))
        for i in range(12):
            cr.step(0.02, lambda: a.ep.rsess.npkts, i + 1)
        port = a.ep.rtp_params.rtp_lport
        # telephone-event (pt 101) with the next sequence number, from the target
        seq, ts, ssrc = a.ep.rsess.headers[-1][:3]
        evt = struct.pack("!BBHII", 0x80, 101, (seq + 1) & 0xFFFF, ts + 160, ssrc) + b"\x01\x0a\x00\xa0"
        b.ep.rserv.write(evt, ("127.0.0.1", port))
        pump(lambda: a.ep.rsess.npkts >= 13, 1.0)
        a.ep.rsess.flush()
        assert a.ep.rsess.nforeign == 1
        assert len(a.audio) == 160 * 12
    finally:
        a.ep.shutdown()
        b.ep.shutdown()


def test_shutdown_and_garbage_collection_free_the_port_at_once(cr):
    port = free_port()
    params = RTPParams(("127.0.0.1", 9))
    params.rtp_laddr, params.rtp_lport = "127.0.0.1", port
    ep = RTPEPoint(RTPConf(), params, lambda chunk: None, reactor=cr)
    ep.shutdown()
    ep.shutdown()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:  # no reactor turn needed
        s.bind(("127.0.0.1", port))
    ep = RTPEPoint(RTPConf(), params, lambda chunk: None, reactor=cr)
    del ep  # dropped without shutdown()
    gc.collect()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", port))
    assert cr.clock.getDelayedCalls() == []  # no writer left ticking
    pump(lambda: False, 0.02)  # Twisted's own close, later, finds nothing left to do


def test_a_taken_port_makes_the_allocator_try_another(cr):
    base = free_port(span=4)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", base))
        tries = iter([base, base + 2])
        params = RTPParams(None)
        params.rtp_laddr, params.rtp_lport = "127.0.0.1", lambda ntry: next(tries)
        ep = RTPEPoint(RTPConf(), params, lambda chunk: None, reactor=cr)
        try:
            assert params.rtp_lport == base + 2 and ep.writer is None
        finally:
            ep.shutdown()


def test_port_allocator_gives_even_ports_in_range_and_gives_up():
    alloc = RTP_port_allocator(10001, 10010)
    ports = {alloc(0) for _ in range(200)}
    assert ports == {10002, 10004, 10006, 10008, 10010}
    with pytest.raises(PortAllocationError):
        alloc(5)
    with pytest.raises(ValueError):
        RTP_port_allocator(2000, 1000)
    assert RTPConf().palloc.min_port == 1024


def test_params_canonical_target_family_and_local_address():
    p = RTPParams(None, rtp_proto="ip6")
    assert p.rtp_proto == "IP6" and p.rtp_family == socket.AF_INET6
    assert p.rtp_laddr == "::" and p.bind_laddr == "::"  # no peer yet: don't know
    assert p.out_ptime == 20 and p.out_sr == 8000 and p.codec is G711Codec and p.rtp_lport == 0
    if has_ipv6():
        p.rtp_target = ("[0:0:0:0:0:0:0:1]", "14086")
        assert p.rtp_target == ("::1", 14086)
        assert p.rtp_laddr == "::1" and p.bind_laddr == "::"  # the address that reaches the peer
    p = RTPParams(("127.0.0.1", 5004))
    assert p.rtp_laddr == "127.0.0.1" and p.bind_laddr == "0.0.0.0" and p.rtp_family == socket.AF_INET
    p.rtp_proto = "IP6"  # an IPv4 target is not reachable over IPv6
    assert p.rtp_laddr == "::"
    p.rtp_laddr = "127.0.0.2"
    assert p.rtp_laddr == "127.0.0.2" == p.bind_laddr == p.getCopy().bind_laddr  # the program's choice
    p.rtp_target = ("127.0.0.3", 5004)
    assert p.rtp_laddr == "127.0.0.2"
    p.rtp_laddr = None
    assert p.bind_laddr == "::"
    with pytest.raises(AttributeError):
        p.rtp_family = socket.AF_INET
    with pytest.raises(ValueError):
        p.rtp_proto = "IPX"
    p.rtp_target = ("example.com", 5004)  # a name: no lookup here, address unknown
    assert p.rtp_target == ("example.com", 5004) and p.rtp_laddr == "::"


def test_audio_chunk_resampling_and_bytes():
    c = AudioChunk(tone(100, 160), 8000)
    assert c.nframes == 160 and c.duration() == pytest.approx(0.02)
    assert c.resample(16000) is c and c.samplerate == 16000 and c.nframes == 320
    assert AudioChunk(b"\x01\x00\xff\xff", 8000).audio == array("h", [1, -1])
    assert AudioChunk(array("h", [1, -1]), 8000).to_bytes() == b"\x01\x00\xff\xff"
    with pytest.raises(TypeError):
        AudioChunk(array("i", [1]), 8000)


def test_g711_codecs_known_values_and_rtpmap():
    pcmu, pcma = G711Codec(), G711ACodec()
    silence = array("h", [0, 0])
    assert pcmu.encode(silence) == b"\xff\xff" and pcma.encode(silence) == b"\xd5\xd5"
    assert pcma.encode(array("h", [32767, -32768])) == b"\xaa\x2a"
    assert pcma.decode_pcm(b"\xaa\x2a") == array("h", [32256, -32256])
    assert G711Codec.rtpmap() == "rtpmap:0 PCMU/8000" and G711ACodec.rtpmap() == "rtpmap:8 PCMA/8000"
    assert G722Codec.rtpmap() == "rtpmap:9 G722/8000"
    # every A-law code decodes to a value that encodes back to it
    codes = bytes(range(256))
    assert pcma.encode_pcm(pcma.decode_pcm(codes)) == codes
    # a chunk at another rate is converted before encoding
    assert len(pcmu.encode(AudioChunk(tone(100, 320, rate=16000), 16000))) == 160
    assert len(pcma.decode(b"\xd5" * 160, sample_rate=16000).audio) == 320


def test_a_host_name_target_is_never_resolved_on_the_send_path(cr):
    a, b = pair(cr)
    try:
        moved = a.ep.rtp_params.getCopy()
        moved.rtp_target = ("peer.example.invalid", b.ep.rtp_params.rtp_lport)
        a.ep.update(moved)
        a.ep.soundout(AudioChunk(tone(440, 160 * 3), 8000))
        for _ in range(3):
            cr.step(0.02)
        assert a.ep.nsend_errors == 3 and b.ep.rsess.npkts == 0
    finally:
        a.ep.shutdown()
        b.ep.shutdown()


def test_params_take_a_bracketed_local_address_bare(monkeypatch):
    asked = []

    def l4r(host, family):
        asked.append((host, family))
        return "[2001:db8::1]"  # Sippy 2.x's local4remote brackets IPv6 answers

    monkeypatch.setattr("sippy.Rtp.Params.local4remote", l4r)
    p = RTPParams(None, rtp_proto="IP6")
    p.rtp_target = ("0:0:0:0:0:0:0:1", "14086")
    assert asked == [("::1", socket.AF_INET6)] and p.rtp_laddr == "2001:db8::1"
    p.rtp_target = ("::1", 14086)  # unchanged: not asked again
    p.rtp_proto = "ip6"
    assert len(asked) == 1


def test_update_to_another_codec_starts_a_new_stream_both_ends_follow(cr):
    a, b = pair(cr)
    try:
        a.ep.soundout(AudioChunk(tone(440, 160 * 10), 8000))
        for i in range(10):
            cr.step(0.02, lambda: b.ep.rsess.npkts, i + 1)
        for side in (a, b):  # the re-INVITE agreed on PCMA
            new = side.ep.rtp_params.getCopy()
            new.codec = G711ACodec
            side.ep.update(new)
        assert len(b.audio) == 160 * 10  # what the old stream left was handed over
        sent = tone(1000, 160 * 10, amp=20000)
        a.ep.soundout(AudioChunk(sent, 8000))
        for i in range(10):
            cr.step(0.02, lambda: b.ep.rsess.npkts, 11 + i)
        b.ep.rsess.flush()
        hdrs = b.ep.rsess.headers
        assert [h[4] for h in hdrs] == [0] * 10 + [8] * 10 and hdrs[10][2] != hdrs[9][2]
        g711_close(sent, b.audio[1600:])
    finally:
        a.ep.shutdown()
        b.ep.shutdown()
