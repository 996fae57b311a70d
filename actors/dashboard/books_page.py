"""One page of the books table as the Dashboard shows it: the Ledger's plain page
(:mod:`actors.ledger_reads.books`, where the sorting, searching and paging are done in SQL) made into
typed rows, and a :class:`~actors.dashboard.params.BooksQuery` made into the page asked for."""

from __future__ import annotations

import sqlite3
from typing import Any

from actors.dashboard import business, rows
from actors.dashboard.params import BooksQuery
from actors.dashboard.rows import BooksPage
from actors.ledger_reads import books
from actors.ledger_reads.books import BIG_TIE_GROUP, ORDER, PIVOT_FROM, Runs, read_runs

__all__ = ("ORDER", "PIVOT_FROM", "Runs", "args", "page", "read", "read_runs")


def args(query: BooksQuery, runs: Runs | None, pivot_from: int = PIVOT_FROM) -> list[Any]:
    """The arguments of the ``books`` read (:mod:`actors.ledger_reads.queries`) for ``query``."""
    return [query.search, query.sort, query.descending, query.offset, query.size, query.scope,
            None if runs is None else list(runs), pivot_from]


def page(plain: Any, query: BooksQuery) -> BooksPage:
    """The typed page of a ``books`` read's result."""
    alerts: dict[tuple[str, str], list[business.AlertRow]] = {}
    for alert in map(business.alert_row, plain["alerts"]):
        alerts.setdefault((alert.book, alert.strategy), []).append(alert)
    current_run = plain["current_run"]
    trends = {(str(book), str(strategy)): tuple(map(str, prices)) for book, strategy, prices in plain["trends"]}
    return BooksPage([rows.pair(r) for r in plain["rows"]], int(plain["total"]), query,
                     None if current_run is None else float(current_run), trends, alerts,
                     {str(k): int(v) for k, v in plain["scopes"].items()})


def read(conn: sqlite3.Connection, query: BooksQuery, pivot_from: int = PIVOT_FROM,
         big_tie_group: int = BIG_TIE_GROUP, runs: Runs | None = None) -> BooksPage:
    """Read a page on ``conn`` (the tests' way in; the Dashboard reads through its reader)."""
    asked = books.Page(query.search, query.sort, query.descending, query.offset, query.size, query.scope)
    return page(books.read(conn, asked, pivot_from, big_tie_group, runs), query)
