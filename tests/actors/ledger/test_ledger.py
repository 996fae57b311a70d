"""The Ledger actor over real sockets (in this process, ipc://): a batch is acknowledged only once it is
committed; bad frames, wrong messages and bad decisions are rejected and counted; a flooding peer does
not starve it; a bad, full or locked database is refused with the reason, counted, and retried, while
the Ledger stays up and nothing uncommitted is ever acknowledged."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from decimal import Decimal
from pathlib import Path

import msgpack
import pytest
import zmq
import zmq.asyncio

from actors.ledger.actor import Ledger
from actors.ledger.options import LedgerOptions
from actors.ledger.store import Written
from actors.ledger.writer import QUEUE_MAX, TRANSACTION_MAX
from tests.actors.ledger.helpers import T0, decision, keys, rows
from tests.helpers import FakeClock, async_wait_for, run_async
from transport import limits, protocol
from transport.ledger_rows import DecisionRow
from transport.protocol import (
    Decision,
    LastDecidedReply,
    LastDecidedRequest,
    LedgerAck,
    LedgerBatch,
    Message,
    Tick,
)
from transport.sockets import Sockets

pytestmark = pytest.mark.both_loops  # uvloop: the loop every actor runs on in production

RETRY = 0.2  # seconds between two tries of an unavailable database (every Ledger here)


class Peer:
    """A bare DEALER: sends what it is told, hands back every reply."""

    def __init__(self, ctx: zmq.asyncio.Context, endpoint: str) -> None:
        self.sock = ctx.socket(zmq.DEALER)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.connect(endpoint)

    async def send(self, message: Message | bytes) -> None:
        await self.sock.send(message if isinstance(message, bytes) else protocol.encode(message))

    async def reply(self, within: float = 5.0) -> Message:
        async with asyncio.timeout(within):
            return protocol.decode(await self.sock.recv())

    async def batch(self, batch_id: int, decisions: list[Decision], within: float = 5.0) -> LedgerAck:
        await self.send(LedgerBatch(batch_id, tuple(decisions)))
        while True:
            reply = await self.reply(within)
            if isinstance(reply, LedgerAck) and reply.batch_id == batch_id:
                return reply

    async def ack(self) -> LedgerAck:
        reply = await self.reply()
        assert isinstance(reply, LedgerAck)
        return reply

    async def ask(self, pairs: list[tuple[str, str]], request_id: int = 1) -> LastDecidedReply:
        await self.send(LastDecidedRequest(request_id, tuple(pairs)))
        reply = await self.reply()
        assert isinstance(reply, LastDecidedReply)
        return reply


Body = Callable[[Ledger, Peer, zmq.asyncio.Context, str], Awaitable[None]]


def serve(tmp_path: Path, body: Body, limit: float = 30.0, clock: Callable[[], float] = time.monotonic,
          **options: object) -> Ledger:
    """Run a Ledger on ``tmp_path/ledger.sqlite3`` (unless ``db`` is given) while ``body`` runs;
    ``clock`` schedules its retries."""
    endpoint = f"ipc://{tmp_path}/ledger.sock"
    opts = LedgerOptions(**{"ledger_endpoint": endpoint, "db": str(tmp_path / "ledger.sqlite3"), "db_retry": RETRY,
                            **options})  # type: ignore[arg-type]
    holder: list[Ledger] = []

    async def main() -> None:
        ctx = zmq.asyncio.Context()
        ledger = Ledger(Sockets(ctx), opts, clock)
        holder.append(ledger)
        peer = Peer(ctx, endpoint)
        stop = asyncio.Event()
        try:
            async with asyncio.timeout(limit), asyncio.TaskGroup() as group:
                run = group.create_task(ledger.run(stop))
                try:
                    await body(ledger, peer, ctx, endpoint)
                finally:
                    stop.set()
                stopped_at = time.monotonic()
                await run
                assert time.monotonic() - stopped_at < 2.0, "the actor must stop promptly"
        finally:
            ctx.destroy(linger=0)

    run_async(main(), timeout=60)
    return holder[0]


@contextlib.contextmanager
def locked_by_another_process(db: Path) -> Iterator[None]:
    """Another process holds the database's write lock until the block ends."""
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sqlite3, sys; c = sqlite3.connect(sys.argv[1], isolation_level=None); "
         "c.execute('BEGIN IMMEDIATE'); print('locked', flush=True); sys.stdin.read()", str(db)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert holder.stdin is not None and holder.stdout is not None
    try:
        assert holder.stdout.readline().strip() == "locked"
        yield
    finally:
        holder.stdin.close()  # it exits, and its lock goes with it
        holder.wait(10)


