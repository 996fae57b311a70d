"""The worker pool: a fixed number of coroutines (``--max-in-flight``) that do every step of every
decision, instead of one task per pair per tick.

:meth:`Pool.new_tick` is the one way in for a tick: the dispatcher starts pairs for it from then on,
and each :class:`Work` it hands out carries the tick it serves. A worker always takes the most urgent
job first:

1. a *read* whose delay x is over (GET, or a batch read): the second half of a decision must never
   wait behind a tick's worth of registrations;
2. a *registration* of pairs whose window has arrived (one per call, or ``--api-batch`` per call);
3. a *fetch* of the windows of the next pairs of the tick (``--dm-batch`` books per request), only
   while fewer than ``prefetch`` pairs wait for their registration, so windows are never fetched far
   ahead of the API, and only while the :class:`Gate` admits new decisions (backpressure from the
   Ledger and the spool, :mod:`actors.algorithm.admission`: while it does not, pairs wait their turn
   and it is asked again every ``GATE_RECHECK`` seconds).

A worker never sleeps holding a job: x runs out on a timer, and an endpoint paced by its token bucket
(or paused by a 429) is simply not chosen until its time comes. At most ``workers`` HTTP requests are
in flight. An idle worker waits on a future of its own; new work wakes as many workers as it needs.
After each job the pool frees the pairs whose decision is over (decided or skipped).

Time comes from a :class:`Clock`: the running loop in production, a fake one in the tests.
"""

from __future__ import annotations

import asyncio
import collections
from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import Protocol

from actors.algorithm.clients.api import READ, REGISTER
from actors.algorithm.clients.pacing import TokenBucket
from actors.algorithm.dispatch import Dispatcher, NewTick
from actors.algorithm.pairs import READING, SKIPPED, State, Work
from transport import limits
from transport.protocol import Tick

MAX_FETCHES = 4  # window requests in flight at most when each asks for a batch of books
GATE_RECHECK = 0.05  # seconds between looks at a gate that held new decisions back


class Cancellable(Protocol):
    def cancel(self) -> None: ...


class Clock(Protocol):
    """What the pool needs of time: an asyncio event loop is one."""

    def time(self) -> float: ...

    def call_at(self, when: float, callback: Callable[[], object], /) -> Cancellable: ...


class Steps(Protocol):
    """The steps of a decision (:class:`actors.algorithm.pipeline.Pipeline`)."""

    @property
    def batching(self) -> bool: ...

    async def fetch(self, works: list[Work]) -> list[Work]: ...

    async def register(self, works: list[Work]) -> list[Work]: ...

    async def read(self, works: list[Work]) -> list[Work]: ...

    def resumed(self, work: Work) -> bool: ...

    def skip(self, work: Work, reason: str | None, detail: str) -> None: ...


class Gate(Protocol):
    """Whether new decisions may start now (:class:`actors.algorithm.admission.Admission`)."""

    def admits(self) -> bool: ...


class Endpoints(Protocol):
    """The API client's pacing, one token bucket per endpoint (:class:`ApiClient`)."""

    buckets: dict[str, TokenBucket]


