"""What a decision's insert costs as the Ledger's ``decisions`` table deepens (issue 19), and what a
staged layout would cost instead: the measurement that chooses the Ledger's next design.

    python -m bench.ledger_depth                     # 100,000 books, 60 ticks (~10 minutes)
    python -m bench.ledger_depth --books 10000 --ticks 40
    python -m bench.run --only ledger_depth [--quick]

``decisions`` is keyed by (book, strategy, run, tick), and so is ``decisions_by_pair_ts``: a tick's
decisions, one per book, land each in its own book's part of both B-trees. While every book has only a
few rows, neighbours share a page and a transaction of thousands writes few pages; once a book's rows
fill a page (~24 rows), every decision dirties a page of its own in each tree, written whole to the
WAL at its commit. So an insert costs more with every tick of a long run, whatever the transaction's
size or the page cache (both measured: ``docs/ledger.md``).

The candidate layout (not the Ledger's; measured here only): the decisions go first to a small
``staging`` table with the same key (shallow: it holds only the last ``--merge`` ticks), each checked
against ``decisions`` with a read (INSERT OR IGNORE semantics across both); every ``--merge`` ticks the
staged rows move to ``decisions`` by ranges of books, one transaction per range, so each book's rows
of those ticks share its pages there. Both layouts get the same rows, the same schema (the Ledger's
migrations), the same pragmas (WAL, ``synchronous FULL``), transactions of the same size and a
checkpoint every 5 ticks; they take turns tick by tick in one process, so the machine's noise falls
on both alike. CPU is the process's (``time.process_time``), per decision.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import sqlite3
import statistics
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from actors.ledger import schema
from actors.ledger.store import INSERT_DECISION
from bench.common import Config, Outcome, Row
from bench.driver import private_dir
from transport.ledger_rows import DecisionRow

TRANSACTION: Final = 5_000  # decisions a transaction: the Ledger's largest (TRANSACTION_MAX batches of 200)
CHECKPOINT_EVERY: Final = 5  # ticks
RUN: Final = 1_764_900_000.0  # the Scheduler run's t0
_COLUMNS: Final = ", ".join(DecisionRow._fields)
_MARKS: Final = ", ".join("?" * len(DecisionRow._fields))
_STAGING: Final = (
    "CREATE TABLE staging (book TEXT NOT NULL, strategy TEXT NOT NULL, run REAL NOT NULL, tick INTEGER NOT NULL, "
    "ts REAL NOT NULL, prices TEXT NOT NULL, avg_comp_price TEXT NOT NULL, request_id INTEGER NOT NULL, "
    "sold INTEGER NOT NULL, price TEXT NOT NULL, rule_price TEXT, guardrail TEXT, factor TEXT, "
    "previous_price TEXT, floor TEXT, ceiling TEXT, PRIMARY KEY (book, strategy, run, tick)) WITHOUT ROWID")
# A key already in ``decisions`` is not staged again: a read of one page path, not a write.
_STAGE: Final = (f"INSERT OR IGNORE INTO staging ({_COLUMNS}) SELECT {_MARKS} WHERE NOT EXISTS "
                 "(SELECT 1 FROM decisions WHERE book = ?1 AND strategy = ?2 AND run = ?3 AND tick = ?4)")
_MERGE: Final = (f"INSERT OR IGNORE INTO decisions ({_COLUMNS}) SELECT {_COLUMNS} FROM staging "
                 "WHERE book >= ? AND book < ?")
_UNSTAGE: Final = "DELETE FROM staging WHERE book >= ? AND book < ?"


@dataclass
class Layout:
    """One database and what its inserts cost, tick by tick."""

    conn: sqlite3.Connection
    cpu_us: list[float] = field(default_factory=list)  # CPU a decision, per tick (merges included)
    longest_ms: float = 0.0  # the longest write transaction (wall time): how long it held the writes back

    def write(self, statement: str, rows: Sequence[DecisionRow]) -> None:
        for start in range(0, len(rows), TRANSACTION):
            with self.transaction() as conn:
                conn.executemany(statement, rows[start:start + TRANSACTION])

    @contextlib.contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        began = time.monotonic()
        with schema.transaction(self.conn):
            yield self.conn
        self.longest_ms = max(self.longest_ms, 1000 * (time.monotonic() - began))


def open_database(path: Path) -> sqlite3.Connection:
    """A ledger database as the Ledger opens one (its migrations, WAL, ``synchronous FULL``)."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = FULL")
    conn.execute("PRAGMA wal_autocheckpoint = 0")  # the Ledger checkpoints itself
    schema.migrate(conn)
    return conn


def tick_rows(books: Sequence[str], tick: int) -> list[DecisionRow]:
    """One decision per book, in key order (as a worker now sends them)."""
    return [DecisionRow(book, "default", RUN, tick, RUN + 2.0 * tick, '["12.10","12.20","12.30","12.40","12.50"]',
                        "12.30", tick * len(books) + i, i % 2, "13.53", None, None, "1.1", None, None, None)
            for i, book in enumerate(books)]


