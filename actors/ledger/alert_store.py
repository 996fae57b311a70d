"""The ``alerts`` table: every alert the Ledger's watch raised, open until cleared, and the cleared ones
kept for a while (the Dashboard's alerts panel and a book's badge read it; a restarted Ledger reads
the open ones back, :meth:`Watch.restore`).

Alert changes are rare next to decisions, so they do not ride the decisions' write path: they are
written from their own connection on their own thread, a short transaction per group (SQLite lets one
writer in at a time; the decisions' writer waits at most that long). Queued changes are bounded
(:data:`QUEUE_MAX`, more are dropped and counted); a failed write is counted, logged and tried again
(:data:`RETRY`), so a database that is briefly locked or not created yet loses nothing. Cleared
alerts past the newest :data:`HISTORY_KEPT` are deleted.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
from collections import deque
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Final

from actors.kinds import LEDGER
from actors.ledger.watch import AlertChange
from transport.logs import RateLimitedLog

log = logging.getLogger(LEDGER.name)

QUEUE_MAX: Final = 100_000
GROUP_MAX: Final = 5_000  # changes in one transaction
HISTORY_KEPT: Final = 10_000  # cleared alerts kept
RETRY: Final = 1.0
BUSY_TIMEOUT: Final = 2.0

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
    conn.execute("BEGIN IMMEDIATE")
    try:
        for c in changes:
            if c.raised:
                conn.execute(_RAISE, (c.name, c.book, c.strategy, c.since, c.at, c.detail))
            else:
                conn.execute(_CLEAR, (c.at, c.detail, c.name, c.book, c.strategy))
        if any(not c.raised for c in changes):
            conn.execute(_TRIM, (keep,))
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
        raise


def read_open(conn: sqlite3.Connection) -> list[AlertChange]:
    """The alerts raised and not cleared."""
    return [AlertChange(str(r[0]), str(r[1]), str(r[2]), True, float(r[3]), float(r[4]), str(r[5]))
            for r in conn.execute(_OPEN)]


class AlertStore:
    def __init__(self, path: str, retry: float = RETRY, queue_max: int = QUEUE_MAX) -> None:
        self.path = path
        self._retry = retry
        self._queue: deque[AlertChange] = deque()
        self._queue_max = queue_max
        self._wake = asyncio.Event()
        self._conn: sqlite3.Connection | None = None  # used on the thread only
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="ledger-alerts")
        self._rlog = RateLimitedLog(log)
        self.counters = {"alerts_written": 0, "alerts_write_errors": 0, "alerts_dropped": 0}

    def add(self, changes: Iterable[AlertChange]) -> None:
        """Queue changes to write; never blocks (past the bound they are dropped, counted and logged)."""
        for change in changes:
            if len(self._queue) >= self._queue_max:
                self.counters["alerts_dropped"] += 1
                self._rlog.warning("alerts_dropped", "alert change not written: %d already wait (the database "
                                   "is unavailable?)", len(self._queue))
                continue
            self._queue.append(change)
        self._wake.set()

    def _connect(self) -> sqlite3.Connection:
        if self._conn is None:
            self._conn = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT, isolation_level=None,
                                         check_same_thread=False)
        return self._conn

    def _drop(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def _write(self, changes: Sequence[AlertChange]) -> None:
        try:
            write(self._connect(), changes)
        except sqlite3.Error:
            self._drop()
            raise

    def _read_open(self) -> list[AlertChange]:
        try:
            return read_open(self._connect())
        except sqlite3.Error:
            self._drop()
            raise

    async def open_alerts(self, within: float) -> list[AlertChange] | None:
        """The open alerts, once the database has its ``alerts`` table (the Ledger's writer creates and
        migrates it at start); None if that did not happen ``within`` seconds."""
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(within):
                while True:
                    try:
                        return await loop.run_in_executor(self._executor, self._read_open)
                    except sqlite3.Error:
                        await asyncio.sleep(min(0.1, within))
        except TimeoutError:
            return None

    async def run(self) -> None:
        """Write queued changes until cancelled (what is still queued then is lost: a restarted Ledger
        raises those alerts again when their condition holds)."""
        loop = asyncio.get_running_loop()
        try:
            while True:
                if not self._queue:
                    self._wake.clear()
                    await self._wake.wait()
                group = [self._queue[i] for i in range(min(GROUP_MAX, len(self._queue)))]
                try:
                    await loop.run_in_executor(self._executor, self._write, group)
                except sqlite3.Error as exc:
                    self.counters["alerts_write_errors"] += 1
                    self._rlog.warning("alerts_write", "could not write %d alert change(s) to %s: %s (trying again "
                                       "in %.0fs)", len(group), self.path, exc, self._retry)
                    await asyncio.sleep(self._retry)
                    continue
                for _ in group:
                    self._queue.popleft()
                self.counters["alerts_written"] += len(group)
        finally:
            self._executor.submit(self._drop)
            self._executor.shutdown(wait=True)
