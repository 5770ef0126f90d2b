"""``--workers N``: N processes carry the calls, each with its own reactor; this keeps them running.

The parent binds every SIP UDP socket before any worker starts and keeps them all open:

- per worker, one socket on the SIP port with SO_REUSEPORT (one per address family with
  ``-l '*'``). The kernel spreads datagrams over the sockets of the port by a hash of the source
  and destination addresses, so one peer's socket always reaches the same worker;
- per worker, one socket of its own on a port the kernel picks (the same port for both families).

A worker adopts its two sockets (``Udp_server_opts(fileno=)``). Its requests leave by its own
socket and name that port in Via and Contact; the answers it gives on the shared port name it in
Contact too. So on both legs the responses and in-dialog requests (ACK, re-INVITE, BYE, from
either side) come back to the worker that holds the dialog, whichever worker the shared port would
pick. Since the parent keeps the sockets, a worker that dies is replaced by one that adopts the
same ones: the port's hash spreads traffic as before, and the datagrams that came meanwhile wait
in the socket for it.

Workers are spawned, not forked (a forked Twisted reactor would share its epoll set with the
parent): ``python -c`` with the parent's own arguments, the sockets passed as descriptors and
described in the ``SIPPY_WORKER`` environment variable (``worker_environment``), a command pipe
each (sippy.WorkerChannel). A worker that exits while the group runs is restarted, after a delay
that doubles while it keeps dying young. ``stop()`` passes the stop signal on and fires
``stopped`` once every worker is gone (SIGKILL for one that lingers past ``kill_timeout``).
"""

from __future__ import annotations

import errno
import json
import os
import signal
import socket
import sys
from typing import Any, Callable, NamedTuple, Optional, Sequence

from twisted.internet import protocol
from twisted.internet.defer import Deferred, DeferredList

from sippy.misc import address_family
from sippy.SipLogger import SIPLOG_INFO, SIPLOG_WARN
from sippy.Time.Timeout import Timeout
from sippy.WorkerChannel import ANSWER_FD, ChannelClient

__all__ = (
    "WORKER_ENV",
    "WorkerSockets",
    "WorkerGroup",
    "WorkerSetup",
    "bind_worker_sockets",
    "worker_environment",
    "worker_setup",
)

# Environment variable that makes a b2bua_radius process a worker (JSON, see worker_environment).
WORKER_ENV = "SIPPY_WORKER"
# Restart delay of a dead worker: the first, and the longest while it keeps dying young.
RESTART_DELAY = 0.5
RESTART_DELAY_MAX = 30.0
# A worker that ran at least this long before dying is restarted after the first delay again.
STABLE_AFTER = 10.0
# stop(): SIGKILL for a worker still there this long after the stop signal.
KILL_TIMEOUT = 10.0
# Own ports: how many kernel-picked IPv4 ports to try for one also free for IPv6.
OWN_PORT_TRIES = 16


class WorkerSockets(NamedTuple):
    """One worker's bound sockets by address family: on the shared SIP port, and its own port."""

    shared: dict[int, socket.socket]
    own: dict[int, socket.socket]
    own_port: int


def _udp_socket(host: str, port: int, reuseport: bool) -> socket.socket:
    family = address_family(host)
    skt = socket.socket(family, socket.SOCK_DGRAM)
    try:
        if family == socket.AF_INET6:
            # IPv6 only, so that an IPv4 socket holds the same port beside it (-l '*').
            skt.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        if reuseport:
            skt.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        skt.bind((host, port))
        skt.setblocking(False)
    except OSError:
        skt.close()
        raise
    return skt


def _own_sockets(hosts: Sequence[str], port: int = 0) -> tuple[dict[int, socket.socket], int]:
    """Sockets on port on every host (both families with -l '*'); port 0: one the kernel picks
    that is free on every host."""
    for _ in range(1 if port else OWN_PORT_TRIES):
        first = _udp_socket(hosts[0], port, False)
        own_port = first.getsockname()[1]
        own = {first.family: first}
        try:
            for host in hosts[1:]:
                skt = _udp_socket(host, own_port, False)
                own[skt.family] = skt
        except OSError as exc:
            for skt in own.values():
                skt.close()
            if port or exc.errno != errno.EADDRINUSE:
                raise
            continue
        return own, own_port
    raise OSError(errno.EADDRINUSE, "no port free for every address family")


