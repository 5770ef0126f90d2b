"""b2bua_radius flags, long options, -C/-W files, errors and the systemd units."""

from __future__ import annotations

import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from sippy.B2BConfig import SUPPORTED_OPTIONS, ConfigError, HelpRequested, parse_args, usage
from sippy.B2BRoute import B2BRoute
from sippy.SipConf import SipConf

ROOT = Path(__file__).resolve().parent.parent


def _run_load_config(*args: str) -> subprocess.CompletedProcess:
    code = "import sys; from sippy.B2BConfig import load_config; load_config(sys.argv[1:]); print('STARTED')"
    return subprocess.run(
        [sys.executable, "-c", code, *args], cwd=ROOT, capture_output=True, text=True, timeout=30
    )


def test_defaults_are_sippys():
    cfg = parse_args(["-s", "192.0.2.1"])
    assert cfg["foreground"] is False
    assert cfg["pidfile"] == "/var/run/b2bua.pid"
    assert cfg["logfile"] == "/var/log/b2bua.log"
    assert cfg["b2bua_socket"] == "/var/run/b2bua.sock"
    assert (cfg["auth_enable"], cfg["acct_enable"], cfg["start_acct_enable"], cfg["digest_auth"]) == (
        True,
        True,
        False,
        True,
    )
    assert (cfg["keepalive_ans"], cfg["keepalive_orig"]) == (0, 0)
    assert (cfg["_sip_address"], cfg["_sip_port"]) == (SipConf.my_address, 5060)
    assert cfg["_pass_headers"] == []
    assert "static_tr_in" not in cfg and "accept_ips" not in cfg
    assert cfg.getdefault("max_credit_time", None) is None


def test_short_options_typed():
    cfg = parse_args(
        "-f -D -u -H -l 127.0.0.1 -p 5070 -P /tmp/x.pid -L /tmp/x.log -s 1@192.0.2.1;cli=2 "
        "-a 10.0.0.1,10.0.0.2 "
        "-k 3 -m 3600 -A 2 -r udp:127.0.0.1:22222 -r /var/run/rtpp.sock -F 0,8,[telephone-event] "
        "-R /etc/radiusclient.conf -h X-One -h x-two,X-Three -c tcp:127.0.0.1:2222 -M 4 -d 1 "
        "-t s/^00/+/ -T s/^1// -x HDR2Xattrs[X-Foo]".split()
    )
    assert cfg["foreground"] is True and cfg["digest_auth"] is False
    assert cfg["auth_enable"] is False and cfg["hide_call_id"] is True
    assert (cfg["_sip_address"], cfg["sip_port"], cfg["_sip_port"]) == ("127.0.0.1", 5070, 5070)
    assert (cfg["pidfile"], cfg["logfile"]) == ("/tmp/x.pid", "/tmp/x.log")
    route = cfg["_static_routes"][""]
    assert isinstance(route, B2BRoute) and (route.cld, route.host, route.cli) == ("1", "192.0.2.1", "2")
    assert cfg["_accept_ips"] == ["10.0.0.1", "10.0.0.2"]
    assert (cfg["keepalive_ans"], cfg["keepalive_orig"], cfg["max_credit_time"]) == (32, 32, 3600)
    assert (cfg["acct_enable"], cfg["start_acct_enable"]) == (True, True)
    assert cfg["_rtp_proxy_clients"] == ["udp:127.0.0.1:22222", "/var/run/rtpp.sock"]
    assert cfg["_allowed_pts"] == [0, 8, "telephone-event"]
    assert cfg["radiusclient.conf"] == "/etc/radiusclient.conf"
    assert cfg["_pass_headers"] == ["x-one", "x-two", "x-three"]
    assert cfg["b2bua_socket"] == "tcp:127.0.0.1:2222" and cfg["max_radiusclients"] == 4
    assert cfg["_static_tr_in"]("0044") == "+44" and cfg["_static_tr_out"]("123") == "23"
    req = type("Req", (), {"getHFs": lambda self, name: []})()
    cfg["_pre_auth_proc"](object(), req)  # callable, no header: nothing happens


@pytest.mark.parametrize("level, ans, orig", [("0", 0, 0), ("1", 32, 0), ("2", 0, 32), ("3", 32, 32)])
def test_keepalive_levels(level, ans, orig):
    cfg = parse_args(["-k", level, "-s", "h"])
    assert (cfg["keepalive_ans"], cfg["keepalive_orig"]) == (ans, orig)


@pytest.mark.parametrize("level, acct, start", [("0", False, False), ("1", True, False), ("2", True, True)])
def test_accounting_levels(level, acct, start):
    cfg = parse_args(["-A", level])
    assert (cfg["acct_enable"], cfg["start_acct_enable"]) == (acct, start)


