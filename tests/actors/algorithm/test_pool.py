"""The worker pool on both event loops, with fakes for the pipeline and the API (no sockets)."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Any

import pytest

from actors.algorithm.clients.api import READ, REGISTER
from actors.algorithm.clients.pacing import TokenBucket
from actors.algorithm.dispatch import Dispatcher
from actors.algorithm.pool import Pool
from actors.algorithm.strategies import Pair, Strategy
from tests.helpers import run_async
from transport.protocol import Tick

pytestmark = pytest.mark.both_loops


class SlowStartBucket(TokenBucket):
    """Says "wait a fraction of a millisecond" for its first ``times`` asks, then "now": on uvloop a timer
    that short is a plain Handle (``call_at`` with a time due within 0.5 ms runs it as ``call_soon``)."""

    def __init__(self, times: int) -> None:
        super().__init__()
        self._times = times

    def delay(self) -> float:
        if self._times > 0:
            self._times -= 1
            return 0.0002
        return 0.0


class FakeApi:
    def __init__(self, register_waits: int) -> None:
        self.buckets: dict[str, TokenBucket] = {REGISTER: SlowStartBucket(register_waits), READ: TokenBucket()}


class FakeWork:
    def __init__(self, index: int, pair: Pair) -> None:
        self.index = index
        self.pair = pair
        self.request_id = -1


class FakePipeline:
    """Every step succeeds at once; a read decides the pairs (frees them in the dispatcher)."""

    batching = True

    def __init__(self, pairs: list[Pair], dispatcher: Dispatcher) -> None:
        self._pairs = pairs
        self._dispatcher = dispatcher
        self.decided: list[int] = []
        self.done = asyncio.Event()

    async def fetch(self, indexes: list[int], tick: Tick) -> list[Any]:
        await asyncio.sleep(0)
        return [FakeWork(i, self._pairs[i]) for i in indexes]

    async def register(self, works: list[Any]) -> list[Any]:
        await asyncio.sleep(0)
        for number, work in enumerate(works):
            work.request_id = number
        return []

    async def read(self, works: list[Any]) -> list[Any]:
        await asyncio.sleep(0)
        for work in works:
            self.decided.append(work.index)
            self._dispatcher.finish(work.index)
        if len(self.decided) == len(self._pairs):
            self.done.set()
        return []


def test_a_timer_due_at_once_never_crashes_the_pool() -> None:
    """The soak's crash: with a delay x and an endpoint's bucket asking for a sub-millisecond wait, two idle
    workers arm the wake-up timer in turn; uvloop hands back a plain Handle for a time already due, which
    has no ``when()``. Every pair of the tick must still be decided."""
    strategy = Strategy("default", delay=Decimal("0.01"))
    pairs = [Pair(f"B{i:03d}", strategy) for i in range(40)]
    dispatcher = Dispatcher(len(pairs))
    pipeline = FakePipeline(pairs, dispatcher)
    pool = Pool(dispatcher, pipeline, FakeApi(register_waits=50), workers=4, api_batch=1,  # type: ignore[arg-type]
                dm_batch=8)

    async def scenario() -> None:
        async with asyncio.TaskGroup() as group:
            runner = group.create_task(pool.run())
            dispatcher.new_tick(0)
            pool.new_tick(Tick(seq=0, scheduled_at=0.0, sent_at=0.0, interval=1.0, t0=0.0))
            await pipeline.done.wait()
            runner.cancel()

    run_async(scenario(), timeout=10)
    assert sorted(pipeline.decided) == list(range(len(pairs)))
