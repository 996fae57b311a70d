"""Every read of the Ledger's database the Dashboard makes, by name: ``prepare(name, args)`` checks the
arguments (pure: they may come from a peer over the network) and gives the work to run on a read-only
connection (:mod:`actors.ledger_reads.pool`); its result is plain values (lists, dicts with string keys,
str, int, float, bool, None) that msgpack carries unchanged, so the Dashboard reads the same result
from the file and from the Ledger's socket.

Each result is bounded: a decisions read returns at most :data:`MAX_ROWS` rows (the Dashboard reads a
longer series page by page), a pair's strategies 1,000, a books page 500 pairs.
"""

from __future__ import annotations

import math
import sqlite3
from collections.abc import Callable, Sequence
from types import MappingProxyType
from typing import Any, Final

from actors.ledger_reads import alerts, books, business
from actors.ledger_reads.columns import DECISION_COLUMNS, PAIR_COLUMNS
from transport import limits

MAX_ROWS: Final = 1000  # decisions in one result (a reply of ~200 KB, well under a frame)
PAIRS_MAX: Final = 1000  # strategies of one book listed
PAGE_MAX_ROWS: Final = 500  # pairs on one books page
PAIR_ALERTS_MAX: Final = 500  # pairs whose alerts are asked at once
OFFSET_MAX: Final = 2**40
SEARCH_MAX_LEN: Final = 128

Work = Callable[[sqlite3.Connection], Any]


class BadQuery(ValueError):
    """A query that is not one of :data:`QUERIES`, or whose arguments are not what it takes."""


def _str(value: Any, name: str, max_len: int, allow_empty: bool = False) -> str:
    if type(value) is not str or len(value) > max_len or (not value and not allow_empty):
        raise BadQuery(f"{name}: expected a string of {0 if allow_empty else 1}..{max_len} characters")
    return value


def _int(value: Any, name: str, low: int, high: int) -> int:
    if type(value) is not int or not low <= value <= high:
        raise BadQuery(f"{name}: expected an integer within {low}..{high}")
    return value


def _float(value: Any, name: str) -> float:
    if type(value) not in (int, float) or not math.isfinite(value):
        raise BadQuery(f"{name}: expected a finite number")
    return float(value)


def _args(args: Any, count: int, name: str) -> Sequence[Any]:
    if type(args) not in (list, tuple) or len(args) != count:
        raise BadQuery(f"{name}: expected {count} arguments")
    seq: Sequence[Any] = args
    return seq


def _book(value: Any) -> str:
    return _str(value, "book", limits.BOOK_ID_MAX_LEN)


def _strategy(value: Any) -> str:
    return _str(value, "strategy", limits.STRATEGY_NAME_MAX_LEN)


# --- the reads -------------------------------------------------------------------------------------


def summary(conn: sqlite3.Connection) -> list[Any]:
    """``[schema version, newest decision's ts]``."""
    version = conn.execute("SELECT max(version) FROM schema_version").fetchone()[0]
    newest = conn.execute("SELECT max(ts) FROM pairs").fetchone()[0]
    return [version, newest]


def pairs_of(conn: sqlite3.Connection, book: str) -> list[list[Any]]:
    return [list(r) for r in conn.execute(
        f"SELECT {PAIR_COLUMNS} FROM pairs WHERE book = ? ORDER BY strategy LIMIT {PAIRS_MAX}", (book,))]


def decisions_sql(paged: bool, bounds: bool = True) -> str:
    """A pair's decisions newest first, by time, then run and tick (a total order: (run, tick) is unique
    within a pair, and tick numbers alone restart with every launcher run); ``paged``: below a cursor;
    ``bounds``: the file keeps each decision's floor, ceiling, factor and previous price (schema version 6
    on), else NULLs; those come after :data:`DECISION_COLUMNS` in that order (a Dashboard reads a row of
    an older Ledger, without the last two, as well).
    The Ledger's index ``decisions_by_pair_ts`` serves it without a sort, at any depth."""
    bound = " AND (ts, run, tick) < (?, ?, ?)" if paged else ""
    kept = "floor, ceiling, factor, previous_price" if bounds else "NULL, NULL, NULL, NULL"
    return (f"SELECT {DECISION_COLUMNS}, {kept} FROM decisions WHERE book = ? AND strategy = ?{bound} "
            "ORDER BY ts DESC, run DESC, tick DESC LIMIT ?")


