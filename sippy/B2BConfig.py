"""b2bua_radius configuration: Sippy's flags, long options and ``-C`` INI file, validated up front.

``parse_args(argv)`` returns a ``B2BConfig``: a dict with Sippy's key names and typed values
(``cfg['sip_port'] == 5060``, ``cfg['foreground'] is False``) plus the derived private keys the
call controller uses (``_sip_address``, ``_static_routes``, ...). Every bad flag or value raises
``ConfigError`` with a one-line message naming it; ``load_config()`` is the wrapper for ``main()``
that prints ``b2bua_radius: <message>`` and exits 2, before anything is started.
"""

from __future__ import annotations

import configparser
import getopt
import ipaddress
import os
import re
import sys
from typing import IO, Any, NamedTuple, NoReturn, Optional

from sippy.B2BRoute import B2BRoute
from sippy.B2BTransforms import NumberTranslator, getTransProc
from sippy.CLIManager import parse_cli_address
from sippy.misc import bare_host, parse_hostport
from sippy.Rtp_proxy.client import parse_contact
from sippy.Security.AddressList import AddressList
from sippy.SipConf import SipConf
from sippy.Tcp_server import (
    IDLE_TIMEOUT,
    MAX_BUFFERED,
    MAX_CONNECTIONS,
    MAX_CONNECTIONS_PER_ADDRESS,
    MAX_MESSAGE_SIZE,
)

__all__ = (
    "B2BConfig",
    "ConfigError",
    "HelpRequested",
    "Option",
    "SUPPORTED_OPTIONS",
    "SHORT_OPTIONS",
    "parse_args",
    "load_config",
    "usage",
)

SHORT_OPTIONS = "fDl:p:d:P:L:s:a:t:T:k:m:A:ur:F:R:h:c:M:HC:W:x:"
KEEPALIVE_PERIOD = 32
# --workers: more processes than this would only compete for the same cores.
MAX_WORKERS = 64


class ConfigError(ValueError):
    """A bad flag or value; the message is one line and names it."""


class HelpRequested(Exception):
    """``--help`` was given: print ``usage()`` and exit 0."""


class Option(NamedTuple):
    key: str
    vtype: str  # 'B' on/off, 'I' integer, 'S' string
    short: Optional[str]
    metavar: str
    help: str


