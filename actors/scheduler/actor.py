"""The Scheduler: publishes a Tick every ``interval`` seconds on a ZeroMQ PUB socket.

The schedule is absolute -- tick ``seq`` is due at ``t0 + seq * interval`` -- so sleeping late never
accumulates into drift, and a restarted Scheduler given the same ``t0`` continues the sequence: it
skips the ticks it missed instead of replaying them in a burst.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass

import zmq.asyncio

from actors import runtime
from actors.kinds import SCHEDULER
from actors.scheduler.options import SchedulerOptions
from transport import protocol
from transport.protocol import Tick
from transport.sockets import Sockets

log = logging.getLogger("scheduler")


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
        self.schedule = Schedule(options.t0 if options.t0 is not None else time.time(), options.tick)
        self._counters = {"ticks_sent": 0, "ticks_skipped": 0, "last_seq": 0}

    @property
    def counters(self) -> dict[str, int]:
        return self._counters

    async def run(self, stop: asyncio.Event) -> None:
        sock = self._sockets.pub(self.endpoint)
        schedule = self.schedule
        log.info("publishing ticks every %ss on %s (t0=%.3f)", schedule.interval, self.endpoint, schedule.t0)
        seq = schedule.next_seq(time.time())
        try:
            while not stop.is_set():
                delay = schedule.due(seq) - time.time()
                if delay > 0:
                    try:
                        async with asyncio.timeout(delay):
                            await stop.wait()
                        break
                    except TimeoutError:
                        pass
                now = time.time()
                late_by = schedule.next_seq(now) - 1 - seq
                if late_by > 0:  # the loop was held up past whole intervals (e.g. SIGSTOP): skip them
                    self._counters["ticks_skipped"] += late_by
                    log.warning("skipping %d missed tick(s) after tick %d", late_by, seq)
                    seq += late_by
                await sock.send(protocol.encode(schedule.tick(seq, now)))
                self._counters["ticks_sent"] += 1
                self._counters["last_seq"] = seq
                seq += 1
        finally:
            sock.close(linger=0)


def main(argv: Sequence[str] | None = None, liveness: runtime.Liveness | None = None) -> int:
    options, runtime_options = runtime.parse_options(SCHEDULER, SchedulerOptions, __doc__, argv)
    return runtime.run_actor(SCHEDULER.name, lambda sockets: Scheduler(sockets, options), runtime_options, liveness)
