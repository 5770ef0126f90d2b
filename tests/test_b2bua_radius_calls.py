"""b2bua_radius as a real process between two SIPp instances: what each flag does on the wire.

Every test starts ``scripts/b2bua_radius.py -f -u -A 0 ...`` on free loopback ports, a SIPp callee
(UAS) and a SIPp caller (UAC), and checks the messages SIPp saw. ``B2B`` is shared with the other
``test_b2bua_radius_*`` files.
"""

from __future__ import annotations

import json
import os
import re
import select
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from typing import Optional

import pytest

from tests.conftest import free_udp_port, stop_process
from tests.sipp_util import Sipp

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(ROOT, "scripts", "b2bua_radius.py")
# main() with a fixed route list: the importable failover API, no command-line flag involved.
_ROUTES_MAIN = (
    "import json, sys\n"
    "from sippy.B2BRoute import B2BRoute\n"
    "from sippy.b2bua_radius import main\n"
    "sys.exit(main(sys.argv[2:], routes=[B2BRoute(r) for r in json.loads(sys.argv[1])]))\n"
)

pytestmark = pytest.mark.skipif(
    not any(
        os.access(os.path.join(d, "sipp"), os.X_OK) for d in os.environ.get("PATH", "").split(os.pathsep)
    ),
    reason="sipp not installed",
)


class B2B:
    """One b2bua_radius process on 127.0.0.1:<free port>; ``routes`` runs it through main(routes=);
    ``python`` is the interpreter that runs it (PyPy in tests/test_pypy.py)."""

    def __init__(
        self, args: Sequence[str], routes: Optional[Sequence[str]] = None, python: str = sys.executable
    ) -> None:
        self.port = free_udp_port()
        self.tmpdir = tempfile.mkdtemp(prefix="b2bua-radius-")
        ctl = os.path.join(self.tmpdir, "ctl.sock")
        argv = ["-f", "-l", "127.0.0.1", "-p", str(self.port), "-c", ctl, *args]
        # Never the default spool beside /var/run/b2bua.pid: tests must not share one.
        argv += ["--acct_spool_dir", os.path.join(self.tmpdir, "acct-spool")]
        if routes is None:
            self.cmd = [python, SCRIPT, *argv]
        else:
            self.cmd = [python, "-c", _ROUTES_MAIN, json.dumps(list(routes)), *argv]
        self.errpath = os.path.join(self.tmpdir, "stderr.log")
        self.proc: Optional[subprocess.Popen[bytes]] = None

    @property
    def address(self) -> tuple[str, int]:
        return ("127.0.0.1", self.port)

    def start(self, timeout: float = 20.0) -> B2B:
        with open(self.errpath, "wb") as err:
            self.proc = subprocess.Popen(
                self.cmd, cwd=ROOT, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=err
            )
        assert self.proc.stdout is not None
        deadline = time.monotonic() + timeout
        line = b""
        while time.monotonic() < deadline and b"started" not in line:
            ready, _, _ = select.select([self.proc.stdout], [], [], max(0.0, deadline - time.monotonic()))
            if not ready:
                break
            line = self.proc.stdout.readline()
            if not line:
                break
        if b"started" not in line:
            self.stop()
            raise AssertionError(f"b2bua_radius did not start:\n{self.stderr()}")
        return self

    def stop(self) -> int:
        """SIGTERM (the calls get their BYEs), then SIGKILL if it lingers; returns the exit code."""
        assert self.proc is not None
        code = stop_process(self.proc)
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        return code

    def stderr(self) -> str:
        with open(self.errpath, errors="replace") as f:
            return f.read()

    def __enter__(self) -> B2B:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def call(
    b2b_args: Sequence[str],
    route: str = "127.0.0.1:{uas}",
    uac: str = "radius_uac.xml",
    uas: Optional[str] = "uas",
    uac_kw: Optional[dict] = None,
    uas_kw: Optional[dict] = None,
    timeout: float = 8.0,
    python: str = sys.executable,
):
    """One call caller -> B2BUA -> callee; returns (uac result, uas result or None, b2b stderr).

    ``route`` may name the callee's port as ``{uas}``; it becomes ``-s``.
    """
    uas_port = free_udp_port()
    args = [*b2b_args, "-s", route.format(uas=uas_port)]
    callee = Sipp(uas, local_port=uas_port, timeout=timeout, **(uas_kw or {})) if uas is not None else None
    try:
        if callee is not None:
            callee.start()
        with B2B(args, python=python) as b2b:
            kw = {"duration": 300, **(uac_kw or {})}
            with Sipp(uac, remote=b2b.address, timeout=timeout, **kw) as caller:
                pass
            uas_res = callee.wait() if callee is not None else None
            stderr = b2b.stderr()
    finally:
        if callee is not None:
            callee.cleanup()
    return caller.result, uas_res, stderr