def test_long_options_as_in_unit_files():
    cfg = parse_args(
        [
            "--sip_address=*",
            "--sip_port=5062",
            "--foreground",
            "--pidfile=/run/b.pid",
            "--logfile",
            "/tmp/b.log",
            "--static_route=@192.0.2.7:5070",
            "--accept_ips=127.0.0.1",
            "--auth_enable=off",
            "--acct_enable=no",
            "--start_acct_enable=0",
            "--digest_auth=false",
            "--digest_auth_only=on",
            "--max_credit_time=60",
            "--keepalive_ans=15",
            "--keepalive_orig=20",
            "--allowed_pts=18",
            "--pass_headers=X-A,X-B",
            "--b2bua_socket=udp:127.0.0.1:2223",
            "--rtp_proxy_clients=udp:127.0.0.1:22222,udp:127.0.0.1:22223",
            "--radiusclient.conf=/etc/r.conf",
            "--hide_call_id",
            "on",
            "--static_tr_in=s/^9//",
            "--static_tr_out=s/^/00/",
            "--nat_traversal=yes",
            "--sip_proxy=[::1]:5080",
            "--alive_acct_int=300",
            "--wss_socket=0.0.0.0:9443:/etc/c.pem:/etc/k.pem",
            "--pre_auth_proc=HDR2Xattrs[X-Foo-Hdr]",
        ]
    )
    assert cfg["sip_address"] == "*" and cfg["_sip_address"] == SipConf.my_address
    assert cfg["foreground"] is True and cfg["hide_call_id"] is True
    assert (cfg["auth_enable"], cfg["acct_enable"], cfg["start_acct_enable"]) == (False, False, False)
    assert (cfg["digest_auth"], cfg["digest_auth_only"], cfg["nat_traversal"]) == (False, True, True)
    assert cfg["_static_routes"][""].cld_set and cfg["_static_routes"][""].port == 5070
    assert (cfg["keepalive_ans"], cfg["keepalive_orig"], cfg["alive_acct_int"]) == (15, 20, 300)
    assert cfg["_rtp_proxy_clients"] == ["udp:127.0.0.1:22222", "udp:127.0.0.1:22223"]
    assert cfg["_sip_proxy"] == ("::1", 5080)
    assert cfg["_wss_socket"] == ("0.0.0.0", 9443, "/etc/c.pem", "/etc/k.pem")
    assert cfg["_static_tr_out"]("12") == "0012"


def test_later_options_override_and_repeat_rules():
    cfg = parse_args(["-p", "5070", "--sip_port=5080", "-t", "s/^1//", "-t", "s/^2//", "-s", "h"])
    assert cfg["_sip_port"] == 5080
    assert cfg["static_tr_in"] == "s/^1//;s/^2//"
    assert cfg["_static_tr_in"]("1234") == "34"
    cfg = parse_args(["-t", "s/^1//", "--static_tr_in=s/^9//"])
    assert (cfg["_static_tr_in"]("19"), cfg["_static_tr_in"]("95")) == ("19", "5")  # replaced, not added


@pytest.mark.parametrize(
    "argv, fragment",
    [
        (["--bogus=1"], "--bogus"),
        (["-z"], "-z"),
        (["-k", "7"], "-k"),
        (["-k", "x"], "-k"),
        (["-A", "x"], "-A"),
        (["-A", "3"], "-A"),
        (["-p", "70000"], "-p"),
        (["-p", "abc"], "-p"),
        (["--sip_port=0"], "--sip_port"),
        (["-s", "bad host"], "-s"),
        (["-s", "h;expires=soon"], "expires"),
        (["-u"], "-u"),
        (["--auth_enable=off"], "-u"),
        (["-s", "h;po_proc=Nope[1]"], "Nope"),
        (["-x", "Nope[1]"], "-x"),
        (["--pre_auth_proc=HDR2Xattrs"], "--pre_auth_proc"),
        (["-C", "/nonexistent/b2bua.conf"], "/nonexistent/b2bua.conf"),
        (["-m", "0"], "-m"),
        (["-a", "10.0.0.300"], "-a"),
        (["-F", "300"], "-F"),
        (["-c", "udp:127.0.0.1"], "-c"),
        (["--b2bua_socket_mode=999"], "--b2bua_socket_mode"),
        (["--b2bua_socket_mode=rw-rw----"], "--b2bua_socket_mode"),
        (["--b2bua_socket_allow=127.0.0.1,nowhere"], "'nowhere'"),
        (["--radius_require_ma=maybe"], "--radius_require_ma"),
        (["--trusted_proxies=proxy.example.net"], "--trusted_proxies"),
        (["-t", "s/(/x/"], "-t"),
        (["--foreground=maybe"], "--foreground"),
        (["--keepalive_ans=-1"], "--keepalive_ans"),
        (["--wss_socket=host:443"], "--wss_socket"),
        (["--tcp_max_connections=0"], "--tcp_max_connections"),
        (["--tcp_max_message_size=-1"], "--tcp_max_message_size"),
        (["--tcp_idle_timeout=x"], "--tcp_idle_timeout"),
        (["-h", "bad header"], "-h"),
        (["-s", "h", "stray"], "stray"),
        (["-l"], "-l"),
    ],
)
def test_bad_values_name_the_flag(argv, fragment):
    with pytest.raises(ConfigError) as exc:
        parse_args(argv)
    msg = str(exc.value)
    assert fragment in msg and "\n" not in msg


