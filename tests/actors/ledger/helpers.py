"""What the Ledger's tests share: decisions to store, and the database read back independently (plain
sqlite3, no project code)."""

from __future__ import annotations

import sqlite3
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

from transport.protocol import Decision

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
