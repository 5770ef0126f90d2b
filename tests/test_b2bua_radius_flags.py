"""b2bua_radius flags not proven elsewhere, each checked on the wire (issue #4 coverage audit).

Most tests run the real program between SIPp peers through ``call()`` of test_b2bua_radius_calls
and read what SIPp saw. The long options are proven by one parse test that maps each of them to
the same configuration as its short form (the short form has its wire test somewhere).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from sippy.B2BConfig import parse_args
from tests.conftest import free_udp_port
from tests.sipp_util import Sipp
from tests.test_b2bua_radius_calls import B2B, ROOT, _run_main, body_of, call, header, pytestmark  # noqa: F401

NO_AAA = ("-u", "-A", "0")


def first_line(msg: str) -> str:
    return msg.split("\n", 1)[0].strip()


# ----- long forms: same configuration as the short form --------------------------------------

SHORT_AND_LONG = [
    (["-l", "127.0.0.2"], ["--sip_address=127.0.0.2"]),
    (["-p", "5071"], ["--sip_port=5071"]),
    (["-f"], ["--foreground"]),
    (["-P", "/tmp/a.pid"], ["--pidfile=/tmp/a.pid"]),
    (["-L", "/tmp/a.log"], ["--logfile=/tmp/a.log"]),
    (["-s", "1@192.0.2.1;cli=2"], ["--static_route=1@192.0.2.1;cli=2"]),
    (["-a", "127.0.0.1,127.0.0.2"], ["--accept_ips=127.0.0.1,127.0.0.2"]),
    (["-u"], ["--auth_enable=off"]),
    (["-A", "0"], ["--acct_enable=off"]),
    (["-A", "2"], ["--start_acct_enable=on"]),
    (["-D"], ["--digest_auth=off"]),
    (["-m", "60"], ["--max_credit_time=60"]),
    (["-k", "1"], ["--keepalive_ans=32"]),
    (["-k", "2"], ["--keepalive_orig=32"]),
    (["-k", "3"], ["--keepalive_ans=32", "--keepalive_orig=32"]),
    (["-F", "0,8,[telephone-event]"], ["--allowed_pts=0,8,[telephone-event]"]),
    (["-h", "X-A", "-h", "X-B"], ["--pass_headers=X-A,X-B"]),
    (["-c", "tcp:127.0.0.1:2222"], ["--b2bua_socket=tcp:127.0.0.1:2222"]),
    (["-r", "udp:127.0.0.1:22222"], ["--rtp_proxy_clients=udp:127.0.0.1:22222"]),
    (["-R", "/tmp/r.conf"], ["--radiusclient.conf=/tmp/r.conf"]),
    (["-H"], ["--hide_call_id"]),
    (["-t", "s/^0//"], ["--static_tr_in=s/^0//"]),
    (["-T", "s/^/00/"], ["--static_tr_out=s/^/00/"]),
    (["-x", "HDR2Xattrs[X-Foo]"], ["--pre_auth_proc=HDR2Xattrs[X-Foo]"]),
    (["-M", "4"], ["--max_radiusclients=4"]),
]


def _as_text(argv: list[str]) -> dict[str, str]:
    """The whole configuration (derived keys too) as text, so parsed objects compare."""
    return {k: str(v) for k, v in parse_args(["-s", "192.0.2.9", *argv]).items()}


@pytest.mark.parametrize("short, long", SHORT_AND_LONG, ids=[" ".join(s) for s, _ in SHORT_AND_LONG])
def test_long_form_gives_the_same_configuration_as_short(short, long):
    assert _as_text(short) == _as_text(long)
    assert _as_text(short) != _as_text([])  # the flag does something


# ----- -F on a re-INVITE ---------------------------------------------------------------------


def test_allowed_pts_filter_reinvite_offer_and_refuse_one_without_allowed_codec():
    uac, uas, err = call([*NO_AAA, "-F", "0,8"], uac="flags_uac_reinvite.xml", uas="flags_uas_reinvite.xml")
    assert uac.returncode == 0, uac.describe() + err
    assert uas.returncode == 0, uas.describe() + err
    # The G.729-only re-INVITE never reached the callee; the other one did, filtered.
    initial, reinvite = uas.received("INVITE")
    assert header(reinvite, "Call-ID") == header(initial, "Call-ID")
    sdp = body_of(reinvite)
    assert re.search(r"^m=audio \d+ RTP/AVP 0 8\r?$", sdp, re.M), sdp
    assert "a=sendonly" in sdp
    assert "G729" not in sdp and "telephone-event" not in sdp
    assert [first_line(m) for m in uac.received("SIP/2.0 488")] == ["SIP/2.0 488 Not Acceptable Here"]
    # The call survived the refused offer: the caller's BYE still crossed.
    assert uas.received("BYE")


# ----- keepalives on the originating leg (-k 2 is --keepalive_orig=32) -----------------------


def test_keepalive_orig_reinvites_the_callee_not_the_caller():
    # radius_uac.xml fails on any INVITE from the B2BUA: only the callee may be probed.
    uac, uas, err = call(
        [*NO_AAA, "-k", "2", "--keepalive_orig=1"], uas="flags_uas_reinvite.xml", uac_kw={"duration": 1800}
    )
    assert uac.returncode == 0, uac.describe() + err
    assert uas.returncode == 0, uas.describe() + err
    initial, *keepalives = uas.received("INVITE")
    assert 1 <= len(keepalives) <= 2, uas.describe()
    for ka in keepalives:
        assert header(ka, "Call-ID") == header(initial, "Call-ID")
        assert ";tag=" in header(ka, "To")[0]
    assert not uac.received("INVITE")
    assert uas.received("BYE")


# ----- --nat_traversal ------------------------------------------------------------------------


def test_nat_traversal_sends_in_dialog_requests_to_the_source_not_the_private_contact():
    # Both peers give Contacts on private addresses they are not at: the callee gets its ACK
    # and the caller its BYE only if the B2BUA used the addresses the messages came from.
    uac, uas, err = call(
        [*NO_AAA, "--nat_traversal"], uac="flags_uac_nat.xml", uas="flags_uas_nat.xml", timeout=6
    )
    assert uac.returncode == 0, uac.describe() + err
    assert uas.returncode == 0, uas.describe() + err
    assert uas.received("ACK")
    (bye,) = uac.received("BYE")
    caller_port = re.search(r"Via: SIP/2.0/UDP 127.0.0.1:(\d+)", uac.sent("INVITE")[0])[1]
    assert bye.startswith(f"BYE sip:1000@127.0.0.1:{caller_port} "), bye


# ----- --sip_proxy ----------------------------------------------------------------------------


def _register(b2b_args: list[str], registrar_port: int = 0):
    """A REGISTER to the B2BUA (and a registrar on registrar_port when given); SIPp results."""
    registrar = Sipp("flags_registrar.xml", local_port=registrar_port, timeout=5) if registrar_port else None
    try:
        if registrar is not None:
            registrar.start()
        with B2B([*NO_AAA, "-s", "127.0.0.1:9", *b2b_args]) as b2b:
            with Sipp("flags_register.xml", remote=b2b.address, timeout=5) as client:
                pass
            reg = registrar.wait() if registrar is not None else None
            err = b2b.stderr()
    finally:
        if registrar is not None:
            registrar.cleanup()
    return client.result, reg, err, b2b.port


def test_sip_proxy_forwards_register_and_returns_the_answer():
    port = free_udp_port()
    client, reg, err, b2b_port = _register(["--sip_proxy", f"127.0.0.1:{port}"], port)
    assert client.returncode == 0, client.describe() + err
    assert reg.returncode == 0, reg.describe() + err
    (fwd,) = reg.received("REGISTER")
    assert fwd.startswith("REGISTER sip:example.test SIP/2.0"), fwd  # R-URI untouched
    (client_via,) = header(client.sent("REGISTER")[0], "Via")
    ours, theirs = header(fwd, "Via")
    assert f"127.0.0.1:{b2b_port};" in ours and "branch=z9hG4bK" in ours
    assert theirs.startswith(client_via)
    assert header(fwd, "Max-Forwards") == ["69"]
    # The answer comes back on the client's transaction, without the B2BUA's Via.
    (answer,) = client.received("SIP/2.0 200")
    assert [v.startswith(client_via) for v in header(answer, "Via")] == [True], answer


def test_without_sip_proxy_register_is_not_implemented():
    client, _, err, _ = _register([])
    assert client.returncode == 0, client.describe() + err
    assert [first_line(m) for m in client.received("SIP/2.0")] == ["SIP/2.0 501 Not Implemented"]


# ----- -C and -W ------------------------------------------------------------------------------


def test_config_file_options_act_on_the_call(tmp_path):
    conf = tmp_path / "b2bua.conf"
    conf.write_text(
        "[general]\nauth_enable = off\nacct_enable = off\npass_headers = X-Pass-Me\nstatic_tr_out = s/^/99/\n"
    )
    uac, uas, err = call(["-C", str(conf)])
    assert uac.returncode == 0, uac.describe() + err
    invite = uas.received("INVITE")[0]
    assert invite.startswith("INVITE sip:99service@127.0.0.1:"), invite
    assert header(invite, "X-Pass-Me") == ["hello"]


def test_written_config_runs_the_same_call(tmp_path):
    written = tmp_path / "written.conf"
    callee_port = free_udp_port()
    route = f"4242@127.0.0.1:{callee_port};cli=777"
    with B2B([*NO_AAA, "-s", route, "-h", "X-Pass-Me", "-W", str(written)]):
        pass  # written at start-up, before any call
    text = written.read_text()
    assert f"static_route = {route}\n" in text and "pass_headers = X-Pass-Me\n" in text
    # The file names the first run's port and socket: the command line after -C moves them.
    second = B2B(["-C", str(written)])
    second.cmd += ["-p", str(second.port), "-c", os.path.join(second.tmpdir, "ctl2.sock")]
    with Sipp("uas", local_port=callee_port, timeout=8) as uas:
        with second:
            with Sipp("radius_uac.xml", remote=second.address, timeout=8, duration=300) as caller:
                pass
            err = second.stderr()
    assert caller.result.returncode == 0, caller.result.describe() + err
    invite = uas.result.received("INVITE")[0]
    assert invite.startswith("INVITE sip:4242@127.0.0.1:"), invite
    assert "sip:777@" in header(invite, "From")[0]
    assert header(invite, "X-Pass-Me") == ["hello"]


# ----- flags kept for compatibility -----------------------------------------------------------


@pytest.mark.parametrize("flags", [["-M", "4"], ["-d", "anything"]], ids=["-M", "-d"])
def test_compatibility_flags_accepted_and_call_unchanged(flags):
    uac, uas, err = call([*NO_AAA, *flags])
    assert uac.returncode == 0, uac.describe() + err
    assert uas.returncode == 0, uas.describe() + err
    assert uas.received("INVITE")[0].startswith("INVITE sip:service@127.0.0.1:")


# ----- bad --wss_socket certificate or syntax; bad -r contacts --------------------------------------


@pytest.mark.parametrize(
    "flags, message",
    [
        (["-r", "udp:127.0.0.1:0"], "b2bua_radius: -r: bad RTPproxy address"),
        (["--rtp_proxy_clients=udp:[::1"], "b2bua_radius: --rtp_proxy_clients: bad RTPproxy address"),
        (
            ["--wss_socket=127.0.0.1:9443:/nonexistent/c.pem:/k.pem"],
            "b2bua_radius: --wss_socket: cannot read certificate file /nonexistent/c.pem",
        ),
        (["-r", "udp:127.0.0.1:22222,,x"], "b2bua_radius: -r: empty item"),
        (
            ["--wss_socket=127.0.0.1:9443"],
            "b2bua_radius: --wss_socket: expected host:port:cert_file:key_file",
        ),
    ],
    ids=["-r port 0", "--rtp_proxy_clients bracket", "--wss_socket bad cert", "-r bad", "--wss_socket bad"],
)
def test_unsupported_or_bad_media_and_wss_flags_refused_before_start(tmp_path, flags, message):
    port = free_udp_port()
    res = _run_main(
        *NO_AAA,
        "-f",
        "-s",
        "127.0.0.1:9",
        "-l",
        "127.0.0.1",
        "-p",
        str(port),
        "-c",
        str(tmp_path / "c"),
        *flags,
    )
    assert res.returncode == 2, res.stderr
    assert res.stderr.count("\n") == 1 and res.stderr.startswith(message), res.stderr
    assert "started" not in res.stdout
    assert not (tmp_path / "c").exists()


def test_bad_rtp_proxy_in_config_file_refused(tmp_path):
    conf = tmp_path / "b2bua.conf"
    conf.write_text("[general]\nrtp_proxy_clients = udp:127.0.0.1:x\n")
    res = _run_main(*NO_AAA, "-f", "-s", "127.0.0.1:9", "-p", str(free_udp_port()), "-C", str(conf))
    assert res.returncode == 2 and "rtp_proxy_clients: bad RTPproxy address" in res.stderr, res.stderr


def test_main_func_is_sippy_s_entry_point():
    code = "import sys; sys.argv[1:] = ['--help']; from sippy.b2bua_radius import main_func; main_func()"
    res = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    assert "--rtp_proxy_clients=contact" in res.stdout + res.stderr
