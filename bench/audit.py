"""Black-box audit of a run: is every decision printed on stdout in the Ledger's database exactly once?

A printed decision is named by (book, strategy, tick) within one Scheduler run (the JSON line has no
``run``: a run driven here has one Scheduler run, checked against the database); it is *kept* when the
database holds that key with the same request id and price. Used by the tests (CI-sized) and the
benchmarks (full size) alike.
"""

from __future__ import annotations

import json
import sqlite3
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

Key = tuple[str, str, int]  # (book, strategy, tick)


@dataclass(frozen=True, slots=True)
class Audit:
    printed: int  # decision lines printed
    kept: int  # rows in the database (of this run)
    missing: list[Key] = field(default_factory=list)  # printed, not in the database
    twice: list[Key] = field(default_factory=list)  # printed more than once
    differ: list[Key] = field(default_factory=list)  # in the database as another decision (request id, price)
    runs: int = 1  # Scheduler runs in the database

    @property
    def exactly_once(self) -> bool:
        return not (self.missing or self.twice or self.differ) and self.runs <= 1

    @property
    def kept_unprinted(self) -> int:
        """Kept, not printed: decided and kept, then the worker died before the line was written."""
        return self.kept - (self.printed - len(self.missing) - len(self.twice))

    def __str__(self) -> str:
        return (f"printed {self.printed}, kept {self.kept} ({self.runs} run(s)); missing {len(self.missing)} "
                f"{self.missing[:5]}, printed twice {len(self.twice)} {self.twice[:5]}, differ {len(self.differ)} "
                f"{self.differ[:5]}")


def kept_rows(db: Path) -> tuple[dict[Key, tuple[int, Decimal]], int]:
    """Every decision in ``db`` by key, with its request id and price; and how many Scheduler runs."""
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        rows = conn.execute("SELECT book, strategy, tick, request_id, price, run FROM decisions").fetchall()
    finally:
        conn.close()
    kept = {(book, strategy, tick): (request_id, Decimal(price)) for book, strategy, tick, request_id, price, _ in rows}
    return kept, len({row[5] for row in rows})


def audit(printed: Iterable[dict[str, Any]], db: Path) -> Audit:
    """``printed`` (parsed JSON lines, streamed: a big run's lines need not all be parsed at once)
    against the database."""
    kept, runs = kept_rows(db)
    count: Counter[Key] = Counter()
    missing, differ = [], []
    for d in printed:
        key = (d["book"], d["strategy"], d["tick"])
        count[key] += 1
        found = kept.get(key)
        if found is None:
            missing.append(key)
        elif found != (d["request_id"], Decimal(d["price"])):
            differ.append(key)
    return Audit(sum(count.values()), len(kept), missing, [key for key, n in count.items() if n > 1], differ, runs)


def read_lines(path: Path) -> list[dict[str, Any]]:
    with path.open("rb") as file:
        return [json.loads(line) for line in file if line.strip()]
