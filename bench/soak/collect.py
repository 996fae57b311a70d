"""What the soak follows while the system runs: every printed line (checked against the rule, counted
per tick, kept for the comparison with the Ledger), every message on the launcher's events socket
(unplanned exits and hangs, each actor's last status, the reloads being taken) and every stderr line
(exceptions that reached an event loop or killed a task)."""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import dataclass, field
from typing import Final

from bench.soak.agree import PrintedStore
from bench.soak.diagnose import TickLines
from bench.soak.prices import BadLine, PriceCheck, parse
from bench.soak.reloads import Reloads
from transport.protocol import ActorStatus, SupervisorEvent

EXAMPLES: Final = 5
UNPLANNED: Final = ("exited", "hung", "failed")
# What asyncio's and uvloop's default exception handler, and an uncaught exception, print: an exception
# no code handled. The actors log their expected errors (bad input, a dead peer) as one line without these.
LOOP_EXCEPTION: Final = ("Traceback (most recent call last)", "Exception in callback", "exception was never retrieved",
                         "Task was destroyed but it is pending", "Unhandled error in exception handler")


@dataclass
class Printed:
    """The stdout side, fed by the driver's stdout reader thread; read by the soak's under ``lock``."""

    prices: PriceCheck
    store: PrintedStore
    lock: threading.Lock = field(default_factory=threading.Lock)
    lines: int = 0
    bad_lines: int = 0
    bad_examples: list[str] = field(default_factory=list)
    per_tick: Counter[int] = field(default_factory=Counter)  # bounded by the ticks of the run
    first_at: float | None = None  # when the first decision arrived (the soak's clock)

    def on_line(self, at: float, line: bytes) -> None:
        try:
            decision = parse(line)
        except BadLine as exc:
            with self.lock:
                self.bad_lines += 1
                if len(self.bad_examples) < EXAMPLES:
                    self.bad_examples.append(f"{exc}: {line[:120]!r}")
            return
        self.prices.observe(decision)
        self.store.add(decision)
        with self.lock:
            self.lines += 1
            self.per_tick[decision.tick] += 1
            if self.first_at is None:
                self.first_at = at

    def decided(self) -> int:
        with self.lock:
            return self.lines

    def tick_range(self) -> tuple[int, int] | None:
        with self.lock:
            return (min(self.per_tick), max(self.per_tick)) if self.per_tick else None


@dataclass
class Supervision:
    """The events socket's side, fed by the driver's events thread."""

    reloads: Reloads
    stopping: threading.Event = field(default_factory=threading.Event)  # set before the soak stops the launcher
    lock: threading.Lock = field(default_factory=threading.Lock)
    unplanned: list[str] = field(default_factory=list)  # "actor event: detail", the first few
    unplanned_count: int = 0
    latest: dict[str, ActorStatus] = field(default_factory=dict)  # each actor's newest status

    def on_message(self, message: SupervisorEvent | ActorStatus) -> None:
        if isinstance(message, ActorStatus):
            if message.actor != "launcher":
                self.reloads.on_status(message)
            with self.lock:
                self.latest[message.actor] = message
            return
        if message.event in UNPLANNED and message.actor != "launcher" and not self.stopping.is_set():
            with self.lock:
                self.unplanned_count += 1
                if len(self.unplanned) < EXAMPLES:
                    self.unplanned.append(f"{message.actor} {message.event}: {message.detail}")

    def restarts(self) -> tuple[int, int]:
        """Restarts and hangs as the launcher counts them, summed over the actors' newest statuses."""
        with self.lock:
            actors = [s for name, s in self.latest.items() if name != "launcher"]
            return sum(s.restarts for s in actors), sum(s.hangs for s in actors)

    def snapshot(self) -> dict[str, dict[str, int]]:
        """Each actor's newest counters (copies)."""
        with self.lock:
            return {name: dict(status.counters) for name, status in self.latest.items()}

    def counters(self, prefix: str) -> dict[str, int]:
        """The newest counters of the actors named ``prefix``*, summed."""
        total: Counter[str] = Counter()
        with self.lock:
            for name, status in self.latest.items():
                if name.startswith(prefix):
                    total.update(status.counters)
        return dict(total)


@dataclass
class Log:
    """The stderr side, fed by the driver's stderr reader thread: every line counted, the loop
    exceptions among them, and the other lines by level word (the first few of each shown)."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    lines: int = 0
    loop_exceptions: int = 0
    examples: list[str] = field(default_factory=list)
    levels: Counter[str] = field(default_factory=Counter)  # bounded: a few level words
    warnings: list[str] = field(default_factory=list)  # the first few WARNING, ERROR or CRITICAL lines
    tick_lines: TickLines = field(default_factory=TickLines)  # the newest warning lines naming a tick

    def on_line(self, line: str) -> None:
        exception = any(mark in line for mark in LOOP_EXCEPTION)
        level = next((word for word in ("CRITICAL", "ERROR", "WARNING") if word in line), "other")
        with self.lock:
            self.lines += 1
            self.levels[level] += 1
            if exception:
                self.loop_exceptions += 1
                if len(self.examples) < EXAMPLES:
                    self.examples.append(line[:300])
            elif level != "other":
                self.tick_lines.add(line)
                if len(self.warnings) < EXAMPLES:
                    self.warnings.append(line[:300])

    def report(self) -> dict[str, object]:
        with self.lock:
            return {"lines": self.lines, "loop_exceptions": self.loop_exceptions, "by_level": dict(self.levels),
                    "examples": list(self.examples), "warnings": list(self.warnings)}
