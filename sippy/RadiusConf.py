"""Reader for radiusclient-ng's `radiusclient.conf`, the file `-R radconf_path` names.

Existing b2bua_radius deployments keep their RADIUS servers, shared secrets and dictionary in this
format, so sippy reads it as it is. Every problem is reported at start-up as a `RadiusConfError`
whose text names the file and the line, because a B2BUA that starts with half a RADIUS setup
would refuse every call later with nothing in the log to say why.
"""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass, field
from typing import NamedTuple, Optional

from pyrad.dictionary import Dictionary, ParseError

DEFAULT_RADCONF = "/usr/local/etc/radiusclient-ng/radiusclient.conf"
DEFAULT_AUTH_PORT = 1812
DEFAULT_ACCT_PORT = 1813

# Options of radiusclient-ng and freeradius-client that sippy accepts and does not use (they
# steer the login program those libraries ship); anything else is a typo worth stopping for.
_IGNORED_OPTIONS = frozenset(
    (
        "auth_order",
        "login_tries",
        "login_timeout",
        "nologin",
        "issue",
        "login_radius",
        "login_local",
        "seqfile",
        "mapfile",
        "default_realm",
        "radius_deadtime",
        "clientdebug",
        "serv-type",
        "serv-auth-file",
    )
)


class RadiusConfError(Exception):
    """A radiusclient configuration that sippy cannot start with; str() names file and line."""


class RadiusServer(NamedTuple):
    host: str
    port: int
    secret: bytes


@dataclass
class RadiusConf:
    """What the RADIUS client needs, in the order servers are tried."""

    authservers: list[RadiusServer] = field(default_factory=list)
    acctservers: list[RadiusServer] = field(default_factory=list)
    dictionary: Optional[Dictionary] = None
    dictionary_path: str = ""
    timeout: float = 10.0
    retries: int = 3
    bindaddr: Optional[str] = None
    path: str = ""


def split_hostport(spec: str, default_port: int) -> tuple[str, int, Optional[str]]:
    """`host[:port[:secret]]` (IPv6 hosts in brackets) -> (host, port, secret or None)."""
    secret: Optional[str] = None
    if spec.startswith("["):
        end = spec.find("]")
        if end < 0:
            raise ValueError(f"unbalanced brackets in {spec!r}")
        host, rest = spec[1:end], spec[end + 1 :]
        if rest and not rest.startswith(":"):
            raise ValueError(f"junk after ']' in {spec!r}")
        parts = rest[1:].split(":", 1) if rest else []
    elif spec.count(":") > 2:
        # A bare IPv6 address: no port can follow it.
        host, parts = spec, []
    else:
        host, *parts = spec.split(":", 2)
    port = default_port
    if parts:
        if parts[0]:
            if not parts[0].isdigit() or not 0 < int(parts[0]) < 65536:
                raise ValueError(f"bad port {parts[0]!r}")
            port = int(parts[0])
        if len(parts) > 1 and parts[1]:
            secret = parts[1]
    if not host:
        raise ValueError(f"no host in {spec!r}")
    return host, port, secret


def _host_key(host: str) -> str:
    """Compare IP literals by value (`::1` == `0:0::1`), names case-insensitively."""
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        return host.lower()


def _read_lines(path: str, what: str) -> list[tuple[int, list[str]]]:
    """(line number, whitespace-split words) of each non-comment line of path."""
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except (OSError, UnicodeDecodeError) as ex:
        reason = ex.strerror if isinstance(ex, OSError) and ex.strerror else str(ex)
        raise RadiusConfError(f"{path}: cannot read {what}: {reason}") from ex
    lines = []
    for lineno, line in enumerate(text.splitlines(), 1):
        words = line.split("#", 1)[0].split()
        if words:
            lines.append((lineno, words))
    return lines


def read_servers(path: str) -> dict[tuple[str, Optional[int]], bytes]:
    """The `servers` file: `host[:port] secret` lines -> {(host key, port or None): secret}."""
    secrets: dict[tuple[str, Optional[int]], bytes] = {}
    for lineno, words in _read_lines(path, "RADIUS servers file"):
        if len(words) != 2:
            raise RadiusConfError(f"{path}:{lineno}: expected 'server secret', got {' '.join(words)!r}")
        try:
            host, port, _ = split_hostport(words[0], 0)
        except ValueError as ex:
            raise RadiusConfError(f"{path}:{lineno}: {ex}") from ex
        secrets[(_host_key(host), port or None)] = words[1].encode()
    return secrets


