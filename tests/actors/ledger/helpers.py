"""What the Ledger's tests share: decisions to store, the database read back independently (plain
sqlite3, no project code), and a Ledger actor run in the test's event loop."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Awaitable, Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import zmq.asyncio

from actors.ledger.actor import Ledger
from actors.ledger.options import LedgerOptions
from transport.protocol import Decision
from transport.sockets import Sockets

T0 = float(int(time.time()) - 86_400)  # decisions of a day ago: within any retention the tests leave on


def decision(tick: int = 1, book: str = "B001", strategy: str = "default", *, ts: float | None = None,
             price: str = "16.18", sold: bool = False, request_id: int | None = None,
             rule_price: str | None = None, guardrail: tuple[str, ...] = (), run: float = 0.0) -> Decision:
    return Decision(T0 + tick if ts is None else ts, tick, book, strategy,
                    (Decimal("18.02"), Decimal("17.98"), Decimal("17.99"), Decimal("17.94"), Decimal("17.95")),
                    Decimal("17.976"), 1000 + tick if request_id is None else request_id, sold, Decimal(price),
                    None if rule_price is None else Decimal(rule_price), guardrail, run)


def rows(db: Path, table: str = "decisions", order: str = "book, strategy, run, tick") -> list[dict[str, Any]]:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        conn.row_factory = sqlite3.Row
        return [dict(row) for row in conn.execute(f"SELECT * FROM {table} ORDER BY {order}")]
    finally:
        conn.close()


def keys(db: Path) -> list[tuple[str, str, int]]:
    """(book, strategy, tick) of every stored decision, in key order: the identity within one run (the
    tests' decisions are of one run unless they say otherwise; :func:`rows` has ``run``)."""
    return [(r["book"], r["strategy"], r["tick"]) for r in rows(db)]


async def with_ledger(ctx: zmq.asyncio.Context, endpoint: str, db: Path,
                      body: Callable[[Ledger], Awaitable[None]], **options: object) -> None:
    """A Ledger actor on ``endpoint`` and ``db`` in this event loop while ``body`` runs."""
    ledger = Ledger(Sockets(ctx), LedgerOptions(ledger_endpoint=endpoint, db=str(db), db_retry=0.1, **options))  # type: ignore[arg-type]
    stop = asyncio.Event()
    async with asyncio.TaskGroup() as group:
        run = group.create_task(ledger.run(stop))
        try:
            await body(ledger)
        finally:
            stop.set()
        await run
