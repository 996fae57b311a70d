"""Tick intake: which ticks the Algorithm follows (:class:`TickGate`, pure) and the receive loop on
the SUB socket (:class:`TickReceiver`).

A tick is followed when it is *plausible* -- its due time ``t0 + seq * interval`` agrees with its
``scheduled_at`` and lies within ``limits.TICK_CLOCK_SKEW_MAX`` of our wall clock -- and *new*: a
higher seq of the run we follow, or the first tick of another run (``t0``, ``interval``) once ours has
gone quiet. So a restarted Scheduler's run (new t0, seq from 0) is followed at once, while one forged
tick with seq 2^63-1 is refused and counted instead of making every later tick look stale. The seq
followed now, published again (the Scheduler repeats its current tick for subscribers that join late),
is stale like any seq followed already: counted, changing nothing.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import math
import time
from collections.abc import Callable
from typing import Final

import zmq
import zmq.asyncio

from transport import limits
from transport.logs import FrameDecoder, RateLimitedLog
from transport.protocol import Tick
from transport.sockets import TICK_HWM

log = logging.getLogger("algorithm")

SCHEDULED_AT_TOLERANCE: Final = 0.001  # seconds: the Scheduler computes both the same way
QUIET_INTERVALS: Final = 1.5  # our run silent this many intervals: another run may take over
STALL_INTERVALS: Final = 3.0  # no new tick for this many intervals: warn
FIRST_TICK_WAIT: Final = 10.0  # seconds without any tick at start before we warn


class Verdict(enum.Enum):
    NEW = "new"  # the next tick of the run we follow (or the very first tick)
    NEW_RUN = "new_run"  # the first tick of another Scheduler run: followed from now on
    STALE = "stale"  # a seq we have followed already
    IMPLAUSIBLE = "implausible"  # far from our clock, or inconsistent
    FOREIGN_RUN = "foreign_run"  # another run while ours is alive (two Schedulers?)

    @property
    def accepted(self) -> bool:
        return self in (Verdict.NEW, Verdict.NEW_RUN)


class TickGate:
    """Judges each tick against the run followed so far. Pure: ``now`` is passed in."""

    def __init__(self, skew: float = limits.TICK_CLOCK_SKEW_MAX) -> None:
        self.skew = skew
        self.run: tuple[float, float] | None = None  # (t0, interval) of the run followed
        self.last_seq = -1
        self.last_accepted_at = -math.inf  # our wall clock when the last tick was followed

    def plausible(self, tick: Tick, now: float) -> bool:
        due = tick.t0 + tick.seq * tick.interval
        return (math.isfinite(due) and abs(due - tick.scheduled_at) <= SCHEDULED_AT_TOLERANCE
                and abs(due - now) <= max(self.skew, 2 * tick.interval))

    def judge(self, tick: Tick, now: float) -> Verdict:
        if not self.plausible(tick, now):
            return Verdict.IMPLAUSIBLE
        run = (tick.t0, tick.interval)
        verdict = Verdict.NEW
        if run != self.run:
            if self.run is not None:
                if now - self.last_accepted_at < QUIET_INTERVALS * self.run[1]:
                    return Verdict.FOREIGN_RUN
                verdict = Verdict.NEW_RUN
            self.run = run
        elif tick.seq <= self.last_seq:
            return Verdict.STALE
        self.last_seq = tick.seq
        self.last_accepted_at = now
        return verdict


class TickReceiver:
    """Receives ticks, judges them, hands the newest accepted one of each batch to ``on_tick``.

    The loop takes at most ``TICK_HWM`` frames per turn and then yields to the event loop, so a flood
    of ticks (valid or not) cannot starve the decisions or the heartbeat. Silence is watched: with no
    new tick for ``STALL_INTERVALS`` intervals it warns (rate-limited) and counts ``tick_stalls``.
    """

    def __init__(self, gate: TickGate, on_tick: Callable[[Tick, Verdict], None],
                 clock: Callable[[], float] = time.time, *,
                 on_repeat: Callable[[Tick], None] | None = None) -> None:
        """``on_repeat``: called with the tick followed now when it comes again (the Scheduler repeats
        its current tick), at most once per batch of frames."""
        self._gate = gate
        self._on_tick = on_tick
        self._on_repeat = on_repeat
        self._clock = clock
        self._log = RateLimitedLog(log)
        self.counters: dict[str, int] = {
            "ticks": 0, "stale_ticks": 0, "superseded_ticks": 0, "bad_frames": 0, "implausible_ticks": 0,
            "foreign_run_ticks": 0, "new_runs": 0, "tick_stalls": 0, "last_tick": -1,
        }
        self._frames = FrameDecoder(self.counters, "bad_frames", self._log, "bad_tick",
                                    "rejected a frame on the tick socket")
        self._refused_since = 0  # ticks refused since the last one followed (for the stall warning)

    def _quiet_limit(self) -> float:
        run = self._gate.run
        return FIRST_TICK_WAIT if run is None else max(1.0, STALL_INTERVALS * run[1])

    async def run(self, sub: zmq.asyncio.Socket) -> None:
        while True:
            try:
                async with asyncio.timeout(self._quiet_limit()):
                    frames = [await sub.recv()]
            except TimeoutError:
                self._stalled()
                continue
            for _ in range(TICK_HWM):
                try:
                    frames.append(await sub.recv(zmq.NOBLOCK))
                except zmq.Again:
                    break
            self.handle(frames)
            await asyncio.sleep(0)  # recv() returns done futures while frames queue: yield at the bound

    def handle(self, frames: list[bytes]) -> None:
        newest: tuple[Tick, Verdict] | None = None
        repeated: Tick | None = None
        now = self._clock()
        for frame in frames:
            tick = self._frames.decode_as(frame, Tick)
            if tick is None:
                continue
            verdict = self._gate.judge(tick, now)
            if verdict.accepted:
                if newest is not None:
                    self.counters["superseded_ticks"] += 1  # we fell behind: serve the present
                newest = (tick, verdict)
            else:
                self._refused(tick, verdict, now)
                if (verdict is Verdict.STALE and tick.seq == self._gate.last_seq
                        and self._gate.run == (tick.t0, tick.interval)):
                    repeated = tick
        if newest is None and repeated is not None and self._on_repeat is not None:
            self._on_repeat(repeated)
        if newest is not None:
            tick, verdict = newest
            self._refused_since = 0
            self.counters["ticks"] += 1
            self.counters["last_tick"] = tick.seq
            if verdict is Verdict.NEW_RUN:
                self.counters["new_runs"] += 1
                # Rate-limited: forged ticks of ever new runs could repeat it many times a second.
                self._log.warning("new_run", "following a new Scheduler run: t0=%.3f interval=%ss, from seq %d",
                                  tick.t0, tick.interval, tick.seq)
            self._on_tick(tick, verdict)

    def _refused(self, tick: Tick, verdict: Verdict, now: float) -> None:
        self._refused_since += 1
        if verdict is Verdict.STALE:
            self.counters["stale_ticks"] += 1  # already followed: a (book, strategy, tick) is decided once
        elif verdict is Verdict.IMPLAUSIBLE:
            self.counters["implausible_ticks"] += 1
            self._log.warning("implausible_tick", "refused tick seq=%d: due at t0+seq*interval=%.6g, "
                              "scheduled_at=%.6g, our clock %.3f (allowed skew %ss)", tick.seq,
                              tick.t0 + tick.seq * tick.interval, tick.scheduled_at, now, self._gate.skew)
        else:
            self.counters["foreign_run_ticks"] += 1
            self._log.warning("foreign_run", "refused tick seq=%d of another run (t0=%.3f) while the run "
                              "followed (t0=%.3f) is alive: two Schedulers?", tick.seq, tick.t0,
                              self._gate.run[0] if self._gate.run else math.nan)

    def _stalled(self) -> None:
        self.counters["tick_stalls"] += 1
        if self._gate.run is None:
            self._log.warning("tick_stall", "no tick received for %.0fs: is the Scheduler running?",
                              FIRST_TICK_WAIT)
        else:
            self._log.warning("tick_stall", "no new tick for %.1fs (last seq %d; %d tick(s) refused since)",
                              self._clock() - self._gate.last_accepted_at, self._gate.last_seq,
                              self._refused_since)
