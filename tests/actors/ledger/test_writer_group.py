"""The Ledger's writer commits batches that arrive together in one transaction: while the socket edge
still has frames to read (``arriving``), a write waits for them, up to ``HOLD_MAX``."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from actors.ledger.records import Retention, to_row
from actors.ledger.store import LedgerStore
from actors.ledger.writer import HOLD_MAX, PAIRS_DUTY, PAIRS_INTERVAL, LedgerWriter, PendingBatch, pairs_interval
from tests.actors.ledger.helpers import decision
from tests.helpers import FakeClock, async_wait_for, run_async
from transport.ledger_rows import DecisionRow
from transport.protocol import LedgerAck, Message

pytestmark = pytest.mark.both_loops


def batch(batch_id: int) -> PendingBatch:
    rows = [to_row(decision(batch_id * 10 + i)) for i in range(3)]
    assert all(isinstance(row, DecisionRow) for row in rows)
    return PendingBatch(b"peer", batch_id, rows, 0)  # type: ignore[arg-type]


def test_batches_arriving_together_are_committed_together_and_a_hold_ends(tmp_path: Path) -> None:
    clock = FakeClock()
    acks: list[LedgerAck] = []

    def reply(identity: bytes, message: Message) -> None:
        assert isinstance(message, LedgerAck) and message.error == ""
        acks.append(message)

    writer = LedgerWriter(LedgerStore(str(tmp_path / "ledger.sqlite3")), Retention(), 0.1, reply, clock=clock)

    async def main() -> None:
        task = asyncio.create_task(writer.run())
        try:
            await async_wait_for(lambda: writer.counters["db_open"] == 1)
            # Three batches while the edge still reads: one transaction once it has read them all.
            writer.arriving(True)
            for batch_id in (1, 2, 3):
                writer.submit_batch(batch(batch_id))
                await asyncio.sleep(0.01)  # the writer's turn: without the hold it would write this one alone
            assert acks == [] and writer.counters["transactions"] == 0
            writer.arriving(False)
            await async_wait_for(lambda: len(acks) == 3)
            assert writer.counters["transactions"] == 1 and writer.counters["stored"] == 9
            # Held while frames keep arriving, written once HOLD_MAX has passed (the clock stands
            # still meanwhile: the edge never said it was done).
            writer.arriving(True)
            writer.submit_batch(batch(4))
            await asyncio.sleep(0.01)
            assert len(acks) == 3
            # Meanwhile it waits for the hold's end, not for a retry time long past (it spun on that).
            assert writer.next_due(clock.now) == clock.now + HOLD_MAX
            clock.now += HOLD_MAX
            await async_wait_for(lambda: len(acks) == 4)
            assert writer.counters["transactions"] == 2 and [a.batch_id for a in acks] == [1, 2, 3, 4]
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    run_async(main())


def test_pairs_interval_keeps_updates_of_pairs_to_their_share_of_the_thread() -> None:
    assert pairs_interval(0.0) == PAIRS_INTERVAL and pairs_interval(PAIRS_INTERVAL * PAIRS_DUTY) == PAIRS_INTERVAL
    assert pairs_interval(3.0) == pytest.approx(3.0 / PAIRS_DUTY) and 3.0 / PAIRS_DUTY > PAIRS_INTERVAL


def test_an_update_of_pairs_that_takes_long_spaces_the_next_one(tmp_path: Path) -> None:
    """At 100,000 books an update of ``pairs`` takes seconds: the next waits so that updates take at most
    PAIRS_DUTY of the database thread, and the gauge says how far apart they are."""
    clock = FakeClock()
    store = LedgerStore(str(tmp_path / "ledger.sqlite3"))
    update = store.update_pairs

    def slow_update() -> int:
        clock.now += 3.0  # as if it took 3 s
        return update()

    store.update_pairs = slow_update  # type: ignore[method-assign]
    writer = LedgerWriter(store, Retention(), 0.1, lambda identity, message: None, clock=clock)

    async def main() -> None:
        task = asyncio.create_task(writer.run())
        try:
            await async_wait_for(lambda: writer.counters["db_open"] == 1)
            started = clock.now
            writer.submit_batch(batch(1))
            await async_wait_for(lambda: writer.counters["pairs_updates"] == 1)
            assert writer.counters["pairs_interval_ms"] == round(1000 * 3.0 / PAIRS_DUTY)
            clock.now = started + 3.0 / PAIRS_DUTY - 0.5  # not yet: a write goes alone
            writer.submit_batch(batch(2))
            await async_wait_for(lambda: writer.counters["stored"] == 6)
            assert writer.counters["pairs_updates"] == 1 and store.pending_pairs > 0
            clock.now = started + 3.0 / PAIRS_DUTY
            writer.submit_batch(batch(3))
            await async_wait_for(lambda: writer.counters["pairs_updates"] == 2)
            await async_wait_for(lambda: writer.counters["stored"] == 9)
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    run_async(main())