def run(directory: Path, *, books: int, ticks: int, merge_every: int, merge_books: int) -> tuple[Layout, Layout]:
    """The Ledger's layout and the staged one, taking turns tick by tick; returns (ledger's, staged)."""
    names = [f"B{i:07d}" for i in range(books)]
    bounds = [*names[::merge_books], "\U0010ffff"]  # ranges [bounds[k], bounds[k + 1]) of merge_books books
    direct = Layout(open_database(directory / "direct.sqlite3"))
    staged = Layout(open_database(directory / "staged.sqlite3"))
    staged.conn.execute(_STAGING)
    try:
        for tick in range(ticks):
            rows = tick_rows(names, tick)
            began = time.process_time()
            direct.write(INSERT_DECISION, rows)
            direct.cpu_us.append(1e6 * (time.process_time() - began) / books)
            began = time.process_time()
            staged.write(_STAGE, rows)
            if tick % merge_every == merge_every - 1:
                for low, high in itertools.pairwise(bounds):
                    with staged.transaction() as conn:
                        conn.execute(_MERGE, (low, high))
                        conn.execute(_UNSTAGE, (low, high))
            staged.cpu_us.append(1e6 * (time.process_time() - began) / books)
            if tick % CHECKPOINT_EVERY == CHECKPOINT_EVERY - 1:
                for layout in (direct, staged):
                    layout.conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
        kept = [layout.conn.execute("SELECT count(*) FROM decisions").fetchone()[0] for layout in (direct, staged)]
        staged_left = staged.conn.execute("SELECT count(*) FROM staging").fetchone()[0]
        if kept[0] != books * ticks or kept[1] + staged_left != books * ticks:
            raise AssertionError(f"kept {kept} (+{staged_left} staged) of {books * ticks} decisions")
    finally:
        direct.conn.close()
        staged.conn.close()
    return direct, staged


def _mean_of(values: Sequence[float], merge_every: int) -> float:
    """The mean over whole merge cycles at the end (each cycle holds one merge), or over all."""
    cycles = max(1, min(2, len(values) // merge_every))
    return statistics.mean(values[-cycles * merge_every:])


def measure(cfg: Config, *, books: int | None = None, ticks: int | None = None, merge_every: int = 15,
            merge_books: int = 1_000) -> Outcome:
    books = books or cfg.pick(10_000, 100_000)
    ticks = ticks or 60
    with private_dir("ld-") as directory:
        direct, staged = run(Path(directory), books=books, ticks=ticks, merge_every=merge_every,
                             merge_books=merge_books)
    first = statistics.mean(direct.cpu_us[:merge_every])
    deep, deep_staged = _mean_of(direct.cpu_us, merge_every), _mean_of(staged.cpu_us, merge_every)
    about = f"{books:,} books, ticks {ticks - 2 * merge_every}-{ticks - 1} of {ticks}"
    rows = [
        Row(f"Ledger's layout: insert CPU a decision, {about}", deep, "us", first,
            f"its first {merge_every} ticks", note="per decision, the process's CPU"),
        Row(f"Staged layout (merged every {merge_every} ticks, {merge_books:,} books a transaction): insert and "
            f"merge CPU a decision, {about}", deep_staged, "us", deep, "Ledger's layout, same ticks",
            note=f"its longest transaction {staged.longest_ms:.0f} ms against {direct.longest_ms:.0f} ms"),
    ]
    raw = {"books": books, "ticks": ticks, "merge_every": merge_every, "merge_books": merge_books,
           "ledger_cpu_us": direct.cpu_us, "staged_cpu_us": staged.cpu_us,
           "longest_ms": {"ledger": direct.longest_ms, "staged": staged.longest_ms}}
    return Outcome(rows, raw)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.ledger_depth", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--books", type=int, default=100_000)
    parser.add_argument("--ticks", type=int, default=60)
    parser.add_argument("--merge", type=int, default=15, help="ticks between merges of the staged layout")
    parser.add_argument("--merge-books", type=int, default=1_000, help="books a merge transaction moves")
    args = parser.parse_args(argv)
    outcome = measure(Config(), books=args.books, ticks=args.ticks, merge_every=args.merge,
                      merge_books=args.merge_books)
    cpu = outcome.raw
    for tick, (a, b) in enumerate(zip(cpu["ledger_cpu_us"], cpu["staged_cpu_us"], strict=True)):
        print(f"tick {tick:4d}: Ledger's layout {a:6.1f} us, staged {b:6.1f} us a decision")
    for row in outcome.rows:
        ratio = f" ({row.ratio:.2f}x {row.baseline_label})" if row.ratio is not None else ""
        print(f"{row.measure}: {row.value:.1f} {row.unit}{ratio}; {row.note}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
