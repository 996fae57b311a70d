"""A stand-in for the Ledger's writer: creates a database in the Ledger's schema (the team brief's
shared contract, copied verbatim below) and writes decisions into it the way the Ledger does (a
decision row, and its pair's row upserted with the counts), with the standard ``sqlite3`` module.

The Dashboard only reads that database; its tests, its benchmark and its screenshot command use this
module to make one. Once the Ledger lands, its own writer can replace this (the schema is the same).
"""

from __future__ import annotations

import json
import random
import sqlite3
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Final

from actors.algorithm.pricing import PricingRule, avg_comp_price, reprice

SCHEMA: Final = """
CREATE TABLE schema_version (version INTEGER NOT NULL);
CREATE TABLE decisions (
    book TEXT NOT NULL, strategy TEXT NOT NULL, tick INTEGER NOT NULL,
    ts REAL NOT NULL,
    prices TEXT NOT NULL,
    avg_comp_price TEXT NOT NULL,
    request_id INTEGER NOT NULL,
    sold INTEGER NOT NULL,
    price TEXT NOT NULL,
    rule_price TEXT,
    guardrail TEXT,
    PRIMARY KEY (book, strategy, tick)
) WITHOUT ROWID;
CREATE INDEX decisions_by_ts ON decisions (ts);
CREATE TABLE pairs (
    book TEXT NOT NULL, strategy TEXT NOT NULL,
    tick INTEGER NOT NULL, ts REAL NOT NULL,
    price TEXT NOT NULL, price_cents INTEGER NOT NULL,
    avg_comp_price TEXT NOT NULL, avg_sort REAL NOT NULL,
    sold INTEGER NOT NULL, guardrail TEXT,
    decisions INTEGER NOT NULL,
    guardrail_hits INTEGER NOT NULL,
    PRIMARY KEY (book, strategy)
) WITHOUT ROWID;
INSERT INTO schema_version VALUES (1);
"""

# The indexes the Dashboard asks the Ledger for: one per sort key of the books table other than the
# primary key, each ending with (book, strategy) so a page deep in either direction walks the index
# instead of sorting the table (see the README's Dashboard section).
PROPOSED_INDEXES: Final = (
    "CREATE INDEX IF NOT EXISTS pairs_by_strategy ON pairs (strategy, book)",
    "CREATE INDEX IF NOT EXISTS pairs_by_price ON pairs (price_cents, book, strategy)",
    "CREATE INDEX IF NOT EXISTS pairs_by_avg ON pairs (avg_sort, book, strategy)",
    "CREATE INDEX IF NOT EXISTS pairs_by_sold ON pairs (sold, book, strategy)",
    "CREATE INDEX IF NOT EXISTS pairs_by_hits ON pairs (guardrail_hits, book, strategy)",
    "CREATE INDEX IF NOT EXISTS pairs_by_decisions ON pairs (decisions, book, strategy)",
    "CREATE INDEX IF NOT EXISTS pairs_by_ts ON pairs (ts, book, strategy)",
)


@dataclass(frozen=True, slots=True)
class Row:
    """One decision as the Ledger stores it."""

    book: str
    strategy: str
    tick: int
    ts: float
    prices: tuple[Decimal, ...]
    avg_comp_price: Decimal
    request_id: int
    sold: bool
    price: Decimal
    rule_price: Decimal | None = None
    guardrail: tuple[str, ...] = ()


def create(path: Path) -> sqlite3.Connection:
    """A new database in WAL mode with the Ledger's schema; the writer's connection."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.executescript(SCHEMA)
    return conn


def create_or_open(path: Path) -> sqlite3.Connection:
    """The writer's connection to a database made by :func:`create`."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    return conn


def write(conn: sqlite3.Connection, rows: Iterable[Row]) -> int:
    """Insert decisions idempotently (key: book, strategy, tick) and keep ``pairs`` up to date, in
    one transaction; the number inserted."""
    inserted = 0
    conn.execute("BEGIN IMMEDIATE")
    try:
        for r in rows:
            guardrail = json.dumps(list(r.guardrail)) if r.guardrail else None
            cursor = conn.execute(
                "INSERT OR IGNORE INTO decisions VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                (r.book, r.strategy, r.tick, r.ts, json.dumps([str(p) for p in r.prices]), str(r.avg_comp_price),
                 r.request_id, int(r.sold), str(r.price), None if r.rule_price is None else str(r.rule_price),
                 guardrail))
            if cursor.rowcount != 1:
                continue
            inserted += 1
            hit = 1 if r.guardrail else 0
            conn.execute(
                "INSERT INTO pairs VALUES (?,?,?,?,?,?,?,?,?,?,1,?) ON CONFLICT (book, strategy) DO UPDATE SET "
                "decisions = decisions + 1, guardrail_hits = guardrail_hits + excluded.guardrail_hits, "
                "tick = excluded.tick, ts = excluded.ts, price = excluded.price, "
                "price_cents = excluded.price_cents, avg_comp_price = excluded.avg_comp_price, "
                "avg_sort = excluded.avg_sort, sold = excluded.sold, guardrail = excluded.guardrail "
                "WHERE excluded.tick >= pairs.tick",
                (r.book, r.strategy, r.tick, r.ts, str(r.price), int(r.price * 100), str(r.avg_comp_price),
                 float(r.avg_comp_price), int(r.sold), guardrail, hit))
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return inserted


def synthetic(books: Iterable[str], strategies: Iterable[str], ticks: int, *, seed: int = 1,
              start: float | None = None, interval: float = 5.0, floor: Decimal | None = None) -> Iterator[Row]:
    """Plausible decisions: a competitor random walk per book, priced by the task's rule (with an
    optional floor, reported as a guardrail the way issue 12 specifies)."""
    rng = random.Random(seed)
    names = list(strategies)
    t0 = time.time() - ticks * interval if start is None else start
    request_id = 1_000_000
    for book in books:
        level = Decimal(rng.randint(800, 4000)) / 100
        window: list[Decimal] = [level] * 5
        for tick in range(ticks):
            level = max(Decimal("1.00"), level + Decimal(rng.randint(-60, 60)) / 100)
            window = [*window[1:], level]
            avg = avg_comp_price(window)
            for strategy in names:
                request_id += 1
                sold = request_id % 2 == 0
                rule_price = reprice(avg, sold, PricingRule())
                price, guardrail = rule_price, tuple[str, ...]()
                if floor is not None and rule_price < floor:
                    price, guardrail = floor, ("floor",)
                yield Row(book, strategy, tick, t0 + tick * interval, tuple(window), avg, request_id, sold, price,
                          rule_price if floor is not None else None, guardrail)


def fill(path: Path, books: int, strategies: tuple[str, ...] = ("default",), ticks: int = 1, *,
         batch: int = 20_000, seed: int = 1) -> None:
    """A database of ``books`` x ``strategies`` pairs with ``ticks`` decisions each (ids B000001...)."""
    conn = create(path)
    try:
        ids = (f"B{i:06d}" for i in range(1, books + 1))
        rows = synthetic(ids, strategies, ticks, seed=seed)
        while chunk := [row for _, row in zip(range(batch), rows, strict=False)]:
            write(conn, chunk)
    finally:
        conn.close()
