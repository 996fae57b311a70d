"""The worker pool: a fixed number of coroutines (``--max-in-flight``) that do every step of every
decision, instead of one task per pair per tick.

A worker always takes the most urgent job first:

1. a *read* whose delay x is over (GET, or a batch read): the second half of a decision must never
   wait behind a tick's worth of registrations;
2. a *registration* of pairs whose window has arrived (one per call, or ``--api-batch`` per call);
3. a *fetch* of the windows of the next pairs of the tick (``--dm-batch`` books per request), only
   while fewer than ``prefetch`` pairs wait for their registration, so windows are never fetched far
   ahead of the API.

A worker never sleeps holding a job: x runs out on a timer, and an endpoint paced by its token bucket
(or paused by a 429) is simply not chosen until its time comes. At most ``workers`` HTTP requests are
in flight. An idle worker waits on a future of its own; new work wakes as many workers as it needs.
"""

from __future__ import annotations

import asyncio
import collections
from collections.abc import Awaitable
from decimal import Decimal

from actors.algorithm.clients.api import READ, REGISTER, ApiClient
from actors.algorithm.dispatch import Dispatcher
from actors.algorithm.pipeline import Pipeline, Work
from transport import limits
from transport.protocol import Tick

MAX_FETCHES = 4  # window requests in flight at most when each asks for a batch of books


class Pool:
    def __init__(self, dispatcher: Dispatcher, pipeline: Pipeline, api: ApiClient, *, workers: int,
                 api_batch: int, dm_batch: int) -> None:
        self._dispatcher = dispatcher
        self._pipeline = pipeline
        self._api = api
        self._workers = workers
        self._api_batch = max(1, api_batch)
        self._dm_batch = max(1, dm_batch)
        # Windows fetched ahead of the API: enough for a few batch calls in flight at once (with x = 0 a
        # batch's round trip, not the CPU, would otherwise bound the rate), never unbounded.
        self._prefetch = max(4 * self._api_batch, 2 * self._dm_batch, workers)
        self._fetch_size = min(limits.BATCH_BOOKS_MAX, max(self._dm_batch, self._api_batch))
        self._windowed: dict[Decimal, collections.deque[Work]] = {}  # by delay x: awaiting registration
        self._reads: dict[Decimal, collections.deque[tuple[float, list[Work]]]] = {}  # by x: (due, works)
        self._waiting = 0  # works in _windowed
        self._fetching = 0  # window requests in flight
        self._idle: collections.deque[asyncio.Future[None]] = collections.deque()
        # The wake-up timer and its deadline, kept here: uvloop's call_at returns a plain Handle (no
        # when()) for a time already due, so the handle cannot be asked when it fires.
        self._timer: asyncio.Handle | None = None
        self._timer_due = 0.0
        self._tick: Tick | None = None
        self._stopping = False
        self.drained = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None

    def new_tick(self, tick: Tick) -> None:
        self._tick = tick
        self._wake(self._max_fetches())

    def stop_starting(self) -> None:
        """Start no new pair (a clean stop lets those in flight finish: ``drained`` says when)."""
        self._tick = None
        self._stopping = True
        if not self._dispatcher.busy:
            self.drained.set()

    async def run(self) -> None:
        self._loop = asyncio.get_running_loop()
        async with asyncio.TaskGroup() as group:
            for _ in range(self._workers):
                group.create_task(self._work())

    @property
    def in_flight(self) -> int:
        return self._dispatcher.busy

    # --- choosing a job ------------------------------------------------------------------------

    async def _work(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            job = self._next(loop)
            if job is None:
                future = loop.create_future()
                self._idle.append(future)
                await future
                continue
            await job
            if self._stopping and not self._dispatcher.busy:
                self.drained.set()

    def _next(self, loop: asyncio.AbstractEventLoop) -> Awaitable[None] | None:
        now = loop.time()
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
        if (self._tick is not None and self._fetching < self._max_fetches() and self._waiting < self._prefetch
                and self._dispatcher.pending):
            indexes = self._dispatcher.take(self._fetch_size if self._pipeline.batching else 1)
            if indexes:
                return self._fetch(indexes, self._tick)
        if soonest is not None:
            self._wake_at(loop, soonest)
        return None

    def _max_fetches(self) -> int:
        # One DataManager request per pair needs more of them in flight than one per batch of pairs.
        return MAX_FETCHES if self._pipeline.batching else max(MAX_FETCHES, self._workers // 2)

    def _wake(self, count: int) -> None:
        while count > 0 and self._idle:
            future = self._idle.popleft()
            if not future.done():
                future.set_result(None)
                count -= 1

    def _wake_at(self, loop: asyncio.AbstractEventLoop, when: float) -> None:
        """One timer for the earliest thing an idle worker must do (a read due, a bucket refilled)."""
        if self._timer is not None:
            if self._timer_due <= when:
                return
            self._timer.cancel()
        self._timer_due = when
        self._timer = loop.call_at(when, self._timer_fired)

    def _timer_fired(self) -> None:
        self._timer = None
        self._wake(1)

    # --- the jobs ------------------------------------------------------------------------------

    async def _fetch(self, indexes: list[int], tick: Tick) -> None:
        self._fetching += 1
        try:
            works = await self._pipeline.fetch(indexes, tick)
        finally:
            self._fetching -= 1
        for work in works:
            self._windowed.setdefault(work.pair.strategy.delay, collections.deque()).append(work)
        self._waiting += len(works)
        self._wake(min(len(works), self._workers))

    async def _register(self, works: list[Work]) -> None:
        retry = await self._pipeline.register(works)
        if retry:  # 429: back to the front, after the pause the bucket now imposes
            queue = self._windowed.setdefault(works[0].pair.strategy.delay, collections.deque())
            queue.extendleft(reversed(retry))
            self._waiting += len(retry)
        registered = [w for w in works if w.request_id >= 0]
        loop = asyncio.get_running_loop()
        if registered:
            delay = registered[0].pair.strategy.delay
            due = loop.time() + float(delay)
            self._reads.setdefault(delay, collections.deque()).append((due, registered))
            if delay:
                self._wake_at(loop, due)
        if retry:
            self._next_when_allowed()

    async def _read(self, works: list[Work]) -> None:
        retry = await self._pipeline.read(works)
        if retry:
            delay = retry[0].pair.strategy.delay
            self._reads.setdefault(delay, collections.deque()).appendleft((asyncio.get_running_loop().time(), retry))
            self._next_when_allowed()
        if self._dispatcher.pending:
            self._wake(1)  # pairs freed late may be waiting for the newest tick

    def _next_when_allowed(self) -> None:
        loop = asyncio.get_running_loop()
        delay = min(self._api.buckets[REGISTER].delay(), self._api.buckets[READ].delay())
        self._wake_at(loop, loop.time() + max(delay, 0.001))
