"""b2bua_radius: the RADIUS B2BUA program, importable so tests and wrappers can run it.

``main()`` reads like the start-up it performs, one step per function, so each step can be
replaced or extended on its own (operations: signals, control-socket commands, status line):

    config -> (daemon) -> logger -> RADIUS -> RTPproxies -> transaction manager + call map
    -> control socket -> signals -> reactor

``--wss_socket`` adds SIP over secure WebSocket listeners (``start_wss``); a certificate or key that
cannot be used stops start-up (one line naming the file, exit 2).
``-r`` anchors every call's media on one of the given RTPproxies (``start_rtp_proxies``).
``--sip_proxy`` forwards REGISTER and SUBSCRIBE to a helper proxy. ``main_func()`` is Sippy's
entry point name for the same program.

The daemon step comes before any socket is opened because detaching closes inherited
descriptors (see ``sippy.Daemon``). ``build_call_machinery(cfg, routes=...)`` is also the way to
run the B2BUA with a fixed list of routes (failover) without a command-line flag.
"""

from __future__ import annotations

import os
import sys
from functools import partial
from typing import Any, Optional, Sequence

from sippy.B2BConfig import B2BConfig, load_config
from sippy.B2BOperations import STATUS_INTERVAL, start_operations
from sippy.B2BRoute import B2BRoute
from sippy.CallController import UA_NAME, CallController, cc_factory
from sippy.CallMap import CallMap, max_calls_from, tune_gc
from sippy.CLIManager import CLISocketInUse, parse_cli_address, unix_socket_in_use
from sippy.Core.EventDispatcher import ED2
from sippy.misc import address_family, listen_address, sip_hostport
from sippy.Radius_client import Radius_client
from sippy.RadiusAcctSpool import SPOOL_MAX, AcctSpool, default_spool_dir
from sippy.RadiusAuthorisation import RadiusAuthorisation
from sippy.RadiusConf import DEFAULT_RADCONF, RadiusConf, RadiusConfError, read_radconf
from sippy.Rtp_proxy.client import Rtp_proxy_client
from sippy.Security.DigestGuard import DigestGuard
from sippy.SipConf import SipConf
from sippy.SipHeader import SipHeader
from sippy.SipLogger import SipLogger
from sippy.SipTransactionManager import SipTransactionManager
from sippy.SipVia import SipVia
from sippy.Tcp_server import Tcp_server, Tcp_server_opts
from sippy.Tls_server import Tls_server, Tls_server_opts, trust_root
from sippy.Transactions.transports import sip_listen_hosts
from sippy.Udp_server import Udp_server, Udp_server_opts
from sippy.WorkerChannel import serve_parent
from sippy.WorkerControl import WorkerControl, start_group_operations
from sippy.WorkerGroup import WorkerGroup, WorkerSetup, bind_worker_sockets, worker_setup
from sippy.Wss_server import Wss_server, Wss_server_opts, WssConfigError, tls_options

PROG = "b2bua_radius"
# The `python -c` program of a --workers worker: this main() with the parent's arguments.
WORKER_BOOT = "import sys\nfrom sippy.b2bua_radius import main\nsys.exit(main())\n"
# A worker's call numbers (the `r` notify tags RTPproxy sends back) start at index * the first
# + generation * the second + 1: unique in the group, and a restarted worker's differ from those of
# its predecessor, whose media sessions may still time out and notify.
CALL_NUMBERS_PER_WORKER = 10**12
CALL_NUMBERS_PER_GENERATION = 10**9

__all__ = (
    "main",
    "main_func",
    "start_rtp_proxies",
    "read_radius_conf",
    "start_radius",
    "build_call_machinery",
    "StatefulProxy",
    "start_wss",
    "start_tcp",
)


class StartupError(Exception):
    """Something the B2BUA needs at start-up is not there; main() prints it and exits 1."""


