"""The Ledger's ``alerts`` table, read (schema version 6 and later; an older database has none)."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any

from actors.ledger_reads.columns import ALERT_COLUMNS


def kept(conn: sqlite3.Connection) -> bool:
    return conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'alerts'").fetchone() is not None


def mark(conn: sqlite3.Connection) -> list[Any] | None:
    """``[newest id, newest clear]`` (two index look-ups): different after any raise or clear; None
    without the alerts table."""
    if not kept(conn):
        return None
    newest, cleared = conn.execute("SELECT (SELECT max(id) FROM alerts), (SELECT max(cleared_at) FROM alerts)"
                                   ).fetchone()
    return [int(newest or 0), float(cleared or 0.0)]


def of_pairs(conn: sqlite3.Connection, keys: Sequence[tuple[str, str]]) -> list[list[Any]]:
    """The open alerts (rows of :data:`ALERT_COLUMNS`) of these pairs (a page of the books table, one
    book), and of their strategies (book ``""``)."""
    if not keys or not kept(conn):
        return []
    found: list[list[Any]] = []
    strategies = sorted({strategy for _, strategy in keys})
    for book, strategy in [*keys, *(("", s) for s in strategies)]:
        found += map(list, conn.execute(f"SELECT {ALERT_COLUMNS} FROM alerts WHERE book = ? AND strategy = ? AND "
                                        "cleared_at IS NULL", (book, strategy)))
    return found
