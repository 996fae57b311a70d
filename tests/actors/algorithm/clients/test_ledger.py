"""The Algorithm's Ledger client: the outbox as a pure object (bounded, batches, resends, backoff), then
the client over real sockets against the real Ledger (in this process), a silent peer and no peer,
without a spool (decisions submitted from memory: ``--no-spool``). The client fed from a spool:
``tests/actors/algorithm/spool/``."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from decimal import Decimal
from pathlib import Path

import pytest
import zmq
import zmq.asyncio
from hypothesis import given, settings
from hypothesis import strategies as st

from actors.algorithm.clients.ledger import LastDecided, LedgerClient
from actors.algorithm.clients.outbox import NEVER, Batch, LedgerPolicy, Outbox
from actors.ledger.actor import Ledger
from tests.actors.ledger.helpers import decision, keys, with_ledger
from tests.helpers import async_wait_for, run_async
from transport.protocol import Decision, decision_from_record, decision_record
from transport.sockets import Sockets

pytestmark = pytest.mark.both_loops  # uvloop: the loop every actor runs on in production

POLICY = LedgerPolicy(outbox_max=10, batch_max=3, in_flight=2, linger=0.05, ack_timeout=1.0, retry_min=0.1,
                      retry_max=0.4)


# --- the outbox (pure) ---------------------------------------------------------------------------------


def add(box: Outbox, tick: int, now: float) -> bool:
    """Decision ``tick`` (its seq is its tick) into ``box``."""
    return box.add(tick, decision_record(decision(tick)), now)


def ticks(batch: object) -> list[int]:
    assert isinstance(batch, Batch)
    return [decision_from_record(record).tick for record in batch.records]


def test_new_decisions_wait_for_a_full_batch_or_the_linger_time() -> None:
    box = Outbox(POLICY)
    assert add(box, 1, 0.0) and add(box, 2, 0.0)
    assert box.next_batch(0.01) is None and box.next_due(0.01) == pytest.approx(0.05)
    first = box.next_batch(0.05)
    assert first is not None and ticks(first) == [1, 2] and first.seqs == (1, 2)
    for t in range(3, 7):
        add(box, t, 0.06)
    full = box.next_batch(0.06)  # a full batch leaves at once
    assert full is not None and ticks(full) == [3, 4, 5]
    assert box.next_batch(1.0) is None
    again = box.next_batch(1.05)  # the first batch, unacknowledged for ack_timeout: again
    assert again is not None and again.batch_id == first.batch_id and again.sends == 2
    assert box.in_flight == 2 and box.next_due(1.05) == pytest.approx(1.06)  # no third batch in flight


def test_a_full_outbox_refuses_new_decisions_and_acknowledgements_make_room() -> None:
    box = Outbox(POLICY)
    assert all(add(box, t, 0.0) for t in range(10))
    assert not add(box, 10, 0.0) and len(box) == 10
    batch = box.next_batch(0.0)
    assert batch is not None
    assert box.acknowledged(batch.batch_id) is batch and len(box) == 7
    assert box.acknowledged(batch.batch_id) is None  # a late second acknowledgement changes nothing
    assert add(box, 10, 0.0)


def test_a_resend_keeps_the_batch_id_and_refusals_back_off_up_to_the_maximum() -> None:
    box = Outbox(POLICY)
    for t in range(3):
        add(box, t, 0.0)
    batch = box.next_batch(0.0)
    assert batch is not None
    waits = []
    now = 0.0
    for _ in range(5):
        assert box.refused(batch.batch_id, now)
        assert box.next_batch(now) is None  # paused
        due = box.next_due(now)
        waits.append(round(due - now, 3))
        now = due
        again = box.next_batch(now)
        assert again is not None and again.batch_id == batch.batch_id and again.records == batch.records
    assert waits == [0.1, 0.2, 0.4, 0.4, 0.4]
    box.acknowledged(batch.batch_id)
    assert len(box) == 0 and box.next_due(now) == NEVER


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["add", "send", "ack", "refuse", "reopen"]), st.floats(0, 0.5)),
                max_size=80))
def test_every_decision_is_kept_until_acknowledged_exactly_once(steps: list[tuple[str, float]]) -> None:
    box = Outbox(POLICY)
    now, tick = 0.0, 0
    added: list[int] = []
    acked: list[int] = []
    sent: list[int] = []
    for action, dt in steps:
        now += dt
        if action == "add":
            if add(box, tick, now):
                added.append(tick)
            tick += 1
        elif action == "send" and (batch := box.next_batch(now)) is not None:
            assert 1 <= len(batch.seqs) <= POLICY.batch_max
            sent.append(batch.batch_id)
        elif action == "ack" and sent:
            if (batch := box.acknowledged(sent.pop(0))) is not None:
                acked.extend(batch.seqs)
        elif action == "refuse" and sent:
            box.refused(sent[-1], now)
        elif action == "reopen":
            box.resend_all(now)
        assert box.in_flight <= POLICY.in_flight and len(box) <= POLICY.outbox_max
        assert len(box) == len(added) - len(acked)
    assert sorted(acked) == sorted(set(acked)) and set(acked) <= set(added)


# --- the client over sockets -----------------------------------------------------------------------


FAST = LedgerPolicy(ack_timeout=0.5, retry_min=0.05, retry_max=0.2, query_timeout=0.3, resume_timeout=1.0)
Body = Callable[[LedgerClient, zmq.asyncio.Context, str], Awaitable[None]]


def run_client(tmp_path: Path, body: Body, policy: LedgerPolicy = FAST,
               on_ack: Callable[[tuple[bytes, ...]], None] | None = None) -> LedgerClient:
    endpoint = f"ipc://{tmp_path}/ledger.sock"
    holder: list[LedgerClient] = []

    async def main() -> None:
        ctx = zmq.asyncio.Context()
        client = LedgerClient(Sockets(ctx), endpoint, policy, on_ack=on_ack)
        holder.append(client)
        try:
            async with asyncio.timeout(30), asyncio.TaskGroup() as group:
                runner = group.create_task(client.run())
                try:
                    await body(client, ctx, endpoint)
                finally:
                    runner.cancel()
        finally:
            client.close()
            ctx.destroy(linger=0)

    run_async(main(), timeout=60)
    return holder[0]


def test_decisions_reach_the_ledger_once_and_resume_reads_them_back(tmp_path: Path) -> None:
    db = tmp_path / "ledger.sqlite3"
    acked: list[Decision] = []
    decisions = [decision(t, f"B{t % 7}") for t in range(500)]

    async def body(client: LedgerClient, ctx: zmq.asyncio.Context, endpoint: str) -> None:
        async def with_it(ledger: Ledger) -> None:
            for d in decisions:
                assert client.submit(d)
            assert await client.flush(10.0)
            found = await client.last_decided([("B1", "default"), ("B1", "other"), ("B6", "default")])
            # the newest of each pair: B1 at tick 498 (498 % 7 == 1), B6 at 496, run 0.0 (the helper's)
            assert found == {("B1", "default"): LastDecided(Decimal("16.18"), 0.0, 498),
                             ("B6", "default"): LastDecided(Decimal("16.18"), 0.0, 496)}
            assert ledger.counters["stored"] == 500

        await with_ledger(ctx, endpoint, db, with_it)

    client = run_client(tmp_path, body, on_ack=lambda records: acked.extend(map(decision_from_record, records)))
    assert sorted(acked, key=lambda d: d.tick) == decisions
    assert len(keys(db)) == 500
    assert client.counters["ledger_acked"] == 500 and client.counters["ledger_outbox"] == 0
    assert client.counters["ledger_batches_sent"] <= 10  # batched, not one message per decision


def test_without_a_ledger_resume_falls_back_in_time_and_the_outbox_waits_then_drains(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)
    db = tmp_path / "ledger.sqlite3"
    policy = LedgerPolicy(outbox_max=300, ack_timeout=0.5, retry_min=0.05, retry_max=0.2, query_timeout=0.3,
                          resume_timeout=0.5)

    async def body(client: LedgerClient, ctx: zmq.asyncio.Context, endpoint: str) -> None:
        started = time.monotonic()
        assert await client.last_decided([("B1", "default")] * 3) == {}
        assert time.monotonic() - started < 2.0
        for t in range(400):  # pricing goes on: the client never blocks, the surplus is dropped
            client.submit(decision(t))
        assert client.unacknowledged == 300
        await async_wait_for(lambda: client.counters["ledger_unconnected"] >= 2)  # tried, found nobody, backed off
        assert not await client.flush(600.0, quiet=0.2)  # nobody acknowledges: a stop does not wait it out

        async def with_it(ledger: Ledger) -> None:  # the Ledger comes (back): the outbox drains
            assert await client.flush(10.0)

        await with_ledger(ctx, endpoint, db, with_it)

    client = run_client(tmp_path, body, policy)
    assert client.counters["ledger_resume_fallbacks"] == 3
    assert client.counters["ledger_dropped"] == 100 and client.counters["ledger_acked"] == 300
    assert [k[2] for k in keys(db)] == list(range(300))
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert "ledger outbox full" in text and "start from the average" in text


def test_a_silent_peer_makes_the_client_reopen_and_resend_to_the_ledger_that_replaces_it(tmp_path: Path) -> None:
    db = tmp_path / "ledger.sqlite3"

    async def body(client: LedgerClient, ctx: zmq.asyncio.Context, endpoint: str) -> None:
        silent = ctx.socket(zmq.ROUTER)  # takes everything, answers nothing (a hung Ledger)
        silent.setsockopt(zmq.LINGER, 0)
        silent.bind(endpoint)
        for t in range(50):
            client.submit(decision(t))
        await silent.recv_multipart()  # the batch went to the silent peer
        await async_wait_for(lambda: client.counters["ledger_reopens"] >= 1)  # silent past the ack timeout
        silent.close(0)

        async def with_it(ledger: Ledger) -> None:
            assert await client.flush(10.0)

        await with_ledger(ctx, endpoint, db, with_it)

    client = run_client(tmp_path, body)
    assert client.counters["ledger_reopens"] >= 1 and client.counters["ledger_resends"] >= 1
    assert [k[2] for k in keys(db)] == list(range(50))


def test_a_ledger_that_cannot_store_is_retried_until_it_can(tmp_path: Path) -> None:
    db = tmp_path / "ledger.sqlite3"
    db.write_bytes(b"not a database" * 100)

    async def body(client: LedgerClient, ctx: zmq.asyncio.Context, endpoint: str) -> None:
        async def with_it(ledger: Ledger) -> None:
            for t in range(20):
                client.submit(decision(t))
            await async_wait_for(lambda: client.counters["ledger_refusals"] >= 2)
            assert client.unacknowledged == 20
            db.unlink()  # repaired
            assert await client.flush(10.0)

        await with_ledger(ctx, endpoint, db, with_it)

    client = run_client(tmp_path, body)
    assert [k[2] for k in keys(db)] == list(range(20)) and client.counters["ledger_acked"] == 20