class StatefulProxy:
    """``--sip_proxy``: REGISTER and SUBSCRIBE are not calls; pass them on to a helper proxy.

    Stateful (RFC 3261 16): the request goes out on a client transaction with our Via on top and
    Max-Forwards one less; each response comes back on the caller's server transaction without it.
    The Request-URI is left alone: the helper proxy routes it.
    """

    METHODS = ("REGISTER", "SUBSCRIBE")

    def __init__(self, sip_tm: Any, destination: tuple[str, int]) -> None:
        self.sip_tm = sip_tm
        self.destination = destination

    def recvRequest(self, req: Any, sip_t: Any) -> tuple:
        if req.countHFs("max-forwards") > 0:
            req.getHFBody("max-forwards").decNum()
        via = SipVia()
        via.genBranch()
        req.insertHeaderBefore(req.getHF("via"), SipHeader(name="via", body=via))
        req.setTarget(self.destination)
        self.sip_tm.newTransaction(req, partial(self.recvResponse, sip_t))
        return (None, None, None)

    def recvResponse(self, sip_t: Any, resp: Any) -> None:
        resp.removeHeader(resp.getHF("via"))
        self.sip_tm.sendResponse(resp, sip_t)


def _with_proxy(callmap: CallMap, proxy: StatefulProxy) -> Any:
    """The transaction manager's req_cb: out-of-dialog REGISTER/SUBSCRIBE to the proxy, the rest
    to the call map."""

    def req_cb(req: Any, sip_t: Any) -> Any:
        if req.getMethod() in proxy.METHODS and req.getHFBody("to").getTag() is None:
            return proxy.recvRequest(req, sip_t)
        return callmap.recvRequest(req, sip_t)

    return req_cb


def read_radius_conf(cfg: B2BConfig) -> Optional[RadiusConf]:
    """Read radiusclient.conf when RADIUS is used, before anything starts.

    Authorisation needs it, and so does accounting when ``-R`` names it. Accounting alone with
    no ``-R`` and no file at the default place (typical for ``-u -s ...``) runs without RADIUS,
    with a warning: that is what such a set-up means.
    """
    if not cfg["auth_enable"] and not cfg["acct_enable"]:
        return None
    path = cfg.get("radiusclient.conf", DEFAULT_RADCONF)
    if not cfg["auth_enable"] and "radiusclient.conf" not in cfg and not os.path.exists(path):
        sys.stderr.write(f"{PROG}: warning: {path} not found, RADIUS accounting is off (-A 0 to silence)\n")
        cfg["acct_enable"] = False
        return None
    try:
        return read_radconf(path)
    except RadiusConfError as exc:
        raise StartupError(str(exc)) from None


def start_logger(cfg: B2BConfig, app: str = "b2bua") -> SipLogger:
    """The SIP logger (SIPLOG_* environment) every layer writes to; a --workers worker's lines
    say which one it is (``b2bua.w1``)."""
    logger = SipLogger(app)
    cfg["_sip_logger"] = logger
    return logger


def start_radius(cfg: B2BConfig, conf: Optional[RadiusConf], reactor: Any = None) -> None:
    """The RADIUS client and the authoriser the call controllers use (``_radius_client``,
    ``_radius_auth``)."""
    if conf is None:
        return
    client = Radius_client(
        conf, reactor=reactor, logger=cfg.get("_sip_logger"), require_ma=cfg.get("radius_require_ma", True)
    )
    cfg["_radius_client"] = client
    cfg["_radius_auth"] = RadiusAuthorisation(client, logger=cfg.get("_sip_logger"))
    if cfg["acct_enable"]:
        spool = AcctSpool(
            client,
            cfg.get("acct_spool_dir") or default_spool_dir(cfg["pidfile"]),
            cfg.get("acct_spool_max", SPOOL_MAX),
            reactor=reactor,
            logger=cfg.get("_sip_logger"),
        )
        spool.load()
        spool.start()
        cfg["_acct_spool"] = spool


