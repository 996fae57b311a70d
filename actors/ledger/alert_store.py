"""The ``alerts`` table: every alert the Ledger's watch raised, open until cleared, and the cleared ones
kept for a while (the Dashboard's alerts panel and a book's badge read it; a restarted Ledger reads
the open ones back, :meth:`Watch.restore`).

Alert changes ride the Ledger's one database connection and thread (:mod:`actors.ledger.writer`), in
short transactions of their own between the decisions' group commits: a second connection to the file
would defeat the writer's watch over it (a connection opened after the file was deleted creates a new
one at the path, which the writer must then take for a replacement, and a write through a connection
to a deleted file is lost). Here: the SQL (pure functions of a connection) and :class:`AlertQueue`,
the bounded queue of changes waiting for that thread (more are dropped and counted). A failed write
leaves its changes queued, to be written again after the writer's retry: raises and clears are
idempotent. Cleared alerts past the newest :data:`HISTORY_KEPT` are deleted.
"""

from __future__ import annotations

import logging
import sqlite3
from collections import deque
from collections.abc import Iterable, Sequence
from typing import Final

from actors.kinds import LEDGER
from actors.ledger import schema
from actors.ledger.watch import AlertChange
from transport.logs import RateLimitedLog

log = logging.getLogger(LEDGER.name)

QUEUE_MAX: Final = 100_000
GROUP_MAX: Final = 5_000  # changes in one transaction
HISTORY_KEPT: Final = 10_000  # cleared alerts kept

_RAISE: Final = ("INSERT OR IGNORE INTO alerts (alert, book, strategy, since, raised_at, detail) "
                 "VALUES (?, ?, ?, ?, ?, ?)")
_CLEAR: Final = ("UPDATE alerts SET cleared_at = ?, cleared_detail = ? WHERE alert = ? AND book = ? AND strategy = ? "
                 "AND cleared_at IS NULL")
_TRIM: Final = ("DELETE FROM alerts WHERE cleared_at IS NOT NULL AND id < (SELECT id FROM alerts WHERE cleared_at "
                "IS NOT NULL ORDER BY id DESC LIMIT 1 OFFSET ?)")
_OPEN: Final = ("SELECT alert, book, strategy, since, raised_at, detail FROM alerts WHERE cleared_at IS NULL "
                "ORDER BY id")


def write(conn: sqlite3.Connection, changes: Sequence[AlertChange], keep: int = HISTORY_KEPT) -> None:
    """Apply ``changes`` in order, in one transaction: a raise opens an alert (one open at a time per
    alert and subject), a clear closes the open one."""
    with schema.transaction(conn):
        for c in changes:
            if c.raised:
                conn.execute(_RAISE, (c.name, c.book, c.strategy, c.since, c.at, c.detail))
            else:
                conn.execute(_CLEAR, (c.at, c.detail, c.name, c.book, c.strategy))
        if any(not c.raised for c in changes):
            conn.execute(_TRIM, (keep,))


def read_open(conn: sqlite3.Connection) -> list[AlertChange]:
    """The alerts raised and not cleared."""
    return [AlertChange(str(r[0]), str(r[1]), str(r[2]), True, float(r[3]), float(r[4]), str(r[5]))
            for r in conn.execute(_OPEN)]


class AlertQueue:
    """Alert changes waiting for the database thread, in order, bounded; no I/O."""

    def __init__(self, queue_max: int = QUEUE_MAX) -> None:
        self._queue: deque[AlertChange] = deque()
        self._queue_max = queue_max
        self._rlog = RateLimitedLog(log)
        self.counters = {"alerts_written": 0, "alerts_write_errors": 0, "alerts_dropped": 0}

    def __len__(self) -> int:
        return len(self._queue)

    def add(self, changes: Iterable[AlertChange]) -> None:
        """Queue changes to write; never blocks (past the bound they are dropped, counted and logged)."""
        for change in changes:
            if len(self._queue) >= self._queue_max:
                self.counters["alerts_dropped"] += 1
                self._rlog.warning("alerts_dropped", "alert change not written: %d already wait (the database "
                                   "is unavailable?)", len(self._queue))
                continue
            self._queue.append(change)

    def group(self) -> list[AlertChange]:
        """The oldest changes, for one transaction (they stay queued until :meth:`written`)."""
        return [self._queue[i] for i in range(min(GROUP_MAX, len(self._queue)))]

    def written(self, count: int) -> None:
        for _ in range(count):
            self._queue.popleft()
        self.counters["alerts_written"] += count
