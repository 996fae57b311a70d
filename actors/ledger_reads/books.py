"""One page of the books table (the Ledger's ``pairs``), sorted, searched and paginated in SQL, fast at
any depth without an index on the sort key.

Orders are total: the key, then (book, strategy), all in one direction (so an index on
``(key, book, strategy)``, when the Ledger has one, serves both directions). A shallow page is one
``ORDER BY ... LIMIT ... OFFSET``. A deep one would make SQLite sort the whole table for every page
(an OFFSET keeps every row it skips in its sorter) unless an index serves the order, so when SQLite's
plan says it would sort, the page is found by value instead (*pivot*): read the key column alone, find
in it the key value ``v`` at the page's offset and how many rows come before it, then read from ``v``
on with a sort bounded by the page (or, for a large tie group, the rest of the group in primary-key
order first). Everything in one read transaction: the count and the page agree. Runs on a reader
thread (:mod:`actors.ledger_reads.pool`), in the Dashboard or in the Ledger; returns plain values (the
Dashboard makes its typed page of them).
"""

from __future__ import annotations

import bisect
import sqlite3
from types import MappingProxyType
from typing import Any, Final, NamedTuple

from actors.ledger_reads import alerts
from actors.ledger_reads.columns import PAIR_COLUMNS

ORDER: Final = MappingProxyType({
    "book": ("book", "strategy"), "strategy": ("strategy", "book"), "price": ("price_cents",),
    "avg": ("avg_sort",), "sold": ("sold",), "hits": ("guardrail_hits",), "decisions": ("decisions",),
    "updated": ("ts",),
})
PIVOT_FROM: Final = 2000  # offsets past this are found by value (a plain OFFSET is cheaper before)
PIVOT_MAX_ROWS: Final = 500_000  # beyond, the key column is too big to read per page: plain OFFSET
BIG_TIE_GROUP: Final = 1000  # rows sharing the pivot's key past which they are read in key order, unsorted
TREND_POINTS: Final = 24  # a pair's newest prices drawn in its trend


class Page(NamedTuple):
    """Which page of the books table: the pairs of ``scope`` whose book or strategy holds ``search``,
    sorted by ``sort`` (a key of :data:`ORDER`), ``size`` rows from ``offset``."""

    search: str = ""
    sort: str = "book"
    descending: bool = False
    offset: int = 0
    size: int = 50
    scope: str = "current"


SCOPES: Final = ("current", "earlier", "all")


def where(query: Page, run: float | None = None) -> tuple[str, list[Any]]:
    """The scope and the search as SQL: pairs of the newest ``run`` (the current catalogue), of the
    others (earlier runs) or all; a case-insensitive substring of the book or the strategy, wildcards
    literal."""
    parts: list[str] = []
    args: list[Any] = []
    if query.scope != "all":
        parts.append("run = ?" if query.scope == "current" else "run <> ?")
        args.append(run)
    if query.search:
        pattern = "%" + query.search.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        parts.append("(book LIKE ? ESCAPE '\\' OR strategy LIKE ? ESCAPE '\\')")
        args += [pattern, pattern]
    return (" WHERE " + " AND ".join(parts), args) if parts else ("", [])


def order(query: Page, reverse: bool = False) -> str:
    keys = ORDER[query.sort] + tuple(k for k in ("book", "strategy") if k not in ORDER[query.sort])
    direction = "DESC" if query.descending != reverse else "ASC"
    return ", ".join(f"{k} {direction}" for k in keys)


class Runs(NamedTuple):
    """The newest run and how many pairs it decided, and how many only earlier runs did: the
    Dashboard's newest reading of the Ledger (its business reading), so a page need not scan ``pairs``
    to know them."""

    current_run: float | None
    current: int
    earlier: int


def read(conn: sqlite3.Connection, query: Page, pivot_from: int = PIVOT_FROM,
         big_tie_group: int = BIG_TIE_GROUP, runs: Runs | None = None) -> dict[str, Any]:
    """The page as plain values: ``total``, ``current_run``, ``scopes`` (pairs in each scope, without
    the search), ``rows`` (the pairs' rows, :data:`PAIR_COLUMNS`), ``trends`` (``[book, strategy,
    prices]``, oldest first) and ``alerts`` (the open alerts of these pairs and their strategies)."""
    conn.execute("BEGIN")  # one snapshot for the count and the page
    try:
        return _read(conn, query, pivot_from, big_tie_group, runs)
    finally:
        if conn.in_transaction:  # some errors (a full disk, out of memory) roll it back already
            conn.execute("COMMIT")


def read_runs(conn: sqlite3.Connection) -> Runs:
    run, current, every = conn.execute("SELECT max(run), coalesce(sum(run = (SELECT max(run) FROM pairs)), 0), "
                                       "count(*) FROM pairs").fetchone()
    return Runs(None if run is None else float(run), int(current), int(every) - int(current))


