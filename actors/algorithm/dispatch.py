"""Which pair to start next, for which tick. Pure: no I/O, no clock.

Every pair has at most one decision in flight and is decided at most once per tick. Each accepted
tick is a new *generation*; a pair is started for the newest generation only, and the :class:`Work`
it gets carries that tick:

* a tick's pairs are handed out by a scan over the pair table, a few at a time (:meth:`take`), so a
  tick costs O(1) when it arrives whatever the number of pairs;
* a pair still busy with an older tick when the scan reaches it is marked *wanted*: the moment it
  finishes it goes to the front (:meth:`finish`), so a pair that frees up late still decides for the
  newest tick instead of sitting the whole tick out (which halved throughput under slight overload);
* when a tick arrives just before the previous tick's scan has finished (a hiccup: a slow answer, a
  pause of the machine), the rest of that scan is *carried*: its pairs still start for the tick they
  were due, first, late, and the new tick's scan follows, so a moment's delay costs no decision. At
  most one tick is carried: a carry still unfinished when the next tick comes means overload, and
  then, until a scan finishes in time again, the scan goes on from where it stopped, for the newest
  tick (the pairs the old tick could not reach come first), so every pair gets its turn in
  round-robin order and each tick gets an even share; after a finished scan the next one starts at a
  rotating place, so no book is always last;
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
    # Pairs never started for a tick that is over (the previous one, or the carried one before it):
    # exactly the pair-ticks missed, each counted once, when its tick can no longer start.
    unstarted: int
    carried: int = 0  # places of the previous tick's scan still to go: their pairs start for it, late


@dataclass(slots=True)
class _Carry:
    """The rest of a tick's scan, unfinished when the next tick came: handed out first, for its tick."""

    tick: Tick
    generation: int
    start: int
    pos: int
    count: int  # the table's size when it was scanned (it only grows: these places keep their pairs)
    started: int  # pairs started for its generation, before and during the carry
    expected: int  # pairs not blocked when the next tick came

    def unstarted(self) -> int:
        return max(0, self.expected - self.started)


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
        self._carry: _Carry | None = None  # the previous tick's unfinished scan, if carried
        self._carried_unstarted = 0  # pairs a carry that finished could not start: told at the next tick
        self._behind = False  # a carry did not finish within a tick: no new carry until a scan finishes

    def new_tick(self, tick: Tick) -> NewTick:
        """``tick`` arrived: from now on pairs are started for it (after the previous tick's rest, if
        that is carried)."""
        count = len(self._table)
        expected = count - self._table.blocked
        previous, carry = self.tick, self._carry
        unstarted, self._carried_unstarted = self._carried_unstarted, 0
        resume: int | None = None
        if carry is not None:  # it did not finish within a whole tick: overload; its rest is missed
            unstarted += carry.unstarted()
            resume = carry.start + carry.pos  # the places it did not reach come first
            self._carry = None
            self._behind = True
        unfinished = self.generation > 0 and self._pos < count
        if unfinished and not self._behind and previous is not None and _follows(previous, tick):
            self._carry = _Carry(previous, self.generation, self._start, self._pos, count, self._started_now,
                                 expected)
        elif self.generation:
            unstarted += max(0, expected - self._started_now)
        outcome = NewTick(self.busy, unstarted, count - self._pos if self._carry is not None else 0)
        # With a carry the new scan keeps the old one's order: the carried places come last in it.
        if self._carry is None:
            if resume is not None:
                self._start = resume % count
            elif unfinished:  # overloaded: continue where we stopped, wrapping round to cover every pair once
                self._start = (self._start + self._pos) % count
            else:  # the last scan finished in time: start a fresh one at a rotating place
                self._start = (tick.seq * _ROTATION_STEP) % count if count else 0
                self._behind = False
        self.generation += 1
        self.tick = tick
        self._retry.clear()
        self._started_now = 0
        self._pos = 0
        return outcome

    def take(self, limit: int) -> list[Work]:
        """Up to ``limit`` decisions to start now, for the newest tick (their pairs become busy)."""
        tick = self.tick
        if tick is None:
            return []
        if self._carry is not None:  # the previous tick's rest first (one tick per call: one batch request)
            carried = self._take_carried(self._carry, limit)
            if carried:
                return carried
        taken: list[Work] = []
        gen = self.generation
        late, records = self._late, self._table.records
        count = len(records)
        while late and len(taken) < limit:
            record = late.popleft()
            # the scan may have started it meanwhile; or it was blocked since
            if record.work is None and record.started < gen and record.block is NOT_BLOCKED:
                if record.decided_for is not None and self._decided_before(record, tick, gen):
                    self._started_now += 1  # not a pair that missed the tick
                    continue
                record.started = gen
                record.work = work = Work(record, tick)
                taken.append(work)
        while len(taken) < limit and self._pos < count:
            index = self._start + self._pos
            if index >= count:
                index -= count
            self._pos += 1
            started = self._start_one(records[index], tick, gen, want=True)
            if started is True:
                self._started_now += 1  # decided before a restart: not a pair that missed the tick
            elif started:
                taken.append(started)
        self.busy += len(taken)
        self._started_now += len(taken)
        return taken

    def _take_carried(self, carry: _Carry, limit: int) -> list[Work]:
        """Up to ``limit`` decisions of the carried tick's rest; the carry ends with its scan."""
        taken: list[Work] = []
        records, tick, gen = self._table.records, carry.tick, carry.generation
        while len(taken) < limit and carry.pos < carry.count:
            index = carry.start + carry.pos
            if index >= carry.count:
                index -= carry.count
            carry.pos += 1
            # One busy with an older tick misses this one (counted when the carry ends).
            started = self._start_one(records[index], tick, gen, want=False)
            if started is True:
                carry.started += 1
            elif started:
                taken.append(started)
        carry.started += len(taken)
        self.busy += len(taken)
        if carry.pos >= carry.count:
            self._carried_unstarted += carry.unstarted()
            self._carry = None
        return taken

    def _start_one(self, record: PairRecord, tick: Tick, gen: int, want: bool) -> Work | bool:
        """Start ``record`` for ``tick`` (generation ``gen``) if it can start: its Work; True when the Ledger
        said it was decided for that tick before a restart (it counts as started); False when passed over:
        started already (it came back late), blocked, or busy (then, with ``want``, started once free)."""
        if record.started >= gen:
            return False
        if record.block is not NOT_BLOCKED:
            self.paused += record.block is PAUSED
            return False
        if record.work is not None:
            record.wanted = record.wanted or want
            return False
        if record.decided_for is not None and self._decided_before(record, tick, gen):
            return True
        record.started = gen
        record.work = work = Work(record, tick)
        return work

    def _decided_before(self, record: PairRecord, tick: Tick, gen: int) -> bool:
        """Whether the Ledger told (after a restart) that ``record`` was decided for ``tick`` already;
        looked at once: the first tick dispatched after it was told."""
        decided_for, record.decided_for = record.decided_for, None
        if decided_for != (tick.t0, tick.seq):
            return False
        record.started = gen
        self.decided_before += 1
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
        return self.tick is not None and (self._carry is not None or bool(self._late) or self._pos < len(self._table))


def _follows(previous: Tick, tick: Tick) -> bool:
    """Whether ``tick`` is the one right after ``previous`` (the same run, the next seq): only then is the
    previous one's rest carried (after lost ticks, or a new run, it is long past)."""
    return tick.t0 == previous.t0 and tick.seq == previous.seq + 1