def header(msg: str, name: str) -> list[str]:
    """Values of header ``name`` in one traced message."""
    return [m.group(1).strip() for m in re.finditer(rf"^{name}\s*:(.*)$", msg, re.M | re.I)]


def body_of(msg: str) -> str:
    return re.split(r"\r?\n\r?\n", msg, maxsplit=1)[1]


def test_basic_call_passes_and_legs_are_isolated():
    uac, uas, err = call(["-u", "-A", "0"])
    assert uac.returncode == 0, uac.describe() + err
    assert uas.returncode == 0, uas.describe() + err
    invite_in = uac.sent("INVITE")[0]
    invite_out = uas.received("INVITE")[0]
    assert invite_out.startswith("INVITE sip:service@127.0.0.1:")
    # Own Call-ID (derived, not equal), own From tag, own Via: only the call parameters crossed.
    cid_in, cid_out = header(invite_in, "Call-ID")[0], header(invite_out, "Call-ID")[0]
    assert cid_out != cid_in and cid_out.startswith(cid_in)
    assert "SIPpTag00" not in header(invite_out, "From")[0]
    assert len(header(invite_out, "Via")) == 1
    assert re.match(r'"?Alice"? <sip:1000@', header(invite_out, "From")[0])
    assert uas.received("BYE"), uas.describe()


def test_route_cld_cli_cnam_rewrite_egress_leg():
    uac, uas, err = call(["-u", "-A", "0"], route="5551234@127.0.0.1:{uas};cli=7770000;cnam=Bob%20Smith")
    assert uac.returncode == 0, uac.describe() + err
    invite = uas.received("INVITE")[0]
    assert invite.startswith("INVITE sip:5551234@127.0.0.1:"), invite
    from_hf = header(invite, "From")[0]
    assert "sip:7770000@" in from_hf
    assert re.match(r'"?Bob Smith"? <', from_hf), from_hf
    # The caller's leg is untouched.
    assert "1000@" in header(uac.sent("INVITE")[0], "From")[0]


def test_route_ash_adds_headers():
    uac, uas, err = call(["-u", "-A", "0"], route="127.0.0.1:{uas};ash=X-Billing%3A%20gold;ash=X-Two%3Atwo")
    assert uac.returncode == 0, uac.describe() + err
    invite = uas.received("INVITE")[0]
    assert header(invite, "X-Billing") == ["gold"]
    assert header(invite, "X-Two") == ["two"]


def test_pass_headers_verbatim_and_only_those():
    uac, uas, err = call(["-u", "-A", "0", "-h", "X-Pass-Me"])
    assert uac.returncode == 0, uac.describe() + err
    invite = uas.received("INVITE")[0]
    assert header(invite, "X-Pass-Me") == ["hello"]
    assert header(invite, "X-Keep-Out") == []


def test_without_pass_headers_nothing_extra_crosses():
    uac, uas, err = call(["-u", "-A", "0"])
    assert uac.returncode == 0, uac.describe() + err
    invite = uas.received("INVITE")[0]
    assert header(invite, "X-Pass-Me") == [] and header(invite, "X-Keep-Out") == []


def test_hide_call_id():
    uac, uas, err = call(["-u", "-A", "0", "--hide_call_id"])
    assert uac.returncode == 0, uac.describe() + err
    cid_in = header(uac.sent("INVITE")[0], "Call-ID")[0]
    cid_out = header(uas.received("INVITE")[0], "Call-ID")[0]
    assert cid_in not in cid_out
    assert cid_in.split("@")[0] not in cid_out
    assert re.fullmatch(r"[0-9a-f]{32}-b2b_1", cid_out), cid_out


def test_static_translations_in_then_out():
    # -t turns the dialled "service" into 123 before routing; -T prefixes 00 on the way out.
    uac, uas, err = call(["-u", "-A", "0", "-t", "s/^service$/123/", "-T", "s/^1/001/"])
    assert uac.returncode == 0, uac.describe() + err
    assert uas.received("INVITE")[0].startswith("INVITE sip:00123@127.0.0.1:")


def test_accept_ips_refuses_other_sources_with_403():
    uac, uas, err = call(["-u", "-A", "0", "-a", "127.0.0.2"], uac="radius_uac_fail.xml", uas=None)
    assert uac.returncode == 0, uac.describe() + err
    assert [m.split("\n")[0].strip() for m in uac.received("SIP/2.0 4")] == ["SIP/2.0 403 Forbidden"]


def test_accept_ips_admits_listed_source():
    uac, uas, err = call(["-u", "-A", "0", "-a", "127.0.0.2,127.0.0.1"])
    assert uac.returncode == 0, uac.describe() + err
    assert uas.received("INVITE")


