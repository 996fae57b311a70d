"""The Ledger reader: every order and page of the books table against a plain sort, read-only for
real, never in the writer's way, and clear when there is no database (yet)."""

from __future__ import annotations

import dataclasses
import os
import sqlite3
import threading
import time
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from actors.dashboard import books_page
from actors.dashboard.books_page import ORDER
from actors.dashboard.ledger import LedgerBusy, LedgerReader, LedgerUnavailable
from actors.dashboard.params import SORT_KEYS, BooksQuery
from actors.dashboard.rows import DecisionRow, PairRow
from actors.ledger import schema
from actors.ledger_reads.columns import PAIR_COLUMNS
from actors.ledger_reads.queries import decisions_sql
from bench import fake_ledger
from tests.helpers import run_async, wait_for


def all_pairs(path: Path) -> list[PairRow]:
    from actors.dashboard import rows
    with sqlite3.connect(path) as conn:
        return [rows.pair(r) for r in conn.execute(f"SELECT {PAIR_COLUMNS} FROM pairs")]


# Each sort key as Python computes it, independently of the SQL.
PLAIN_KEYS: dict[str, Callable[[PairRow], Any]] = {
    "book": lambda p: (p.book, p.strategy), "strategy": lambda p: (p.strategy, p.book),
    "price": lambda p: Decimal(p.price), "avg": lambda p: Decimal(p.avg_comp_price), "sold": lambda p: p.sold,
    "hits": lambda p: p.guardrail_hits, "decisions": lambda p: p.decisions, "updated": lambda p: p.ts,
}


@pytest.fixture(scope="module")
def pairs_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("pairs") / "l.sqlite3"
    fake_ledger.fill(path, books=23, strategies=("default", "fast", "x"), ticks=2, seed=5)
    return path


@pytest.mark.parametrize("sort", SORT_KEYS)
@pytest.mark.parametrize("descending", [False, True])
@pytest.mark.parametrize(("pivot_from", "big_tie_group"), [(10**9, 0), (0, 10**9), (0, 0), (0, 3)],
                         ids=["by-offset", "by-value", "by-value-tie-walk", "by-value-mixed"])
@pytest.mark.parametrize("search", ["", "1"])
def test_every_page_of_every_order_matches_a_plain_sort(pairs_db: Path, sort: str, descending: bool,
                                                        pivot_from: int, big_tie_group: int, search: str) -> None:
    expected = [p for p in all_pairs(pairs_db) if search.lower() in (p.book + " " + p.strategy).lower()]
    # The reader's order: the key, then book and strategy as ties, all in the same direction.
    expected.sort(key=lambda p: (p.book, p.strategy), reverse=descending)
    expected.sort(key=PLAIN_KEYS[sort], reverse=descending)  # stable: ties keep the order above
    assert set(ORDER) == set(SORT_KEYS)
    conn = sqlite3.connect(f"file:{pairs_db}?mode=ro", uri=True, isolation_level=None)
    try:
        found: list[PairRow] = []
        for page in range(1, 12):  # 69 rows at 7 per page (fewer with the search)
            result = books_page.read(conn, BooksQuery(search, sort, descending, page, 7), pivot_from, big_tie_group)
            assert result.total == len(expected)
            found += result.rows
    finally:
        conn.close()
    assert found == expected


def test_search_is_a_case_insensitive_substring_of_book_or_strategy(ledger_db: Path) -> None:
    async def search(text: str) -> list[tuple[str, str]]:
        reader = LedgerReader(ledger_db, pivot_from=0)
        try:
            page = await reader.books(BooksQuery(search=text, sort="price", size=1))
            rest = await reader.books(BooksQuery(search=text, sort="price", size=1, page=2)) if page.total > 1 else None
            found = page.rows + (rest.rows if rest else [])
            return sorted((r.book, r.strategy) for r in found)
        finally:
            reader.close()

    assert run_async(search("b3")) == [("B3", "default")]
    assert run_async(search("FAS")) == [("B1", "fast"), ("B2", "fast")]
    assert run_async(search("%")) == [] and run_async(search("_")) == []  # wildcards are literal


