"""Which pair to start next, for which tick. Pure: no I/O, no clock.

Every pair has at most one decision in flight and is decided at most once per tick. Each accepted
tick is a new *generation*; a pair is started for the newest generation only:

* a tick's pairs are handed out by a scan over the pair list, a few at a time (:meth:`take`), so a
  tick costs O(1) when it arrives whatever the number of pairs;
* a pair still busy with an older tick when the scan reaches it is marked *wanted*: the moment it
  finishes it goes to the front (:meth:`finish`), so a pair that frees up late still decides for the
  newest tick instead of sitting the whole tick out (which halved throughput under slight overload);
* when a tick arrives before the previous scan has finished (overload), the scan goes on from where
  it stopped: the pairs the old tick could not reach come first, for the newest tick, so every pair
  gets its turn in round-robin order; after a finished scan the next one starts at a rotating place,
  so no book is always last;
* a *blocked* pair (paused in the config, or dropped by a reload) is passed over and counted in
  :attr:`paused`; the pair list may grow (a reload adding pairs) but never shrinks.
"""

from __future__ import annotations

import collections
from dataclasses import dataclass

_ROTATION_STEP = 7919  # a prime: successive ticks start far apart in the pair list

_IDLE = 0
_BUSY = 1
PAUSED = 1  # a blocked pair: paused in the config (counted in ``paused``) ...
HELD = 2  # ... or held back a moment (dropped by a reload, or waiting for its last price)


@dataclass(frozen=True, slots=True)
class NewTick:
    """What a tick found when it arrived: work the previous tick could not do in time."""

    overruns: int  # pairs still in flight (those busy with an older tick decide the newest once free)
    unstarted: int  # pairs never started for the previous tick: exactly the pairs that missed it


class Dispatcher:
    def __init__(self, count: int) -> None:
        self._count = count
        self.generation = 0  # accepted ticks so far: grows across Scheduler runs, unlike seq
        self._state = bytearray(count)  # _IDLE or _BUSY
        self._wanted = bytearray(count)  # busy while a newer generation wants it
        self._blocked = bytearray(count)  # PAUSED or HELD: never started
        self._blocked_count = 0
        self.paused = 0  # pair-ticks passed over because the pair was blocked
        self._started = [0] * count  # the generation each pair was last started for (0: never)
        self._late: collections.deque[int] = collections.deque()  # freed wanted pairs: <= count
        self._start = 0  # where the current scan began
        self._pos = count  # positions scanned in the current generation (count: done)
        self.busy = 0
        self._started_now = 0  # pairs started for the current generation

    def new_tick(self, seq: int) -> NewTick:
        """Tick ``seq`` arrived: from now on pairs are started for it."""
        expected = self._count - self._blocked_count
        outcome = NewTick(self.busy, max(0, expected - self._started_now) if self.generation else 0)
        self.generation += 1
        self._started_now = 0
        if self._pos >= self._count:  # the last scan finished: start a fresh one at a rotating place
            self._start = (seq * _ROTATION_STEP) % self._count if self._count else 0
        else:  # overloaded: continue where we stopped, wrapping round to cover every pair once
            self._start = (self._start + self._pos) % self._count
        self._pos = 0
        return outcome

    def take(self, limit: int) -> list[int]:
        """Up to ``limit`` pairs to start now for the newest tick (marked busy)."""
        taken: list[int] = []
        gen = self.generation
        state, wanted, started, count, late = self._state, self._wanted, self._started, self._count, self._late
        blocked = self._blocked
        while late and len(taken) < limit:
            index = late.popleft()
            if state[index] == _IDLE and started[index] < gen and not blocked[index]:  # the scan may have been first
                state[index] = _BUSY
                started[index] = gen
                taken.append(index)
        while len(taken) < limit and self._pos < count:
            index = self._start + self._pos
            if index >= count:
                index -= count
            self._pos += 1
            if started[index] >= gen:
                continue  # already started for this tick (it came back late)
            if blocked[index]:
                self.paused += blocked[index] == PAUSED
                continue
            if state[index] == _BUSY:
                wanted[index] = 1
                continue
            state[index] = _BUSY
            started[index] = gen
            taken.append(index)
        self.busy += len(taken)
        self._started_now += len(taken)
        return taken

    def finish(self, index: int) -> None:
        """The decision of pair ``index`` is over (decided or skipped)."""
        self._state[index] = _IDLE
        self.busy -= 1
        if self._wanted[index]:
            self._wanted[index] = 0
            if self._started[index] < self.generation:
                self._late.append(index)

    def grow(self, count: int) -> None:
        """The pair list grew to ``count`` pairs (the new ones idle, unblocked)."""
        added = count - self._count
        if added <= 0:
            return
        self._state.extend(bytes(added))
        self._wanted.extend(bytes(added))
        self._blocked.extend(bytes(added))
        self._started.extend([0] * added)
        self._count = count

    def block(self, blocked: bytes) -> None:
        """Which pairs are blocked from now on (one flag per pair: 0, PAUSED or HELD); a pair in flight
        finishes."""
        if len(blocked) != self._count:
            raise ValueError(f"{len(blocked)} flags for {self._count} pairs")
        self._blocked[:] = blocked
        self._blocked_count = sum(1 for flag in blocked if flag)

    @property
    def blocked(self) -> int:
        return self._blocked_count

    @property
    def pending(self) -> bool:
        """Whether :meth:`take` may return something now."""
        return bool(self._late) or self._pos < self._count