def _read(conn: sqlite3.Connection, query: Page, pivot_from: int, big_tie_group: int,
          runs: Runs | None) -> dict[str, Any]:
    runs = runs or read_runs(conn)
    scopes = {"current": runs.current, "earlier": runs.earlier, "all": runs.current + runs.earlier}
    # Every pair in the newest run (the usual case): "current" and "all" need no filter, and a page is
    # a walk of an index (the filter on run would look up every row it passes).
    scoped = query if runs.earlier or query.scope == "earlier" else query._replace(scope="all")
    sql_where, args = where(scoped, runs.current_run)
    total = int(conn.execute(f"SELECT count(*) FROM pairs{sql_where}", args).fetchone()[0])
    offset = query.offset
    page: dict[str, Any] = {"total": total, "current_run": runs.current_run, "scopes": scopes, "rows": [],
                            "trends": [], "alerts": []}
    if offset >= total:
        return page
    count = min(query.size, total - offset)
    if offset > pivot_from and total <= PIVOT_MAX_ROWS and _would_sort(conn, query, sql_where, args):
        keys = _keys_by_value(conn, query, sql_where, args, offset, count, big_tie_group)
    else:
        keys = _keys_by_offset(conn, query, sql_where, args, offset, count, total)
    page["rows"] = _rows(conn, keys)
    page["trends"] = [[book, strategy, prices] for (book, strategy), prices in trends(conn, keys).items()]
    page["alerts"] = alerts.of_pairs(conn, keys)
    return page


def trends(conn: sqlite3.Connection, keys: list[tuple[str, str]], points: int = TREND_POINTS
           ) -> dict[tuple[str, str], tuple[str, ...]]:
    """Each pair's newest ``points`` prices, oldest first: a walk of the Ledger's (book, strategy, ts)
    index per pair (a page of 50 pairs: 50 short walks)."""
    found: dict[tuple[str, str], tuple[str, ...]] = {}
    for book, strategy in keys:
        prices = [str(p) for (p,) in conn.execute(
            "SELECT price FROM decisions WHERE book = ? AND strategy = ? ORDER BY ts DESC, run DESC, tick DESC "
            "LIMIT ?", (book, strategy, points))]
        prices.reverse()
        found[(book, strategy)] = tuple(prices)
    return found


def _would_sort(conn: sqlite3.Connection, query: Page, sql_where: str, args: list[Any]) -> bool:
    """True when no index serves the order (SQLite plans a temporary B-tree to sort the rows)."""
    plan = conn.execute(f"EXPLAIN QUERY PLAN SELECT book, strategy FROM pairs{sql_where} ORDER BY {order(query)}",
                        args).fetchall()
    return any("TEMP B-TREE" in str(step[-1]).upper() for step in plan)


def _keys_by_offset(conn: sqlite3.Connection, query: Page, sql_where: str, args: list[Any], offset: int,
                    count: int, total: int) -> list[tuple[str, str]]:
    """ORDER BY + OFFSET, the back half read from the other end; keys only (narrow rows, or a
    covering index: an OFFSET reads every row it skips)."""
    reverse = offset > total // 2
    skip = total - offset - count if reverse else offset
    keys = [(str(b), str(s)) for b, s in conn.execute(
        f"SELECT book, strategy FROM pairs{sql_where} ORDER BY {order(query, reverse)} LIMIT ? OFFSET ?",
        [*args, count, skip])]
    if reverse:
        keys.reverse()
    return keys


def _keys_by_value(conn: sqlite3.Connection, query: Page, sql_where: str, args: list[Any], offset: int,
                   count: int, big_tie_group: int) -> list[tuple[str, str]]:
    column = ORDER[query.sort][0]
    values = sorted(v for (v,) in conn.execute(f"SELECT {column} FROM pairs{sql_where}", args))
    n = len(values)
    if query.descending:
        pivot = values[n - 1 - offset]
        before = n - bisect.bisect_right(values, pivot)  # rows with a larger key come first
    else:
        pivot = values[offset]
        before = bisect.bisect_left(values, pivot)
    direction, past = ("DESC", "<") if query.descending else ("ASC", ">")
    also = f"{sql_where} AND" if sql_where else " WHERE"
    into_group = offset - before
    keys: list[tuple[str, str]] = []
    if bisect.bisect_right(values, pivot) - bisect.bisect_left(values, pivot) > big_tie_group:
        # Within a big group of equal keys the order is the primary key's: a walk, not a sort.
        ties = f"book {direction}" if column == "strategy" else f"book {direction}, strategy {direction}"
        keys = [(str(b), str(s)) for b, s in conn.execute(
            f"SELECT book, strategy FROM pairs{also} {column} = ? ORDER BY {ties} LIMIT ? OFFSET ?",
            [*args, pivot, count, into_group])]
        if len(keys) == count:
            return keys
        into_group = 0  # the group is done: go on past it
    else:
        past += "="  # from the pivot on: its group is small, the sort stays bounded
    keys += [(str(b), str(s)) for b, s in conn.execute(
        f"SELECT book, strategy FROM pairs{also} {column} {past} ? ORDER BY {order(query)} LIMIT ? OFFSET ?",
        [*args, pivot, count - len(keys), into_group])]
    return keys


def _rows(conn: sqlite3.Connection, keys: list[tuple[str, str]]) -> list[list[Any]]:
    """The rows of the pairs with these keys, in this order."""
    if not keys:
        return []
    values = ", ".join(["(?, ?)"] * len(keys))
    # A join, not "(book, strategy) IN (VALUES ...)": SQLite scans the whole table for the latter.
    columns = ", ".join(f"pairs.{c.strip()}" for c in PAIR_COLUMNS.split(","))
    found = {(r[0], r[1]): list(r) for r in conn.execute(
        f"WITH k(b, s) AS (VALUES {values}) SELECT {columns} FROM k JOIN pairs ON pairs.book = k.b AND "
        "pairs.strategy = k.s", [part for key in keys for part in key])}
    return [found[key] for key in keys if key in found]
