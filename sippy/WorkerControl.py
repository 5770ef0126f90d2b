"""The --workers parent's operations: one control socket, status line and set of signals for the
whole group (sippy.WorkerGroup), as ``B2BOperations`` is for a single process.

- Control socket: the parent listens on ``-c``; each command goes to every running worker
  (sippy.WorkerChannel) and the answers are merged: ``l``/``lt``/``llt`` list every worker's
  calls or transactions under one heading each with one ``Total:``; ``d``/``r`` answer ``OK`` when
  a worker had the call, else the workers' common error.
- Status line: every STATUS_INTERVAL the workers' status numbers are added up and logged as one
  line, with the number of running workers and restarts so far.
- Signals: SIGTERM/SIGINT stop the group (each worker stops as a single B2BUA does; a second one
  stops them at once); SIGHUP, SIGUSR1 and SIGUSR2 are passed on to every worker (SIGUSR1 also
  reopens the parent's own logs).
"""

from __future__ import annotations

import json
import re
import signal
from typing import Any, Optional

from twisted.internet.defer import Deferred

from sippy.B2BOperations import STATUS_INTERVAL, B2BOperations, add_counts, format_status
from sippy.CLIManager import CLIManager
from sippy.WorkerChannel import COUNTS
from sippy.WorkerGroup import WorkerGroup

__all__ = ("WorkerControl", "merge_answers", "merge_listing", "start_group_operations")

# Commands whose answers are listings to merge; for the others one OK is enough.
LISTINGS = ("l", "lt", "llt")
_TOTAL = re.compile(r"Total:\s*(\d+)\s*$")


def merge_listing(answers: list[str]) -> str:
    """One listing from several: the lines under each heading (`In-memory ...:`) in worker order,
    headings in the order first seen, a `Total: N` line summed."""
    sections: dict[str, list[str]] = {}
    totals: dict[str, int] = {}
    for answer in answers:
        heading = ""
        for line in answer.splitlines(keepends=True):
            total = _TOTAL.match(line)
            if total is not None:
                sections.setdefault(heading, [])
                totals[heading] = totals.get(heading, 0) + int(total[1])
            elif line.startswith("In-memory ") and line.rstrip().endswith(":"):
                heading = line
                sections.setdefault(heading, [])
            else:
                sections.setdefault(heading, []).append(line)
    out: list[str] = []
    for heading, lines in sections.items():
        out.append(heading)
        out.extend(lines)
        if heading in totals:
            out.append(f"Total: {totals[heading]}\n")
    return "".join(out)


def merge_answers(cmd: str, answers: list[str]) -> str:
    """The group's answer to a command from its workers' answers."""
    answers = [a for a in answers if a]
    if not answers:
        return "ERROR: no worker is running\n"
    if cmd in LISTINGS:
        return merge_listing(answers)
    if "OK\n" in answers:
        return "OK\n"
    return answers[0]


class WorkerControl(B2BOperations):
    """B2BOperations whose calls are in the workers: the same socket, log and signal handling,
    answered by asking the group."""

    def __init__(self, global_config: dict, group: WorkerGroup, *, reactor: Any = None) -> None:
        super().__init__(global_config, None, reactor=reactor)  # type: ignore[arg-type]
        self.group = group
        # However the group ends (stopped, or a worker failed at start-up), the parent ends too.
        group.stopped.addCallback(lambda _group: self._finishStop())

    def recvCommand(self, clim: CLIManager, cmd_line: str) -> Deferred:
        cmd = cmd_line.split(None, 1)[0].lower()
        d = self.group.ask(cmd_line)
        d.addCallback(lambda answers: clim.send(merge_answers(cmd, answers)))
        return d

    def groupCounts(self) -> Deferred:
        """The workers' status numbers added up (a Deferred of the dict)."""

        def add(answers: list[str]) -> dict[str, Any]:
            total: dict[str, Any] = {}
            for answer in answers:
                try:
                    add_counts(total, json.loads(answer))
                except ValueError:
                    continue  # a worker that went meanwhile
            return total

        return self.group.ask(COUNTS).addCallback(add)

    def groupStatusLine(self, counts: dict[str, Any]) -> str:
        group = self.group
        workers = f"workers: {group.running} of {len(group.workers)} running, {group.restarts} restarted"
        if "active" not in counts:
            return f"status: {workers}"
        return f"{format_status(counts)}; {workers}"

    def logStatus(self) -> None:
        self.groupCounts().addCallback(lambda counts: self.log(self.groupStatusLine(counts)))

    def handleSignal(self, signum: int) -> None:
        if signum in (signal.SIGTERM, signal.SIGINT):
            self.safeStop(signum)
            return
        if signum == signal.SIGUSR1:
            self.reopenLogs(signum)
        elif signum == signal.SIGUSR2:
            self.toggleDebug()
        self.group.kill(signum)

    def safeStop(self, signum: int = signal.SIGTERM) -> None:
        if not self.stopping:
            self.stopping = True
            self.log(f"Signal {signum} received, stopping {self.group.running} worker(s)")
        self.group.stop(signal.SIGTERM)

    def _finishStop(self) -> None:
        self.shutdown()
        self._stopReactor()


def start_group_operations(
    global_config: dict,
    group: WorkerGroup,
    *,
    reactor: Any = None,
    status_interval: Optional[float] = STATUS_INTERVAL,
) -> WorkerControl:
    """For the parent's main, before the reactor runs: control socket, status line, signals."""
    ctl = WorkerControl(global_config, group, reactor=reactor)
    ctl.startCLI()
    if status_interval is not None:
        ctl.startStatus(status_interval)
    ctl.installSignals()
    return ctl
