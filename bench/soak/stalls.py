"""Stalls of the whole machine during a soak, and the ticks they excuse.

A virtual machine paused by its host (a snapshot: the kernel then logs "crng reseeded due to virtual
machine fork"), or one starved of its CPUs, freezes every process at once: the Scheduler's loop is held
up past whole intervals and skips the ticks it could not send (``ticks_skipped``), and no process of the
system could have decided them. The soak's own watcher thread, outside the system, sees such a stall
as a gap between two of its short sleeps. The ticks due during a stall, and the one after it (the
catch-up), are not judged; the report lists each stall, so an excused tick is never a silent one.

A gap of the watcher alone (the soak's own process starved) is a stall too: it is the machine's
load, never the system's, that holds a thread of another process back for a whole second.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from bench.soak.diagnose import PressureLog, pressure, read_pressure

STEP: Final = 0.05  # seconds between two looks at the clock
STALL_MIN: Final = 1.0  # a gap at least this long (a whole default tick) is a stall
HICCUP_MIN: Final = 0.25  # a shorter gap at least this long is a hiccup: not excused, shown beside a short tick
KEPT: Final = 1000  # stalls (and hiccups) remembered, at most (more are counted)
PRESSURE_EVERY: Final = 1.0  # seconds between two readings of the kernel's pressure-stall information


@dataclass(frozen=True, slots=True)
class Stall:
    start: float  # wall clock: the last look before the gap
    end: float  # the first look after it

    @property
    def seconds(self) -> float:
        return self.end - self.start


def excused_ticks(stalls: list[Stall], t0: float, interval: float, first: int, last: int) -> set[int]:
    """The ticks in ``first..last`` due during a stall or within one interval after it. Pure."""
    excused: set[int] = set()
    for stall in stalls:
        low = max(first, int((stall.start - t0) // interval) + 1)  # the first tick due after the last look
        high = min(last, int((stall.end + interval - t0) // interval))
        excused.update(range(low, high + 1))
    return excused


def gap(wall: float, mono: float, now_wall: float, now_mono: float, step: float, minimum: float) -> Stall | None:
    """The stall between two looks ``step`` apart, if they were at least ``minimum`` further apart. Either
    clock may hide a pause (a guest's monotonic clock may not count the time its host held it; the wall
    clock is stepped at resume): the larger gap is the stall. Pure."""
    if max(now_wall - wall, now_mono - mono) - step < minimum:
        return None
    return Stall(wall, max(now_wall, wall + (now_mono - mono)))


class StallWatch:
    """A daemon thread that looks at the clock every :data:`STEP` seconds and keeps the gaps."""

    def __init__(self, clock: Callable[[], float] = time.time, monotonic: Callable[[], float] = time.monotonic,
                 step: float = STEP, minimum: float = STALL_MIN) -> None:
        self._clock, self._monotonic = clock, monotonic
        self._step, self._minimum = step, minimum
        self.stalls: list[Stall] = []
        self.more = 0  # stalls past KEPT
        self.hiccups: list[tuple[float, float]] = []  # (start, seconds) of gaps HICCUP_MIN..minimum: <= KEPT
        self.more_hiccups = 0
        self.pressure = PressureLog()  # the machine's load, each second
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="soak-stalls", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> list[Stall]:
        self._stop.set()
        self._thread.join(timeout=5)
        return self.stalls

    def _run(self) -> None:
        wall, mono = self._clock(), self._monotonic()
        psi, psi_at = read_pressure(), mono
        while not self._stop.wait(self._step):
            now_wall, now_mono = self._clock(), self._monotonic()
            stall = gap(wall, mono, now_wall, now_mono, self._step, min(self._minimum, HICCUP_MIN))
            if stall is not None and stall.seconds - self._step >= self._minimum:
                self.note(stall)
            elif stall is not None:
                self.note_hiccup(stall)
            if psi is not None and now_mono - psi_at >= PRESSURE_EVERY:
                reading = read_pressure()
                if reading is not None:
                    self.pressure.add(pressure(now_wall, now_mono - psi_at, psi, reading))
                psi, psi_at = reading, now_mono
            wall, mono = now_wall, now_mono

    def note(self, stall: Stall) -> None:
        if len(self.stalls) < KEPT:
            self.stalls.append(stall)
        else:
            self.more += 1

    def note_hiccup(self, stall: Stall) -> None:
        if len(self.hiccups) < KEPT:
            self.hiccups.append((stall.start, stall.seconds))
        else:
            self.more_hiccups += 1

    def report(self) -> dict[str, object]:
        return {"count": len(self.stalls) + self.more,
                "hiccups": len(self.hiccups) + self.more_hiccups,
                "longest_hiccup_s": round(max((seconds for _, seconds in self.hiccups), default=0.0), 2),
                "pressure": self.pressure.report(),
                "longest_s": round(max((s.seconds for s in self.stalls), default=0.0), 1),
                "first": [{"at": time.strftime("%H:%M:%S", time.gmtime(s.start)), "seconds": round(s.seconds, 1)}
                          for s in self.stalls[:10]]}