def test_allowed_pts_filter_the_egress_offer():
    uac, uas, err = call(["-u", "-A", "0", "-F", "8,101"])
    assert uac.returncode == 0, uac.describe() + err
    invite = uas.received("INVITE")[0]
    sdp = body_of(invite)
    assert re.search(r"^m=audio \d+ RTP/AVP 8 101\r?$", sdp, re.M), sdp
    assert "a=rtpmap:8 PCMA/8000" in sdp and "a=rtpmap:101 telephone-event/8000" in sdp
    assert "a=fmtp:101 0-15" in sdp
    assert "rtpmap:0 " not in sdp and "rtpmap:18 " not in sdp and "fmtp:18" not in sdp
    (clen,) = header(invite, "Content-Length")
    # The trace shows lines without their CR; on the wire each SDP line ends in CRLF.
    assert int(clen) == sum(len(line.encode()) + 2 for line in sdp.strip().splitlines()), (clen, sdp)


def test_allowed_pts_by_name():
    uac, uas, err = call(["-u", "-A", "0", "-F", "[G729]"])
    assert uac.returncode == 0, uac.describe() + err
    sdp = body_of(uas.received("INVITE")[0])
    assert re.search(r"^m=audio \d+ RTP/AVP 18\r?$", sdp, re.M), sdp
    assert "a=fmtp:18 annexb=no" in sdp


def test_allowed_pts_none_offered_488():
    uac, uas, err = call(["-u", "-A", "0", "-F", "9"], uac="radius_uac_fail.xml", uas=None)
    assert uac.returncode == 0, uac.describe() + err
    finals = [m.split("\n")[0].strip() for m in uac.received("SIP/2.0 4")]
    assert finals == ["SIP/2.0 488 Not Acceptable Here"]


def _bye_both_legs(b2b_args, route, max_secs):
    t0 = time.monotonic()
    uac, uas, err = call(b2b_args, route=route, uac="radius_uac_bye.xml", timeout=max_secs)
    elapsed = time.monotonic() - t0
    assert uac.returncode == 0, uac.describe() + err
    assert uas.returncode == 0, uas.describe() + err
    assert uac.received("BYE") and uas.received("BYE")
    return elapsed


def test_credit_time_ends_call_on_both_legs():
    _bye_both_legs(["-u", "-A", "0"], "127.0.0.1:{uas};credit-time=1", max_secs=6)


def test_max_credit_time_caps_longer_route_credit():
    # credit-time=30 would outlive SIPp's 6 s timeout: only -m 1 can end this call in time.
    _bye_both_legs(["-u", "-A", "0", "-m", "1"], "127.0.0.1:{uas};credit-time=30", max_secs=6)


def test_keepalive_answered_keeps_call_up():
    uac, uas, err = call(
        ["-u", "-A", "0", "--keepalive_ans=1"], uac="radius_uac_ka.xml", uac_kw={"duration": 300}
    )
    assert uac.returncode == 0, uac.describe() + err
    (reinvite,) = uac.received("INVITE")
    assert header(reinvite, "Call-ID") == header(uac.sent("INVITE")[0], "Call-ID")
    assert header(reinvite, "CSeq")[0].endswith("INVITE")
    # The caller hung up itself, after the keepalive: the callee got that BYE.
    assert not uac.received("BYE")
    assert uas.received("BYE")


def test_keepalive_481_disconnects_both_legs():
    uac, uas, err = call(["-u", "-A", "0", "-k", "1", "--keepalive_ans=1"], uac="radius_uac_ka481.xml")
    assert uac.returncode == 0, uac.describe() + err
    assert uas.returncode == 0, uas.describe() + err
    assert uac.received("BYE") and uas.received("BYE")


def _run_main(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, SCRIPT, *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=10,
        stdin=subprocess.DEVNULL,
    )


def test_bad_flag_one_line_exit_2_before_start():
    port = free_udp_port()
    res = _run_main("-f", "-u", "-s", "127.0.0.1:9", "-p", str(port), "-k", "7")
    assert res.returncode == 2
    assert res.stderr.count("\n") == 1 and res.stderr.startswith("b2bua_radius: -k"), res.stderr
    assert "started" not in res.stdout


def test_missing_radiusclient_conf_with_auth_exits_1(tmp_path):
    res = _run_main(
        "-f", "-p", str(free_udp_port()), "-R", str(tmp_path / "nope.conf"), "-c", str(tmp_path / "c")
    )
    assert res.returncode == 1
    assert res.stderr.startswith("b2bua_radius: ") and "nope.conf" in res.stderr, res.stderr
    assert "started" not in res.stdout
