"""Reading the Ledger's SQLite database: read-only, off the event loop, never in the writer's way.

- Opened as ``file:PATH?mode=ro`` (plus ``PRAGMA query_only``): this process cannot write it.
- WAL mode: a reader never blocks the writer; each query is its own short read transaction (no
  transaction is held open between queries), so the Ledger's checkpoints are never held back for long.
- Every query runs on the reader's own threads (one connection each), never on the event loop; a
  progress handler interrupts one that runs past ``query_timeout``, and at most ``max_pending``
  queries wait for a thread (more is :class:`LedgerBusy`).
- The database may not exist yet (the Ledger has not started, or runs with ``--no-ledger``), or be
  replaced: each query checks the file and (re)opens it; what is missing is :class:`LedgerUnavailable`.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import threading
import time
import urllib.parse
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, TypeVar

from actors.dashboard import books_page, rows
from actors.dashboard.params import BooksQuery, Cursor
from actors.dashboard.rows import BooksPage, DecisionRow, PairRow

T = TypeVar("T")

BUSY_TIMEOUT_MS: Final = 1000  # only ever waits on the Ledger's WAL recovery, never on its writes
PROGRESS_EVERY: Final = 10_000  # SQLite VM steps between deadline checks


class LedgerUnavailable(Exception):
    """No history to read: no database yet, not a Ledger database, or unreadable. The message says which."""


class LedgerBusy(Exception):
    """Too many queries waiting, or one ran past its deadline."""


@dataclass
class _Local:
    conn: sqlite3.Connection | None = None
    inode: tuple[int, int] | None = None
    deadline: float = 0.0


class LedgerReader:
    def __init__(self, path: str | Path, *, threads: int = 2, query_timeout: float = 2.0,
                 max_pending: int = 32, pivot_from: int = books_page.PIVOT_FROM) -> None:
        self.path = Path(path).resolve()
        self._pivot_from = pivot_from
        self._timeout = query_timeout
        self._executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="ledger-read")
        self._local = threading.local()
        self._opened: list[sqlite3.Connection] = []  # every connection, closed at shutdown (<= threads)
        self._lock = threading.Lock()
        self._pending = 0
        self._max_pending = max_pending
        self.counters = {"db_queries": 0, "db_errors": 0, "db_unavailable": 0, "db_busy": 0, "db_reopens": 0}

    # --- the thread side ---------------------------------------------------------------------------

    def _state(self) -> _Local:
        state: _Local | None = getattr(self._local, "state", None)
        if state is None:
            state = self._local.state = _Local()
        return state

    def _connect(self, state: _Local) -> sqlite3.Connection:
        try:
            stat = os.stat(self.path)
        except FileNotFoundError:
            self._drop(state)
            raise LedgerUnavailable(f"no Ledger database at {self.path} yet (the Ledger has not started, or the "
                                    "system runs with --no-ledger)") from None
        except OSError as exc:
            raise LedgerUnavailable(f"cannot read {self.path}: {exc.strerror or exc}") from None
        inode = (stat.st_dev, stat.st_ino)
        if state.conn is not None and state.inode == inode:
            return state.conn
        if state.conn is not None:
            self.counters["db_reopens"] += 1  # the file was replaced: read the new one
            self._drop(state)
        uri = f"file:{urllib.parse.quote(str(self.path))}?mode=ro"
        try:
            conn = sqlite3.connect(uri, uri=True, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None,
                                   check_same_thread=False)
            conn.execute("PRAGMA query_only = ON")
        except sqlite3.Error as exc:
            raise LedgerUnavailable(f"cannot open {self.path} read-only: {exc}") from None
        conn.set_progress_handler(lambda: int(time.monotonic() > state.deadline), PROGRESS_EVERY)
        with self._lock:
            self._opened.append(conn)
        state.conn, state.inode = conn, inode
        return conn

    def _drop(self, state: _Local) -> None:
        if state.conn is not None:
            with self._lock:
                if state.conn in self._opened:
                    self._opened.remove(state.conn)
            state.conn.close()
        state.conn, state.inode = None, None

    def _run(self, work: Callable[[sqlite3.Connection], T]) -> T:
        state = self._state()
        conn = self._connect(state)
        state.deadline = time.monotonic() + self._timeout
        try:
            return work(conn)
        except sqlite3.OperationalError as exc:
            text = str(exc)
            if "interrupted" in text:
                raise LedgerBusy(f"query took longer than {self._timeout:.1f}s") from None
            self._drop(state)
            if "no such table" in text or "no such column" in text:
                raise LedgerUnavailable(f"{self.path} has no Ledger tables yet ({text})") from None
            raise LedgerUnavailable(f"cannot read {self.path}: {text}") from None
        except sqlite3.DatabaseError as exc:  # not a database, corrupt, ...
            self._drop(state)
            raise LedgerUnavailable(f"cannot read {self.path}: {exc}") from None

    # --- the event-loop side ---------------------------------------------------------------------

    async def call(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``work(conn)`` on a reader thread; counted; bounded in waiting queries."""
        if self._pending >= self._max_pending:
            self.counters["db_busy"] += 1
            raise LedgerBusy(f"{self._pending} queries already waiting")
        self._pending += 1
        self.counters["db_queries"] += 1
        try:
            return await asyncio.get_running_loop().run_in_executor(self._executor, self._run, work)
        except LedgerUnavailable:
            self.counters["db_unavailable"] += 1
            raise
        except LedgerBusy:
            self.counters["db_busy"] += 1
            raise
        except Exception:
            self.counters["db_errors"] += 1
            raise
        finally:
            self._pending -= 1

    def close(self) -> None:
        self._executor.shutdown(wait=True, cancel_futures=True)
        with self._lock:
            for conn in self._opened:
                conn.close()
            self._opened.clear()

    # --- queries -------------------------------------------------------------------------------

    async def summary(self) -> dict[str, Any]:
        return await self.call(_summary)

    async def books(self, query: BooksQuery, runs: books_page.Runs | None = None) -> BooksPage:
        return await self.call(lambda conn: books_page.read(conn, query, self._pivot_from, runs=runs))

    async def pairs_of(self, book: str) -> list[PairRow]:
        return await self.call(lambda conn: [rows.pair(r) for r in conn.execute(
            f"SELECT {rows.PAIR_COLUMNS} FROM pairs WHERE book = ? ORDER BY strategy LIMIT 1000", (book,))])

    async def decisions(self, book: str, strategy: str, before: Cursor | None, limit: int) -> list[DecisionRow]:
        """Newest first: the decisions older than ``before`` (all when None), at most ``limit``."""
        return await self.call(lambda conn: _decisions(conn, book, strategy, before, limit))

    async def series(self, book: str, strategy: str, points: int) -> list[DecisionRow]:
        """The newest ``points`` decisions of a pair, oldest first (for a chart)."""
        newest = await self.decisions(book, strategy, None, points)
        newest.reverse()
        return newest


