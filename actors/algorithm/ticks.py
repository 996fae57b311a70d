"""Tick intake: which ticks the Algorithm follows (:class:`TickGate`, pure) and the receive loop on
the SUB socket (:class:`TickReceiver`).

A tick is *plausible* when its due time ``t0 + seq * interval`` agrees with its ``scheduled_at`` and
lies within ``limits.TICK_CLOCK_SKEW_MAX`` of our wall clock. Of the plausible ticks, the gate follows
one *stream*: a run (``t0``, ``interval``) heard at a steady *lead* (due time minus our clock when
heard: the clocks' difference and the delivery delay, steady for the real Scheduler). Anyone who can
publish on the tick socket can forge a tick (without ``--keys``), so no single tick may silence the
Algorithm:

* a higher seq of the stream is judged against the stream's *schedule*: its lead is the median of
  the leads of its last three ticks followed, so no single tick (a forged copy heard early or late)
  moves it. The next seq is followed (NEW) if heard no more than an interval (and ``LEAD_TOLERANCE``)
  early, deciding only itself; a seq past it only if heard on schedule (``early_tolerance``, under
  half an interval), since it makes the seqs it skips stale: seq + 2 sent an interval early, before
  our seq + 1, is EARLY (refused, nothing changed), as is seq + 100 50 s ahead within the skew. A late
  tick is followed (a Scheduler resumed after a pause sends the tick it missed, late) without moving
  the schedule, so a copy of a seq ours skipped, heard late, cannot make our next tick look early;
* another run is taken (NEW_RUN) at once only when the stream followed went quiet for
  ``QUIET_INTERVALS`` (a restarted Scheduler), else it is refused (FOREIGN_RUN);
* every refused tick feeds a few *candidate* streams (``CANDIDATES_MAX``, the oldest dropped): a
  candidate heard again, at a higher seq and the same lead, with the stream followed silent in
  between, is the Scheduler that keeps ticking and is followed from then on (RESYNC, or NEW_RUN for
  another run). So a clock step, a forged burst or a forged run confirmed during a gap (once it
  stops) is undone at the real Scheduler's second tick, while two Schedulers ticking side by side
  keep the one followed first;
* another run taken (NEW_RUN, either way) is *provisional* until it shows a tick on its own
  schedule (a higher seq heard at its lead, within ``min(LEAD_TOLERANCE, interval / 4)``) once the
  run it replaced has had an interval (and ``LEAD_TOLERANCE``) to tick again. Until then, the run
  it replaced takes the Algorithm back at its next tick in sequence (RETURN: a higher seq heard at its
  lead give or take an interval, as the Scheduler sends the tick it missed after a pause), so one
  forged tick taken during a gap costs no real tick, nor do forged ticks on schedule while ours
  misses one tick. Once the new run is confirmed the run left has no such right: a forger
  replaying an old run's stream cannot pull the Algorithm back after a real restart (only within
  the new run's first two intervals, where a run of its own could have been taken in the restart's
  gap anyway);
* a (run, seq) is followed at most once: the seqs followed of each recent run are kept as ranges
  (``RUNS_KEPT`` runs, ``RANGES_KEPT`` ranges each), and one of them is STALE (decided already) even
  when its stream is followed again; a seq a forged jump skipped is still decided when the real
  stream reaches it. The seq followed now, published again (the Scheduler repeats its current tick
  for subscribers that join late), is stale the same way.
"""

from __future__ import annotations

import asyncio
import bisect
import collections
import enum
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

import zmq
import zmq.asyncio

from actors.algorithm.dispatch import MAX_CARRIED
from transport import limits
from transport.logs import FrameDecoder, RateLimitedLog
from transport.protocol import Tick
from transport.sockets import TICK_HWM

log = logging.getLogger("algorithm")

SCHEDULED_AT_TOLERANCE: Final = 0.001  # seconds: the Scheduler computes both the same way
QUIET_INTERVALS: Final = 1.5  # our run silent this many intervals: another run may take over
STALL_INTERVALS: Final = 3.0  # no new tick for this many intervals: warn
FIRST_TICK_WAIT: Final = 10.0  # seconds without any tick at start before we warn
# How far the lead of one stream may wander between its ticks: the delivery delay's jitter on a loaded
# machine (a GC pause, a busy loop). Larger only makes a forged stream easier to take for a real one.
LEAD_TOLERANCE: Final = 0.5
CANDIDATES_MAX: Final = 8  # streams heard but not followed, remembered to find the one that keeps ticking
RUNS_KEPT: Final = 16  # runs whose followed seqs are remembered (a seq is followed once)
RANGES_KEPT: Final = 64  # ranges of followed seqs per run (the lowest dropped: long past)
LEADS_KEPT: Final = 3  # leads of the stream's last ticks followed: their median is its schedule