@pytest.mark.parametrize(
    "argv",
    [
        ["-k", "7"],
        ["-u"],
        ["-s", "h;credit-time=x"],
        ["-u", "-s", "h;ash=X-A%3A%201%0D%0AX-Evil%3A%201"],
        ["--nope"],
        ["-C", "/nonexistent"],
    ],
)
def test_main_wrapper_exits_2_with_one_line(argv):
    res = _run_load_config(*argv)
    assert res.returncode == 2
    assert "STARTED" not in res.stdout
    lines = res.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("b2bua_radius: ")


def test_main_wrapper_accepts_good_flags():
    res = _run_load_config("-f", "-s", "127.0.0.1")
    assert (res.returncode, res.stdout.strip(), res.stderr) == (0, "STARTED", "")


def test_help_lists_every_option():
    with pytest.raises(HelpRequested):
        parse_args(["-s", "h", "--help"])
    text = usage()
    for opt in SUPPORTED_OPTIONS:
        assert f"--{opt.key}" in text
        if opt.short:
            assert f"-{opt.short}" in text
    for flag in ("-k", "-A", "-D", "-u", "-W", "-d", "-H", "-M", "-x", "-t", "-T", "-C"):
        assert f"  {flag}" in text or f"{flag} " in text
    res = _run_load_config("--help")
    assert (
        res.returncode == 0 and res.stdout.startswith("usage: b2bua_radius") and "STARTED" not in res.stdout
    )


def test_config_file_and_command_line_order(tmp_path):
    conf = tmp_path / "b2bua.conf"
    conf.write_text(
        "[general]\n"
        "sip_port = 5090\n"
        "static_route = 5@192.0.2.9;expires=20\n"
        "auth_enable = off\n"
        "keepalive_ans = 10\n"
        "pass_headers = X-Foo\n"
        "b2bua_socket = udp:0.0.0.0:2222\n"
        "b2bua_socket_mode = 0660\n"
        "b2bua_socket_allow = 192.0.2.0/24, ::1\n"
        "radius_require_ma = off\n"
    )
    cfg = parse_args(["-p", "5070", "-C", str(conf), "-k", "2"])
    assert cfg["_b2bua_socket_mode"] == 0o660 and cfg["radius_require_ma"] is False
    assert [str(n) for n in cfg["_b2bua_socket_allow"].networks] == ["192.0.2.0/24", "::1/128"]
    assert cfg["_sip_port"] == 5090  # the file came after -p
    assert cfg["_static_routes"][""].expires == 20
    assert cfg["auth_enable"] is False
    assert (cfg["keepalive_ans"], cfg["keepalive_orig"]) == (0, 32)  # -k came after the file
    assert cfg["_pass_headers"] == ["x-foo"]
    assert cfg["config"] == str(conf)


@pytest.mark.parametrize(
    "body, fragment",
    [
        ("[general]\nsip_port = 99999\n", "sip_port"),
        ("[general]\nno_such_key = 1\n", "no_such_key"),
        ("[other]\nsip_port = 5060\n", "[general]"),
        ("sip_port = 5060\n", "b2bua.conf"),
        ("[general]\nconfig = /etc/x\n", "config"),
    ],
)
def test_bad_config_files(tmp_path, body, fragment):
    conf = tmp_path / "b2bua.conf"
    conf.write_text(body)
    with pytest.raises(ConfigError) as exc:
        parse_args(["-C", str(conf)])
    assert fragment in str(exc.value) and "\n" not in str(exc.value)


def test_unreadable_config_file(tmp_path):
    with pytest.raises(ConfigError, match="cannot read"):
        parse_args(["-C", str(tmp_path)])  # a directory: unreadable as a file even for root


def test_write_config_reads_back_the_same(tmp_path):
    out = tmp_path / "written.conf"
    argv = (
        f"-f -l 127.0.0.1 -p 5071 -s 7@192.0.2.1;cli=8;ash=X-A%3A1 -a 127.0.0.1 -k 1 -A 2 -m 90 "
        f"-r udp:127.0.0.1:22222 -h X-A,X-B -t s/^0// -x VAL2Xattrs[a=b] -D -H -W {out}"
    ).split()
    res = _run_load_config(*argv)
    assert res.returncode == 0, res.stderr
    first = parse_args(argv)
    again = parse_args(["-C", str(out)])
    public = {k: v for k, v in first.items() if not k.startswith("_")}
    assert {k: v for k, v in again.items() if not k.startswith("_") and k != "config"} == public
    assert str(again["_static_routes"][""]) == str(first["_static_routes"][""])
    assert again["_static_tr_in"]("0123") == "123"