SUPPORTED_OPTIONS: tuple[Option, ...] = (
    Option(
        "sip_address",
        "S",
        "l",
        "ip",
        'local SIP address (default, "*", "0.0.0.0", "::": every IPv4 and IPv6 one)',
    ),
    Option("sip_port", "I", "p", "port", "local UDP port for SIP (default 5060)"),
    Option("foreground", "B", "f", "", "stay in the foreground instead of becoming a daemon"),
    Option("pidfile", "S", "P", "path", "pidfile of the daemon (default /var/run/b2bua.pid)"),
    Option("logfile", "S", "L", "path", "where the daemon's stdout/stderr go (default /var/log/b2bua.log)"),
    Option("static_route", "S", "s", "route", "route for every call: [[cld]@]host[:port][;param=value]..."),
    Option("accept_ips", "S", "a", "ip1[,..,ipN]", "accept calls only from these IP addresses"),
    Option("auth_enable", "B", None, "on|off", "RADIUS authentication and authorisation (default on)"),
    Option("acct_enable", "B", None, "on|off", "RADIUS Stop accounting (default on)"),
    Option("start_acct_enable", "B", None, "on|off", "RADIUS Start accounting too (default off)"),
    Option("precise_acct", "B", None, "on|off", "millisecond precision in RADIUS accounting"),
    Option("alive_acct_int", "I", None, "seconds", "period of Alive accounting records (0: none)"),
    Option(
        "acct_spool_dir",
        "S",
        None,
        "path",
        "accounting records no server answered wait here (default: beside the pidfile, .acct-spool)",
    ),
    Option("acct_spool_max", "I", None, "n", "most records the accounting spool holds (default 100000)"),
    Option("digest_auth", "B", None, "on|off", "SIP digest authentication of incoming INVITEs (default on)"),
    Option("digest_auth_only", "B", None, "on|off", "challenge at once, without trying remote-IP auth"),
    Option(
        "trusted_proxies",
        "S",
        None,
        "net1[,..,netN]",
        "proxies whose Via names the caller for remote-IP auth (default: none)",
    ),
    Option("max_credit_time", "I", "m", "seconds", "upper limit of every call's duration"),
    Option("max_calls", "I", None, "n", "calls in memory at once, more get 503 (default: from free memory)"),
    Option("keepalive_ans", "I", None, "seconds", "keep-alive re-INVITE period, answering leg (0: off)"),
    Option("keepalive_orig", "I", None, "seconds", "keep-alive re-INVITE period, originating leg (0: off)"),
    Option("allowed_pts", "S", "F", "pt1[,..,ptN]", "RTP payload types allowed to the egress leg"),
    Option("pass_headers", "S", "h", "hdr1[,..,hdrN]", "SIP headers passed verbatim to the egress leg"),
    Option("b2bua_socket", "S", "c", "address", "control socket: path, udp:[host:]port or tcp:[host:]port"),
    Option("b2bua_socket_mode", "S", None, "mode", "permissions of a unix control socket (default 0600)"),
    Option(
        "b2bua_socket_allow",
        "S",
        None,
        "net1[,..,netN]",
        "peers a tcp:/udp: control socket answers (default 127.0.0.0/8,::1)",
    ),
    Option(
        "rtp_proxy_clients",
        "S",
        "r",
        "contact",
        "RTPproxy control socket(s): path, unix:/cunix:path, udp:/udp6:/tcp:/tcp6:host[:port]",
    ),
    Option("rtpp_hrtb_ival", "I", None, "seconds", "RTPproxy heartbeat period (default 1)"),
    Option("rtpp_hrtb_retr_ival", "I", None, "seconds", "retry period of an offline RTPproxy (default 60)"),
    Option("radiusclient.conf", "S", "R", "path", "path to radiusclient.conf"),
    Option(
        "radius_require_ma",
        "B",
        None,
        "on|off",
        "refuse RADIUS replies without Message-Authenticator (default on; off: old servers)",
    ),
    Option("max_radiusclients", "I", "M", "n", "number of RADIUS client helpers (for compatibility)"),
    Option("hide_call_id", "B", "H", "", "send a hash instead of the ingress Call-ID to the egress leg"),
    Option("static_tr_in", "S", "t", "s/re/repl/", "translation rule(s) for the incoming CLD"),
    Option("static_tr_out", "S", "T", "s/re/repl/", "translation rule(s) for the outgoing CLD"),
    Option("nat_traversal", "B", None, "on|off", "NAT traversal for signalling"),
    Option("sip_proxy", "S", None, "host[:port]", "helper proxy for REGISTER and SUBSCRIBE"),
    Option(
        "wss_socket",
        "S",
        None,
        "host:port:cert:key",
        "SIP over secure WebSocket (RFC 7118) for browsers; PEM files; repeatable",
    ),
    Option(
        "tcp_socket",
        "S",
        None,
        "host:port",
        "SIP over TCP listener (IPv6 host in brackets); repeatable",
    ),
    Option(
        "tls_socket",
        "S",
        None,
        "host:port:cert:key",
        "SIP over TLS listener; PEM files; IPv6 host in brackets; repeatable",
    ),
    Option(
        "tls_ca",
        "S",
        None,
        "path",
        "CAs (PEM) that TLS peers we connect to are verified against (default: system)",
    ),
    Option(
        "tls_verify", "B", None, "on|off", "verify the certificate of TLS peers we connect to (default on)"
    ),
    Option(
        "tcp_max_connections",
        "I",
        None,
        "n",
        f"TCP and TLS connections at once, more refused (default {MAX_CONNECTIONS})",
    ),
    Option(
        "tcp_max_connections_per_address",
        "I",
        None,
        "n",
        f"TCP/TLS connections from one address (default {MAX_CONNECTIONS_PER_ADDRESS})",
    ),
    Option(
        "tcp_max_buffered",
        "I",
        None,
        "bytes",
        f"bytes queued for a TCP/TLS peer that does not read; more: message dropped (default {MAX_BUFFERED})",
    ),
    Option(
        "tcp_max_message_size",
        "I",
        None,
        "bytes",
        f"largest SIP message over TCP/TLS; larger: 413 and close (default {MAX_MESSAGE_SIZE})",
    ),
    Option(
        "tcp_idle_timeout",
        "I",
        None,
        "seconds",
        f"close a TCP/TLS connection silent this long (default {IDLE_TIMEOUT:.0f})",
    ),
    Option("pre_auth_proc", "S", "x", "PROCSPEC", "routine run before authorisation, e.g. HDR2Xattrs[X-Foo]"),
    Option(
        "workers",
        "I",
        None,
        "n",
        'processes that carry calls, sharing the SIP port (default 1; README "Every core")',
    ),
    Option(
        "workers_port",
        "I",
        None,
        "port",
        "with --workers: worker N's own SIP port is this + N (default: ports the kernel picks)",
    ),
    Option("config", "S", "C", "file", "read options from an INI file ([general], keys as long options)"),
)
_BY_KEY = {o.key: o for o in SUPPORTED_OPTIONS}
# Options given as often as needed, on the command line and in a -C file: each adds a listener.
REPEATABLE = frozenset(("wss_socket", "tcp_socket", "tls_socket"))
_BY_SHORT = {o.short: o for o in SUPPORTED_OPTIONS if o.short}
# short options whose meaning is not "set this key"
_SPECIAL_SHORT = (
    ("-k", "0-3", "keep-alives: 0 off, 1 answering leg, 2 originating leg, 3 both (32 s period)"),
    ("-A", "0-2", "RADIUS accounting: 0 off, 1 Stop records (default), 2 Start and Stop"),
    ("-D", "", "no SIP digest authentication (digest_auth=off)"),
    ("-u", "", "no RADIUS authentication (auth_enable=off); needs -s"),
    ("-W", "file", "write the effective configuration to file (for -C)"),
    ("-d", "arg", "accepted and ignored, as in Sippy"),
)
# -t/-T/-r/-h add to what is there; their long forms and INI keys replace it
_APPENDING_SHORT = {"t": ";", "T": ";", "r": ",", "h": ","}
_BOOLEAN_STATES = configparser.RawConfigParser.BOOLEAN_STATES
_HEADER_NAME = re.compile(r"[A-Za-z0-9!%*_+`'~.-]+")
_DEFAULTS: dict[str, Any] = {
    "digest_auth": True,
    "start_acct_enable": False,
    "keepalive_ans": 0,
    "keepalive_orig": 0,
    "auth_enable": True,
    "acct_enable": True,
    "foreground": False,
    "pidfile": "/var/run/b2bua.pid",
    "logfile": "/var/log/b2bua.log",
    "b2bua_socket": "/var/run/b2bua.sock",
}


