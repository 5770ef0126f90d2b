"""A small Sippy-style UAC program, unchanged Sippy API, calls a SIPp UAS and hangs up on answer."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

from tests.conftest import free_udp_port
from tests.sipp_util import Sipp

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

PROGRAM = textwrap.dedent(
    """
    import sys

    from sippy.CCEvents import CCEventDisconnect, CCEventTry
    from sippy.Core.EventDispatcher import ED2
    from sippy.MsgBody import MsgBody
    from sippy.SipConf import SipConf
    from sippy.SipLogger import SipLogger
    from sippy.SipTransactionManager import SipTransactionManager
    from sippy.UA import UA

    SDP = (
        "v=0\\r\\no=- 1 1 IN IP4 127.0.0.1\\r\\ns=-\\r\\nc=IN IP4 127.0.0.1\\r\\nt=0 0\\r\\n"
        "m=audio 16000 RTP/AVP 0\\r\\na=rtpmap:0 PCMU/8000\\r\\n"
    )


    class Caller:
        def __init__(self, global_config, nh_address):
            self.events = []
            self.ua = UA(
                global_config,
                event_cb=self.recvEvent,
                nh_address=nh_address,
                conn_cbs=(self.connected,),
                disc_cbs=(self.disconnected,),
                fail_cbs=(self.failed,),
                dead_cbs=(self.dead,),
            )
            self.ua.godead_timeout = 0.5
            event = CCEventTry((None, "alice", "service", MsgBody(SDP), None, "Alice"))
            self.ua.recvEvent(event)
            self.rval = 3

        def recvEvent(self, event, ua):
            self.events.append(event.name)

        def connected(self, ua, rtime, origin):
            self.rval = 0
            ua.recvEvent(CCEventDisconnect(rtime=rtime))

        def disconnected(self, ua, rtime, origin, result=0):
            pass

        def failed(self, ua, rtime, origin, result=0):
            self.rval = 1

        def dead(self, ua):
            print("events:", " ".join(self.events))
            ED2.breakLoop(self.rval)


    def main():
        host, port, my_port = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
        SipConf.my_address = "127.0.0.1"
        SipConf.my_port = my_port
        global_config = {
            "_sip_address": "127.0.0.1",
            "_sip_port": my_port,
            "_sip_logger": SipLogger("compat_uac"),
        }
        global_config["_sip_tm"] = SipTransactionManager(global_config)
        caller = Caller(global_config, (host, port))
        ED2.regTimer(lambda: ED2.breakLoop(2), 10.0).go()
        sys.exit(ED2.loop())


    main()
    """
)


def test_sippy_style_uac_against_sipp_uas(tmp_path) -> None:
    script = tmp_path / "uac.py"
    script.write_text(PROGRAM)
    sipp = Sipp("uas", calls=1, timeout=12)
    sipp.start()
    try:
        env = dict(os.environ, PYTHONPATH=ROOT, SIPLOG_BEND="stderr")
        proc = subprocess.run(
            [sys.executable, str(script), *map(str, sipp.address), str(free_udp_port())],
            env=env,
            capture_output=True,
            text=True,
            timeout=20,
        )
        res = sipp.wait()
    finally:
        sipp.kill()
        sipp.cleanup()
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "CCEventConnect" in proc.stdout and "CCEventRing" in proc.stdout
    assert res.stat("SuccessfulCall") == 1, res.describe()
    assert res.stat("FailedCall") == 0, res.describe()
    assert len(res.received("ACK")) == 1 and len(res.received("BYE")) == 1, res.describe()


UAS_PROGRAM = textwrap.dedent(
    """
    import sys

    from sippy.CCEvents import CCEventConnect, CCEventRing, CCEventTry
    from sippy.Core.EventDispatcher import ED2
    from sippy.MsgBody import MsgBody
    from sippy.SipConf import SipConf
    from sippy.SipLogger import SipLogger
    from sippy.SipTransactionManager import SipTransactionManager
    from sippy.UA import UA

    SDP = (
        "v=0\\r\\no=- 1 1 IN IP4 127.0.0.1\\r\\ns=-\\r\\nc=IN IP4 127.0.0.1\\r\\nt=0 0\\r\\n"
        "m=audio 16002 RTP/AVP 0\\r\\n"
    )


    class Callee:
        def __init__(self, global_config):
            self.global_config = global_config
            self.events = []
            self.rval = 3

        def recvRequest(self, req, sip_t):
            if req.getMethod() != "INVITE":
                return (req.genResponse(501, "Not Implemented"), None, None)
            ua = UA(self.global_config, event_cb=self.recvEvent, disc_cbs=(self.disconnected,),
                    dead_cbs=(self.dead,))
            ua.godead_timeout = 0.5
            return ua.recvRequest(req, sip_t)

        def recvEvent(self, event, ua):
            self.events.append(event.name)
            if isinstance(event, CCEventTry):
                ua.recvEvent(CCEventRing((180, "Ringing", None)))
                ua.recvEvent(CCEventConnect((200, "OK", MsgBody(SDP))))

        def disconnected(self, ua, rtime, origin, result=0):
            self.rval = 0

        def dead(self, ua):
            print("events:", " ".join(self.events))
            ED2.breakLoop(self.rval)


    def main():
        my_port = int(sys.argv[1])
        SipConf.my_address = "127.0.0.1"
        SipConf.my_port = my_port
        global_config = {
            "_sip_address": "127.0.0.1",
            "_sip_port": my_port,
            "_sip_logger": SipLogger("compat_uas"),
        }
        callee = Callee(global_config)
        global_config["_sip_tm"] = SipTransactionManager(global_config, callee.recvRequest)
        ED2.regTimer(lambda: ED2.breakLoop(2), 10.0).go()
        sys.exit(ED2.loop())


    main()
    """
)


def test_sippy_style_uas_answers_sipp_uac(tmp_path) -> None:
    script = tmp_path / "uas.py"
    script.write_text(UAS_PROGRAM)
    port = free_udp_port()
    env = dict(os.environ, PYTHONPATH=ROOT, SIPLOG_BEND="stderr")
    proc = subprocess.Popen(
        [sys.executable, str(script), str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    sipp = Sipp("uac", remote=("127.0.0.1", port), calls=1, timeout=10, extra=("-d", "200"))
    try:
        # Let the program bind its socket before SIPp's INVITE arrives (SIPp retransmits anyway).
        sipp.start()
        res = sipp.wait()
        out, err = proc.communicate(timeout=15)
    finally:
        sipp.cleanup()
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert res.stat("SuccessfulCall") == 1, res.describe() + err
    assert proc.returncode == 0, out + err
    assert out.split() == ["events:", "CCEventTry", "CCEventDisconnect"], out + err
    (r200,) = [m for m in res.received("SIP/2.0 200") if "INVITE" in m.split("CSeq:")[1].split("\n")[0]]
    assert "m=audio 16002" in r200 and "Contact:" in r200