def _notify_socket(b2bua_socket: Optional[str]) -> Optional[str]:
    """The control socket as RTPproxy names a notify socket (``unix:/abs/path``, ``tcp:host:port``);
    None for a UDP control socket, which RTPproxy cannot report to."""
    if not b2bua_socket:
        return None
    kind, address = parse_cli_address(b2bua_socket)
    if kind == "unix":
        assert isinstance(address, str)
        return f"unix:{os.path.abspath(address)}"
    if kind == "tcp":
        return f"tcp:{sip_hostport(address[0], address[1])}"
    return None


def start_rtp_proxies(cfg: B2BConfig, reactor: Any = None) -> list[Rtp_proxy_client]:
    """``-r``: one ``Rtp_proxy_client`` per contact in ``cfg['_rtp_proxy_clients']`` (which then
    holds the clients, as in Sippy), media timeouts reported to the control socket."""
    contacts = cfg.get("_rtp_proxy_clients")
    if not contacts:
        return []
    if "rtpp_hrtb_ival" in cfg:
        Rtp_proxy_client.hrtb_ival = float(cfg["rtpp_hrtb_ival"])
    if "rtpp_hrtb_retr_ival" in cfg:
        Rtp_proxy_client.hrtb_retr_ival = float(cfg["rtpp_hrtb_retr_ival"])
    notify_socket = _notify_socket(cfg.get("b2bua_socket"))
    clients = []
    for contact in contacts:
        try:
            rtpc = Rtp_proxy_client(cfg, spath=contact, reactor=reactor)
        except (OSError, ValueError) as exc:
            for c in clients:
                c.shutdown()
            raise StartupError(f"RTPproxy {contact}: {exc}") from None
        rtpc.notify_socket = notify_socket
        clients.append(rtpc)
    cfg["_rtp_proxy_clients"] = clients
    return clients


def build_call_machinery(
    cfg: B2BConfig, routes: Optional[Sequence[B2BRoute]] = None, reactor: Any = None
) -> CallMap:
    """Transaction manager on the SIP port and the call map with this B2BUA's controllers.

    ``routes``: tried in order for every call instead of the static/RADIUS routes.
    """
    SipConf.my_address = cfg["_sip_address"]
    SipConf.my_port = cfg["_sip_port"]
    cfg.setdefault("_uaname", UA_NAME)

    digest_guard = DigestGuard()

    def new_call(global_config: dict, req: Any, sip_t: Any) -> Any:
        return cc_factory(
            global_config,
            req,
            sip_t,
            callmap=callmap,
            routes=routes,
            reactor=reactor,
            digest_guard=digest_guard,
        )

    callmap = CallMap(cfg, new_call, max_calls=max_calls_from(cfg), reactor=reactor)
    callmap.logBound()
    cfg["_cmap"] = callmap
    try:
        tm = SipTransactionManager(cfg, callmap.recvRequest, reactor=reactor)
    except Exception as exc:  # CannotListenError, socket.gaierror...: all mean "cannot listen"
        raise StartupError(f"cannot listen on {listen_address(cfg)}: {exc}") from None
    tm.nat_traversal = cfg.get("nat_traversal", False)
    callmap.log_limiter = tm.log_limiter
    if "_sip_proxy" in cfg:
        tm.req_cb = _with_proxy(callmap, StatefulProxy(tm, cfg["_sip_proxy"]))
    return callmap


def start_wss(cfg: B2BConfig, callmap: CallMap, reactor: Any = None) -> list[Wss_server]:
    """``--wss_socket``: one Wss_server per listener, registered with the transaction manager;
    a closed connection hangs up the calls that used it (``CallMap.connectionClosed``). Raises
    WssConfigError (certificate, key) or StartupError (cannot listen)."""
    tm = cfg["_sip_tm"]
    servers: list[Wss_server] = []
    connections: dict = {}
    for host, port, certfile, keyfile in cfg.get("_wss_sockets", ()):
        opts = Wss_server_opts(
            (host, port),
            tm.handleIncoming,
            certfile=certfile,
            keyfile=keyfile,
            error_callback=tm.transportError,
            close_callback=callmap.connectionClosed,
            connections=connections,
        )
        try:
            server = Wss_server(cfg, opts, reactor=reactor)
        except WssConfigError:
            raise
        except Exception as exc:  # CannotListenError: the reason is in the message
            raise StartupError(f"--wss_socket: cannot listen on {sip_hostport(host, port)}: {exc}") from None
        servers.append(server)
    if servers:
        tm.registerTransport(servers[0])
        cfg["_wss_server"] = servers[0]
        cfg["_wss_servers"] = servers
    return servers


