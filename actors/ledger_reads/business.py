"""The business as the Ledger's database tells it, in one read transaction: the newest run, each
strategy's pairs, decisions and guardrail hits, the books of the current catalogue, the open alerts and
the newest cleared. One query over ``pairs`` (one row per pair: a scan of it, ~10 ms at 100,000
pairs) and a few index look-ups; plain values (the Dashboard's :mod:`actors.dashboard.business` makes
its reading of them)."""

from __future__ import annotations

import sqlite3
from typing import Any, Final

from actors.ledger_reads import alerts
from actors.ledger_reads.columns import ALERT_COLUMNS

STRATEGIES_SHOWN: Final = 64  # strategies listed at most (a config holds few)
ALERTS_SHOWN: Final = 200  # open alerts listed at most (all are counted)
CLEARED_SHOWN: Final = 20  # the newest cleared alerts listed

# A guardrail list is stored as a JSON array of names: a name in it is '"floor"', quotes included.
_READ: Final = f"""SELECT strategy, count(*), coalesce(sum(run = :run), 0), sum(decisions), sum(guardrail_hits),
    coalesce(sum(run = :run AND guardrail LIKE '%"floor"%'), 0),
    coalesce(sum(run = :run AND guardrail LIKE '%"ceiling"%'), 0)
    FROM pairs GROUP BY strategy ORDER BY strategy LIMIT {STRATEGIES_SHOWN}"""


def read(conn: sqlite3.Connection) -> dict[str, Any]:
    """``run`` (the newest, or None), ``strategies`` (rows: strategy, pairs, current, decisions,
    guardrail hits, at floor, at ceiling), ``books`` (of the newest run), ``kept`` (the alerts table
    exists), ``open`` (alerts open), ``alerts`` (the newest open, rows of :data:`ALERT_COLUMNS`),
    ``cleared`` (the newest cleared), ``mark`` (:func:`alerts.mark`)."""
    conn.execute("BEGIN")  # one snapshot for every query
    try:
        run = conn.execute("SELECT max(run) FROM pairs").fetchone()[0]
        strategies = [list(r) for r in conn.execute(_READ, {"run": run})]
        books = conn.execute("SELECT count(DISTINCT book) FROM pairs WHERE run = ?", (run,)).fetchone()[0]
        kept = alerts.kept(conn)
        reading: dict[str, Any] = {"run": run, "strategies": strategies, "books": int(books), "kept": kept,
                                   "open": 0, "alerts": [], "cleared": [], "mark": alerts.mark(conn)}
        if kept:
            reading["open"] = int(conn.execute("SELECT count(*) FROM alerts WHERE cleared_at IS NULL").fetchone()[0])
            reading["alerts"] = [list(r) for r in conn.execute(
                f"SELECT {ALERT_COLUMNS} FROM alerts WHERE cleared_at IS NULL ORDER BY id DESC LIMIT ?",
                (ALERTS_SHOWN,))]
            reading["cleared"] = [list(r) for r in conn.execute(
                f"SELECT {ALERT_COLUMNS} FROM alerts WHERE cleared_at IS NOT NULL ORDER BY id DESC LIMIT ?",
                (CLEARED_SHOWN,))]
    finally:
        if conn.in_transaction:
            conn.execute("COMMIT")
    return reading
