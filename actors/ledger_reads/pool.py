"""Read-only connections to the Ledger's SQLite database on a few threads, never on the event loop and
never in the writer's way. Used by the Dashboard (reading the file beside the Ledger) and by the Ledger
itself (answering the Dashboard's queries over its socket).

- Opened as ``file:PATH?mode=ro`` (plus ``PRAGMA query_only``): this connection cannot write.
- WAL mode: a reader never blocks the writer; each query is its own short read transaction (no
  transaction is held open between queries), so the Ledger's checkpoints are never held back for long.
- Every query runs on the pool's own threads (one connection each); a progress handler interrupts
  one that runs past ``query_timeout``, and at most ``max_pending`` queries wait for a thread or run
  (more is :class:`LedgerBusy`).
- The database may not exist yet (the Ledger has not started, or runs with ``--no-ledger``), or be
  replaced: each query checks the file and (re)opens it; what is missing is :class:`LedgerUnavailable`.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sqlite3
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from stat import S_ISREG
from typing import Final, TypeVar

from transport import files

T = TypeVar("T")

BUSY_TIMEOUT_MS: Final = 1000  # only ever waits on the Ledger's WAL recovery, never on its writes
PROGRESS_EVERY: Final = 10_000  # SQLite VM steps between deadline checks


class LedgerUnavailable(Exception):
    """No history to read: no database yet, not a Ledger database, or unreadable. The message says which."""


class LedgerBusy(Exception):
    """Too many queries waiting, or one ran past its deadline."""


@contextlib.contextmanager
def counted_refusals(counters: dict[str, int]) -> Iterator[None]:
    """Count a read that could not be made, by why (``db_unavailable``, ``db_busy``), and let it go on:
    the file reader and the network reader count them alike."""
    try:
        yield
    except LedgerUnavailable:
        counters["db_unavailable"] += 1
        raise
    except LedgerBusy:
        counters["db_busy"] += 1
        raise


@dataclass
class _Local:
    conn: sqlite3.Connection | None = None
    inode: tuple[int, int] | None = None
    deadline: float = 0.0


class ReadPool:
    def __init__(self, path: str | Path, *, threads: int = 2, query_timeout: float = 2.0,
                 max_pending: int = 32, name: str = "ledger-read",
                 may_open: Callable[[], str | None] = lambda: None) -> None:
        """``may_open()``, asked on a reader thread before a connection is opened: None, or why not now."""
        self.path = Path(path).resolve()
        self._may_open = may_open
        self.timeout = query_timeout
        self._executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix=name)
        self._local = threading.local()
        self._opened: list[sqlite3.Connection] = []  # every connection, closed at shutdown (<= threads)
        self._lock = threading.Lock()
        self._pending = 0
        self.max_pending = max_pending
        self.counters = {"db_queries": 0, "db_errors": 0, "db_unavailable": 0, "db_busy": 0, "db_reopens": 0}

    @property
    def pending(self) -> int:
        """Queries waiting for a thread or running."""
        return self._pending

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
        if not S_ISREG(stat.st_mode):  # SQLite's read-only open of a FIFO would wait for a writer for ever
            raise LedgerUnavailable(f"{self.path} is not a regular file ({files.kind(stat.st_mode)})")
        inode = (stat.st_dev, stat.st_ino)
        if state.conn is not None and state.inode == inode:
            return state.conn
        if state.conn is not None:
            self.counters["db_reopens"] += 1  # the file was replaced: read the new one
            self._drop(state)
        refused = self._may_open()
        if refused is not None:
            raise LedgerUnavailable(refused)
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
        state.deadline = time.monotonic() + self.timeout
        try:
            return work(conn)
        except sqlite3.OperationalError as exc:
            text = str(exc)
            if "interrupted" in text:
                raise LedgerBusy(f"query took longer than {self.timeout:.1f}s") from None
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
        if self._pending >= self.max_pending:
            self.counters["db_busy"] += 1
            raise LedgerBusy(f"{self._pending} queries already waiting")
        self._pending += 1
        self.counters["db_queries"] += 1
        try:
            with counted_refusals(self.counters):
                return await asyncio.get_running_loop().run_in_executor(self._executor, self._run, work)
        except (LedgerUnavailable, LedgerBusy):
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