def _hostport(value: str) -> tuple[str, int]:
    return parse_hostport(value, SipConf.default_port)


# --wss_socket: host (an IPv6 one in brackets), port, certificate file, key file.
_WSS_SOCKET = re.compile(
    r"(?P<host>\[[0-9A-Fa-f:.]+\]|[^:\[\]]+):(?P<port>[0-9]+):(?P<cert>[^:]+):(?P<key>.+)"
)


def _csv(value: str) -> list[str]:
    items = [x.strip() for x in value.split(",")]
    if not all(items):
        raise ValueError(f"empty item in {value!r}")
    return items


class B2BConfig(dict):
    """Sippy's ``global_config``: public keys typed as in the option table, ``_`` keys derived."""

    def getdefault(self, key: str, default_value: Any) -> Any:
        return self.get(key, default_value)

    def has_key(self, key: str) -> bool:
        return key in self

    def check_and_set(self, key: str, value: str) -> None:
        """Validate ``value`` (text) for ``key``, store it typed and update derived keys."""
        opt = _BY_KEY.get(key)
        if opt is None:
            raise ValueError(f"unknown option {key!r}")
        value = value.strip()
        if opt.vtype == "B":
            if value.lower() not in _BOOLEAN_STATES:
                raise ValueError(f"not on/off: {value!r}")
            self[key] = _BOOLEAN_STATES[value.lower()]
            return
        if opt.vtype == "I":
            try:
                ivalue = int(value)
            except ValueError:
                raise ValueError(f"not an integer: {value!r}") from None
            self._check_int(key, ivalue)
            self[key] = ivalue
            return
        if not value:
            raise ValueError("empty value")
        self._set_string(key, value)
        self[key] = value
        if key in REPEATABLE:
            # Every value, for write(); self[key] is the last (Sippy's single value).
            self.setdefault("_repeated", {}).setdefault(key, []).append(value)

    def _check_int(self, key: str, value: int) -> None:
        if key == "sip_port":
            if not 0 < value < 65536:
                raise ValueError(f"sip_port should be in the range 1-65535: {value}")
            self["_sip_port"] = value
        elif key == "workers_port" and not 0 < value < 65536:
            raise ValueError(f"workers_port should be in the range 1-65535: {value}")
        elif key == "workers" and not 0 < value <= MAX_WORKERS:
            raise ValueError(f"workers should be in the range 1-{MAX_WORKERS}: {value}")
        elif (
            key in ("max_credit_time", "max_radiusclients", "max_calls", "acct_spool_max")
            or key in ("rtpp_hrtb_ival", "rtpp_hrtb_retr_ival")
            or key.startswith("tcp_max_")
            or key == "tcp_idle_timeout"
        ) and value <= 0:
            raise ValueError(f"{key} should be more than zero: {value}")
        elif value < 0:
            raise ValueError(f"{key} should not be negative: {value}")

    def _set_string(self, key: str, value: str) -> None:
        if key == "sip_address":
            wildcard = bare_host(value) in ("*", "0.0.0.0", "::")
            # Every IPv4 and IPv6 address (one socket per family), as Sippy; `_sip_address` stays
            # this host's address, the fallback for Via/Contact.
            self["_sip_wildcard"] = wildcard
            self["_sip_address"] = SipConf.my_address if wildcard else bare_host(value)
        elif key == "static_route":
            self["_static_routes"] = {"": B2BRoute(value)}
        elif key in ("static_tr_in", "static_tr_out"):
            self["_" + key] = NumberTranslator(value)
        elif key == "accept_ips":
            # Canonical text, as the kernel gives a source address ("2001:DB8::0:1" -> "2001:db8::1").
            self["_accept_ips"] = [str(ipaddress.ip_address(bare_host(ip))) for ip in _csv(value)]
        elif key == "rtp_proxy_clients":
            contacts = _csv(value)
            for contact in contacts:
                parse_contact(contact)
            self["_rtp_proxy_clients"] = contacts
        elif key == "pass_headers":
            names = [x.lower() for x in _csv(value)]
            bad = [x for x in names if not _HEADER_NAME.fullmatch(x)]
            if bad:
                raise ValueError(f"bad header name {bad[0]!r}")
            self["_pass_headers"] = names
        elif key == "allowed_pts":
            self["_allowed_pts"] = [_payload_type(x) for x in _csv(value)]
        elif key == "b2bua_socket":
            parse_cli_address(value)
        elif key == "b2bua_socket_mode":
            if not re.fullmatch(r"0?[0-7]{3}", value):
                raise ValueError(f"expected an octal mode such as 0600 or 0660, got {value!r}")
            self["_b2bua_socket_mode"] = int(value, 8)
        elif key == "trusted_proxies":
            self["_trusted_proxies"] = AddressList(_csv(value))
        elif key == "b2bua_socket_allow":
            self["_b2bua_socket_allow"] = AddressList(_csv(value))
        elif key == "pre_auth_proc":
            self["_pre_auth_proc"] = getTransProc(value)
        elif key == "sip_proxy":
            self["_sip_proxy"] = _hostport(value)
        elif key == "wss_socket":
            m = _WSS_SOCKET.fullmatch(value)
            if m is None or not 0 < int(m["port"]) < 65536:
                raise ValueError(f"expected host:port:cert_file:key_file, got {value!r}")
            self["_wss_socket"] = (bare_host(m["host"]), int(m["port"]), m["cert"], m["key"])
            # Repeatable: every listener, in order (`_wss_socket` is the last, as in Sippy).
            self["_wss_sockets"] = [*self.get("_wss_sockets", ()), self["_wss_socket"]]
        elif key == "tcp_socket":
            host, port = parse_hostport(value, 0)
            if not 0 < port < 65536:
                raise ValueError(f"expected host:port, got {value!r}")
            # Repeatable, as --wss_socket.
            self["_tcp_sockets"] = [*self.get("_tcp_sockets", ()), (host, port)]
        elif key == "tls_socket":
            # host:port:cert:key; the files may hold ':' (split from the left after the port).
            if value[:1] == "[":
                end = value.find("]:")
                hostport, _, files = value[end + 2 :].partition(":")
                hostport = value[: end + 2] + hostport
            else:
                h, _, rest = value.partition(":")
                p, _, files = rest.partition(":")
                hostport = f"{h}:{p}"
            certfile, _, keyfile = files.partition(":")
            host, port = parse_hostport(hostport, 0)
            if not 0 < port < 65536 or not certfile or not keyfile:
                raise ValueError(f"expected host:port:cert_file:key_file, got {value!r}")
            self["_tls_sockets"] = [*self.get("_tls_sockets", ()), (host, port, certfile, keyfile)]

    def read(self, path: str) -> None:
        """Apply the ``[general]`` section of an INI file, key by key, in file order."""
        parser = _IniParser()
        try:
            with open(path, encoding="utf-8") as f:
                parser.read_file(f)
        except OSError as exc:
            raise ConfigError(f"-C {path}: cannot read: {exc.strerror}") from None
        except configparser.Error as exc:
            raise ConfigError(f"-C {path}: {' '.join(str(exc).split())}") from None
        extra = [s for s in parser.sections() if s != "general"]
        if extra or not parser.has_section("general"):
            raise ConfigError(f"-C {path}: expected one [general] section, found {parser.sections()}")
        for key, value in parser.items("general"):
            if key == "config":
                raise ConfigError(f"-C {path}: 'config' cannot be set inside a configuration file")
            key = key.split("\n", 1)[0]
            _apply(self, f"{path}: {key}", key, value)

    def write(self, fp: IO[str]) -> None:
        """Write the public keys as an INI file that ``-C`` reads back to the same configuration."""
        fp.write("[general]\n")
        for opt in SUPPORTED_OPTIONS:
            if opt.key == "config" or opt.key not in self:
                continue
            value = self[opt.key]
            if isinstance(value, bool):
                value = "on" if value else "off"
            for item in self.get("_repeated", {}).get(opt.key, (value,)):
                fp.write(f"{opt.key} = {item}\n")