# The --tcp_* limits, as Tcp_server_opts takes them (TLS listeners too).
_STREAM_LIMITS = (
    ("tcp_max_connections", "max_connections"),
    ("tcp_max_connections_per_address", "max_connections_per_address"),
    ("tcp_max_buffered", "max_buffered"),
    ("tcp_max_message_size", "max_message_size"),
    ("tcp_idle_timeout", "idle_timeout"),
)


def start_tcp(cfg: B2BConfig, reactor: Any = None) -> list[Tcp_server]:
    """``--tcp_socket`` and ``--tls_socket``: one Tcp_server / Tls_server per listener; the first
    of each transport is registered with the transaction manager (requests to a ``transport=tcp``
    / ``transport=tls`` or ``sips:`` target leave by it). A dropped connection ends the
    transactions on it, not the calls (the peer may come back on a new one). Raises
    WssConfigError (certificate, key, CA file) or StartupError (cannot listen)."""
    tm = cfg["_sip_tm"]
    servers: list[Tcp_server] = []
    listeners = [("--tcp_socket", spec) for spec in cfg.get("_tcp_sockets", ())]
    listeners += [("--tls_socket", spec) for spec in cfg.get("_tls_sockets", ())]
    limits = {name: cfg[key] for key, name in _STREAM_LIMITS if key in cfg}
    try:
        for listener in listeners:
            flag, (host, port, *files) = listener
            server: Tcp_server
            if files:
                opts = Tls_server_opts(
                    (host, port),
                    tm.handleIncoming,
                    error_callback=tm.transportError,
                    certfile=files[0],
                    keyfile=files[1],
                    ca_file=cfg.get("tls_ca"),
                    verify=cfg.get("tls_verify", True),
                    **limits,
                )
                server = Tls_server(cfg, opts, reactor=reactor)
            else:
                opts = Tcp_server_opts(
                    (host, port), tm.handleIncoming, error_callback=tm.transportError, **limits
                )
                server = Tcp_server(cfg, opts, reactor=reactor)
            servers.append(server)
            if server.transport not in tm.listeners:
                tm.registerTransport(server)
    except WssConfigError:
        for server in servers:
            server.shutdown()
        raise
    except Exception as exc:  # CannotListenError: the reason is in the message
        for server in servers:
            server.shutdown()
        raise StartupError(f"{flag}: cannot listen on {sip_hostport(host, port)}: {exc}") from None
    cfg["_stream_servers"] = servers
    return servers


def check_control_socket(cfg: B2BConfig) -> None:
    """Refuse to start (before detaching) when another process listens on our unix control
    socket: taking it over would leave that B2BUA running with no way to reach it."""
    kind, target = parse_cli_address(cfg["b2bua_socket"])
    if kind == "unix" and isinstance(target, str) and unix_socket_in_use(target):
        raise CLISocketInUse(target)


def _check_pidfile(cfg: B2BConfig) -> None:
    """A daemon whose pidfile names a running process: that message says more than the socket's."""
    from sippy.Daemon import DaemonError, check_pidfile

    try:
        check_pidfile(os.path.abspath(cfg["pidfile"]))
    except DaemonError as exc:
        raise StartupError(str(exc)) from None


def _daemonize(cfg: B2BConfig) -> None:
    from sippy.Daemon import DaemonError, daemonize

    try:
        daemonize(cfg["logfile"], cfg["pidfile"])
    except DaemonError as exc:
        raise StartupError(str(exc)) from None