def bind_worker_sockets(
    hosts: Sequence[str], port: int, count: int, first_own_port: int = 0
) -> list[WorkerSockets]:
    """Every worker's sockets; OSError (nothing left open) when one cannot be bound, e.g. when
    a process without SO_REUSEPORT (a B2BUA without --workers) holds the SIP port.
    ``first_own_port``: worker N's own port is this + N (--workers_port); 0: kernel-picked."""
    bound: list[WorkerSockets] = []
    try:
        for index in range(count):
            shared: dict[int, socket.socket] = {}
            try:
                for host in hosts:
                    skt = _udp_socket(host, port, True)
                    shared[skt.family] = skt
                    port = skt.getsockname()[1]  # port 0 (tests): the rest join the first
                own, own_port = _own_sockets(hosts, first_own_port + index if first_own_port else 0)
            except OSError:
                for skt in shared.values():
                    skt.close()
                raise
            bound.append(WorkerSockets(shared, own, own_port))
    except OSError:
        close_sockets(bound)
        raise
    return bound


def close_sockets(bound: Sequence[WorkerSockets]) -> None:
    for ws in bound:
        for skt in (*ws.shared.values(), *ws.own.values()):
            skt.close()


def worker_environment(
    index: int, sockets: WorkerSockets, first_fd: int, generation: int = 0
) -> tuple[str, dict[int, int]]:
    """The SIPPY_WORKER value and the descriptor map (child fd -> parent fd) of worker index;
    generation: how many workers held the slot before (restarts)."""
    fds: dict[int, int] = {}
    described: dict[str, dict[str, int]] = {"shared": {}, "own": {}}
    fd = first_fd
    for kind, by_family in (("shared", sockets.shared), ("own", sockets.own)):
        for family, skt in by_family.items():
            fds[fd] = skt.fileno()
            described[kind][str(int(family))] = fd
            fd += 1
    value = {"index": index, "generation": generation, "own_port": sockets.own_port, **described}
    return json.dumps(value, separators=(",", ":")), fds


class WorkerSetup(NamedTuple):
    """What a worker reads from SIPPY_WORKER: its index, its sockets' descriptors by family, and
    how many workers held its slot before it."""

    index: int
    shared: dict[int, int]
    own: dict[int, int]
    own_port: int
    generation: int = 0


def worker_setup(environ: Optional[dict[str, str]] = None) -> Optional[WorkerSetup]:
    """In a worker, its setup; None in any other process."""
    value = (os.environ if environ is None else environ).get(WORKER_ENV)
    if not value:
        return None
    data = json.loads(value)

    def families(kind: str) -> dict[int, int]:
        return {int(family): fd for family, fd in data[kind].items()}

    return WorkerSetup(
        int(data["index"]),
        families("shared"),
        families("own"),
        int(data["own_port"]),
        int(data["generation"]),
    )


class _WorkerProcess(protocol.ProcessProtocol):
    def __init__(self, worker: _Worker) -> None:
        self.worker = worker
        self.channel = ChannelClient(self._write)

    def _write(self, data: bytes) -> None:
        self.transport.writeToChild(0, data)

    def childDataReceived(self, childFD: int, data: bytes) -> None:
        if childFD == ANSWER_FD:
            self.channel.dataReceived(data)

    def processEnded(self, reason: Any) -> None:
        self.channel.lost()
        self.worker.ended(self, reason.value)


class _Worker:
    """One slot of the group: its sockets, and the process that holds them now."""

    def __init__(self, group: WorkerGroup, index: int, sockets: WorkerSockets) -> None:
        self.group = group
        self.index = index
        self.sockets = sockets
        self.process: Optional[_WorkerProcess] = None
        self.pid: Optional[int] = None
        self.ready = False
        self.started_at = 0.0
        self.delay = RESTART_DELAY
        self.restart_call: Optional[Timeout] = None
        # Processes that held this slot so far.
        self.generation = 0

    def spawn(self) -> _WorkerProcess:
        g = self.group
        self.restart_call = None
        value, fds = worker_environment(self.index, self.sockets, ANSWER_FD + 1, self.generation)
        self.generation += 1
        env = dict(os.environ, **{WORKER_ENV: value})
        env["PYTHONPATH"] = os.pathsep.join(p for p in (g.import_path, env.get("PYTHONPATH")) if p)
        child_fds: dict[int, Any] = {0: "w", 1: 1, 2: 2, ANSWER_FD: "r", **fds}
        proc = _WorkerProcess(self)
        self.ready = False
        self.started_at = g.reactor.seconds()
        transport = g.reactor.spawnProcess(
            proc,
            sys.executable,
            [sys.executable, "-c", g.boot, *g.argv],
            env=env,
            path=g.cwd,
            childFDs=child_fds,
        )
        self.process, self.pid = proc, transport.pid
        proc.channel.ready.addCallback(self._ready, proc)
        return proc

    def _ready(self, text: str, proc: _WorkerProcess) -> str:
        if proc is self.process:
            self.ready = True
            own = self.sockets.own_port
            self.group.log(f"worker {self.index} started, pid {self.pid}, own SIP port {own}", SIPLOG_INFO)
        return text

    def kill(self, signum: int) -> None:
        if self.process is not None and self.pid is not None:
            try:
                os.kill(self.pid, signum)
            except ProcessLookupError:
                pass

    def ended(self, proc: _WorkerProcess, reason: Any) -> None:
        if proc is not self.process:
            return
        pid = self.pid
        self.process, self.pid, self.ready = None, None, False
        self.group.workerEnded(self, pid, reason)

    def scheduleRestart(self) -> float:
        g = self.group
        if g.reactor.seconds() - self.started_at >= STABLE_AFTER:
            self.delay = RESTART_DELAY
        delay = self.delay
        self.delay = min(delay * 2, RESTART_DELAY_MAX)
        self.restart_call = Timeout(self.spawn, delay, reactor=g.reactor)
        return delay