def test_a_batch_is_acknowledged_with_what_was_stored_and_is_in_the_database(tmp_path: Path) -> None:
    db = tmp_path / "ledger.sqlite3"

    async def body(ledger: Ledger, peer: Peer, ctx: zmq.asyncio.Context, ep: str) -> None:
        ack = await peer.batch(7, [decision(1), decision(2, rule_price="17.00", guardrail=("floor",))])
        assert ack == LedgerAck(7, 2, 0, 0, "")
        assert keys(db) == [("B001", "default", 1), ("B001", "default", 2)]  # committed before the ack
        assert await peer.batch(8, [decision(2), decision(3)]) == LedgerAck(8, 1, 1, 0, "")
        reply = await peer.ask([("B001", "default"), ("B009", "default")])
        assert reply.prices == (decision(3).price, None) and reply.ts == (decision(3).ts, 0.0)

    ledger = serve(tmp_path, body)
    assert (ledger.counters["stored"], ledger.counters["duplicates"], ledger.counters["acks"]) == (3, 1, 2)
    assert rows(db)[1]["guardrail"] == '["floor"]' and rows(db)[1]["rule_price"] == "17.00"


def test_garbage_wrong_messages_and_bad_decisions_are_rejected_counted_and_logged_escaped(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="ledger")
    db = tmp_path / "ledger.sqlite3"

    async def body(ledger: Ledger, peer: Peer, ctx: zmq.asyncio.Context, ep: str) -> None:
        await peer.send(b"\x00garbage")
        await peer.send(msgpack.packb([1, 10, 1, [[1.0, 1, "b"]]]))  # a batch of the wrong schema
        await peer.send(msgpack.packb([2, 10, 1, []]))  # another protocol version
        await peer.send(Tick(1, 1.0, 1.0, 1.0))  # a valid message the Ledger does not take
        await peer.sock.send_multipart([b"two", b"frames"])
        bad = decision(2, book="B\nforged line")
        assert await peer.batch(1, [decision(1), bad]) == LedgerAck(1, 1, 0, 1, "")
        await async_wait_for(lambda: ledger.counters["bad_frames"] == 5)

    ledger = serve(tmp_path, body)
    assert ledger.counters["rejected"] == 1 and keys(db) == [("B001", "default", 1)]
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert "rejected decision book=B\\nforged line" in text and "\nforged line" not in text
    assert "unexpected Tick" in text and "not msgpack" in text


def test_a_flooding_peer_does_not_starve_the_loop(tmp_path: Path) -> None:
    async def body(ledger: Ledger, peer: Peer, ctx: zmq.asyncio.Context, ep: str) -> None:
        flood = ctx.socket(zmq.DEALER)
        flood.setsockopt(zmq.LINGER, 0)
        flood.setsockopt(zmq.SNDHWM, 100_000)
        flood.connect(ep)
        await peer.ask([("B001", "default")])  # connected and serving
        sent = 0
        for _ in range(8000):  # queued faster than they are read (the Ledger's loop is this loop)
            try:
                flood.send(b"\xc1junk", zmq.NOBLOCK)
                sent += 1
            except zmq.Again:
                break
        # A probe queued behind the flood is answered while the flood is still being read: the
        # receive loop yields between bursts, so this coroutine (on the same loop) gets its turns.
        await peer.send(LastDecidedRequest(2, ()))
        reply = await peer.reply(10.0)
        assert isinstance(reply, LastDecidedReply) and reply.request_id == 2
        assert ledger.counters["bad_frames"] < sent
        await async_wait_for(lambda: ledger.counters["bad_frames"] == sent, 20.0)
        flood.close(0)

    serve(tmp_path, body)


