"""The worker pool on both event loops, with fakes for the pipeline, the DataManager, the API and the clock
(no sockets)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from decimal import Decimal

import pytest

from actors.algorithm.clients.api import READ, REGISTER
from actors.algorithm.clients.pacing import TokenBucket
from actors.algorithm.dispatch import Dispatcher, NewTick
from actors.algorithm.pairs import PairTable, State, Work
from actors.algorithm.pipeline import Pipeline
from actors.algorithm.pool import Pool
from actors.pricing.rule import avg_comp_price, to_cents
from actors.pricing.strategies import Pair, Strategy
from tests.actors.algorithm import fakes
from tests.helpers import async_wait_for, run_async
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


class FakePipeline:
    """Every step succeeds at once; a read decides the pairs (the pool then frees them)."""

    batching = True

    def __init__(self, pairs: list[Pair]) -> None:
        self._pairs = pairs
        self.decided: list[int] = []
        self.done = asyncio.Event()

    async def fetch(self, works: list[Work]) -> list[Work]:
        await asyncio.sleep(0)
        for work in works:
            work.state = State.REGISTERING
        return works

    async def register(self, works: list[Work]) -> list[Work]:
        await asyncio.sleep(0)
        for number, work in enumerate(works):
            work.request_id = number
            work.state = State.READING
        return []

    async def read(self, works: list[Work]) -> list[Work]:
        await asyncio.sleep(0)
        for work in works:
            self.decided.append(work.record.index)
            work.state = State.DECIDED
        if len(self.decided) == len(self._pairs):
            self.done.set()
        return []

    def resumed(self, work: Work) -> bool:
        return True

    def skip(self, work: Work, reason: str | None, detail: str) -> None:
        work.state = State.SKIPPED


def test_a_timer_due_at_once_never_crashes_the_pool() -> None:
    """The soak's crash: with a delay x and an endpoint's bucket asking for a sub-millisecond wait, two idle
    workers arm the wake-up timer in turn; uvloop hands back a plain Handle for a time already due, which
    has no ``when()``. Every pair of the tick must still be decided."""
    strategy = Strategy("default", delay=Decimal("0.01"))
    pairs = [Pair(f"B{i:03d}", strategy) for i in range(40)]
    dispatcher = Dispatcher(PairTable(pairs))
    pipeline = FakePipeline(pairs)
    pool = Pool(dispatcher, pipeline, FakeApi(register_waits=50), workers=4, api_batch=1, dm_batch=8)

    async def scenario() -> None:
        async with asyncio.TaskGroup() as group:
            runner = group.create_task(pool.run())
            pool.new_tick(Tick(seq=0, scheduled_at=0.0, sent_at=0.0, interval=1.0, t0=0.0))
            await pipeline.done.wait()
            runner.cancel()

    run_async(scenario(), timeout=10)
    assert sorted(pipeline.decided) == list(range(len(pairs)))


# --- the pool and the real pipeline, against fakes of the DataManager and the APIServer ---------------

WORKERS = 8


@dataclass
class Rig:
    pool: Pool
    dispatcher: Dispatcher
    pipeline: Pipeline
    dm: fakes.FakeDataManager
    api: fakes.FakeApi
    sink: fakes.ListSink
    clock: fakes.FakeClock

    async def settled(self) -> None:
        """Every worker idle: nothing more happens until a tick, the clock or the test moves."""
        await async_wait_for(lambda: self.pool.idle_workers == WORKERS)


def rig(books: list[str], delay: str = "0", *, limited: dict[str, int] | None = None, retry_after: float = 0.5,
        dm: fakes.FakeDataManager | None = None, api_batch: int = 1, dm_batch: int = 20, resuming: bool = False) -> Rig:
    """The pool over ``books``; the API answers the next ``limited[endpoint]`` calls with 429."""
    clock = fakes.FakeClock()
    pairs = fakes.table(books, delay)
    dm = dm or fakes.FakeDataManager()
    api = fakes.FakeApi(clock, limited=limited or {}, retry_after=retry_after)
    sink = fakes.ListSink()
    pipeline = Pipeline(pairs, dm, api, sink, dm_batch=dm_batch, api_batch=api_batch)
    dispatcher = Dispatcher(pairs)
    pool = Pool(dispatcher, pipeline, api, workers=WORKERS, api_batch=api_batch, dm_batch=dm_batch, clock=clock,
                resuming=resuming)
    return Rig(pool, dispatcher, pipeline, dm, api, sink, clock)


def scenario(r: Rig, body: Callable[[], Awaitable[None]]) -> None:
    """Run the pool while ``body`` runs (from all workers idle), then stop it."""

    async def run() -> None:
        async with asyncio.TaskGroup() as group:
            runner = group.create_task(r.pool.run())
            await r.settled()
            try:
                await body()
            finally:
                runner.cancel()

    run_async(run(), timeout=10)


BOOKS = [f"B{i:02d}" for i in range(50)]


def test_every_pair_of_a_tick_is_decided_once_and_freed() -> None:
    r = rig(BOOKS)

    async def body() -> None:
        r.pool.new_tick(fakes.tick(0))
        await async_wait_for(lambda: len(r.sink.decisions) == len(BOOKS))
        await r.settled()

    scenario(r, body)
    assert r.sink.keys() == [(book, 0) for book in BOOKS]
    assert r.dispatcher.busy == 0 and all(record.state is State.IDLE for record in r.dispatcher._table)
    assert all(len(books) <= 20 for kind, _, books in r.dm.requests if kind == "many")  # --dm-batch


def test_the_delay_x_is_waited_out_on_the_clock_before_the_read() -> None:
    r = rig(BOOKS[:6], delay="5")

    async def body() -> None:
        r.pool.new_tick(fakes.tick(0))
        await r.settled()
        assert len(r.api.registered) == 6 and r.api.reads == []
        r.clock.advance(4.999)
        await r.settled()
        assert r.api.reads == [] and r.sink.decisions == []
        r.clock.advance(0.001)
        await async_wait_for(lambda: len(r.sink.decisions) == 6)

    scenario(r, body)
    assert sorted(r.api.reads) == list(range(101, 107))


def test_pairs_busy_through_new_ticks_decide_each_of_them_in_order_once_free() -> None:
    books = ["A", "B", "C"]
    r = rig(books, delay="5")
    news: list[NewTick] = []

    async def body() -> None:
        r.pool.new_tick(fakes.tick(0))
        await r.settled()  # all three wait out x for tick 0 (a peer held up, say)
        news.append(r.pool.new_tick(fakes.tick(1)))
        news.append(r.pool.new_tick(fakes.tick(2)))
        await r.settled()
        assert r.sink.decisions == []
        r.clock.advance(5)  # tick 0 decided; the pairs are free: started at once for tick 1, carried
        await async_wait_for(lambda: len(r.api.registered) == 6)
        await r.settled()
        r.clock.advance(5)  # tick 1 decided: then tick 2
        await async_wait_for(lambda: len(r.api.registered) == 9)
        await r.settled()
        r.clock.advance(5)
        await async_wait_for(lambda: len(r.sink.decisions) == 9)

    scenario(r, body)
    assert r.sink.keys() == sorted((book, seq) for book in books for seq in (0, 1, 2))  # none missed
    # Tick 2 came before any pair could start for tick 1: tick 1 is carried (its 3 pairs busy).
    assert news == [NewTick(overruns=3, unstarted=0), NewTick(overruns=3, unstarted=0, carried=3)]
    seqs = [seq for _, seq, _ in r.dm.requests]
    assert seqs == sorted(seqs) and set(seqs) == {0, 1, 2}  # windows asked tick by tick, in order


def test_a_429_is_tried_again_after_the_pause_and_skipped_after_the_third() -> None:
    r = rig(["A"], limited={"register": 3}, retry_after=0.5)
    clock = r.clock

    async def body() -> None:
        r.pool.new_tick(fakes.tick(0))
        await r.settled()
        assert r.api.calls == [("register", 1)]
        clock.advance(0.499)  # the pause is the server's retry_after: not a moment sooner
        await r.settled()
        assert len(r.api.calls) == 1
        clock.advance(0.001)
        await async_wait_for(lambda: len(r.api.calls) == 2)
        await r.settled()
        clock.advance(0.5)
        await async_wait_for(lambda: r.pipeline.counters["skipped"] == 1)
        await r.settled()

    scenario(r, body)
    assert r.api.calls == [("register", 1)] * 3 and r.sink.decisions == []
    c = r.pipeline.counters
    assert (c["rate_limited"], c["skipped_rate_limited"]) == (3, 1)
    assert r.dispatcher.busy == 0  # the pair is free for the next tick


def test_a_429_then_success_decides_the_pair() -> None:
    r = rig(["A", "B"], limited={"read": 1}, retry_after=0.25, api_batch=2)
    clock = r.clock

    async def body() -> None:
        r.pool.new_tick(fakes.tick(0))
        await r.settled()
        assert r.api.calls == [("register", 2), ("read", 2)] and r.sink.decisions == []
        clock.advance(0.25)
        await async_wait_for(lambda: len(r.sink.decisions) == 2)

    scenario(r, body)
    assert r.api.calls[-1] == ("read", 2) and r.pipeline.counters["skipped"] == 0


def test_skipped_pairs_are_freed_and_decided_on_the_next_tick() -> None:
    r = rig(BOOKS[:10], dm=fakes.FakeDataManager(down=True))

    async def body() -> None:
        r.pool.new_tick(fakes.tick(0))
        await async_wait_for(lambda: r.pipeline.counters["skipped_dm"] == 10)
        await r.settled()
        assert r.dispatcher.busy == 0
        r.dm.down = False
        r.pool.new_tick(fakes.tick(1))
        await async_wait_for(lambda: len(r.sink.decisions) == 10)

    scenario(r, body)
    assert r.sink.keys() == [(book, 1) for book in BOOKS[:10]]


def test_a_stop_starts_nothing_new_and_drains_what_is_in_flight() -> None:
    r = rig(BOOKS[:4], delay="5")

    async def body() -> None:
        r.pool.new_tick(fakes.tick(0))
        await r.settled()
        r.pool.stop_starting()
        assert not r.pool.drained.is_set()
        r.pool.new_tick(fakes.tick(1))  # a tick arriving while stopping starts nothing
        await r.settled()
        r.clock.advance(5)
        await asyncio.wait_for(r.pool.drained.wait(), 5)

    scenario(r, body)
    assert r.sink.keys() == [(book, 0) for book in BOOKS[:4]]
    assert [seq for _, seq, _ in r.dm.requests] == [0]


def test_registrations_wait_for_the_ledger_and_a_pair_it_has_for_this_tick_is_not_decided_again() -> None:
    """A restarted worker: tick 0 is taken at once (windows fetched), registrations wait for the
    Ledger's answer; a pair it says was decided for this very (run, tick) is not decided again, the
    others register the last price it says (or the average)."""
    r = rig(["A", "B", "C"], resuming=True)
    table = r.dispatcher._table
    run = fakes.tick(0).t0

    async def body() -> None:
        r.pool.new_tick(fakes.tick(0))
        await r.settled()
        assert len(r.dm.requests) == 1 and r.api.registered == []  # parked, not registered
        assert table.remember(("A", "default"), Decimal("12.34"), (run, 0))  # decided before the restart
        assert table.remember(("B", "default"), Decimal("20.00"), (run - 50, 7))  # in an older run
        r.pool.resume_done()
        await async_wait_for(lambda: len(r.sink.decisions) == 2)
        await r.settled()

    scenario(r, body)
    assert r.sink.keys() == [("B", 0), ("C", 0)]
    sent = {prefix.split(b'"book":"')[1][:1].decode(): price for prefix, price in r.api.registered}
    assert sent == {"B": Decimal("20.00"), "C": to_cents(avg_comp_price(fakes.window("C", 0)))}
    assert r.pipeline.counters["decided_before"] == 1 and r.dispatcher.busy == 0


def test_a_pair_the_ledger_has_for_the_next_tick_is_passed_over_when_it_comes() -> None:
    r = rig(["A", "B"], resuming=True)
    table = r.dispatcher._table
    run = fakes.tick(0).t0

    async def body() -> None:
        assert table.remember(("A", "default"), Decimal("12.34"), (run, 3))
        r.pool.resume_done()  # the Ledger answered before any tick came
        r.pool.new_tick(fakes.tick(3))
        await async_wait_for(lambda: len(r.sink.decisions) == 1)
        await r.settled()
        r.pool.new_tick(fakes.tick(4))  # told once: the next tick decides it again
        await async_wait_for(lambda: len(r.sink.decisions) == 3)

    scenario(r, body)
    assert r.sink.keys() == [("A", 4), ("B", 3), ("B", 4)]
    assert r.dispatcher.decided_before == 1


def test_a_stop_while_waiting_for_the_ledger_gives_up_the_waiting_works() -> None:
    r = rig(["A", "B"], resuming=True)

    async def body() -> None:
        r.pool.new_tick(fakes.tick(0))
        await r.settled()
        r.pool.stop_starting()
        await asyncio.wait_for(r.pool.drained.wait(), 5)

    scenario(r, body)
    assert r.api.registered == [] and r.pipeline.counters["skipped_stopping"] == 2


def test_pairs_skipped_for_a_peer_not_answering_try_again_when_the_tick_comes_again() -> None:
    """At a start the DataManager may answer after tick 0 came: those pairs are tried again for tick 0
    when the Scheduler repeats it; a book the DataManager refuses is not (it would refuse again)."""
    r = rig(["A", "B", "GONE"], dm=fakes.FakeDataManager(down=True, refused=frozenset({"GONE"})))

    async def body() -> None:
        r.pool.new_tick(fakes.tick(0))
        await async_wait_for(lambda: r.pipeline.counters["skipped_dm"] == 3)
        await r.settled()
        r.dm.down = False
        assert r.pool.retry_skipped() == 3  # all three skipped for the silence
        await async_wait_for(lambda: len(r.sink.decisions) == 2)
        await r.settled()
        assert r.pool.retry_skipped() == 0  # GONE was refused, not silence: not again within the tick

    scenario(r, body)
    assert r.sink.keys() == [("A", 0), ("B", 0)]
    assert r.pipeline.counters["skipped_dm_book"] == 1 and r.dispatcher.retried == 3