def load_dictionary(path: str) -> Dictionary:
    """Read a RADIUS dictionary with pyrad, turning its errors into `file:line: reason`."""
    try:
        return Dictionary(path)
    except ParseError as ex:
        # pyrad names the file without its directory; an $INCLUDE is relative to the dictionary.
        fname = path if not ex.file or ex.file == os.path.basename(path) else ex.file
        if not os.path.isabs(fname):
            fname = os.path.join(os.path.dirname(path), fname)
        where = f"{fname}:{ex.line}" if ex.line > -1 else fname
        raise RadiusConfError(f"{where}: bad dictionary line: {ex.msg}") from ex
    except OSError as ex:
        raise RadiusConfError(f"{ex.filename or path}: cannot read dictionary: {ex.strerror}") from ex


def _resolve(base_dir: str, value: str) -> str:
    # Relative paths are relative to the configuration file, so a test or a package can ship a
    # directory that works wherever it is unpacked.
    if value.startswith("/") or not base_dir:
        return value
    return f"{base_dir}/{value}"


def read_radconf(path: str = DEFAULT_RADCONF) -> RadiusConf:
    """Parse radiusclient.conf and what it points to (servers file, dictionary)."""
    conf = RadiusConf(path=path)
    base_dir = path.rsplit("/", 1)[0] if "/" in path else ""
    # (option, host spec, port, inline secret, line) until the servers file is known.
    pending: list[tuple[str, str, int, Optional[str], int]] = []
    servers_path: Optional[str] = None
    dict_path: Optional[str] = None
    for lineno, words in _read_lines(path, "radiusclient configuration"):
        opt, args = words[0], words[1:]
        where = f"{path}:{lineno}"
        if opt in _IGNORED_OPTIONS:
            continue
        if not args:
            raise RadiusConfError(f"{where}: option {opt!r} has no value")
        if opt in ("authserver", "acctserver"):
            default_port = DEFAULT_AUTH_PORT if opt == "authserver" else DEFAULT_ACCT_PORT
            for spec in ",".join(args).split(","):
                if not spec:
                    continue
                try:
                    host, port, secret = split_hostport(spec, default_port)
                except ValueError as ex:
                    raise RadiusConfError(f"{where}: {opt}: {ex}") from ex
                pending.append((opt, host, port, secret, lineno))
        elif opt == "servers":
            servers_path = _resolve(base_dir, args[0])
        elif opt == "dictionary":
            dict_path = _resolve(base_dir, args[0])
        elif opt == "radius_timeout":
            try:
                conf.timeout = float(args[0])
            except ValueError:
                conf.timeout = -1.0
            if conf.timeout <= 0:
                raise RadiusConfError(f"{where}: radius_timeout must be a positive number of seconds")
        elif opt == "radius_retries":
            if not args[0].isdigit() or int(args[0]) < 1:
                raise RadiusConfError(f"{where}: radius_retries must be a positive integer")
            conf.retries = int(args[0])
        elif opt == "bindaddr":
            conf.bindaddr = None if args[0] == "*" else args[0]
        else:
            raise RadiusConfError(f"{where}: unknown option {opt!r}")
    if not any(p[0] == "authserver" for p in pending):
        raise RadiusConfError(f"{path}: no authserver given")
    if not any(p[0] == "acctserver" for p in pending):
        raise RadiusConfError(f"{path}: no acctserver given")
    if dict_path is None:
        raise RadiusConfError(f"{path}: no dictionary given")
    secrets: dict[tuple[str, Optional[int]], bytes] = {}
    if servers_path is not None:
        secrets = read_servers(servers_path)
    for opt, host, port, inline, lineno in pending:
        if inline is not None:
            secret = inline.encode()
        else:
            key = _host_key(host)
            found = secrets.get((key, port), secrets.get((key, None)))
            if found is None:
                src = servers_path if servers_path is not None else "(no servers file given)"
                raise RadiusConfError(f"{path}:{lineno}: no shared secret for {opt} {host} in {src}")
            secret = found
        server = RadiusServer(host, port, secret)
        (conf.authservers if opt == "authserver" else conf.acctservers).append(server)
    conf.dictionary_path = dict_path
    conf.dictionary = load_dictionary(dict_path)
    return conf