def test_a_full_queue_refuses_batches_at_once_as_busy(tmp_path: Path) -> None:
    db = tmp_path / "ledger.sqlite3"
    release = threading.Event()

    async def body(ledger: Ledger, peer: Peer, ctx: zmq.asyncio.Context, ep: str) -> None:
        assert (await peer.batch(1, [decision(0)])).error == ""
        real_write = ledger._store.write

        def slow_write(batches: Sequence[Sequence[DecisionRow]]) -> list[Written]:
            release.wait(10.0)  # the database thread is busy (a slow disk)
            return real_write(batches)

        ledger._store.write = slow_write  # type: ignore[method-assign]
        per = limits.LEDGER_BATCH_MAX
        # Up to a transaction's worth in the thread, QUEUE_MAX queued, at least 3 batches refused.
        count = (TRANSACTION_MAX + QUEUE_MAX) // per + 3
        for b in range(count):
            await peer.send(LedgerBatch(100 + b, tuple(decision(1 + b * per + i) for i in range(per))))
        await async_wait_for(lambda: ledger.counters["busy"] >= 3)  # refused at once, while the thread is busy
        release.set()
        replies = [await peer.ack() for _ in range(count)]
        assert {a.batch_id for a in replies} == set(range(100, 100 + count))
        refused = [a for a in replies if a.error]
        assert all(a.error.startswith("busy") and a.stored == 0 for a in refused)
        assert len(refused) == ledger.counters["busy"] >= 3
        acked = [a.batch_id - 100 for a in replies if not a.error]
        assert all(a.stored == per for a in replies if not a.error)
        expected = {("B001", "default", 0)} | {("B001", "default", 1 + b * per + i) for b in acked for i in range(per)}
        assert keys(db) == sorted(expected)  # exactly what was acknowledged

    try:
        serve(tmp_path, body)
    finally:
        release.set()


def test_a_corrupt_database_is_refused_counted_left_alone_and_retried(tmp_path: Path) -> None:
    db = tmp_path / "ledger.sqlite3"
    garbage = b"SQLite format 2\x00 or rather, not at all\n" * 300
    db.write_bytes(garbage)

    async def body(ledger: Ledger, peer: Peer, ctx: zmq.asyncio.Context, ep: str) -> None:
        await async_wait_for(lambda: ledger.counters["db_errors_corrupt"] >= 2)  # retried
        ack = await peer.batch(1, [decision(1)])
        assert ack.error.startswith("ledger database unavailable: corrupt") and ack.stored == 0
        assert (await peer.ask([("B001", "default")])).error.startswith("ledger database unavailable")
        assert (await peer.ask([])).error == ""  # the Ledger itself still answers
        assert db.read_bytes() == garbage
        db.unlink()  # the operator moves the file away: the next attempt creates a new ledger
        await async_wait_for(lambda: ledger.counters["db_open"] == 1)
        assert (await peer.batch(2, [decision(1)])).stored == 1

    ledger = serve(tmp_path, body)
    assert keys(db) == [("B001", "default", 1)] and ledger.counters["nacks"] == 1


def test_a_full_database_refuses_the_batch_that_does_not_fit_and_acknowledges_only_what_was_committed(
        tmp_path: Path) -> None:
    db = tmp_path / "ledger.sqlite3"
    acked: list[tuple[str, str, int]] = []

    async def body(ledger: Ledger, peer: Peer, ctx: zmq.asyncio.Context, ep: str) -> None:
        await async_wait_for(lambda: ledger.counters["db_open"] == 1)
        for b in range(100):
            batch = [decision(b * 50 + i, "B" * 100) for i in range(50)]
            ack = await peer.batch(b, batch)
            if ack.error:
                assert "full" in ack.error and ack.stored == 0
                break
            acked.extend((d.book, d.strategy, d.tick) for d in batch)
        else:
            raise AssertionError("the database never filled up")
        assert ledger.counters["db_errors_full"] == 1
        reply = await peer.ask([("B" * 100, "default")])  # reads still work on a full database
        assert reply.error == "" and reply.prices[0] is not None

    serve(tmp_path, body, max_db_bytes=128 * 1024)
    assert acked and keys(db) == sorted(acked)


