"""The steps of a decision against fakes of the DataManager and the APIServer (no sockets): each step
moves a work to its next state, or skips it with a counted reason."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

import pytest

from actors.algorithm.pairs import PairTable, State, Work
from actors.algorithm.pipeline import RATE_LIMIT_ATTEMPTS, Pipeline
from actors.pricing.rule import avg_comp_price, reprice, to_cents
from tests.actors.algorithm.fakes import FakeApi, FakeDataManager, ListSink, table, tick, window
from tests.helpers import run_async

pytestmark = pytest.mark.both_loops


def make(books: Sequence[str], dm: FakeDataManager | None = None, api: FakeApi | None = None, *,
         dm_batch: int = 100, api_batch: int = 1) -> tuple[Pipeline, PairTable, FakeDataManager, FakeApi, ListSink]:
    pairs = table(books)
    dm = dm or FakeDataManager()
    api = api or FakeApi()
    sink = ListSink()
    return Pipeline(pairs, dm, api, sink, dm_batch=dm_batch, api_batch=api_batch), pairs, dm, api, sink


def works(pairs: PairTable, seq: int = 0) -> list[Work]:
    out = []
    for record in pairs:
        record.work = Work(record, tick(seq))
        out.append(record.work)
    return out


async def decide_all(pipeline: Pipeline, todo: list[Work]) -> None:
    """Every step once, in order (no 429 here)."""
    ready = await pipeline.fetch(todo)
    assert await pipeline.register(ready) == []
    assert await pipeline.read([w for w in ready if w.state is State.READING]) == []


def test_a_tick_is_fetched_in_one_batch_registered_read_and_decided_by_the_rule() -> None:
    books = ["A", "B", "C"]
    pipeline, pairs, dm, _, sink = make(books)
    todo = works(pairs)

    async def body() -> None:
        ready = await pipeline.fetch(todo)
        assert ready == todo and all(w.state is State.REGISTERING for w in todo)
        assert dm.requests == [("many", 0, ("A", "B", "C"))]
        assert [w.sent for w in todo] == [to_cents(avg_comp_price(window(b, 0))) for b in books]
        assert await pipeline.register(ready) == []
        assert all(w.state is State.READING for w in todo) and len({w.request_id for w in todo}) == 3
        assert await pipeline.read(ready) == []

    run_async(body())
    assert all(w.state is State.DECIDED for w in todo)
    assert sink.keys() == [("A", 0), ("B", 0), ("C", 0)]
    for decision in sink.decisions:
        assert decision.sold == (decision.request_id % 2 == 0)
        assert decision.price == reprice(avg_comp_price(window(decision.book, 0)), decision.sold)
        assert pairs.get((decision.book, "default")).last == decision.price  # type: ignore[union-attr]
    assert pipeline.counters["decisions"] == 3 and pipeline.counters["skipped"] == 0


def test_the_next_decision_registers_the_last_price_and_a_remembered_one_comes_first() -> None:
    pipeline, pairs, _, api, sink = make(["A", "B"])
    assert pipeline.remember(("A", "default"), Decimal("12.34"))
    assert not pipeline.remember(("Z", "default"), Decimal("1.00"))  # not ours
    assert not pipeline.remember(("B", "default"), Decimal("0.001"))  # not a price the API takes

    async def body() -> None:
        await decide_all(pipeline, works(pairs, 0))
        for record in pairs:
            record.work = None
        await decide_all(pipeline, works(pairs, 1))

    run_async(body())
    sent = [price for _, price in api.registered]
    first = {d.book: d.price for d in sink.decisions if d.tick == 0}
    assert sent[:2] == [Decimal("12.34"), to_cents(avg_comp_price(window("B", 0)))]
    assert sent[2:] == [first["A"], first["B"]]


def test_skip_reasons_are_counted_and_a_books_first_failure_logged_once(caplog: pytest.LogCaptureFixture) -> None:
    dm = FakeDataManager(refused=frozenset({"GONE"}), short=frozenset({"SHORT"}))
    api = FakeApi(refused=frozenset({"BAD"}))
    pipeline, pairs, _, _, sink = make(["OK", "GONE", "SHORT", "BAD"], dm, api, api_batch=10)

    async def body() -> None:
        for seq in range(2):
            for record in pairs:
                record.work = None
            await decide_all(pipeline, works(pairs, seq))

    run_async(body())
    c = pipeline.counters
    assert (c["skipped_dm_book"], c["skipped_window"], c["skipped_api_item"], c["skipped"]) == (2, 2, 2, 6)
    assert c["decisions"] == 2 and sink.keys() == [("OK", 0), ("OK", 1)]
    states = {record.pair.book: record.work.state for record in pairs}  # type: ignore[union-attr]
    assert states == {"OK": State.DECIDED, "GONE": State.SKIPPED, "SHORT": State.SKIPPED, "BAD": State.SKIPPED}
    for book in ("GONE", "BAD"):  # book-specific failures: logged the first time only
        assert len([m for m in caplog.messages if m.startswith(f"first failure of book={book}")]) == 1
    assert not [m for m in caplog.messages if m.startswith("first failure of book=SHORT")]  # not book-specific


@pytest.mark.parametrize("dm_batch", [100, 1])
def test_a_data_file_every_book_fails_on_is_not_logged_once_per_pair(dm_batch: int,
                                                                      caplog: pytest.LogCaptureFixture) -> None:
    # Issue 21: in follow mode a semicolon file made 40 "first failure" lines for 40 pairs, one cause.
    dm = FakeDataManager(file_error="bad header in x.csv: the header has no 'price' column")
    pipeline, pairs, _, _, _ = make(["A", "B", "C"], dm, dm_batch=dm_batch)
    todo = works(pairs)
    assert run_async(pipeline.fetch(todo)) == []
    assert all(w.state is State.SKIPPED and w.retry for w in todo)  # tried again when the tick repeats
    assert (pipeline.counters["skipped_dm"], pipeline.counters["skipped_dm_book"]) == (3, 0)
    assert not [m for m in caplog.messages if m.startswith("first failure")]
    assert [m for m in caplog.messages if m.startswith("skipped book=A")] == [
        "skipped book=A strategy=default tick=0: DataManager refused A@0: data file unavailable: bad header in "
        "x.csv: the header has no 'price' column (tried again when the tick is repeated)"]


def test_a_datamanager_down_skips_the_whole_fetch() -> None:
    pipeline, pairs, _, _, _ = make(["A", "B"], FakeDataManager(down=True))
    todo = works(pairs)
    assert run_async(pipeline.fetch(todo)) == []
    assert all(w.state is State.SKIPPED for w in todo)
    assert pipeline.counters["skipped_dm"] == 2


def test_a_datamanager_without_batches_is_asked_per_book() -> None:
    pipeline, pairs, dm, _, _ = make(["A", "B"], FakeDataManager(batches=None, old=True))
    todo = works(pairs)
    assert run_async(pipeline.fetch(todo)) == todo  # the batch refused: the same works, one by one
    assert run_async(pipeline.fetch(works(pairs, 1)))  # known from then on: no batch tried
    assert [kind for kind, _, _ in dm.requests] == ["many", "one", "one", "one", "one"]


def test_a_429_is_retried_then_skipped_after_the_third_attempt() -> None:
    api = FakeApi(limited={"register": RATE_LIMIT_ATTEMPTS})
    pipeline, pairs, _, _, _ = make(["A"], api=api)
    todo = works(pairs)

    async def body() -> list[int]:
        ready = await pipeline.fetch(todo)
        attempts = []
        while ready:
            ready = await pipeline.register(ready)
            attempts.append(todo[0].attempts)
            assert todo[0].state is (State.REGISTERING if ready else State.SKIPPED)
        return attempts

    assert run_async(body()) == [1, 2, 3]
    c = pipeline.counters
    assert (c["rate_limited"], c["skipped_rate_limited"], c["skipped"]) == (3, 1, 1)
    assert api.calls == [("register", 1)] * 3


def test_a_429_on_a_read_keeps_the_work_reading_and_the_next_attempt_decides() -> None:
    api = FakeApi(limited={"read": 1})
    pipeline, pairs, _, _, sink = make(["A"], api=api)
    todo = works(pairs)

    async def body() -> None:
        ready = await pipeline.fetch(todo)
        await pipeline.register(ready)
        assert await pipeline.read(ready) == todo
        assert todo[0].state is State.READING
        assert await pipeline.read(ready) == []

    run_async(body())
    assert todo[0].state is State.DECIDED and len(sink.decisions) == 1
    assert pipeline.counters["skipped"] == 0


def test_a_price_outside_the_limits_is_refused_before_it_is_sent() -> None:
    pipeline, pairs, _, api, sink = make(["A"])
    pairs[0].last = Decimal("20000000.00")  # above PRICE_MAX: restored by a buggy store, say
    todo = works(pairs)
    assert run_async(pipeline.fetch(todo)) == []
    assert todo[0].state is State.SKIPPED and api.registered == [] and sink.decisions == []
    assert pipeline.counters["refused_price_above_max"] == 1


def test_works_of_two_ticks_get_the_windows_of_their_own_tick() -> None:
    pipeline, pairs, dm, _, _ = make(["A", "B"])
    todo = [Work(pairs[0], tick(3)), Work(pairs[1], tick(4))]
    assert run_async(pipeline.fetch(todo)) == todo
    assert dm.requests == [("many", 3, ("A",)), ("many", 4, ("B",))]
    assert [w.prices for w in todo] == [window("A", 3), window("B", 4)]