def test_write_config_unwritable_path_exits_2(tmp_path):
    res = _run_load_config("-s", "h", "-W", str(tmp_path / "missing-dir" / "x.conf"))
    assert res.returncode == 2 and res.stderr.startswith("b2bua_radius: -W")


def _exec_start(unit: str) -> tuple[list[str], dict[str, str]]:
    service = {}
    for line in (ROOT / "contrib" / unit).read_text().splitlines():
        if "=" in line and not line.lstrip().startswith(("#", ";", "[")):
            key, _, value = line.partition("=")
            service[key.strip()] = value.strip()
    argv = shlex.split(service["ExecStart"].lstrip("-@+!:"))
    assert Path(argv[0]).name == "b2bua_radius"
    return argv[1:], service


def test_forking_unit_parses_and_matches_pidfile():
    argv, service = _exec_start("b2bua.service")
    cfg = parse_args(argv)
    assert service["Type"] == "forking"
    assert cfg["foreground"] is False  # it must fork for Type=forking
    assert cfg["pidfile"] == service["PIDFile"]
    assert "USR1" in service["ExecReload"] and "HUP" not in service["ExecReload"]


def test_simple_unit_parses_and_stays_in_foreground():
    argv, service = _exec_start("b2bua-simple.service")
    cfg = parse_args(argv)
    assert service["Type"] == "simple"
    assert cfg["foreground"] is True
    assert "PIDFile" not in service


def test_wss_socket_repeatable_ipv6_and_in_config_file(tmp_path):
    conf = tmp_path / "b2bua.conf"
    conf.write_text("[general]\nwss_socket = [::1]:8443:/etc/c.pem:/etc/k.pem\n")
    cfg = parse_args(["-s", "192.0.2.9", "-C", str(conf), "--wss_socket=127.0.0.1:9443:/c2.pem:/k2.pem"])
    assert cfg["_wss_sockets"] == [
        ("::1", 8443, "/etc/c.pem", "/etc/k.pem"),
        ("127.0.0.1", 9443, "/c2.pem", "/k2.pem"),
    ]
    assert cfg["_wss_socket"] == ("127.0.0.1", 9443, "/c2.pem", "/k2.pem")
    for bad in ("[::1:8443:c:k", "::1:8443:c:k", "h:0:c:k", "h:8443:c:", "h:x:c:k"):
        with pytest.raises(ConfigError):
            parse_args(["-s", "192.0.2.9", f"--wss_socket={bad}"])


def test_listener_keys_repeat_in_config_file_other_keys_do_not(tmp_path):
    """tcp_socket, tls_socket, wss_socket as often as on the command line (each a listener, the
    file's first, then the command line's); -W writes every one back; any other key twice is an
    error naming it."""
    conf = tmp_path / "b2bua.conf"
    conf.write_text(
        "[general]\ntcp_socket = 127.0.0.1:5070\nTCP_SOCKET = [::1]:5070\n"
        "tls_socket = 127.0.0.1:5071:/c.pem:/k.pem\ntls_socket = [::1]:5071:/c.pem:/k.pem\n"
        "wss_socket = 127.0.0.1:9443:/c.pem:/k.pem\nwss_socket = [::1]:9443:/c.pem:/k.pem\n"
    )
    cfg = parse_args(["-s", "192.0.2.9", "-C", str(conf), "--tcp_socket=127.0.0.2:5070"])
    assert cfg["_tcp_sockets"] == [("127.0.0.1", 5070), ("::1", 5070), ("127.0.0.2", 5070)]
    assert cfg["_tls_sockets"] == [("127.0.0.1", 5071, "/c.pem", "/k.pem"), ("::1", 5071, "/c.pem", "/k.pem")]
    assert [x[:2] for x in cfg["_wss_sockets"]] == [("127.0.0.1", 9443), ("::1", 9443)]
    out = tmp_path / "written.conf"
    with open(out, "w") as f:
        cfg.write(f)
    again = parse_args(["-C", str(out)])
    for key in ("_tcp_sockets", "_tls_sockets", "_wss_sockets"):
        assert again[key] == cfg[key]
    conf.write_text("[general]\nstatic_route = 192.0.2.1\ntcp_socket = 127.0.0.1:5070\nstatic_route = h\n")
    with pytest.raises(ConfigError, match="'static_route'"):
        parse_args(["-C", str(conf)])