class _IniParser(configparser.RawConfigParser):
    """A -C file: strict (a key given twice is an error) except the REPEATABLE keys, whose later
    occurrences are told apart as 'key\\nN' (no key read from a file holds a newline)."""

    def __init__(self) -> None:
        super().__init__(default_section="__none__", strict=True)
        self._seen: dict[str, int] = {}

    def optionxform(self, optionstr: str) -> str:
        key = optionstr.lower()
        if key not in REPEATABLE:
            return key
        n = self._seen[key] = self._seen.get(key, 0) + 1
        return key if n == 1 else f"{key}\n{n}"


def _payload_type(item: str) -> Any:
    if item.startswith("[") and item.endswith("]") and len(item) > 2:
        return item[1:-1]
    if item.isdigit() and int(item) < 128:
        return int(item)
    raise ValueError(f"bad RTP payload type {item!r} (0-127 or [name])")


def _apply(cfg: B2BConfig, label: str, key: str, value: str) -> None:
    """check_and_set, turning any validation error into a ConfigError naming ``label``."""
    try:
        cfg.check_and_set(key, value)
    except ValueError as exc:  # RouteError, TransProcError, TranslationError, CLIAddressError too
        raise ConfigError(f"{label}: {exc}") from None


def _level(opt: str, value: str, top: int) -> int:
    value = value.strip()
    if not value.isdigit() or int(value) > top:
        raise ConfigError(f"{opt}: argument not in the range 0-{top}: {value!r}")
    return int(value)


