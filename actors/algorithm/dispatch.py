"""Which pair to start next, for which tick. Pure: no I/O, no clock.

Every pair has at most one decision in flight and is decided at most once per tick. Each accepted
tick is a new *generation*; a pair is started for the newest generation only, and the :class:`Work`
it gets carries that tick:

* a tick's pairs are handed out by a scan over the pair table, a few at a time (:meth:`take`), so a
  tick costs O(1) when it arrives whatever the number of pairs;
* a pair still busy with an older tick when the scan reaches it is marked *wanted*: the moment it
  finishes it goes to the front (:meth:`finish`), so a pair that frees up late still decides for the
  newest tick instead of sitting the whole tick out (which halved throughput under slight overload);
* when a tick arrives before the previous scan has finished (overload), the scan goes on from where
  it stopped: the pairs the old tick could not reach come first, for the newest tick, so every pair
  gets its turn in round-robin order; after a finished scan the next one starts at a rotating place,
  so no book is always last;
* a *blocked* pair (paused in the config, or held: dropped by a reload, waiting for its last price)
  is passed over, a paused one counted in :attr:`paused`; the table may grow (a reload adding pairs)
  but never shrinks;
* a pair skipped because a peer did not answer (the DataManager, the APIServer: still starting, or
  restarting) is started again for the same tick when the Scheduler repeats it (:meth:`retry_skipped`);
* a pair the Ledger says was decided for this very tick (run and seq) before a restart is passed over,
  counted in :attr:`decided_before`: a restarted worker never decides a (pair, run, tick) twice.

The dispatch state of a pair lives in its :class:`PairRecord` (``started``, ``wanted``, ``work``).
"""

from __future__ import annotations

import collections
from dataclasses import dataclass

from actors.algorithm.pairs import NOT_BLOCKED, PAUSED, PairRecord, PairTable, Work
from transport.protocol import Tick

_ROTATION_STEP = 7919  # a prime: successive ticks start far apart in the pair list


@dataclass(frozen=True, slots=True)
class NewTick:
    """What a tick found when it arrived: work the previous tick could not do in time."""

    overruns: int  # pairs still in flight (those busy with an older tick decide the newest once free)
    unstarted: int  # pairs never started for the previous tick: exactly the pairs that missed it


class Dispatcher:
    def __init__(self, table: PairTable) -> None:
        self._table = table
        self.generation = 0  # accepted ticks so far: grows across Scheduler runs, unlike seq
        self.tick: Tick | None = None  # the newest tick: what pairs are started for
        self.paused = 0  # pair-ticks passed over because the pair was paused
        self.decided_before = 0  # pair-ticks passed over: decided before a restart (the Ledger said)
        self.busy = 0  # pairs with a decision in flight
        self._late: collections.deque[PairRecord] = collections.deque()  # freed wanted pairs: <= pairs
        self._retry: list[PairRecord] = []  # skipped for the current tick, a peer not answering: <= pairs
        self.retried = 0  # pair-ticks started again within their tick (see retry_skipped)
        self._start = 0  # where the current scan began
        self._pos = len(table)  # positions scanned in the current generation (len(table): done)
        self._started_now = 0  # pairs started for the current generation

    def new_tick(self, tick: Tick) -> NewTick:
        """``tick`` arrived: from now on pairs are started for it."""
        count = len(self._table)
        expected = count - self._table.blocked
        outcome = NewTick(self.busy, max(0, expected - self._started_now) if self.generation else 0)
        self.generation += 1
        self.tick = tick
        self._retry.clear()
        self._started_now = 0
        if self._pos >= count:  # the last scan finished: start a fresh one at a rotating place
            self._start = (tick.seq * _ROTATION_STEP) % count if count else 0
        else:  # overloaded: continue where we stopped, wrapping round to cover every pair once
            self._start = (self._start + self._pos) % count
        self._pos = 0
        return outcome

    def take(self, limit: int) -> list[Work]:
        """Up to ``limit`` decisions to start now, for the newest tick (their pairs become busy)."""
        tick = self.tick
        if tick is None:
            return []
        taken: list[Work] = []
        gen = self.generation
        late, records = self._late, self._table.records
        count = len(records)
        while late and len(taken) < limit:
            record = late.popleft()
            # the scan may have started it meanwhile; or it was blocked since
            if record.work is None and record.started < gen and record.block is NOT_BLOCKED:
                if record.decided_for is not None and self._decided_before(record, tick, gen):
                    continue
                record.started = gen
                record.work = work = Work(record, tick)
                taken.append(work)
        while len(taken) < limit and self._pos < count:
            index = self._start + self._pos
            if index >= count:
                index -= count
            self._pos += 1
            record = records[index]
            if record.started >= gen:
                continue  # already started for this tick (it came back late)
            if record.block is not NOT_BLOCKED:
                self.paused += record.block is PAUSED
                continue
            if record.work is not None:
                record.wanted = True
                continue
            if record.decided_for is not None and self._decided_before(record, tick, gen):
                continue
            record.started = gen
            record.work = work = Work(record, tick)
            taken.append(work)
        self.busy += len(taken)
        self._started_now += len(taken)
        return taken

    def _decided_before(self, record: PairRecord, tick: Tick, gen: int) -> bool:
        """Whether the Ledger told (after a restart) that ``record`` was decided for ``tick`` already;
        looked at once: the first tick dispatched after it was told."""
        decided_for, record.decided_for = record.decided_for, None
        if decided_for != (tick.t0, tick.seq):
            return False
        record.started = gen
        self.decided_before += 1
        self._started_now += 1  # not a pair that missed the tick
        return True

    def finish(self, work: Work) -> None:
        """The decision ``work`` is over (decided or skipped): its pair is free."""
        record = work.record
        if record.work is not work:
            raise ValueError(f"{work!r} is not the decision in flight of {record!r}")
        record.work = None
        self.busy -= 1
        if work.retry and record.started == self.generation:
            self._retry.append(record)
        if record.wanted:
            record.wanted = False
            if record.started < self.generation:
                self._late.append(record)

    def retry_skipped(self) -> int:
        """Start again, for the current tick, the pairs it skipped because a peer did not answer (the
        Scheduler repeats its tick: a peer still starting, or restarting, may answer now); how many."""
        retry, self._retry = self._retry, []
        count = 0
        for record in retry:
            if record.work is None and record.started == self.generation:
                record.started = self.generation - 1  # not started for this tick: take() may start it
                self._late.append(record)
                count += 1
        self.retried += count
        return count

    @property
    def pending(self) -> bool:
        """Whether :meth:`take` may return something now."""
        return self.tick is not None and (bool(self._late) or self._pos < len(self._table))
