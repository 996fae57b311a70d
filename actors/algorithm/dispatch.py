"""Which pair to start next, for which tick. Pure: no I/O, no clock.

Every pair has at most one decision in flight and is decided at most once per tick. Each accepted
tick is a new *generation*; a pair is started for the newest generation only, and the :class:`Work`
it gets carries that tick:

* a tick's pairs are handed out by a scan over the pair table, a few at a time (:meth:`take`), so a
  tick costs O(1) when it arrives whatever the number of pairs;
* a pair still busy with an older tick when a scan reaches it is marked *wanted*: the moment it
  finishes it goes to the front (:meth:`finish`) and starts for the oldest tick it still owes (a
  carried one, else the newest), so a pair that frees up late still decides instead of sitting the
  tick out (which halved throughput under slight overload); a pair's ticks always go in order;
* when a tick arrives before the previous tick's pairs have all started (a hiccup: a slow answer, a
  peer or the machine held up for a moment), that tick is *carried*: the rest of its scan still starts
  its pairs for the tick they were due, first, late, and a pair it found busy starts for it once
  free; the new tick's scan follows. Up to ``MAX_CARRIED`` ticks are carried at once, oldest first,
  so a hiccup of up to that many ticks costs no decision. A carry ends when every pair it expected
  has started for its tick, or ``MAX_CARRIED`` ticks later: then the pairs it could not start miss
  its tick (counted), and if its scan was not even over, that is overload: every carry's rest is
  missed, and until a scan finishes in time again the scan goes on from where the oldest carry
  stopped, for the newest tick only (no carry), so every pair gets its turn in round-robin order and
  each tick gets an even share; after a finished scan the next one starts at a rotating place, so no
  book is always last;
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
# Ticks carried at most at once: a hiccup of up to this many ticks (a peer or the machine held up)
# costs no decision; a longer one is overload. Each carry is a few integers, whatever the pairs.
MAX_CARRIED = 3


@dataclass(frozen=True, slots=True)
class NewTick:
    """What a tick found when it arrived: work the previous tick could not do in time."""

    overruns: int  # pairs still in flight (those busy with an older tick decide the newest once free)
    # Pairs never started for a tick that is over (the previous one, or the carried one before it):
    # exactly the pair-ticks missed, each counted once, when its tick can no longer start.
    unstarted: int
    carried: int = 0  # pairs the previous tick has yet to start: carried, they start for it, late


@dataclass(slots=True)
class _Carry:
    """A tick whose pairs had not all started when the next tick came: its scan's rest is handed out
    first, for its tick, and the pairs it found busy start for it once free."""

    tick: Tick
    generation: int
    start: int
    pos: int
    count: int  # the table's size when it was scanned (it only grows: these places keep their pairs)
    started: int  # pairs started for its generation, before and during the carry
    expected: int  # pairs not blocked when the next tick came

    def unstarted(self) -> int:
        return max(0, self.expected - self.started)

    @property
    def scanned(self) -> bool:
        return self.pos >= self.count

    @property
    def done(self) -> bool:
        return self.scanned and self.started >= self.expected


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
        self._expected_now = 0  # pairs not blocked when the current generation's tick came
        self._carries: collections.deque[_Carry] = collections.deque()  # oldest first: <= MAX_CARRIED
        self._behind = False  # ticks came faster than carries finished: no new carry until a scan finishes

    def new_tick(self, tick: Tick) -> NewTick:
        """``tick`` arrived: from now on pairs are started for it (after the rest of the ticks carried)."""
        count = len(self._table)
        expected = count - self._table.blocked
        self._end_carries()
        previous, carries = self.tick, self._carries
        follows = previous is not None and _follows(previous, tick)
        unstarted = 0
        resume: int | None = None
        # A carry past MAX_CARRIED ticks, or any after lost ticks or in a new run, is over: its pairs
        # not started miss its tick. One whose scan it could not even finish means overload: all go,
        # and the next scans serve the newest tick in turn from where that one stopped.
        oldest_kept = self.generation + 1 - MAX_CARRIED
        if carries and (not follows or carries[0].generation < oldest_kept):
            if not follows or not carries[0].scanned:
                dropped = list(carries)
                self._behind = True
                oldest = carries[0]
                resume = (oldest.start + oldest.pos) % max(1, oldest.count)  # its unreached places first
            else:  # scanned in time, some pairs busy all that while: they miss it, nothing more
                dropped = [carries[0]]
            for carry in dropped:
                unstarted += carry.unstarted()
                carries.remove(carry)
        # The previous tick is carried if some of its pairs have not started (the rest of its scan, or
        # pairs it found busy with an older tick) and the ticks follow each other.
        unfinished = self.generation > 0 and (self._pos < count or self._started_now < self._expected_now)
        carried = 0
        if unfinished and follows and not self._behind and previous is not None:
            carries.append(_Carry(previous, self.generation, self._start, self._pos, count, self._started_now,
                                  self._expected_now))
            carried = self._expected_now - self._started_now
        elif self.generation:
            unstarted += max(0, self._expected_now - self._started_now)
        outcome = NewTick(self.busy, unstarted, carried)
        # With a carry the new scan keeps the old one's order: the carried places come last in it.
        if not carries:
            if resume is not None:
                self._start = resume % count if count else 0
            elif unfinished:  # overloaded: continue where we stopped, wrapping round to cover every pair once
                self._start = (self._start + self._pos) % count if count else 0
            else:  # the last scan finished in time: start a fresh one at a rotating place
                self._start = (tick.seq * _ROTATION_STEP) % count if count else 0
                self._behind = False
        self.generation += 1
        self.tick = tick
        self._retry.clear()
        self._started_now = 0
        self._expected_now = expected
        self._pos = 0
        return outcome

    def take(self, limit: int) -> list[Work]:
        """Up to ``limit`` decisions to start now, all for one tick (the oldest carried first, then the
        newest); their pairs become busy."""
        if self.tick is None:
            return []
        # One tick per call (one batch request): first the pairs freed late, each for the oldest tick it
        # owes (so a carry's scan never starts one past a tick it owes); then the carried ticks' rest,
        # oldest first; then the newest tick's scan.
        taken = self._take_late(limit)
        if not taken:
            for carry in self._carries:
                if not carry.scanned:
                    taken = self._take_carried(carry, limit)
                    if taken:
                        break
        if taken:
            self._end_carries()
            return taken
        tick, gen = self.tick, self.generation
        records = self._table.records
        count = len(records)
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

    def _take_late(self, limit: int) -> list[Work]:
        """Pairs freed late that a scan wanted, each for the oldest tick it still owes (a carried one, or
        the newest), as many as owe the same tick as the first."""
        taken: list[Work] = []
        late = self._late
        target: _Carry | None = None
        gen = -1
        while late and len(taken) < limit:
            record = late[0]
            # the scan may have started it meanwhile; or it was blocked since
            if record.work is not None or record.started >= self.generation or record.block is not NOT_BLOCKED:
                late.popleft()
                continue
            owed = next((c for c in self._carries if c.generation > record.started and not c.done), None)
            owed_gen = owed.generation if owed is not None else self.generation
            if taken and owed_gen != gen:
                break  # another tick: the next call
            late.popleft()
            target, gen = owed, owed_gen
            tick = owed.tick if owed is not None else self.tick
            assert tick is not None
            if record.decided_for is not None and self._decided_before(record, tick, gen):
                self._count_started(target, 1)
                if target is not None:
                    record.wanted = True  # it still owes the newer ticks
                    late.append(record)
                continue
            record.started = gen
            record.work = Work(record, tick)
            if target is not None:
                record.wanted = True  # it still owes the newer ticks: back once free
            taken.append(record.work)
        self.busy += len(taken)
        self._count_started(target, len(taken))
        return taken

    def _count_started(self, carry: _Carry | None, n: int) -> None:
        if carry is None:
            self._started_now += n
        else:
            carry.started += n

    def _take_carried(self, carry: _Carry, limit: int) -> list[Work]:
        """Up to ``limit`` decisions of a carried tick's rest."""
        taken: list[Work] = []
        records, tick, gen = self._table.records, carry.tick, carry.generation
        while len(taken) < limit and carry.pos < carry.count:
            index = carry.start + carry.pos
            if index >= carry.count:
                index -= carry.count
            carry.pos += 1
            # One busy with an older tick starts for this one once free (wanted).
            started = self._start_one(records[index], tick, gen, want=True)
            if started is True:
                carry.started += 1
            elif started:
                taken.append(started)
        carry.started += len(taken)
        self.busy += len(taken)
        return taken

    def _end_carries(self) -> None:
        """Carries whose every expected pair has started end."""
        if any(carry.done for carry in self._carries):
            self._carries = collections.deque(carry for carry in self._carries if not carry.done)

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
        return self.tick is not None and (any(not carry.scanned for carry in self._carries) or bool(self._late)
                                          or self._pos < len(self._table))


def _follows(previous: Tick, tick: Tick) -> bool:
    """Whether ``tick`` is the one right after ``previous`` (the same run, the next seq): only then is the
    previous one's rest carried (after lost ticks, or a new run, it is long past)."""
    return tick.t0 == previous.t0 and tick.seq == previous.seq + 1