Run = tuple[float, float]  # (t0, interval)


class Verdict(enum.Enum):
    NEW = "new"  # the next tick of the stream we follow (or the very first tick)
    NEW_RUN = "new_run"  # the first tick of another Scheduler run: followed from now on
    RESYNC = "resync"  # the stream that keeps ticking, heard at another lead: followed from now on
    STALE = "stale"  # a seq we have followed already
    EARLY = "early"  # a higher seq heard before its time on the stream's schedule (see TickGate.judge)
    IMPLAUSIBLE = "implausible"  # far from our clock, or inconsistent
    FOREIGN_RUN = "foreign_run"  # another run while ours is alive (two Schedulers?)
    RETURN = "return"  # the run left for a provisional one, heard again in sequence: followed again

    @property
    def accepted(self) -> bool:
        return self in (Verdict.NEW, Verdict.NEW_RUN, Verdict.RESYNC, Verdict.RETURN)


class Standing(enum.Enum):
    """How far the run followed is trusted."""

    CONFIRMED = "confirmed"  # the first run heard, one that ticked on its own schedule, or one returned to
    PROVISIONAL = "provisional"  # taken at one tick: the run it replaced may take the Algorithm back


@dataclass(slots=True)
class Candidate:
    """A stream heard but not followed: its run, last seq and lead, and the followed stream's advance
    count when it was last heard (unchanged at its next tick: the followed one was silent)."""

    run: Run
    seq: int
    lead: float
    advances: int


class SeqRanges:
    """The seqs followed of one run, as sorted disjoint ranges [first, last] (at most ``RANGES_KEPT``)."""

    __slots__ = ("_ranges",)

    def __init__(self) -> None:
        self._ranges: list[list[int]] = []

    def __contains__(self, seq: int) -> bool:
        i = bisect.bisect_right(self._ranges, [seq, math.inf]) - 1  # the last range starting at or below
        return i >= 0 and self._ranges[i][1] >= seq

    def __len__(self) -> int:
        return len(self._ranges)

    def add(self, seq: int) -> None:
        ranges = self._ranges
        i = bisect.bisect_right(ranges, [seq, math.inf])
        if i and ranges[i - 1][1] >= seq - 1:  # extends (or is in) the range before
            ranges[i - 1][1] = max(ranges[i - 1][1], seq)
            i -= 1
        else:
            ranges.insert(i, [seq, seq])
        if i + 1 < len(ranges) and ranges[i + 1][0] <= ranges[i][1] + 1:  # now touches the next one
            ranges[i][1] = max(ranges[i][1], ranges.pop(i + 1)[1])
        if len(ranges) > RANGES_KEPT:
            del ranges[0]


def early_tolerance(interval: float) -> float:
    """How early a tick that skips seqs may be heard against the stream's schedule: the jitter of its
    delivery (``LEAD_TOLERANCE``), but under half an interval, so it is never heard before the real
    ticks it skips."""
    return min(LEAD_TOLERANCE, interval / 2)