def _describe_exit(reason: Any) -> str:
    sig = getattr(reason, "signal", None)
    if sig is not None:
        try:
            return f"killed by {signal.Signals(sig).name}"
        except ValueError:
            return f"killed by signal {sig}"
    return f"exited with status {getattr(reason, 'exitCode', None)}"


class WorkerGroup:
    """N workers on pre-bound sockets; restarts the ones that die until ``stop()``."""

    def __init__(
        self,
        sockets: Sequence[WorkerSockets],
        argv: Sequence[str],
        *,
        boot: str,
        cwd: Optional[str] = None,
        reactor: Any = None,
        log: Callable[[str, int], Any] = lambda text, level: print(text),
        kill_timeout: float = KILL_TIMEOUT,
    ) -> None:
        """``boot``: the ``python -c`` program a worker runs, with ``argv`` as its arguments."""
        if reactor is None:
            from twisted.internet import reactor
        self.reactor = reactor
        self.argv = list(argv)
        self.boot = boot
        self.cwd = cwd
        self.log = log
        self.kill_timeout = kill_timeout
        # Where the sippy package is, so that a worker imports the same code from any directory.
        self.import_path = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        self.workers = [_Worker(self, i, s) for i, s in enumerate(sockets)]
        self.restarts = 0
        self.stopping = False
        self.started: Deferred = Deferred()
        self.stopped: Deferred = Deferred()
        self._kill_call: Optional[Timeout] = None

    def start(self) -> Deferred:
        """Spawn every worker; ``started`` fires once all are ready, or fails with the first
        that ended before it was."""
        DeferredList([w.spawn().channel.ready for w in self.workers]).addCallback(self._allReady)
        return self.started

    def _allReady(self, _results: Any) -> None:
        if not self.started.called and all(w.ready for w in self.workers):
            self.started.callback(self)

    @property
    def pids(self) -> list[Optional[int]]:
        return [w.pid for w in self.workers]

    @property
    def running(self) -> int:
        return sum(1 for w in self.workers if w.ready)

    def workerEnded(self, worker: _Worker, pid: Optional[int], reason: Any) -> None:
        if self.stopping:
            self._checkStopped()
            return
        how = _describe_exit(reason)
        if not self.started.called:
            # At start-up: the worker's own error is on stderr already; the group does not start.
            self.started.errback(RuntimeError(f"worker {worker.index} (pid {pid}) {how} while starting"))
            self.stop(signal.SIGTERM)
            return
        self.restarts += 1
        delay = worker.scheduleRestart()
        self.log(f"worker {worker.index} (pid {pid}) {how}: restarting it in {delay:g} s", SIPLOG_WARN)

    def kill(self, signum: int) -> None:
        """Pass a signal on to every worker."""
        for worker in self.workers:
            worker.kill(signum)

    def ask(self, cmd: str) -> Deferred:
        """Every running worker's answer to a command line, in worker order (a Deferred of a list)."""
        asked = [w.process.channel.ask(cmd) for w in self.workers if w.ready and w.process is not None]
        return DeferredList(asked).addCallback(lambda results: [text for _ok, text in results])

    def stop(self, signum: int = signal.SIGTERM) -> Deferred:
        """Stop restarting and pass signum on; ``stopped`` fires once every worker is gone. Called
        again (a second SIGTERM), it passes the signal on again."""
        self.stopping = True
        for worker in self.workers:
            if worker.restart_call is not None:
                worker.restart_call.cancel()
            worker.restart_call = None
        self.kill(signum)
        if self._kill_call is None:
            self._kill_call = Timeout(self.kill, self.kill_timeout, 1, signal.SIGKILL, reactor=self.reactor)
        self._checkStopped()
        return self.stopped

    def _checkStopped(self) -> None:
        if self.stopped.called or any(w.process is not None for w in self.workers):
            return
        if self._kill_call is not None:
            self._kill_call.cancel()
        self.stopped.callback(self)

    def close(self) -> None:
        """Close the parent's copies of the sockets (once every worker is gone)."""
        close_sockets([w.sockets for w in self.workers])
