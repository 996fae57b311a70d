"""The Scheduler: publishes a Tick every ``interval`` seconds on a ZeroMQ PUB socket.

The schedule is absolute -- tick ``seq`` is due at ``t0 + seq * interval`` -- so sleeping late never
accumulates into drift, and a restarted Scheduler given the same ``t0`` continues the sequence: it
skips the ticks it missed instead of replaying them in a burst -- but a run's tick 0 is always sent,
late if this Scheduler started after its t0 (a standalone Scheduler's run starts when it does).

A PUB socket drops what it sends before a subscriber has joined (ZeroMQ's "slow joiner"), and a
subscriber that joins late -- an Algorithm started after the Scheduler, or restarted mid-run -- would
wait a whole interval for its first tick (and a standalone Scheduler's tick 0, sent the moment it
binds, would reach nobody). So the current tick is published again (same seq, same ``scheduled_at``, a
new ``sent_at``) every :func:`repeat_every` seconds until the next one is due; a receiver that has
followed that seq already ignores it.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Final

import zmq.asyncio

from actors import runtime
from actors.kinds import SCHEDULER
from actors.probes import READY, Readiness, not_ready
from actors.scheduler.options import SchedulerOptions
from transport import protocol
from transport.protocol import Tick
from transport.sockets import Sockets

log = logging.getLogger("scheduler")

REPEAT_MAX: Final = 1.0  # seconds: the current tick is published again at least this often (see the docstring)
REPEAT_MIN_INTERVAL: Final = 0.1  # seconds: faster ticks are not repeated (the next one comes soon enough)


def repeat_every(interval: float) -> float | None:
    """Seconds between publications of the current tick again; None: not repeated."""
    return None if interval < REPEAT_MIN_INTERVAL else min(REPEAT_MAX, interval / 2)


def next_seq(t0: float, interval: float, now: float) -> int:
    """The first tick not yet due at ``now``: ticks already past are skipped, never replayed."""
    if now <= t0:
        return 0
    return math.floor((now - t0) / interval) + 1


@dataclass(frozen=True, slots=True)
class Schedule:
    """A run's timetable: tick ``seq`` is due at ``t0 + seq * interval``."""

    t0: float
    interval: float

    def due(self, seq: int) -> float:
        return self.t0 + seq * self.interval

    def next_seq(self, now: float) -> int:
        return next_seq(self.t0, self.interval, now)

    def tick(self, seq: int, sent_at: float) -> Tick:
        return Tick(seq, self.due(seq), sent_at, self.interval, self.t0)


class Scheduler:
    name = SCHEDULER.name

    def __init__(self, sockets: Sockets[zmq.asyncio.Socket], options: SchedulerOptions) -> None:
        self._sockets = sockets
        self.endpoint = options.ticks_endpoint
        self._t0 = options.t0  # None: the run starts when run() does (tick 0 at once)
        self.schedule = Schedule(options.t0 if options.t0 is not None else time.time(), options.tick)
        self._counters = {"ticks_sent": 0, "ticks_skipped": 0, "ticks_repeated": 0, "last_seq": 0}
        self._bound = False

    def readiness(self) -> Readiness:
        """Ready once its PUB socket is bound: subscribers may connect and get the next tick."""
        return READY if self._bound else not_ready(f"not yet bound to {self.endpoint}")

    @property
    def counters(self) -> dict[str, int]:
        return self._counters

    async def run(self, stop: asyncio.Event) -> None:
        sock = self._sockets.pub(self.endpoint)
        self._bound = True
        now = time.time()
        if self._t0 is None:
            self.schedule = Schedule(now, self.schedule.interval)
        schedule = self.schedule
        log.info("publishing ticks every %ss on %s (t0=%.3f)", schedule.interval, self.endpoint, schedule.t0)
        # The next tick not yet due -- except a run's tick 0, sent late rather than never when this
        # Scheduler started after its t0 (a loaded machine: the launcher fixed t0 before spawning it).
        seq = schedule.next_seq(now)
        if seq == 1:
            seq = 0
        every = repeat_every(schedule.interval)
        current: Tick | None = None  # the last tick sent, and when it was last sent
        sent_at = 0.0
        try:
            while not stop.is_set():
                due = schedule.due(seq)
                repeat = current is not None and every is not None and sent_at + every < due
                wake = sent_at + every if repeat and every is not None else due
                if not await _sleep_until(wake, stop):
                    break
                now = time.time()
                if repeat and current is not None and now < due:
                    await sock.send(protocol.encode(replace(current, sent_at=now)))
                    self._counters["ticks_repeated"] += 1
                    sent_at = now
                    continue
                late_by = schedule.next_seq(now) - 1 - seq
                if late_by > 0:  # the loop was held up past whole intervals (e.g. SIGSTOP): skip them
                    self._counters["ticks_skipped"] += late_by
                    log.warning("skipping %d missed tick(s) after tick %d", late_by, seq)
                    seq += late_by
                current, sent_at = schedule.tick(seq, now), now
                await sock.send(protocol.encode(current))
                self._counters["ticks_sent"] += 1
                self._counters["last_seq"] = seq
                seq += 1
        finally:
            sock.close(linger=0)


async def _sleep_until(wall: float, stop: asyncio.Event) -> bool:
    """Wait until wall-clock time ``wall``; False if ``stop`` is set first."""
    delay = wall - time.time()
    if delay > 0:
        try:
            async with asyncio.timeout(delay):
                await stop.wait()
            return False
        except TimeoutError:
            pass
    return not stop.is_set()


def main(argv: Sequence[str] | None = None, liveness: runtime.Liveness | None = None) -> int:
    options, runtime_options = runtime.parse_options(SCHEDULER, SchedulerOptions, __doc__, argv)
    return runtime.run_actor(SCHEDULER.name, lambda sockets: Scheduler(sockets, options), runtime_options, liveness)
