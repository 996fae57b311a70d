"""The Ledger client fed from a spool, against the real Ledger (in this process): every kept decision
reaches the Ledger once; a Ledger that is not there yet loses nothing (the spool holds it, and the
client is not *answering*, so nothing waits for it); a worker that dies before the Ledger acknowledged
re-delivers from its spool at the next start and the Ledger counts duplicates, never a second row."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
import zmq
import zmq.asyncio

from actors.algorithm.clients.ledger import LedgerClient
from actors.algorithm.clients.outbox import LedgerPolicy
from actors.algorithm.spool.spool import Spool
from actors.ledger.actor import Ledger
from tests.actors.ledger.helpers import decision, keys, with_ledger
from tests.helpers import async_wait_for, run_async
from transport.protocol import Decision, decision_record
from transport.sockets import Sockets

pytestmark = pytest.mark.both_loops

FAST = LedgerPolicy(ack_timeout=0.5, retry_min=0.05, retry_max=0.2, query_timeout=0.3, resume_timeout=1.0)
Body = Callable[[Spool[Decision], LedgerClient, zmq.asyncio.Context, str], Awaitable[None]]


def worker(spool_dir: Path, endpoint: str, body: Body, *, clean: bool = True) -> LedgerClient:
    """A worker's spool and Ledger client running ``body``; ``clean`` False ends as a SIGKILL would: the
    spool is not closed (its acknowledged mark not written)."""
    holder: list[LedgerClient] = []

    async def main() -> None:
        ctx = zmq.asyncio.Context()
        spool: Spool[Decision] = Spool(spool_dir, max_bytes=1 << 20, on_durable=lambda _: None)
        client = LedgerClient(Sockets(ctx), endpoint, FAST, spool=spool)
        holder.append(client)
        await spool.open()
        try:
            async with asyncio.TaskGroup() as group:
                runner = group.create_task(client.run())
                try:
                    await body(spool, client, ctx, endpoint)
                finally:
                    runner.cancel()
        finally:
            client.close()
            ctx.destroy(linger=0)
            if clean:
                await spool.close()
            else:
                spool._disk.close()

    run_async(main(), timeout=60)
    return holder[0]


def keep(spool: Spool[Decision], ds: list[Decision]) -> None:
    for d in ds:
        spool.append(decision_record(d), d, d.run, d.tick)


def test_kept_decisions_reach_the_ledger_once_even_when_it_comes_late(tmp_path: Path) -> None:
    db = tmp_path / "ledger.sqlite3"
    ds = [decision(t, f"B{t % 9}") for t in range(1200)]

    async def body(spool: Spool[Decision], client: LedgerClient, ctx: zmq.asyncio.Context, endpoint: str) -> None:
        keep(spool, ds[:600])
        assert await spool.flush(10)
        await async_wait_for(lambda: client.counters["ledger_unconnected"] >= 1)  # nobody there yet
        assert not client.answering and spool.backlog == 600  # kept, waiting; nothing to wait for

        async def with_it(ledger: Ledger) -> None:
            keep(spool, ds[600:])
            assert await spool.flush(10)
            assert await client.flush(20)
            assert client.answering

        await with_ledger(ctx, endpoint, db, with_it)

    client = worker(tmp_path / "spool", f"ipc://{tmp_path}/l.sock", body)
    assert sorted(keys(db)) == sorted((d.book, d.strategy, d.tick) for d in ds)
    assert client.counters["ledger_acked"] == 1200
    # A duplicate only from a batch sent again (its ack later than the 0.5 s timeout on a loaded machine).
    assert client.counters["ledger_duplicates"] == 0 or client.counters["ledger_resends"] >= 1


def test_a_worker_killed_before_the_acknowledgement_redelivers_and_the_ledger_keeps_one_row(tmp_path: Path) -> None:
    db = tmp_path / "ledger.sqlite3"
    endpoint = f"ipc://{tmp_path}/l.sock"
    ds = [decision(t, f"B{t % 5}") for t in range(300)]

    async def killed(spool: Spool[Decision], client: LedgerClient, ctx: zmq.asyncio.Context, endpoint: str) -> None:
        async def with_it(ledger: Ledger) -> None:
            keep(spool, ds)
            assert await spool.flush(10)
            await client.flush(20)  # the Ledger has them all; the mark is never written (killed)

        await with_ledger(ctx, endpoint, db, with_it)

    async def restarted(spool: Spool[Decision], client: LedgerClient, ctx: zmq.asyncio.Context, endpoint: str) -> None:
        async def with_it(ledger: Ledger) -> None:
            assert await client.flush(20)

        await with_ledger(ctx, endpoint, db, with_it)

    worker(tmp_path / "spool", endpoint, killed, clean=False)
    again = worker(tmp_path / "spool", endpoint, restarted)
    assert again.counters["ledger_acked"] > 0  # something was delivered again...
    assert again.counters["ledger_duplicates"] == again.counters["ledger_acked"]  # ...as duplicates only
    assert len(keys(db)) == 300 == len(set(keys(db)))