def _expand_bare_booleans(argv: list[str]) -> list[str]:
    """Allow ``--foreground`` as ``--foreground=on`` (getopt wants a value for every long option)."""
    out = []
    for i, arg in enumerate(argv):
        if arg == "--":
            out.extend(argv[i:])
            break
        opt = _BY_KEY.get(arg[2:]) if arg.startswith("--") else None
        nxt = argv[i + 1].lower() if i + 1 < len(argv) else None
        if opt is not None and opt.vtype == "B" and nxt not in _BOOLEAN_STATES:
            arg += "=on"
        out.append(arg)
    return out


def parse_args(argv: list[str]) -> B2BConfig:
    """Parse the arguments (without the program name); ConfigError or HelpRequested on the way."""
    longopts = [o.key + "=" for o in SUPPORTED_OPTIONS] + ["help"]
    try:
        opts, args = getopt.getopt(_expand_bare_booleans(list(argv)), SHORT_OPTIONS, longopts)
    except getopt.GetoptError as exc:
        raise ConfigError(str(exc)) from None
    if args:
        raise ConfigError(f"unexpected argument {args[0]!r}")
    cfg = B2BConfig(_DEFAULTS)
    cfg["_pass_headers"] = []
    appended: dict[str, str] = {}
    for opt, arg in opts:
        if opt == "--help":
            raise HelpRequested()
        if opt in ("-C", "--config"):
            cfg["config"] = arg
            cfg.read(arg)
        elif opt.startswith("--"):
            _apply(cfg, opt, opt[2:], arg)
        elif opt in ("-f", "-H"):
            cfg[_BY_SHORT[opt[1]].key] = True
        elif opt == "-D":
            cfg["digest_auth"] = False
        elif opt == "-u":
            cfg["auth_enable"] = False
        elif opt == "-k":
            level = _level(opt, arg, 3)
            cfg["keepalive_ans"] = KEEPALIVE_PERIOD if level & 1 else 0
            cfg["keepalive_orig"] = KEEPALIVE_PERIOD if level & 2 else 0
        elif opt == "-A":
            level = _level(opt, arg, 2)
            cfg["acct_enable"] = level > 0
            cfg["start_acct_enable"] = level == 2
        elif opt == "-W":
            cfg["_writeconf"] = arg.strip()
        elif opt == "-d":
            continue
        elif opt[1] in _APPENDING_SHORT:
            key = _BY_SHORT[opt[1]].key
            value = arg.strip()
            if key in appended:
                value = appended[key] + _APPENDING_SHORT[opt[1]] + value
            _apply(cfg, opt, key, value)
            appended[key] = value
        else:
            _apply(cfg, opt, _BY_SHORT[opt[1]].key, arg)
    if "static_route" not in cfg and not cfg["auth_enable"]:
        raise ConfigError("static route (-s) should be specified when RADIUS auth is disabled (-u)")
    if "_sip_address" not in cfg:
        _apply(cfg, "default", "sip_address", "*")
    cfg.setdefault("_sip_port", SipConf.my_port)
    return cfg