def become_worker(cfg: B2BConfig, setup: WorkerSetup) -> None:
    """A --workers worker (sippy.WorkerGroup): SIP on the sockets its parent bound, requests from
    its own port; stream and WebSocket listeners in worker 0 only; an accounting spool of its own
    (`worker<index>` under the group's), which its successor sends on if it dies; call numbers of
    its own (see CALL_NUMBERS_PER_WORKER)."""
    cfg["_sip_fds"] = setup.own
    cfg["_sip_port"] = setup.own_port
    if setup.index > 0:
        for key in ("_tcp_sockets", "_tls_sockets", "_wss_sockets", "_wss_socket"):
            cfg.pop(key, None)
    base = cfg.get("acct_spool_dir") or default_spool_dir(cfg["pidfile"])
    cfg["acct_spool_dir"] = os.path.join(base, f"worker{setup.index}")
    generation = setup.generation % (CALL_NUMBERS_PER_WORKER // CALL_NUMBERS_PER_GENERATION)
    CallController._next_id = (
        setup.index * CALL_NUMBERS_PER_WORKER + generation * CALL_NUMBERS_PER_GENERATION + 1
    )


def start_shared_port(cfg: B2BConfig, setup: WorkerSetup, reactor: Any = None) -> list[Udp_server]:
    """A worker's sockets on the shared SIP port: requests on them reach the transaction manager,
    the answers leave by them and their Contact names the worker's own port."""
    tm = cfg["_sip_tm"]
    hosts = {address_family(host): host for host in sip_listen_hosts(cfg)}
    servers = []
    for family, fd in setup.shared.items():
        opts = Udp_server_opts(
            (hosts[family], 0), tm.handleIncoming, family=family, fileno=fd, sip_port=setup.own_port
        )
        servers.append(Udp_server(cfg, opts, reactor=reactor))
    # The reactor's ports hold their own copies of the descriptors.
    for fd in (*setup.shared.values(), *setup.own.values()):
        os.close(fd)
    return servers


def start_group(cfg: B2BConfig, routes: Optional[Sequence[B2BRoute]]) -> tuple[WorkerGroup, WorkerControl]:
    """The --workers parent: bind every worker's sockets, then control socket, status line and
    signals for the group; the workers start once the reactor runs."""
    if routes is not None:
        raise StartupError("--workers: routes given to main() cannot reach the workers")
    try:
        sockets = bind_worker_sockets(
            sip_listen_hosts(cfg), cfg["_sip_port"], cfg["workers"], cfg.get("workers_port", 0)
        )
    except OSError as exc:
        own = f" and the workers' own ports from {cfg['workers_port']}" if "workers_port" in cfg else ""
        raise StartupError(f"cannot listen on {listen_address(cfg)}{own}: {exc}") from None
    group = WorkerGroup(sockets, cfg["_orig_argv"][1:], boot=WORKER_BOOT, cwd=cfg["_orig_cwd"])
    ctl = start_group_operations(cfg, group)
    group.log = ctl.log
    return group, ctl


def run_group(cfg: B2BConfig, group: WorkerGroup, logger: SipLogger) -> int:
    """Run the parent's reactor until the group has stopped; 1 when it could not start."""
    from twisted.internet import reactor

    status = [0]

    def started(_group: WorkerGroup) -> None:
        pids = ", ".join(str(pid) for pid in group.pids)
        print(
            f"{PROG} started, pid {os.getpid()}, listening on {listen_address(cfg)}, "
            f"{len(group.workers)} workers (pids {pids})",
            flush=True,
        )

    def failed(failure: Any) -> None:
        status[0] = 1
        sys.stderr.write(f"{PROG}: {failure.getErrorMessage()}\n")

    reactor.callWhenRunning(lambda: group.start().addCallbacks(started, failed))
    ED2.loop()
    group.close()
    logger.shutdown()
    return status[0]


def main(argv: Optional[Sequence[str]] = None, *, routes: Optional[Sequence[B2BRoute]] = None) -> int:
    """Run the B2BUA until SIGTERM; bad flags exit 2 (one line), start-up failures exit 1."""
    cfg = load_config(None if argv is None else list(argv), prog=PROG)
    try:
        # Before detaching, so that the one line naming a bad file reaches the terminal.
        for _host, _port, certfile, keyfile in cfg.get("_wss_sockets", ()):
            tls_options(certfile, keyfile)
    except WssConfigError as exc:
        sys.stderr.write(f"{PROG}: --wss_socket: {exc}\n")
        return 2
    try:
        for _host, _port, certfile, keyfile in cfg.get("_tls_sockets", ()):
            tls_options(certfile, keyfile)
        if cfg.get("_tls_sockets") and cfg.get("tls_verify", True) and cfg.get("tls_ca"):
            trust_root(cfg["tls_ca"])
    except WssConfigError as exc:
        sys.stderr.write(f"{PROG}: --tls_socket: {exc}\n")
        return 2
    # A --workers worker (started by its parent, sippy.WorkerGroup), or None.
    setup = worker_setup()
    group: Optional[WorkerGroup] = None
    shared: list[Udp_server] = []
    try:
        radius_conf = read_radius_conf(cfg)
        if setup is not None:
            become_worker(cfg, setup)
            # Out of the terminal's process group: signals come from the parent only (one Ctrl-C).
            os.setpgid(0, 0)
        else:
            if not cfg["foreground"]:
                _check_pidfile(cfg)
            check_control_socket(cfg)
            if not cfg["foreground"]:
                _daemonize(cfg)
        logger = start_logger(cfg, "b2bua" if setup is None else f"b2bua.w{setup.index}")
        if setup is None and cfg.get("workers", 1) > 1:
            group, _ctl = start_group(cfg, routes)
        else:
            start_radius(cfg, radius_conf)
            rtp_proxies = start_rtp_proxies(cfg)
            callmap = build_call_machinery(cfg, routes, reactor=ED2.reactor)
            if setup is not None:
                shared = start_shared_port(cfg, setup)
            wss_servers = start_wss(cfg, callmap)
            stream_servers = start_tcp(cfg)
    except WssConfigError as exc:
        sys.stderr.write(f"{PROG}: --wss_socket: {exc}\n")
        return 2
    except StartupError as exc:
        sys.stderr.write(f"{PROG}: {exc}\n")
        return 1
    except CLISocketInUse as exc:
        sys.stderr.write(f"{PROG}: {exc}, not starting\n")
        return 2
    if group is not None:
        return run_group(cfg, group, logger)
    # Operations (sippy.B2BOperations): control socket, status line, signals (safe stop on SIGTERM).
    # A worker's control socket and status line are its parent's (sippy.WorkerControl).
    try:
        ops = start_operations(
            cfg, callmap, control=setup is None, status_interval=None if setup else STATUS_INTERVAL
        )
    except CLISocketInUse as exc:  # taken since check_control_socket()
        sys.stderr.write(f"{PROG}: {exc}, not starting\n")
        return 2
    if setup is None:
        print(
            f"{PROG} started, pid {os.getpid()}, listening on {listen_address(cfg)}",
            flush=True,
        )
    else:
        # The parent gone (even killed): stop as on SIGTERM.
        serve_parent(ops, f"ready {os.getpid()}", parent_gone=ops.safeStop)
    tune_gc(ED2.reactor)
    ED2.loop()
    for server in (*shared, *wss_servers, *stream_servers):
        server.shutdown()
    cfg["_sip_tm"].shutdown()
    if "_acct_spool" in cfg:
        cfg["_acct_spool"].shutdown()
    if "_radius_client" in cfg:
        cfg["_radius_client"].shutdown()
    for rtpc in rtp_proxies:
        rtpc.shutdown()
    ops.shutdown()
    logger.shutdown()
    return 0


def main_func() -> None:
    """Sippy's entry point: run with the command line and exit with main()'s status."""
    sys.exit(main())
