"""Two small UA programs written against the Sippy API (UA, CCEvents, SdpBody) and sippy.Rtp, for
end-to-end media tests: `caller` places a call, plays a tone, moves its media with a re-INVITE,
puts the call on hold and hangs up; `callee` answers, plays another tone and follows the caller's
re-INVITEs. Each prints one JSON line of what it saw (packets received per phase, peak level of
the audio heard, where it sent its media) when the call ends.

    python -m tests.programs.rtp_ua caller B2B_HOST B2B_PORT MY_IP MY_SIP_PORT [PHASE_SECONDS]
    python -m tests.programs.rtp_ua callee MY_IP MY_SIP_PORT
"""

from __future__ import annotations

import json
import math
import sys
from array import array
from typing import Any, Optional

from sippy.CCEvents import CCEventConnect, CCEventDisconnect, CCEventRing, CCEventTry, CCEventUpdate
from sippy.Core.EventDispatcher import ED2
from sippy.MsgBody import MsgBody
from sippy.Rtp.Codecs.G711 import G711Codec
from sippy.Rtp.Conf import RTPConf
from sippy.Rtp.Core.AudioChunk import AudioChunk
from sippy.Rtp.EPoint import RTPEPoint
from sippy.Rtp.Handlers import RTPHandlers
from sippy.Rtp.OutputWorker import RTPOutputWorker
from sippy.Rtp.Params import RTPParams
from sippy.SdpBody import SdpBody
from sippy.SipConf import SipConf
from sippy.SipTransactionManager import SipTransactionManager
from sippy.UA import UA


def tone_writer(freq: float) -> type[RTPOutputWorker]:
    """An output worker that keeps itself fed with a tone: refills when less than 40 ms is left."""

    class ToneWriter(RTPOutputWorker):
        def __init__(self, rtp_params: RTPParams) -> None:
            super().__init__(rtp_params)
            self.phase = 0

        def update_frm_ctrs(self, rcvd_inc: int = 0, prcsd_inc: int = 0) -> tuple[int, int]:
            rcvd, prcsd = super().update_frm_ctrs(rcvd_inc, prcsd_inc)
            if rcvd - prcsd < 320:
                step = 2 * math.pi * freq / 8000
                pcm = array("h", (int(10000 * math.sin(step * (self.phase + i))) for i in range(160)))
                self.phase += 160
                self.soundout(AudioChunk(pcm, 8000))
            return rcvd, prcsd

    return ToneWriter


class Party:
    """One RTP endpoint at a time and what it heard."""

    def __init__(self, my_ip: str, freq: float) -> None:
        self.my_ip = my_ip
        self.proto = "IP6" if ":" in my_ip else "IP4"
        self.handlers = RTPHandlers()
        self.handlers.writer_cls = tone_writer(freq)
        self.peak = 0
        self.targets: list[Any] = []
        self.ep: Optional[RTPEPoint] = None
        self.new_endpoint()

    def new_endpoint(self) -> None:
        if self.ep is not None:
            self.ep.shutdown()
        params = RTPParams(None, rtp_proto=self.proto)
        params.rtp_laddr = self.my_ip
        self.ep = RTPEPoint(RTPConf(20000, 30000), params, self.audio_in, handlers=self.handlers)

    def audio_in(self, chunk: AudioChunk) -> None:
        self.peak = max(self.peak, max(map(abs, chunk.audio)))

    def sdp(self, direction: str = "sendrecv") -> MsgBody:
        ip, port = self.my_ip, self.ep.rtp_params.rtp_lport
        text = (
            f"v=0\r\no=- 1 1 IN {self.proto} {ip}\r\ns=-\r\nc=IN {self.proto} {ip}\r\nt=0 0\r\n"
            f"m=audio {port} RTP/AVP 0\r\na={G711Codec.rtpmap()}\r\na={direction}\r\n"
        )
        return MsgBody(SdpBody(text))

    def follow(self, body: MsgBody) -> bool:
        """Send where the peer's SDP says (nowhere when it holds); True when it holds."""
        sect = body.getContent().sections[0]
        params = self.ep.rtp_params.getCopy()
        holds = sect.isOnHold() or sect.getDirection() == "recvonly"
        params.rtp_target = None if holds else (sect.c_header.addr, sect.m_header.port)
        self.targets.append(params.rtp_target)
        self.ep.update(params)
        return holds

    @property
    def npkts(self) -> int:
        return self.ep.rsess.npkts


def start_sip(my_ip: str, my_port: int, req_cb: Any = None) -> dict[str, Any]:
    SipConf.my_address, SipConf.my_port = my_ip, my_port
    global_config: dict[str, Any] = {"_sip_address": my_ip, "_sip_port": my_port}
    global_config["_sip_tm"] = SipTransactionManager(global_config, req_cb)
    return global_config