def _summary(conn: sqlite3.Connection) -> dict[str, Any]:
    version = conn.execute("SELECT max(version) FROM schema_version").fetchone()[0]
    newest = conn.execute("SELECT max(ts) FROM pairs").fetchone()[0]
    return {"schema_version": version, "newest_ts": newest}


def decisions_sql(paged: bool, bounds: bool = True) -> str:
    """A pair's decisions newest first, by time, then run and tick (a total order: (run, tick) is unique
    within a pair, and tick numbers alone restart with every launcher run); ``paged``: below a cursor;
    ``bounds``: the file keeps each decision's floor and ceiling (schema version 6 on), else NULLs.
    The Ledger's index ``decisions_by_pair_ts`` serves it without a sort, at any depth."""
    bound = " AND (ts, run, tick) < (?, ?, ?)" if paged else ""
    kept = "floor, ceiling" if bounds else "NULL, NULL"
    return (f"SELECT {rows.DECISION_COLUMNS}, {kept} FROM decisions WHERE book = ? AND strategy = ?{bound} "
            "ORDER BY ts DESC, run DESC, tick DESC LIMIT ?")


def keeps_bounds(conn: sqlite3.Connection) -> bool:
    """Whether the file keeps each decision's floor and ceiling (a Ledger of schema version 6 or later)."""
    return any(column[1] == "ceiling" for column in conn.execute("PRAGMA table_info(decisions)"))


def _decisions(conn: sqlite3.Connection, book: str, strategy: str, before: Cursor | None,
               limit: int) -> list[DecisionRow]:
    args: list[Any] = [book, strategy, *(before or ()), limit]
    return [rows.decision(r) for r in conn.execute(decisions_sql(before is not None, keeps_bounds(conn)), args)]
