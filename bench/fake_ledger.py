"""A stand-in for the Ledger's writer: creates a database with the Ledger's own schema (its migrations,
imported from :mod:`actors.ledger.schema`, so the two can never drift) and writes decisions into it the
way the Ledger does (a decision row, idempotent on (book, strategy, run, tick), and its pair's row
upserted with the counts), with the standard ``sqlite3`` module and none of the Ledger's checks.

The Dashboard only reads that database; its tests, its benchmark and its screenshot command use this
module to make one.
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

from actors.ledger import schema
from actors.pricing.rule import PricingRule, avg_comp_price, reprice_window

# The indexes the Dashboard asks the Ledger for (its schema version 2): one per sort key of the books
# table other than the primary key, each ending with (book, strategy) so a page deep in either
# direction walks the index instead of sorting the table (see the README's Dashboard section).
PROPOSED_INDEXES: Final = tuple(f"CREATE INDEX IF NOT EXISTS {name} ON pairs ({columns})"
                                for name, columns in schema.PAIRS_INDEXES.items())

_DECISION_COLUMNS: Final = ("book, strategy, run, tick, ts, prices, avg_comp_price, request_id, sold, price, "
                            "rule_price, guardrail")
_PAIR_COLUMNS: Final = ("book, strategy, run, tick, ts, price, price_cents, avg_comp_price, avg_sort, sold, "
                        "guardrail, decisions, guardrail_hits")
_NEWEST: Final = ("run", "tick", "ts", "price", "price_cents", "avg_comp_price", "avg_sort", "sold", "guardrail")
# As the Ledger: the counts always add up, the newest fields change only for a decision newer by
# (ts, run, tick).
_UPSERT_PAIR: Final = (
    f"INSERT INTO pairs ({_PAIR_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?,?,1,?) ON CONFLICT (book, strategy) DO UPDATE "
    "SET decisions = pairs.decisions + 1, guardrail_hits = pairs.guardrail_hits + excluded.guardrail_hits, "
    + ", ".join(f"{c} = iif((excluded.ts, excluded.run, excluded.tick) > (pairs.ts, pairs.run, pairs.tick), "
                f"excluded.{c}, pairs.{c})" for c in _NEWEST))


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
    run: float = 0.0  # the Scheduler run's t0 (0: unknown, as the Ledger keeps rows from before runs)


def create(path: Path, *, indexes: bool = True) -> sqlite3.Connection:
    """A new database in WAL mode with the Ledger's current schema; the writer's connection. Without
    ``indexes``, the Dashboard's indexes on ``pairs`` are left out (to measure what they buy)."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    schema.migrate(conn)
    if not indexes:
        for name in schema.PAIRS_INDEXES:
            conn.execute(f"DROP INDEX {name}")
    return conn


def create_or_open(path: Path) -> sqlite3.Connection:
    """The writer's connection to a database made by :func:`create`."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    return conn


def write(conn: sqlite3.Connection, rows: Iterable[Row]) -> int:
    """Insert decisions idempotently (key: book, strategy, run, tick) and keep ``pairs`` up to date, in
    one transaction; the number inserted."""
    inserted = 0
    conn.execute("BEGIN IMMEDIATE")
    try:
        for r in rows:
            guardrail = json.dumps(list(r.guardrail)) if r.guardrail else None
            cursor = conn.execute(
                f"INSERT OR IGNORE INTO decisions ({_DECISION_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                (r.book, r.strategy, r.run, r.tick, r.ts, json.dumps([str(p) for p in r.prices]), str(r.avg_comp_price),
                 r.request_id, int(r.sold), str(r.price), None if r.rule_price is None else str(r.rule_price),
                 guardrail))
            if cursor.rowcount != 1:
                continue
            inserted += 1
            hit = 1 if r.guardrail else 0
            conn.execute(
                _UPSERT_PAIR,
                (r.book, r.strategy, r.run, r.tick, r.ts, str(r.price), int(r.price * 100), str(r.avg_comp_price),
                 float(r.avg_comp_price), int(r.sold), guardrail, hit))
        conn.execute("UPDATE ledger_counts SET value = value + ? WHERE name = 'decisions'", (inserted,))
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return inserted


def synthetic(books: Iterable[str], strategies: Iterable[str], ticks: int, *, seed: int = 1,
              start: float | None = None, interval: float = 5.0, floor: Decimal | None = None) -> Iterator[Row]:
    """Plausible decisions of one Scheduler run starting at ``start`` (its ``run``): a competitor random
    walk per book, priced by the task's rule (with an optional floor, reported as a guardrail the way
    issue 12 specifies)."""
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
                rule_price = reprice_window(window, sold, PricingRule())
                price, guardrail = rule_price, tuple[str, ...]()
                if floor is not None and rule_price < floor:
                    price, guardrail = floor, ("floor",)
                yield Row(book, strategy, tick, t0 + tick * interval, tuple(window), avg, request_id, sold, price,
                          rule_price if floor is not None else None, guardrail, t0)


def fill(path: Path, books: int, strategies: tuple[str, ...] = ("default",), ticks: int = 1, *,
         batch: int = 20_000, seed: int = 1, indexes: bool = True) -> None:
    """A database of ``books`` x ``strategies`` pairs with ``ticks`` decisions each (ids B000001...)."""
    conn = create(path, indexes=indexes)
    try:
        ids = (f"B{i:06d}" for i in range(1, books + 1))
        rows = synthetic(ids, strategies, ticks, seed=seed)
        while chunk := [row for _, row in zip(range(batch), rows, strict=False)]:
            write(conn, chunk)
    finally:
        conn.close()
