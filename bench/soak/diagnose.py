"""What was going on around a short tick: so a failed soak says why, not only that.

A tick without every book decided has one of a few causes, each leaving a trace this module keeps
(bounded) and puts beside each short tick in the report:

* the Algorithm's own account: its warning lines that name a tick (``tick N: X pair(s) still busy ...,
  M never started``; a superseded tick) and its counters (``missed``, ``unstarted``, ``carried``,
  ``superseded_ticks``, backpressure from the Ledger or the spool, stdout lines dropped);
* the machine's load: the kernel's pressure-stall information (``/proc/pressure/cpu`` and ``io``: the
  share of each second some task waited for a CPU, or for the disk), read every second;
* hiccups of the soak's own watcher thread shorter than a stall (a loaded machine delays a thread by
  a fraction of a second before it holds it up for a whole tick).

Pure except :func:`read_pressure` (reads two small /proc files).
"""

from __future__ import annotations

import collections
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

TICK_LINE: Final = re.compile(r"\btick (\d+)\b")
LINES_KEPT: Final = 400  # warning lines naming a tick, the newest kept
SECONDS_KEPT: Final = 3 * 3600  # per-second pressure readings kept (a 2-hour soak and then some)
AROUND_TICKS: Final = 3  # ticks either side of a short one whose lines are shown
AROUND_SECONDS: Final = 4  # seconds either side of a short tick's due time whose pressure is shown
SHOWN: Final = 5  # short ticks diagnosed in the report
# The Algorithm's counters that account for a pair-tick not decided (see actors.algorithm.actor).
ALGORITHM_COUNTERS: Final = ("missed", "unstarted", "carried", "overruns", "skipped", "superseded_ticks",
                             "stale_ticks", "backpressure_ticks_ledger", "backpressure_ticks_spool",
                             "output_dropped", "retried")


@dataclass
class TickLines:
    """Warning lines that name a tick (the newest :data:`LINES_KEPT`)."""

    lines: collections.deque[tuple[int, str]] = field(default_factory=lambda: collections.deque(maxlen=LINES_KEPT))

    def add(self, line: str) -> None:
        match = TICK_LINE.search(line)
        if match is not None:
            self.lines.append((int(match.group(1)), line[:300]))

    def around(self, tick: int, ticks: int = AROUND_TICKS) -> list[str]:
        return [line for number, line in self.lines if abs(number - tick) <= ticks]


@dataclass(frozen=True, slots=True)
class Pressure:
    """One second's pressure: the share (0..1) of it during which some task waited for a CPU / the disk."""

    at: float  # wall clock, the end of the second
    cpu: float
    io: float


def read_pressure(root: Path = Path("/proc/pressure")) -> tuple[int, int] | None:
    """The kernel's cumulative stall microseconds ("some") for the CPU and the disk; None without PSI."""
    try:
        totals = []
        for name in ("cpu", "io"):
            first = (root / name).read_text(encoding="ascii").splitlines()[0]
            totals.append(int(first.rsplit("total=", 1)[1]))
        return totals[0], totals[1]
    except (OSError, IndexError, ValueError):
        return None


def pressure(at: float, seconds: float, before: tuple[int, int], after: tuple[int, int]) -> Pressure:
    """The pressure over ``seconds`` between two readings. Pure."""
    span = max(seconds, 1e-6) * 1e6
    cpu, io = ((after[i] - before[i]) / span for i in (0, 1))
    return Pressure(at, round(min(1.0, cpu), 3), round(min(1.0, io), 3))


@dataclass
class PressureLog:
    """Per-second pressure readings (the newest :data:`SECONDS_KEPT`)."""

    seconds: collections.deque[Pressure] = field(default_factory=lambda: collections.deque(maxlen=SECONDS_KEPT))

    def add(self, reading: Pressure) -> None:
        self.seconds.append(reading)

    def around(self, at: float, seconds: float = AROUND_SECONDS) -> list[Pressure]:
        return [p for p in self.seconds if abs(p.at - at) <= seconds]

    def report(self) -> dict[str, object]:
        if not self.seconds:
            return {"seconds": 0}
        cpu = sorted(p.cpu for p in self.seconds)
        io = sorted(p.io for p in self.seconds)
        return {"seconds": len(self.seconds), "cpu_max": cpu[-1], "cpu_p99": cpu[int(0.99 * (len(cpu) - 1))],
                "io_max": io[-1], "io_p99": io[int(0.99 * (len(io) - 1))],
                "seconds_cpu_over_half": sum(c > 0.5 for c in cpu), "seconds_io_over_half": sum(i > 0.5 for i in io)}


def short_ticks_explained(short: list[int], run_t0: float | None, interval: float, lines: TickLines,
                          pressure_log: PressureLog, hiccups: list[tuple[float, float]]) -> list[dict[str, object]]:
    """For each of the first :data:`SHOWN` short ticks: the Algorithm's lines about it and its neighbours,
    the machine's pressure and the watcher's hiccups around the time it was due. Pure."""
    out: list[dict[str, object]] = []
    for tick in short[:SHOWN]:
        entry: dict[str, object] = {"tick": tick, "algorithm_lines": lines.around(tick)}
        if run_t0 is not None:
            due = run_t0 + tick * interval
            entry["pressure_cpu_io"] = [[round(p.at - due, 1), p.cpu, p.io] for p in pressure_log.around(due)]
            entry["hiccups_s"] = [[round(start - due, 2), round(seconds, 2)] for start, seconds in hiccups
                                  if abs(start - due) <= AROUND_SECONDS]
        out.append(entry)
    return out