def usage(prog: str = "b2bua_radius") -> str:
    """The ``--help`` text: every option, one line each."""
    lines = [
        f"usage: {prog} [-fDuH] [-l local_ip] [-p local_port] [-P pidfile] [-L logfile] [-s static_route]",
        "       [-a ip1[,..,ipN]] [-k 0-3] [-m max_ctime] [-A 0-2] [-r rtp_proxy_contact]...",
        "       [-F pt1[,..,ptN]] [-R radconf_path] [-h header1[,..,headerN]] [-c cmd_path]",
        "       [-C config_file] [-W config_file] [--option=value]...",
        "",
        "options:",
    ]
    rows = []
    for opt in SUPPORTED_OPTIONS:
        if opt.vtype == "B":
            short = f"-{opt.short}, " if opt.short else ""
            rows.append((f"{short}--{opt.key}[=on|off]", opt.help))
        else:
            short = f"-{opt.short} {opt.metavar}, " if opt.short else ""
            rows.append((f"{short}--{opt.key}={opt.metavar}", opt.help))
    rows.extend((f"{flag} {metavar}".rstrip(), text) for flag, metavar, text in _SPECIAL_SHORT)
    rows.append(("--help", "show this help and exit"))
    lines.extend(f"  {left:<40}  {text}" for left, text in rows)
    return "\n".join(lines) + "\n"


def _fail(prog: str, message: str) -> NoReturn:
    sys.stderr.write(f"{prog}: {message}\n")
    sys.exit(2)


def load_config(argv: Optional[list[str]] = None, prog: str = "b2bua_radius") -> B2BConfig:
    """For ``main()``: parse, answer ``--help``, write ``-W``; on error print one line and exit 2."""
    if argv is None:
        argv = sys.argv[1:]
    try:
        cfg = parse_args(argv)
    except HelpRequested:
        sys.stdout.write(usage(prog))
        sys.exit(0)
    except ConfigError as exc:
        _fail(prog, str(exc))
    cfg["_orig_argv"] = [sys.argv[0], *argv]
    cfg["_orig_cwd"] = os.getcwd()
    if "_writeconf" in cfg:
        try:
            with open(cfg["_writeconf"], "w", encoding="utf-8") as f:
                cfg.write(f)
        except OSError as exc:
            _fail(prog, f"-W {cfg['_writeconf']}: {exc.strerror}")
    return cfg