class Pool:
    def __init__(self, dispatcher: Dispatcher, steps: Steps, api: Endpoints, *, workers: int,
                 api_batch: int, dm_batch: int, clock: Clock | None = None, resuming: bool = False,
                 gate: Gate | None = None) -> None:
        """``resuming``: the pairs' last decisions are being asked of the Ledger (a start): windows are
        fetched meanwhile, registrations wait for :meth:`resume_done`. ``gate``: asked before new
        decisions start."""
        self._dispatcher = dispatcher
        self._steps = steps
        self._api = api
        self._workers = workers
        self._api_batch = max(1, api_batch)
        self._dm_batch = max(1, dm_batch)
        # Windows fetched ahead of the API: enough for a few batch calls in flight at once (with x = 0 a
        # batch's round trip, not the CPU, would otherwise bound the rate), never unbounded.
        self._prefetch = max(4 * self._api_batch, 2 * self._dm_batch, workers)
        self._fetch_size = min(limits.BATCH_BOOKS_MAX, max(self._dm_batch, self._api_batch))
        self._windowed: dict[Decimal, collections.deque[Work]] = {}  # by delay x: REGISTERING
        self._reads: dict[Decimal, collections.deque[tuple[float, list[Work]]]] = {}  # by x: (due, READING)
        self._waiting = 0  # works in _windowed
        self._resuming = resuming
        self._parked: list[Work] = []  # REGISTERING while resuming: at most one per pair
        self._fetching = 0  # window requests in flight
        self._idle: collections.deque[asyncio.Future[None]] = collections.deque()
        # The wake-up timer and its deadline, kept here: uvloop's call_at returns a plain Handle (no
        # when()) for a time already due, so the handle cannot be asked when it fires.
        self._timer: Cancellable | None = None
        self._timer_due = 0.0
        self._stopping = False
        self.drained = asyncio.Event()
        self._clock = clock
        self._gate = gate

    def new_tick(self, tick: Tick) -> NewTick:
        """``tick`` arrived: pairs are started for it from now on (see the dispatcher); returns what
        the previous tick left undone."""
        late = self._dispatcher.new_tick(tick)
        if not self._stopping:
            self._wake(self._max_fetches())
        return late

    def retry_skipped(self) -> int:
        """The current tick came again: pairs it skipped for a peer that did not answer try again."""
        count = self._dispatcher.retry_skipped()
        if count and not self._stopping:
            self._wake(self._max_fetches())
        return count

    def resume_done(self) -> None:
        """The Ledger has said the pairs' last decisions (or not in time): parked works register, each
        with its last price, or end if the Ledger has its pair's decision for their tick already."""
        self._resuming = False
        parked, self._parked = self._parked, []
        for work in parked:
            if self._steps.resumed(work):
                self._windowed.setdefault(work.pair.strategy.delay, collections.deque()).append(work)
                self._waiting += 1
            else:
                self._dispatcher.finish(work)
        self._wake(min(len(parked), self._workers))
        self._drained_if_idle()

    def stop_starting(self) -> None:
        """Start no new pair (a clean stop lets those in flight finish: ``drained`` says when); works
        still waiting for the Ledger's answer are given up (they registered nothing)."""
        self._stopping = True
        parked, self._parked = self._parked, []
        for work in parked:
            self._steps.skip(work, "stopping", "stopped before the Ledger said its pair's last price")
            self._dispatcher.finish(work)
        self._drained_if_idle()

    def _drained_if_idle(self) -> None:
        if self._stopping and not self._dispatcher.busy:
            self.drained.set()

    async def run(self) -> None:
        if self._clock is None:
            self._clock = asyncio.get_running_loop()
        async with asyncio.TaskGroup() as group:
            for _ in range(self._workers):
                group.create_task(self._work())

    @property
    def in_flight(self) -> int:
        return self._dispatcher.busy

    @property
    def idle_workers(self) -> int:
        """Workers waiting for something to do (all of them: nothing can happen until a tick, a timer
        or an answer)."""
        return sum(1 for future in self._idle if not future.done())

    # --- choosing a job ------------------------------------------------------------------------

    async def _work(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            job = self._next()
            if job is None:
                future = loop.create_future()
                self._idle.append(future)
                await future
                continue
            await job
            self._drained_if_idle()

    def _next(self) -> Awaitable[None] | None:
        assert self._clock is not None
        now = self._clock.time()
        soonest = None
        read_delay = self._api.buckets[READ].delay()
        for reads in self._reads.values():
            if reads:
                due = max(reads[0][0], now + read_delay)
                if due <= now:
                    return self._read(reads.popleft()[1])
                soonest = due if soonest is None else min(soonest, due)
        if self._waiting:
            register_delay = self._api.buckets[REGISTER].delay()
            if register_delay <= 0:
                for windowed in self._windowed.values():
                    if windowed:
                        works = [windowed.popleft() for _ in range(min(self._api_batch, len(windowed)))]
                        self._waiting -= len(works)
                        return self._register(works)
            else:
                soonest = now + register_delay if soonest is None else min(soonest, now + register_delay)
        if (not self._stopping and self._fetching < self._max_fetches() and self._waiting < self._prefetch
                and self._dispatcher.pending):
            if self._gate is not None and not self._gate.admits():
                recheck = now + GATE_RECHECK
                soonest = recheck if soonest is None else min(soonest, recheck)
            else:
                works = self._dispatcher.take(self._fetch_size if self._steps.batching else 1)
                if works:
                    return self._fetch(works)
        if soonest is not None:
            self._wake_at(soonest)
        return None

    def _max_fetches(self) -> int:
        # One DataManager request per pair needs more of them in flight than one per batch of pairs.
        return MAX_FETCHES if self._steps.batching else max(MAX_FETCHES, self._workers // 2)

    def _wake(self, count: int) -> None:
        while count > 0 and self._idle:
            future = self._idle.popleft()
            if not future.done():
                future.set_result(None)
                count -= 1

    def _wake_at(self, when: float) -> None:
        """One timer for the earliest thing an idle worker must do (a read due, a bucket refilled)."""
        assert self._clock is not None
        if self._timer is not None:
            if self._timer_due <= when:
                return
            self._timer.cancel()
        self._timer_due = when
        self._timer = self._clock.call_at(when, self._timer_fired)

    def _timer_fired(self) -> None:
        self._timer = None
        self._wake(1)

    # --- the jobs ------------------------------------------------------------------------------

    async def _fetch(self, works: list[Work]) -> None:
        self._fetching += 1
        try:
            windowed = await self._steps.fetch(works)
        finally:
            self._fetching -= 1
        if len(windowed) < len(works):
            self._finish(works, SKIPPED)
        if self._resuming:  # the price to register is not known yet
            self._parked.extend(windowed)
            if self._stopping:
                self.stop_starting()
            return
        for work in windowed:
            self._windowed.setdefault(work.pair.strategy.delay, collections.deque()).append(work)
        self._waiting += len(windowed)
        self._wake(min(len(windowed), self._workers))

    async def _register(self, works: list[Work]) -> None:
        retry = await self._steps.register(works)
        registered = [w for w in works if w.state is READING]
        if len(registered) + len(retry) < len(works):
            self._finish(works, SKIPPED)
        if retry:  # 429: back to the front, after the pause the bucket now imposes
            queue = self._windowed.setdefault(works[0].pair.strategy.delay, collections.deque())
            queue.extendleft(reversed(retry))
            self._waiting += len(retry)
        if registered:
            assert self._clock is not None
            delay = registered[0].pair.strategy.delay
            due = self._clock.time() + float(delay)
            self._reads.setdefault(delay, collections.deque()).append((due, registered))
            if delay:
                self._wake_at(due)
        if retry:
            self._next_when_allowed()

    async def _read(self, works: list[Work]) -> None:
        retry = await self._steps.read(works)
        finish = self._dispatcher.finish
        for work in works:
            if work.state is not READING:  # decided or skipped (those to try again are still reading)
                finish(work)
        if retry:
            assert self._clock is not None
            delay = retry[0].pair.strategy.delay
            self._reads.setdefault(delay, collections.deque()).appendleft((self._clock.time(), retry))
            self._next_when_allowed()
        if self._dispatcher.pending:
            self._wake(1)  # pairs freed late may be waiting for the newest tick

    def _finish(self, works: list[Work], state: State) -> None:
        """Free the pairs of the works that ended in ``state``."""
        finish = self._dispatcher.finish
        for work in works:
            if work.state is state:
                finish(work)

    def _next_when_allowed(self) -> None:
        assert self._clock is not None
        delay = min(self._api.buckets[REGISTER].delay(), self._api.buckets[READ].delay())
        self._wake_at(self._clock.time() + max(delay, 0.001))
