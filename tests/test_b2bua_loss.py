"""Calls through a lossy network: SIPp -> relay -> b2bua_radius -> relay -> SIPp, 5 % of the
datagrams lost in each direction on each leg (seeded relays, tests/udp_relay.py), plus the
B2BUA's own outgoing loss (SipTransactionManager.ploss_out_rate).

Every call must complete through retransmissions, and once the RFC timers have run (64*T1 after
the last message, plus the call map's linger) the B2BUA holds no call and no transaction.
"""

from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path

from tests.conftest import free_udp_port
from tests.sipp_util import Sipp
from tests.test_b2bua_radius_calls import pytestmark  # noqa: F401
from tests.test_b2bua_radius_ops import cli_command, read_text, wait_for
from tests.udp_relay import Relay

ROOT = Path(__file__).resolve().parent.parent
CALLS = 30
LOSS = 0.05
# b2bua_radius with Sippy's impairment knobs set on the transaction manager class.
MAIN_WITH_KNOBS = (
    "import sys\n"
    "from sippy.SipTransactionManager import SipTransactionManager as T\n"
    "T.ploss_out_rate, T.pdelay_out_max, T.impair_seed = float(sys.argv[1]), float(sys.argv[2]), 11\n"
    "from sippy.b2bua_radius import main\n"
    "sys.exit(main(sys.argv[3:]))\n"
)

SDP = """v=0
o=sipp 53655765 2353687637 IN IP4 127.0.0.1
s=-
c=IN IP4 127.0.0.1
t=0 0
m=audio [media_port] RTP/AVP 0
a=rtpmap:0 PCMU/8000
"""

# The caller's Via and Contact name the relay's back port, so that everything the B2BUA sends
# this caller crosses the relay as well.
CALLER = """<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="caller behind a lossy relay">
  <send retrans="500"><![CDATA[
INVITE sip:[service]@[remote_ip]:[remote_port] SIP/2.0
Via: SIP/2.0/UDP 127.0.0.1:[via_port];branch=[branch]
From: sipp <sip:sipp@127.0.0.1:[via_port]>;tag=[pid]SIPpTag[call_number]
To: <sip:[service]@[remote_ip]:[remote_port]>
Call-ID: [call_id]
CSeq: 1 INVITE
Contact: <sip:sipp@127.0.0.1:[via_port]>
Max-Forwards: 70
Content-Type: application/sdp
Content-Length: [len]

{sdp}]]></send>
  <recv response="100" optional="true" />
  <recv response="180" optional="true" />
  <recv response="200" />
  <send><![CDATA[
ACK sip:[service]@[remote_ip]:[remote_port] SIP/2.0
Via: SIP/2.0/UDP 127.0.0.1:[via_port];branch=[branch]
From: sipp <sip:sipp@127.0.0.1:[via_port]>;tag=[pid]SIPpTag[call_number]
To: <sip:[service]@[remote_ip]:[remote_port]>[peer_tag_param]
Call-ID: [call_id]
CSeq: 1 ACK
Contact: <sip:sipp@127.0.0.1:[via_port]>
Max-Forwards: 70
Content-Length: 0
]]></send>
  <pause />
  <send retrans="500"><![CDATA[
BYE sip:[service]@[remote_ip]:[remote_port] SIP/2.0
Via: SIP/2.0/UDP 127.0.0.1:[via_port];branch=[branch]
From: sipp <sip:sipp@127.0.0.1:[via_port]>;tag=[pid]SIPpTag[call_number]
To: <sip:[service]@[remote_ip]:[remote_port]>[peer_tag_param]
Call-ID: [call_id]
CSeq: 2 BYE
Contact: <sip:sipp@127.0.0.1:[via_port]>
Max-Forwards: 70
Content-Length: 0
]]></send>
  <recv response="200" />
</scenario>
"""

