"""stdout against the Ledger: the same set of (book, strategy, run, tick), each with the same price.

The printed decisions are kept as they arrive in a scratch SQLite file (one row per decision: disk,
not memory, for a two-hour run's seven million), and compared with the Ledger's ``decisions`` table
at the end, by SQL over both keys. A printed line does not say its run (the Scheduler's t0): the soak
starts with an empty Ledger, so its one launcher run is the run of every decision it printed; a Ledger
holding any other run is reported.
"""

from __future__ import annotations

import sqlite3
import threading
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from bench.soak.prices import Printed

FLUSH_EVERY: Final = 2000
EXAMPLES: Final = 5


@dataclass(frozen=True, slots=True)
class Difference:
    count: int
    examples: list[str] = field(default_factory=list)

    def report(self) -> dict[str, object]:
        return {"count": self.count, "examples": self.examples}


@dataclass(frozen=True, slots=True)
class Agreement:
    run: float | None  # the run every printed decision is taken to belong to
    runs: dict[float, int]  # the Ledger's decisions per run
    printed: int
    kept: int  # the Ledger's decisions of ``run``
    printed_only: Difference
    ledger_only: Difference
    other_price: Difference
    kept_per_tick: Counter[int]

    @property
    def equal(self) -> bool:
        return (len(self.runs) <= 1 and self.printed_only.count == 0 and self.ledger_only.count == 0
                and self.other_price.count == 0)

    def report(self) -> dict[str, object]:
        return {"run": self.run, "ledger_runs": {str(run): n for run, n in self.runs.items()},
                "printed": self.printed, "kept": self.kept, "printed_only": self.printed_only.report(),
                "ledger_only": self.ledger_only.report(), "other_price": self.other_price.report()}


class PrintedStore:
    """The printed decisions' keys and prices, in a scratch database; :meth:`add` from one thread (the
    stdout reader), :meth:`compare` once that thread is done."""

    def __init__(self, path: Path) -> None:
        self._conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._conn.execute("PRAGMA journal_mode = OFF")
        self._conn.execute("PRAGMA synchronous = OFF")
        self._conn.execute("CREATE TABLE printed (book TEXT NOT NULL, strategy TEXT NOT NULL, tick INTEGER NOT NULL, "
                           "price TEXT NOT NULL, PRIMARY KEY (book, strategy, tick)) WITHOUT ROWID")
        self._pending: list[tuple[str, str, int, str]] = []
        self._lock = threading.Lock()
        self.repeated = 0  # a (book, strategy, tick) printed again: kept once, counted here

    def add(self, d: Printed) -> None:
        with self._lock:
            self._pending.append((d.book, d.strategy, d.tick, d.price))
            if len(self._pending) >= FLUSH_EVERY:
                self._flush()

    def _flush(self) -> None:
        if not self._pending:
            return
        before = self._conn.total_changes
        self._conn.execute("BEGIN")
        self._conn.executemany("INSERT OR IGNORE INTO printed VALUES (?, ?, ?, ?)", self._pending)
        self._conn.execute("COMMIT")
        self.repeated += len(self._pending) - (self._conn.total_changes - before)
        self._pending.clear()

    def compare(self, ledger: Path) -> Agreement:
        with self._lock:
            self._flush()
            conn = self._conn
            conn.execute("ATTACH DATABASE ? AS ledger", (f"file:{ledger}?mode=ro",))
            try:
                return self._compare(conn)
            finally:
                conn.execute("DETACH DATABASE ledger")

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    @staticmethod
    def _compare(conn: sqlite3.Connection) -> Agreement:
        runs = {float(run): int(n) for run, n in
                conn.execute("SELECT run, count(*) FROM ledger.decisions GROUP BY run ORDER BY count(*) DESC")}
        run = next(iter(runs), None)
        printed = int(conn.execute("SELECT count(*) FROM printed").fetchone()[0])
        per_tick = Counter({int(tick): int(n) for tick, n in conn.execute(
            "SELECT tick, count(*) FROM ledger.decisions WHERE run = ? GROUP BY tick", (run,))})

        def difference(where: str, shown: str) -> Difference:
            count = int(conn.execute(f"SELECT count(*) {where}", (run,)).fetchone()[0])
            rows = conn.execute(f"SELECT {shown} {where} LIMIT {EXAMPLES}", (run,)).fetchall() if count else []
            return Difference(count, [" ".join(str(v) for v in row) for row in rows])

        printed_only = difference(
            "FROM printed p WHERE NOT EXISTS (SELECT 1 FROM ledger.decisions d WHERE d.book = p.book "
            "AND d.strategy = p.strategy AND d.run = ? AND d.tick = p.tick)",
            "p.book, p.strategy, 'tick', p.tick, 'price', p.price")
        ledger_only = difference(
            "FROM ledger.decisions d WHERE d.run = ? AND NOT EXISTS (SELECT 1 FROM printed p "
            "WHERE p.book = d.book AND p.strategy = d.strategy AND p.tick = d.tick)",
            "d.book, d.strategy, 'tick', d.tick, 'price', d.price")
        other_price = difference(
            "FROM printed p JOIN ledger.decisions d ON d.book = p.book AND d.strategy = p.strategy AND d.run = ? "
            "AND d.tick = p.tick WHERE d.price != p.price",
            "p.book, p.strategy, 'tick', p.tick, 'printed', p.price, 'kept', d.price")
        return Agreement(run, runs, printed, runs.get(run, 0) if run is not None else 0, printed_only, ledger_only,
                         other_price, per_tick)