def test_a_locked_database_is_refused_then_written_once_the_lock_is_gone(tmp_path: Path) -> None:
    db = tmp_path / "ledger.sqlite3"
    clock = FakeClock()

    async def body(ledger: Ledger, peer: Peer, ctx: zmq.asyncio.Context, ep: str) -> None:
        await async_wait_for(lambda: ledger.counters["db_open"] == 1)
        with locked_by_another_process(db):
            ack = await peer.batch(1, [decision(1)])
        assert "locked" in ack.error and ledger.counters["db_errors_locked"] == 1
        ack = await peer.batch(2, [decision(1)])  # refused at once until the retry is due
        assert "unavailable" in ack.error and ledger.counters["db_errors_locked"] == 1
        clock.now += RETRY
        assert await peer.batch(3, [decision(1)]) == LedgerAck(3, 1, 0, 0, "")

    serve(tmp_path, body, clock=clock)
    assert keys(db) == [("B001", "default", 1)]


def test_retention_keeps_the_database_within_its_row_limit(tmp_path: Path) -> None:
    db = tmp_path / "ledger.sqlite3"

    async def body(ledger: Ledger, peer: Peer, ctx: zmq.asyncio.Context, ep: str) -> None:
        for b in range(3):
            assert (await peer.batch(b, [decision(b * 100 + i) for i in range(100)])).stored == 100
        await async_wait_for(lambda: ledger.counters["rows"] == 120)

    ledger = serve(tmp_path, body, retain_rows=120)
    assert [k[2] for k in keys(db)] == list(range(180, 300)) and ledger.counters["pruned"] == 180


def test_a_forged_batch_sent_first_does_not_erase_the_real_decisions(tmp_path: Path) -> None:
    db = tmp_path / "ledger.sqlite3"
    real = [decision(t, run=T0, request_id=500 + t) for t in range(1, 6)]
    forged = [dataclasses.replace(d, price=Decimal("0.01"), request_id=900 + d.tick) for d in real]

    async def body(ledger: Ledger, peer: Peer, ctx: zmq.asyncio.Context, ep: str) -> None:
        assert (await peer.batch(1, forged)).stored == 5
        assert await peer.batch(2, real) == LedgerAck(2, 0, 5, 0, "")  # acknowledged: kept, in quarantine
        assert await peer.batch(3, real) == LedgerAck(3, 0, 5, 0, "")  # a resend: not kept twice

    ledger = serve(tmp_path, body)
    assert (ledger.counters["key_collisions"], ledger.counters["collisions_kept"]) == (10, 5)
    assert sorted(r["request_id"] for r in rows(db)) == [901, 902, 903, 904, 905]
    assert sorted(r["request_id"] for r in rows(db, "collisions", "rowid")) == [501, 502, 503, 504, 505]


def test_a_hand_edited_price_is_never_sent_to_a_worker(tmp_path: Path) -> None:
    db = tmp_path / "ledger.sqlite3"

    async def body(ledger: Ledger, peer: Peer, ctx: zmq.asyncio.Context, ep: str) -> None:
        await peer.batch(1, [decision(1), decision(1, "B002")])
        await async_wait_for(lambda: ledger.counters["pairs_pending"] == 0)  # in the pairs table
        editor = sqlite3.connect(db)
        editor.execute("UPDATE pairs SET price = 'a lot' WHERE book = 'B001'")
        editor.commit()
        editor.close()
        reply = await peer.ask([("B001", "default"), ("B002", "default")])
        assert reply.error == "" and reply.prices == (None, decision(1).price)

    serve(tmp_path, body)