def test_decisions_newest_first_with_a_keyset_page_and_the_series_oldest_first(ledger_db: Path) -> None:
    async def read() -> tuple[list[int], list[int], list[int]]:
        reader = LedgerReader(ledger_db)
        try:
            first = await reader.decisions("B1", "fast", None, 5)
            older = await reader.decisions("B1", "fast", first[-1].cursor, 5)
            series = await reader.series("B1", "fast", 4)
            return [d.tick for d in first], [d.tick for d in older], [d.tick for d in series]
        finally:
            reader.close()

    assert run_async(read()) == ([11, 10, 9, 8, 7], [6, 5, 4, 3, 2], [8, 9, 10, 11])


def runs_db(path: Path) -> list[tuple[float, float, int]]:
    """One pair decided by three runs that all number their ticks from 0: a first run kept before the
    Ledger recorded runs (run 0), a later one, and a third whose first decisions have the same times as
    the second's (a clock stepped back). Returns every (ts, run, tick), newest first."""
    t0 = time.time() - 3600
    first = [dataclasses.replace(r, run=0.0) for r in fake_ledger.synthetic(["B1"], ["default"], 7, start=t0)]
    second = list(fake_ledger.synthetic(["B1"], ["default"], 7, start=t0 + 600, seed=2))
    third = [dataclasses.replace(r, run=r.run + 0.5, request_id=r.request_id + 100) for r in second[:3]]
    conn = fake_ledger.create(path)
    try:
        assert fake_ledger.write(conn, [*second, *first, *third]) == 17  # same tick numbers: all kept
    finally:
        conn.close()
    return sorted(((r.ts, r.run, r.tick) for r in (*first, *second, *third)), reverse=True)


def test_a_pairs_decisions_of_several_runs_page_newest_first_by_time_without_loss(tmp_path: Path) -> None:
    expected = runs_db(tmp_path / "runs.sqlite3")

    async def read() -> tuple[list[DecisionRow], list[DecisionRow]]:
        reader = LedgerReader(tmp_path / "runs.sqlite3")
        try:
            pages: list[DecisionRow] = []
            before = None
            while page := await reader.decisions("B1", "default", before, 4):  # ties straddle the pages
                pages += page
                before = page[-1].cursor
            return pages, await reader.series("B1", "default", 100)
        finally:
            reader.close()

    pages, series = run_async(read())
    assert [(d.ts, d.run, d.tick) for d in pages] == expected
    assert [(d.ts, d.run, d.tick) for d in series] == expected[::-1]


def test_a_page_of_decisions_walks_the_ledgers_index_at_any_depth(tmp_path: Path) -> None:
    runs_db(tmp_path / "runs.sqlite3")
    conn = sqlite3.connect(tmp_path / "runs.sqlite3")
    try:
        for paged in (False, True):
            plan = " ".join(str(row) for row in conn.execute(
                "EXPLAIN QUERY PLAN " + decisions_sql(paged), ["B1", "default", *((1.0, 0.0, 1) if paged else ()), 9]))
            assert "decisions_by_pair_ts" in plan and "TEMP B-TREE" not in plan, plan
    finally:
        conn.close()


def test_no_database_yet_then_one_appears(tmp_path: Path) -> None:
    path = tmp_path / "later.sqlite3"

    async def scenario() -> None:
        reader = LedgerReader(path)
        try:
            with pytest.raises(LedgerUnavailable, match="no Ledger database"):
                await reader.summary()
            assert not path.exists()  # read-only: the reader never creates it
            path.write_bytes(b"")  # created by the Ledger, schema not yet written
            with pytest.raises(LedgerUnavailable, match="no Ledger tables"):
                await reader.summary()
            fake_ledger.fill(tmp_path / "full.sqlite3", books=2)
            os.replace(tmp_path / "full.sqlite3", path)  # the file is replaced: read the new one
            assert (await reader.summary())["schema_version"] == schema.VERSION
            assert reader.counters["db_unavailable"] == 2
        finally:
            reader.close()

    run_async(scenario())