def keeps_bounds(conn: sqlite3.Connection) -> bool:
    """Whether the file keeps each decision's floor and ceiling (a Ledger of schema version 6 or later)."""
    return any(column[1] == "ceiling" for column in conn.execute("PRAGMA table_info(decisions)"))


def decisions(conn: sqlite3.Connection, book: str, strategy: str, before: tuple[float, float, int] | None,
              limit: int) -> list[list[Any]]:
    """Rows of :data:`DECISION_COLUMNS`, then each decision's floor, ceiling, factor and previous price
    (NULL: none, or not kept)."""
    args: list[Any] = [book, strategy, *(before or ()), limit]
    return [list(r) for r in conn.execute(decisions_sql(before is not None, keeps_bounds(conn)), args)]


# --- by name, arguments checked --------------------------------------------------------------------


def _prepare_summary(args: Any) -> Work:
    _args(args, 0, "summary")
    return summary


def _prepare_pairs_of(args: Any) -> Work:
    book = _book(_args(args, 1, "pairs_of")[0])
    return lambda conn: pairs_of(conn, book)


def _prepare_decisions(args: Any) -> Work:
    raw_book, raw_strategy, raw_before, raw_limit = _args(args, 4, "decisions")
    book, strategy = _book(raw_book), _strategy(raw_strategy)
    before: tuple[float, float, int] | None = None
    if raw_before is not None:
        cursor = _args(raw_before, 3, "before")
        before = (_float(cursor[0], "before.ts"), _float(cursor[1], "before.run"),
                  _int(cursor[2], "before.tick", 0, 2**63 - 1))
    limit = _int(raw_limit, "limit", 1, MAX_ROWS)
    return lambda conn: decisions(conn, book, strategy, before, limit)


def _prepare_books(args: Any) -> Work:
    search, sort, descending, offset, size, scope, raw_runs, pivot_from = _args(args, 8, "books")
    if sort not in books.ORDER:
        raise BadQuery(f"sort: expected one of {', '.join(books.ORDER)}")
    if scope not in books.SCOPES:
        raise BadQuery(f"scope: expected one of {', '.join(books.SCOPES)}")
    if type(descending) is not bool:
        raise BadQuery("descending: expected true or false")
    page = books.Page(_str(search, "search", SEARCH_MAX_LEN, allow_empty=True), sort, descending,
                      _int(offset, "offset", 0, OFFSET_MAX), _int(size, "size", 1, PAGE_MAX_ROWS), scope)
    runs: books.Runs | None = None
    if raw_runs is not None:
        current_run, current, earlier = _args(raw_runs, 3, "runs")
        runs = books.Runs(None if current_run is None else _float(current_run, "runs.current_run"),
                          _int(current, "runs.current", 0, OFFSET_MAX), _int(earlier, "runs.earlier", 0, OFFSET_MAX))
    pivot = _int(pivot_from, "pivot_from", 0, OFFSET_MAX)
    return lambda conn: books.read(conn, page, pivot, runs=runs)


def _prepare_business(args: Any) -> Work:
    _args(args, 0, "business")
    return business.read


def _prepare_alerts_mark(args: Any) -> Work:
    _args(args, 0, "alerts_mark")
    return alerts.mark


def _prepare_pair_alerts(args: Any) -> Work:
    keys = _args(args, 1, "pair_alerts")[0]
    if type(keys) is not list or len(keys) > PAIR_ALERTS_MAX:
        raise BadQuery(f"pairs: expected a list of at most {PAIR_ALERTS_MAX} [book, strategy]")
    pairs = [(_book(k[0]), _strategy(k[1])) for k in (_args(key, 2, "pair") for key in keys)]
    return lambda conn: alerts.of_pairs(conn, pairs)


QUERIES: Final[MappingProxyType[str, Callable[[Any], Work]]] = MappingProxyType({
    "summary": _prepare_summary,
    "pairs_of": _prepare_pairs_of,
    "decisions": _prepare_decisions,
    "books": _prepare_books,
    "business": _prepare_business,
    "alerts_mark": _prepare_alerts_mark,
    "pair_alerts": _prepare_pair_alerts,
})
NAME_MAX_LEN: Final = max(map(len, QUERIES))


def prepare(name: str, args: Any) -> Work:
    """The work of query ``name`` with ``args``, to run on a read-only connection; :class:`BadQuery`
    when there is no such query or an argument is not what it takes."""
    prepared = QUERIES.get(name)
    if prepared is None:
        raise BadQuery(f"no query named {name[:40]!r}")
    return prepared(args)