# The callee answers at the source of the INVITE (the relay) and gives the relay as its Contact;
# the BYE may overtake a lost ACK (the dialog is confirmed by the 2xx, RFC 3261 12.1); it stays a
# while after the BYE to answer a retransmitted one.
CALLEE = """<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="callee behind a lossy relay">
  <recv request="INVITE" />
  <send retrans="500"><![CDATA[
SIP/2.0 200 OK
[last_Via:]
[last_From:]
[last_To:];tag=[pid]SIPpTag01[call_number]
[last_Call-ID:]
[last_CSeq:]
Contact: <sip:callee@127.0.0.1:[contact_port]>
Content-Type: application/sdp
Content-Length: [len]

{sdp}]]></send>
  <recv request="ACK" optional="true" />
  <recv request="BYE" />
  <send><![CDATA[
SIP/2.0 200 OK
[last_Via:]
[last_From:]
[last_To:]
[last_Call-ID:]
[last_CSeq:]
Content-Length: 0
]]></send>
  <timewait milliseconds="4000" />
</scenario>
"""


def leftovers(sock: str) -> tuple[int, int]:
    """(calls, transactions) the B2BUA still holds, from its control socket."""
    calls = int(re.search(r"^Total: (\d+)$", cli_command(sock, "l\n"), re.M).group(1))
    listing = cli_command(sock, "lt\n")
    transactions = [x for x in listing.splitlines() if x and not x.startswith("In-memory")]
    return calls, len(transactions)


def test_calls_complete_with_loss_both_ways_and_nothing_outlives_its_timers(tmp_path: Path) -> None:
    callee_port, port = free_udp_port(), free_udp_port()
    sock = str(tmp_path / "b2bua.sock")
    (tmp_path / "caller.xml").write_text(CALLER.replace("{sdp}", SDP))
    (tmp_path / "callee.xml").write_text(CALLEE.replace("{sdp}", SDP))
    to_callee = Relay(("127.0.0.1", callee_port), loss=LOSS, delay_max=0.02, seed=2).start()
    to_b2bua = Relay(("127.0.0.1", port), loss=LOSS, delay_max=0.02, seed=1).start()
    args = ["-f", "-u", "-A", "0", "-l", "127.0.0.1", "-p", str(port), "-c", sock]
    args += ["-s", f"200@127.0.0.1:{to_callee.front}"]
    log = tmp_path / "b2bua.log"
    with open(log, "wb") as out:
        b2b = subprocess.Popen(
            # Its own loss only: a delay of its own could deliver our 100 Trying after the 200, and
            # SIPp's scenario cannot take a late provisional (Udp_server tests cover the delay).
            [sys.executable, "-c", MAIN_WITH_KNOBS, str(LOSS), "0", *args],
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    callee = caller = None
    try:
        assert wait_for(lambda: "b2bua_radius started" in read_text(log), 20), read_text(log)
        callee = Sipp(
            str(tmp_path / "callee.xml"),
            local_port=callee_port,
            calls=CALLS,
            extra=["-key", "contact_port", str(to_callee.front)],
            timeout=50,
        ).start()
        caller = Sipp(
            str(tmp_path / "caller.xml"),
            to_b2bua.address,
            calls=CALLS,
            rate=10,
            duration=500,
            service="200",
            extra=["-key", "via_port", str(to_b2bua.back)],
            timeout=50,
        ).start()
        caller_res = caller.wait()
        callee_res = callee.wait(timeout=15)
        ended = time.monotonic()
        # Timer J/K and the INVITE's 64*T1 (32 s), then the call map drops the calls.
        clean = wait_for(lambda: leftovers(sock) == (0, 0), 45)
        left = leftovers(sock)
        cleared_after = time.monotonic() - ended
    finally:
        for s in (caller, callee):
            if s is not None:
                s.cleanup()
        b2b.terminate()
        b2b.wait(10)
        relays = (to_b2bua.stop(), to_callee.stop())
    lost = sum(r.get("lost", 0) for r in relays)
    forwarded = sum(r.get("forwarded", 0) for r in relays)
    print(
        f"\nunder loss: {caller_res.stat('SuccessfulCall(C)')} of {CALLS} calls completed, "
        f"relays lost {lost} of {lost + forwarded} datagrams, clean after {cleared_after:.1f} s"
    )
    assert caller_res.returncode == 0 and caller_res.stat("SuccessfulCall(C)") == CALLS, caller_res.describe()
    assert callee_res.stat("SuccessfulCall(C)") == CALLS, callee_res.describe()
    assert lost > 0  # the relays did lose datagrams
    assert clean, (left, read_text(log)[-3000:])