def test_a_file_that_is_not_a_database_is_unavailable_not_a_crash(tmp_path: Path) -> None:
    path = tmp_path / "junk.sqlite3"
    path.write_bytes(b"this is not a database" * 100)
    reader = LedgerReader(path)
    try:
        with pytest.raises(LedgerUnavailable, match="cannot"):
            run_async(reader.summary())
    finally:
        reader.close()


def test_a_fifo_at_the_path_is_unavailable_at_once(tmp_path: Path) -> None:
    """SQLite's read-only open of a FIFO would wait for a writer for ever (issue 20)."""
    path = tmp_path / "fifo.sqlite3"
    os.mkfifo(path)
    reader = LedgerReader(path)
    try:
        with pytest.raises(LedgerUnavailable, match=r"not a regular file \(a FIFO\)"):
            run_async(reader.summary())
    finally:
        reader.close()


def test_the_reader_cannot_write(ledger_db: Path) -> None:
    reader = LedgerReader(ledger_db)
    try:
        with pytest.raises(LedgerUnavailable, match=r"readonly|read-only|query_only"):
            run_async(reader.call(lambda conn: conn.execute("DELETE FROM pairs")))
        assert len(all_pairs(ledger_db)) == 5
    finally:
        reader.close()


def test_a_query_past_its_deadline_is_interrupted(ledger_db: Path) -> None:
    reader = LedgerReader(ledger_db, query_timeout=0.05)
    endless = "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n) SELECT count(*) FROM n"
    try:
        started = time.monotonic()
        with pytest.raises(LedgerBusy, match="longer than"):
            run_async(reader.call(lambda conn: conn.execute(endless).fetchone()))
        assert time.monotonic() - started < 2.0
        assert run_async(reader.summary())["schema_version"] == schema.VERSION  # the connection still works
    finally:
        reader.close()


def test_a_page_interrupted_in_its_transaction_says_so_and_leaves_none_open(pairs_db: Path) -> None:
    conn = sqlite3.connect(f"file:{pairs_db}?mode=ro", uri=True, isolation_level=None)
    try:
        conn.set_progress_handler(lambda: 1, 100)  # interrupt every statement at once
        with pytest.raises(sqlite3.OperationalError, match="interrupted"):  # not "cannot commit"
            books_page.read(conn, BooksQuery(sort="price", page=5, size=7), pivot_from=0)
        assert not conn.in_transaction
    finally:
        conn.close()


def test_readers_never_block_the_writer(tmp_path: Path) -> None:
    """A writer with no busy timeout at all commits a stream of batches while the reader pages the
    books table as fast as it can: not one commit waits or fails (WAL, short read transactions)."""
    path = tmp_path / "l.sqlite3"
    fake_ledger.fill(path, books=2000, strategies=("default",), ticks=1)
    writer = sqlite3.connect(path, isolation_level=None, timeout=0)
    stop = threading.Event()
    reads = 0

    def read_loop() -> None:
        nonlocal reads
        reader = LedgerReader(path)
        try:
            while not stop.is_set():
                run_async(reader.books(BooksQuery(sort="price", page=20)))
                reads += 1
        finally:
            reader.close()

    thread = threading.Thread(target=read_loop)
    thread.start()
    try:
        wait_for(lambda: reads > 0, timeout=10)
        before = reads
        rows = fake_ledger.synthetic([f"B{i:06d}" for i in range(1, 201)], ["default"], 20, seed=9)
        batches = 0
        while chunk := [dataclasses.replace(row, tick=row.tick + 1) for _, row in zip(range(200), rows, strict=False)]:
            assert fake_ledger.write(writer, chunk) == 200  # raises "database is locked" if it had to wait
            batches += 1
        wait_for(lambda: reads > before + 2, timeout=10)  # reading went on all along
    finally:
        stop.set()
        thread.join(10)
        writer.close()
    assert batches == 20