class TickGate:
    """Judges each tick against the stream followed so far. Pure: ``now`` is passed in."""

    def __init__(self, skew: float = limits.TICK_CLOCK_SKEW_MAX) -> None:
        self.skew = skew
        self.run: Run | None = None  # (t0, interval) of the run followed
        self.last_seq = -1  # the followed stream's last seq
        self.lead = 0.0  # the followed stream's lead (due time minus our clock): the median of ``_leads``
        self._leads: collections.deque[float] = collections.deque(maxlen=LEADS_KEPT)  # of its last ticks
        self.advanced_at = -math.inf  # our wall clock when the followed stream last advanced
        self.advances = 0  # how many times it did
        self.candidates: collections.deque[Candidate] = collections.deque(maxlen=CANDIDATES_MAX)
        self.previous: Candidate | None = None  # the stream followed before the last change of stream
        self.standing = Standing.CONFIRMED  # PROVISIONAL: ``previous`` returns at its next tick in sequence
        self.taken_at = -math.inf  # our wall clock when the run followed was taken (NEW_RUN)
        self._followed: collections.OrderedDict[Run, SeqRanges] = collections.OrderedDict()  # most recent last

    def plausible(self, tick: Tick, now: float) -> bool:
        due = tick.t0 + tick.seq * tick.interval
        return (math.isfinite(due) and abs(due - tick.scheduled_at) <= SCHEDULED_AT_TOLERANCE
                and abs(due - now) <= max(self.skew, 2 * tick.interval))

    def judge(self, tick: Tick, now: float) -> Verdict:
        if not self.plausible(tick, now):
            return Verdict.IMPLAUSIBLE
        run = (tick.t0, tick.interval)
        lead = tick.t0 + tick.seq * tick.interval - now
        if self.run is None:
            return self._follow(run, tick.seq, lead, now, Verdict.NEW)
        if run == self.run:
            if tick.seq <= self.last_seq:
                return self._refuse(run, tick.seq, lead, now, Verdict.STALE)
            if self._early(tick.seq, tick.interval, lead):
                return self._refuse(run, tick.seq, lead, now, Verdict.EARLY)
            if self.standing is Standing.PROVISIONAL and self._confirms(tick.interval, lead, now):
                self.standing = Standing.CONFIRMED  # the run left loses its return
            return self._follow(run, tick.seq, lead, now, Verdict.NEW)
        if self._returns(run, tick.seq, lead):
            return self._follow(run, tick.seq, lead, now, Verdict.RETURN)
        if now - self.advanced_at >= QUIET_INTERVALS * self.run[1]:
            return self._follow(run, tick.seq, lead, now, Verdict.NEW_RUN)
        return self._refuse(run, tick.seq, lead, now, Verdict.FOREIGN_RUN)

    def _early(self, seq: int, interval: float, lead: float) -> bool:
        """A higher seq of the stream followed, heard before its time on the stream's schedule: the
        next seq more than an interval early (a Scheduler's tick is never early: only the schedule's
        jitter, or our clock stepped back); a seq past it more than ``early_tolerance``, as followed it
        would make the seqs it skips stale before ours are heard."""
        allowed = interval + LEAD_TOLERANCE if seq == self.last_seq + 1 else early_tolerance(interval)
        return lead - self.lead > allowed

    def _confirms(self, interval: float, lead: float, now: float) -> bool:
        """A higher seq of the provisional run: on its own schedule (heard at its lead, within a quarter
        of its interval), and the run left has had its chance to tick again since (the shorter of the
        two intervals, plus the jitter): so a forger's run shown on schedule while ours missed just one
        tick is not confirmed before ours is heard again."""
        left = self.previous
        waited = LEAD_TOLERANCE + (interval if left is None else min(interval, left.run[1]))
        return abs(lead - self.lead) <= min(LEAD_TOLERANCE, interval / 4) and now - self.taken_at >= waited

    def _returns(self, run: Run, seq: int, lead: float) -> bool:
        """The run left for a provisional one, at its next tick in sequence: a higher seq, heard at its
        lead give or take an interval (the bound of a NEW tick; a Scheduler resumed after a pause sends
        the tick it missed at once, late by up to an interval)."""
        left = self.previous
        return (self.standing is Standing.PROVISIONAL and left is not None and run == left.run
                and seq > left.seq and abs(lead - left.lead) <= run[1] + LEAD_TOLERANCE)

    def _refuse(self, run: Run, seq: int, lead: float, now: float, verdict: Verdict) -> Verdict:
        kept = self.candidates if self.previous is None else (self.previous, *self.candidates)
        for candidate in kept:
            if candidate.run != run:
                continue
            if seq == candidate.seq:
                return verdict  # its tick again (the Scheduler repeats each one): nothing new
            if seq > candidate.seq and abs(candidate.lead - lead) <= LEAD_TOLERANCE:
                if candidate.advances == self.advances:  # heard twice, ours silent in between
                    taken = Verdict.NEW_RUN if run != self.run else Verdict.RESYNC
                    self.candidates.clear()
                    return self._follow(run, seq, lead, now, taken)
                candidate.seq, candidate.lead, candidate.advances = seq, lead, self.advances
                return verdict
        self.candidates.append(Candidate(run, seq, lead, self.advances))  # the oldest falls out
        return verdict

    def _follow(self, run: Run, seq: int, lead: float, now: float, verdict: Verdict) -> Verdict:
        """Make (run, seq, lead) the stream followed; ``verdict`` unless that seq was followed already."""
        if self.run is not None and (verdict is not Verdict.NEW or run != self.run):
            # The stream left keeps a slot no flood of forged ticks can take: heard twice with the one
            # taken silent in between, it is followed again.
            self.previous = Candidate(self.run, self.last_seq, self.lead, self.advances)
        if verdict is Verdict.NEW_RUN and self.run is not None:
            self.standing, self.taken_at = Standing.PROVISIONAL, now
        elif verdict is Verdict.RETURN:
            self.standing = Standing.CONFIRMED  # it was followed before: the provisional run left has no return
        if verdict is not Verdict.NEW or run != self.run:
            self._leads.clear()
            self._leads.append(lead)  # a new schedule: its first tick counts twice, so one more tick
            self._leads.append(lead)  # heard off schedule cannot move the median
        elif lead >= self.lead - LEAD_TOLERANCE:
            self._leads.append(lead)
        # else a late tick: our delay (a loop held up, ticks queued), not the schedule's. Were it counted,
        # the queued ticks heard after it, less late, would look early and be refused.
        self.lead = sorted(self._leads)[len(self._leads) // 2]
        self.run, self.last_seq, self.advanced_at = run, seq, now
        self.advances += 1
        followed = self._followed.pop(run, None) or SeqRanges()
        self._followed[run] = followed  # the most recently followed run last
        if len(self._followed) > RUNS_KEPT:
            self._followed.popitem(last=False)
        if seq in followed:
            return Verdict.STALE
        followed.add(seq)
        return verdict


class TickReceiver:
    """Receives ticks, judges them, hands the newest accepted one of each batch to ``on_tick``, after
    the ticks of its run right before it (a loop held up past a tick finds several queued: each is
    decided, late, up to what the dispatcher carries; older ones are superseded).

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
            "foreign_run_ticks": 0, "early_ticks": 0, "new_runs": 0, "resyncs": 0, "returns": 0, "tick_stalls": 0,
            "last_tick": -1,
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
        accepted: list[tuple[Tick, Verdict]] = []
        repeated: Tick | None = None
        now = self._clock()
        for frame in frames:
            tick = self._frames.decode_as(frame, Tick)
            if tick is None:
                continue
            verdict = self._gate.judge(tick, now)
            if verdict.accepted:
                self._switched(tick, verdict, now)  # counted even if a newer tick of this batch is served
                accepted.append((tick, verdict))
            else:
                self._refused(tick, verdict, now)
                if self._is_repeat(tick, verdict):
                    repeated = tick
        if not accepted and repeated is not None and self._on_repeat is not None:
            self._on_repeat(repeated)
        served = _in_sequence(accepted)
        # We fell behind (the loop held up past a tick): the newest tick is served, and the ticks of its
        # run just before it, in order, as many as the Algorithm can carry; the rest is superseded.
        self.counters["superseded_ticks"] += len(accepted) - len(served)
        for tick, verdict in served:
            self._refused_since = 0
            self.counters["ticks"] += 1
            self.counters["last_tick"] = tick.seq
            self._on_tick(tick, verdict)

    def _switched(self, tick: Tick, verdict: Verdict, now: float) -> None:
        """Count and log (rate-limited: forged ticks could switch runs many times a second) a change of
        the stream followed."""
        if verdict is Verdict.RESYNC:
            self.counters["resyncs"] += 1
            self._log.warning("resync", "following the ticks that keep coming: seq %d, due %.3fs from our clock "
                              "(a clock step, or forged ticks before?)", tick.seq,
                              tick.t0 + tick.seq * tick.interval - now)
        elif verdict is Verdict.RETURN:
            self.counters["returns"] += 1
            self._log.warning("return", "following again the run left (t0=%.3f) at seq %d: the run taken "
                              "instead showed no tick on its own schedule (forged?)", tick.t0, tick.seq)
        elif verdict is Verdict.NEW_RUN:
            self.counters["new_runs"] += 1
            self._log.warning("new_run", "following a new Scheduler run: t0=%.3f interval=%ss, from seq %d",
                              tick.t0, tick.interval, tick.seq)

    def _is_repeat(self, tick: Tick, verdict: Verdict) -> bool:
        """The tick last handed on, heard again (the Scheduler repeats its current tick)."""
        return (verdict is Verdict.STALE and tick.seq == self.counters["last_tick"]
                and self._gate.run == (tick.t0, tick.interval))

    def _refused(self, tick: Tick, verdict: Verdict, now: float) -> None:
        self._refused_since += 1
        if verdict is Verdict.STALE:
            self.counters["stale_ticks"] += 1  # already followed: a (book, strategy, tick) is decided once
            if not self._is_repeat(tick, verdict):
                self._log.warning("stale_tick", "refused tick seq=%d (t0=%.3f): followed already (now at seq %d)",
                                  tick.seq, tick.t0, self._gate.last_seq)
        elif verdict is Verdict.EARLY:
            self.counters["early_ticks"] += 1
            self._log.warning("early_tick", "refused tick seq=%d: due %.3fs from our clock, early on the schedule of "
                              "the run followed (last seq %d; its ticks due %.3fs from our clock): forged?", tick.seq,
                              tick.t0 + tick.seq * tick.interval - now, self._gate.last_seq, self._gate.lead)
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
                              self._clock() - self._gate.advanced_at, self._gate.last_seq,
                              self._refused_since)


def _in_sequence(accepted: list[tuple[Tick, Verdict]]) -> list[tuple[Tick, Verdict]]:
    """The newest accepted tick and those of its run right before it, in sequence (at most
    ``MAX_CARRIED`` of them: what the dispatcher can carry). Pure."""
    if not accepted:
        return []
    start = len(accepted) - 1
    while (start > 0 and len(accepted) - start <= MAX_CARRIED and accepted[start - 1][0].t0 == accepted[start][0].t0
           and accepted[start - 1][0].seq == accepted[start][0].seq - 1):
        start -= 1
    return accepted[start:]
