"""Where the Dashboard reads the Ledger's history: one interface (:class:`LedgerReads`), two readers.

- :class:`LedgerReader` opens the Ledger's SQLite file read-only, on its own threads
  (:mod:`actors.ledger_reads.pool`): the Dashboard runs on the Ledger's machine (the launcher's way).
- :class:`actors.dashboard.remote.RemoteLedger` asks the Ledger over its ROUTER socket (CurveZMQ with
  ``--keys``), which runs the same reads on a read-only connection of its own: the Dashboard runs
  anywhere (``--ledger-endpoint``).

Both run the named reads of :mod:`actors.ledger_reads.queries` and get the same plain result; the
typed rows, pages and readings are made of it here, once. A longer run of a pair's decisions is read
:data:`~actors.ledger_reads.queries.MAX_ROWS` at a time, from a cursor, on both.
"""

from __future__ import annotations

import abc
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from actors.dashboard import books_page, business, rows
from actors.dashboard.business import AlertRow, Business
from actors.dashboard.params import BooksQuery, Cursor
from actors.dashboard.rows import BooksPage, DecisionRow, PairRow
from actors.ledger_reads import queries
from actors.ledger_reads.books import PIVOT_FROM, Runs
from actors.ledger_reads.pool import LedgerBusy, LedgerUnavailable, ReadPool

__all__ = ("LedgerBusy", "LedgerReader", "LedgerReads", "LedgerUnavailable")

T = TypeVar("T")


class LedgerReads(abc.ABC):
    """The Ledger's history, typed. A subclass answers :meth:`query` (a named read and its arguments,
    its plain result); :class:`LedgerUnavailable` and :class:`LedgerBusy` say why it could not."""

    counters: dict[str, int]
    pivot_from: int = PIVOT_FROM

    @property
    @abc.abstractmethod
    def where(self) -> str:
        """Where the history comes from, for a page's note and the log."""

    @abc.abstractmethod
    def source(self) -> dict[str, str]:
        """Where the history comes from, for ``/api/ledger``: ``{"path": ...}`` or ``{"endpoint": ...}``."""

    @abc.abstractmethod
    async def query(self, name: str, args: list[Any]) -> Any:
        """The plain result of read ``name`` (:data:`actors.ledger_reads.queries.QUERIES`)."""

    @abc.abstractmethod
    def close(self) -> None: ...

    async def _typed(self, name: str, args: list[Any], make: Callable[[Any], T]) -> T:
        """Read ``name`` and make its typed result; a result not of the read's shape (from a Ledger of
        another version) is counted and said, never a crash of the page."""
        plain = await self.query(name, args)
        try:
            return make(plain)
        except (KeyError, IndexError, TypeError, ValueError, ArithmeticError) as exc:
            self.counters["db_errors"] += 1
            raise LedgerUnavailable(f"the answer of {self.where} to {name} is not understood "
                                    f"({type(exc).__name__}: {exc})"[:300]) from None

    async def summary(self) -> dict[str, Any]:
        return await self._typed("summary", [], lambda r: {"schema_version": r[0], "newest_ts": r[1]})

    async def books(self, query: BooksQuery, runs: Runs | None = None) -> BooksPage:
        return await self._typed("books", books_page.args(query, runs, self.pivot_from),
                                 lambda r: books_page.page(r, query))

    async def pairs_of(self, book: str) -> list[PairRow]:
        return await self._typed("pairs_of", [book], lambda r: [rows.pair(p) for p in r])

    async def decisions(self, book: str, strategy: str, before: Cursor | None, limit: int) -> list[DecisionRow]:
        """Newest first: the decisions older than ``before`` (all when None), at most ``limit``; read
        :data:`~actors.ledger_reads.queries.MAX_ROWS` at a time."""
        found: list[DecisionRow] = []
        while len(found) < limit:
            want = min(queries.MAX_ROWS, limit - len(found))
            chunk = await self._typed("decisions", [book, strategy, None if before is None else list(before), want],
                                      lambda r: [rows.decision(d) for d in r])
            found += chunk
            if len(chunk) < want:
                break
            before = chunk[-1].cursor
        return found

    async def series(self, book: str, strategy: str, points: int) -> list[DecisionRow]:
        """The newest ``points`` decisions of a pair, oldest first (for a chart)."""
        newest = await self.decisions(book, strategy, None, points)
        newest.reverse()
        return newest

    async def business(self, now: float) -> Business:
        return await self._typed("business", [], lambda r: business.reading(r, now))

    async def alerts_mark(self) -> tuple[int, float] | None:
        return await self._typed("alerts_mark", [], business.mark)

    async def pair_alerts(self, keys: list[tuple[str, str]]) -> dict[tuple[str, str], list[AlertRow]]:
        return await self._typed("pair_alerts", [[list(k) for k in keys]], business.pair_alerts_of)


class LedgerReader(LedgerReads):
    """The Ledger's SQLite file, read-only, on a few threads of this process (see
    :mod:`actors.ledger_reads.pool`: bounded waiting, a deadline per query, reopened when replaced)."""

    def __init__(self, path: str | Path, *, threads: int = 2, query_timeout: float = 2.0,
                 max_pending: int = 32, pivot_from: int = PIVOT_FROM) -> None:
        self._pool = ReadPool(path, threads=threads, query_timeout=query_timeout, max_pending=max_pending)
        self.path = self._pool.path
        self.pivot_from = pivot_from
        self.counters = self._pool.counters

    @property
    def where(self) -> str:
        return str(self.path)

    def source(self) -> dict[str, str]:
        return {"path": str(self.path)}

    async def call(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``work(conn)`` on a reader thread (see :meth:`ReadPool.call`)."""
        return await self._pool.call(work)

    async def query(self, name: str, args: list[Any]) -> Any:
        work = queries.prepare(name, args)  # a bad one is this process's own bug: raised as it is
        return await self._pool.call(work)

    def close(self) -> None:
        self._pool.close()