def finish(report: dict[str, Any], rval: int) -> None:
    print(json.dumps(report), flush=True)
    ED2.regTimer(lambda: ED2.breakLoop(rval), 0.5).go()  # let the last transaction end


class Caller:
    def __init__(self, global_config: dict[str, Any], nh: tuple[str, int], my_ip: str, phase: float) -> None:
        self.me = Party(my_ip, 440)
        self.phase = phase
        self.report: dict[str, Any] = {"rx": {}}
        self.step = "call"
        cbs = (self.ended,)
        self.ua = UA(global_config, event_cb=self.recvEvent, nh_address=nh, disc_cbs=cbs, fail_cbs=cbs)
        self.ua.recvEvent(CCEventTry((None, "alice", "bob", self.me.sdp(), None, "Alice")))

    def recvEvent(self, event: Any, ua: UA) -> None:
        if not isinstance(event, CCEventConnect):
            return
        self.me.follow(event.getData()[2])
        if self.step == "call":  # answered: talk for a while, then move the media
            ED2.regTimer(self.move, self.phase).go()
        elif self.step == "move":  # the re-INVITE is answered: talk from the new port, then hold
            ED2.regTimer(self.hold, self.phase).go()
        elif self.step == "hold":  # on hold: let what is in flight arrive, then watch nothing come
            ED2.regTimer(lambda: self.snapshot("hold_start"), 0.3).go()
            ED2.regTimer(self.hangup, 0.3 + self.phase).go()

    def snapshot(self, name: str) -> None:
        self.report["rx"][name] = self.me.npkts

    def move(self) -> None:
        self.snapshot("before_move")
        self.step = "move"
        self.me.new_endpoint()
        self.ua.recvEvent(CCEventUpdate(self.me.sdp()))

    def hold(self) -> None:
        self.snapshot("after_move")
        self.step = "hold"
        self.ua.recvEvent(CCEventUpdate(self.me.sdp("inactive")))

    def hangup(self) -> None:
        self.snapshot("hold_end")
        self.ua.recvEvent(CCEventDisconnect())

    def ended(self, ua: UA, rtime: Any, origin: Any, result: int = 0) -> None:
        self.report.update(peak=self.me.peak, targets=self.me.targets, result=result, step=self.step)
        self.me.ep.shutdown()
        finish(self.report, 0 if self.step == "hold" else 1)


class Callee:
    def __init__(self, my_ip: str) -> None:
        self.my_ip = my_ip
        self.me: Optional[Party] = None
        self.report: dict[str, Any] = {"rx": []}
        self.global_config: dict[str, Any] = {}

    def recvRequest(self, req: Any, sip_t: Any) -> Any:
        if req.getMethod() != "INVITE" or self.me is not None:
            return (req.genResponse(486 if self.me is not None else 501, "Busy Here"), None, None)
        ua = UA(self.global_config, event_cb=self.recvEvent, disc_cbs=(self.ended,), fail_cbs=(self.ended,))
        return ua.recvRequest(req, sip_t)

    def recvEvent(self, event: Any, ua: UA) -> None:
        if isinstance(event, CCEventTry):
            self.me = Party(self.my_ip, 1000)
            self.me.follow(event.getData()[3])
            ua.recvEvent(CCEventRing((180, "Ringing", None)))
            ua.recvEvent(CCEventConnect((200, "OK", self.me.sdp())))
        elif isinstance(event, CCEventUpdate):
            self.report["rx"].append(self.me.npkts)
            holds = self.me.follow(event.getData())
            ua.recvEvent(CCEventConnect((200, "OK", self.me.sdp("inactive" if holds else "sendrecv"))))

    def ended(self, ua: UA, rtime: Any, origin: Any, result: int = 0) -> None:
        if self.me is None:
            finish({"result": result}, 1)
            return
        self.report["rx"].append(self.me.npkts)
        self.report.update(peak=self.me.peak, targets=self.me.targets, result=result)
        self.me.ep.shutdown()
        finish(self.report, 0)


def main() -> None:
    role = sys.argv[1]
    ED2.regTimer(lambda: ED2.breakLoop(3), 30.0).go()  # never outlive a broken test
    if role == "caller":
        host, port, my_ip, my_port = sys.argv[2], int(sys.argv[3]), sys.argv[4], int(sys.argv[5])
        phase = float(sys.argv[6]) if len(sys.argv) > 6 else 1.0
        Caller(start_sip(my_ip, my_port), (host, port), my_ip, phase)
    else:
        my_ip, my_port = sys.argv[2], int(sys.argv[3])
        callee = Callee(my_ip)
        callee.global_config.update(start_sip(my_ip, my_port, callee.recvRequest))
    sys.exit(ED2.loop())


if __name__ == "__main__":
    main()
