"""One supervised actor process: how it is started (spawn, with its shared liveness stamp), and how
its exit is described."""

from __future__ import annotations

import importlib
import multiprocessing
import multiprocessing.process
import signal
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from actors.kinds import ActorKind
from repricer_supervisor.policy import ChildHealth

# spawn, not fork: safe with threads and ZeroMQ contexts.
_MP = multiprocessing.get_context("spawn")


def child_main(entry: str, argv: list[str], liveness: Any) -> None:
    """Entry point of every child process: run ``<entry>.main(argv, liveness)`` and exit with its code."""
    sys.exit(importlib.import_module(entry).main(argv, liveness))


@dataclass
class Child:
    """One supervised actor process (restarted under the same name)."""

    name: str  # e.g. "algorithm-1"
    kind: ActorKind
    argv: list[str]
    health: ChildHealth
    process: multiprocessing.process.BaseProcess | None = None
    restart_at: float | None = None  # set while waiting out a backoff
    liveness: Any = None  # the shared double the running process stamps at every heartbeat
    last_counters: dict[str, int] = field(default_factory=dict)
    started_wall: float = 0.0  # time.time() of the current process's start
    last_beat_wall: float = 0.0  # time.time() of the newest liveness stamp
    hangs: int = 0
    final_beat: bool = False  # the current process's final counters have arrived (it stopped cleanly)
    # Called once, at the first start: the argv fixed then (the Scheduler's run starts when it does).
    argv_at_first_start: Callable[[], list[str]] | None = None

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    @property
    def exitcode(self) -> int | None:
        """The current process's exit code; None while it runs (or when there is none)."""
        return self.process.exitcode if self.process is not None else None

    def spawn(self, extra_argv: Sequence[str]) -> multiprocessing.process.BaseProcess:
        """Start a new process for this child, with a fresh liveness stamp (no stale value)."""
        if self.argv_at_first_start is not None:
            self.argv, self.argv_at_first_start = self.argv_at_first_start(), None
        self.liveness = _MP.RawValue("d", 0.0)
        process = _MP.Process(target=child_main, args=(self.kind.entry, [*self.argv, *extra_argv], self.liveness),
                              name=self.name)
        process.start()
        self.process = process
        self.restart_at = None
        self.final_beat = False
        return process

    def stamp(self) -> float:
        """The newest liveness stamp (time.monotonic() of the child's last beat), 0.0 if none yet."""
        return float(self.liveness.value) if self.liveness is not None else 0.0


def describe_exit(exitcode: int | None) -> str:
    if exitcode is None:
        return "still running"
    if exitcode < 0:
        try:
            return f"killed by {signal.Signals(-exitcode).name}"
        except ValueError:
            return f"killed by signal {-exitcode}"
    return f"exit code {exitcode}"
