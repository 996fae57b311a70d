"""The ledger database as the Ledger's writer sees it: open (create, WAL, migrate), write a group of
decisions in one transaction, bring ``pairs`` up to date, answer "last decided price" queries, delete
old rows a step at a time.

``pairs`` (one row per pair: its newest decision and counts, for the Dashboard and for resuming
workers) is brought up to date by :meth:`LedgerStore.update_pairs`, which the writer calls about once
a second, not by every write: a pair decided five times in that second is rewritten once, with its
seven Dashboard index entries, instead of five times (upserting ``pairs`` with every write cost more
than inserting the decisions: ``bench/ledger.py``). Each write keeps the fold of its own rows in
memory and, in its own transaction, in ``pairs_pending`` (schema version 4): what is acknowledged is
committed with its share of ``pairs``, and a Ledger that starts after a crash folds that table into
``pairs``. Resuming workers read the table and the fold (:meth:`LedgerStore.last_decided`): never
behind. Readers of the file see ``pairs`` up to a second behind ``decisions``.

Blocking by nature: every method runs on the Ledger's one database thread (a connection is used by
the thread that made it), never on the event loop. Every failure is an exception for the caller to
classify (:func:`actors.ledger.records.error_kind`); a failed write is rolled back whole, so what was
not committed is never acknowledged.
"""

from __future__ import annotations

import contextlib
import errno
import operator
import os
import sqlite3
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Final, NamedTuple
from urllib.parse import quote

from actors.ledger import alert_store, files, schema
from actors.ledger.errors import FileLost, SchemaError, error_kind
from actors.ledger.records import (
    SYNCHRONOUS_MODES,
    PairRow,
    Retention,
    journal_entry,
    journal_pairs,
    merge_pairs,
    pair_rows,
)
from actors.ledger.watch import AlertChange
from transport.ledger_rows import DecisionRow


class Newest(NamedTuple):
    """A pair's newest kept decision, as a resume query answers it."""

    price: str
    ts: float
    run: float
    tick: int


BUSY_TIMEOUT: Final = 1.0  # seconds a write waits for another process's lock before failing
WAL_SIZE_LIMIT: Final = 64 * 1024 * 1024  # the WAL file is truncated back to this after a checkpoint

# Columns by name, never by position: version 3 put ``run`` before ``tick`` in ``decisions`` and at the
# end of ``pairs``.
# Public: the benchmarks insert with this very statement (bench/ledger_bare.py, bench/ledger_depth.py).
INSERT_DECISION: Final = (f"INSERT OR IGNORE INTO decisions ({', '.join(DecisionRow._fields)}) "
                  f"VALUES ({', '.join('?' * len(DecisionRow._fields))})")
_NEWEST: Final = ("run", "tick", "ts", "price", "price_cents", "avg_comp_price", "avg_sort", "sold", "guardrail")
# A pair's counts always add up; its newest fields change only for a newer decision (a resent, older
# batch may commit after a newer one), newer by (ts, run, tick) as ``records.newest_key``. SET
# expressions all see the row as it was before the update.
_UPSERT_PAIR: Final = (
    f"INSERT INTO pairs ({', '.join(PairRow._fields)}) VALUES ({', '.join('?' * len(PairRow._fields))}) "
    "ON CONFLICT (book, strategy) DO UPDATE SET decisions = pairs.decisions + excluded.decisions, "
    "guardrail_hits = pairs.guardrail_hits + excluded.guardrail_hits, "
    + ", ".join(f"{c} = iif((excluded.ts, excluded.run, excluded.tick) > (pairs.ts, pairs.run, pairs.tick), "
                f"excluded.{c}, pairs.{c})" for c in _NEWEST)
)
_KEY_OF: Final = operator.itemgetter(0, 1, 2, 3)  # a DecisionRow's (book, strategy, run, tick)
_ADD_ROWS: Final = "UPDATE ledger_counts SET value = value + ? WHERE name = 'decisions'"
_DELETE_OLDEST: Final = ("DELETE FROM decisions WHERE (book, strategy, run, tick) IN "
                         "(SELECT book, strategy, run, tick FROM decisions {where} ORDER BY ts LIMIT ?)")
_JOURNAL: Final = "INSERT INTO pairs_pending (fold) VALUES (?)"
_KEY: Final = "book = ? AND strategy = ? AND run = ? AND tick = ?"
_KEPT: Final = f"SELECT {', '.join(DecisionRow._fields)} FROM decisions WHERE {_KEY}"
# A collision is quarantined once: the same decision sent again is not stored twice.
_QUARANTINED: Final = (f"SELECT 1 FROM collisions WHERE {_KEY} AND "
                       + " AND ".join(f"{c} IS ?" for c in DecisionRow._fields[4:]))
_QUARANTINE: Final = (f"INSERT INTO collisions ({', '.join(DecisionRow._fields)}, received) "
                      f"VALUES ({', '.join('?' * len(DecisionRow._fields))}, ?)")
_COLLISIONS: Final = "SELECT count(*) FROM collisions"
_DELETE_OLD_COLLISIONS: Final = ("DELETE FROM collisions WHERE rowid IN "
                                 "(SELECT rowid FROM collisions WHERE ts < ? LIMIT ?)")


@dataclass(frozen=True, slots=True)
class Written:
    """What one write did: rows inserted, rows already there (resent), and of those, rows whose key
    holds a *different* decision (same book, strategy, run and tick, other content: not a resend. A
    sender that does not fill ``run``, a pair decided twice on one tick by two workers, or a forger
    could cause one): ``quarantined`` of them newly kept in ``collisions``, ``unkept`` not (the table
    is full: logged and counted by the writer)."""

    stored: int
    duplicates: int
    collisions: int
    quarantined: int = 0
    unkept: int = 0


class LedgerStore:
    def __init__(self, path: str, synchronous: str = "full", max_db_bytes: int = 0,
                 wall: Callable[[], float] = time.time) -> None:
        if synchronous not in SYNCHRONOUS_MODES:
            raise ValueError(f"synchronous must be one of {SYNCHRONOUS_MODES}")
        self.path = path
        self._wall = wall  # dates a quarantined collision
        self._synchronous = synchronous
        self._max_db_bytes = max_db_bytes
        self._conn: sqlite3.Connection | None = None
        self.rows = 0  # rows in ``decisions``, as committed
        # The pairs of committed decisions not yet in ``pairs``: exactly what ``pairs_pending`` holds.
        self._pending: dict[tuple[str, str], PairRow] = {}
        self.journal_skipped = 0  # rows of ``pairs_pending`` found unreadable at the last open
        self._files: files.Snapshot | None = None  # the files opened, and the main file's size
        self._written = False  # committed to the WAL since the last checkpoint

    @property
    def main_file(self) -> files.FileId | None:
        """The identity of the main file open (None: closed)."""
        opened = self._files
        return None if opened is None else opened.ids[0]

    @property
    def opened_files(self) -> files.Snapshot | None:
        """The files open (main, -wal, -shm) and the main file's size; None while closed."""
        return self._files

    @property
    def pending_pairs(self) -> int:
        """Pairs whose row in ``pairs`` is behind their decisions (until :meth:`update_pairs`)."""
        return len(self._pending)

    @property
    def is_open(self) -> bool:
        return self._conn is not None

    def open(self) -> tuple[int, int]:
        """Open (creating the file and its directory on first start) and migrate; return the schema
        versions (from, to). Raises on any failure, leaving the store closed."""
        self.close()
        directory = os.path.dirname(os.path.abspath(self.path))
        os.makedirs(directory, exist_ok=True)
        if not os.access(directory, os.W_OK):  # SQLite would only say "unable to open database file"
            raise PermissionError(errno.EACCES, f"directory {directory} is not writable (the database and, in WAL "
                                  "mode, its -wal and -shm files live there)")
        conn = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT, isolation_level=None)
        try:
            mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise SchemaError(f"cannot switch the database to WAL mode (journal_mode is {mode})")
            conn.execute(f"PRAGMA synchronous = {self._synchronous.upper()}")
            conn.execute(f"PRAGMA journal_size_limit = {WAL_SIZE_LIMIT}")
            if self._max_db_bytes:
                page = conn.execute("PRAGMA page_size").fetchone()[0]
                conn.execute(f"PRAGMA max_page_count = {max(1, self._max_db_bytes // page)}")
            versions = schema.migrate(conn)
            self.rows = conn.execute("SELECT value FROM ledger_counts WHERE name = 'decisions'").fetchone()[0]
            self._read_journal(conn)
            # The store checkpoints itself (:meth:`checkpoint`), after checking the files: SQLite's
            # automatic checkpoint inside a commit would grow a truncated file back, hiding it.
            conn.execute("PRAGMA wal_autocheckpoint = 0")
            conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
            self._files = files.snapshot(self.path)
            self._written = False
        except BaseException:
            conn.close()
            raise
        self._conn = conn
        return versions

    def _read_journal(self, conn: sqlite3.Connection) -> None:
        """What the last run committed but did not fold into ``pairs`` (after a crash, or a failed
        update): the next :meth:`update_pairs` folds it in."""
        self._pending.clear()
        self.journal_skipped = 0
        for (entry,) in conn.execute("SELECT fold FROM pairs_pending ORDER BY id"):
            pairs = journal_pairs(entry)
            if pairs is None:
                self.journal_skipped += 1
            else:
                merge_pairs(self._pending, pairs)

    def close(self) -> None:
        """Close the connection (SQLite copies what the WAL holds into the main file and removes the
        -wal and -shm files, by name)."""
        self._files = None
        if self._conn is not None:
            conn, self._conn = self._conn, None
            conn.close()

    # --- the files under the connection ------------------------------------------------------------

    def verify(self) -> None:
        """Raise :class:`FileLost` if the files at the path are no longer those open, whole."""
        if self._files is not None:
            change = files.change(self.path, self._files, files.snapshot(self.path))
            if change is not None:
                raise FileLost(change)

    def checkpoint(self) -> bool:
        """Verify the files, then copy what was committed since the last call from the WAL into the main
        file (PASSIVE: readers are not waited for); True if there was anything. The writer calls it
        about once a second: the WAL holds about a second of writes."""
        conn = self._db()
        self.verify()
        if not self._written:
            return False
        conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
        self._written = False
        if self._files is not None:  # the main file may have grown: its new size is the least it may have
            self._files = files.Snapshot(self._files.ids, max(self._files.size, files.snapshot(self.path).size))
        return True

    def recover(self, lost: FileLost) -> str:
        """Put a ledger back at the path after ``lost``; return what was done, for the log. Ends with the
        store open on the file now at the path (or raises, closed)."""
        change = lost.change
        opened = self._files
        try:
            if self._conn is None or opened is None:
                return "reopened the path"
            if change.kind in ("truncated", "corrupt"):
                self._close_quietly()
                moved = self._set_aside("damaged")
                return (f"moved it aside to {moved} for an operator (sqlite3 {moved} .recover) and started a new "
                        "ledger at the path; decisions acknowledged before the damage are only in that copy")
            if not change.main:  # the -wal or -shm file: the main file at the path is still this one
                self.close()  # copies the open WAL into it
                return "closed it (SQLite copied its open -wal into the main file) and reopened it: nothing lost"
            if change.kind == "deleted" and not os.path.exists(self.path):
                restoring = files.aside(self.path, "restoring")
                self._backup(restoring)
                self.close()
                _remove_if(self.path, opened)  # a -wal or -shm of the old file left at the path
                os.replace(restoring, self.path)
                _sync_directory(self.path)
                return "restored it at the path from the still-open file: nothing lost"
            kept = files.aside(self.path, "lost")
            self._backup(kept)
            self.close()
            _remove_if(self.path, opened)
            return (f"saved the open file to {kept} (the decisions it held are there, for an operator) and "
                    "opened the file now at the path")
        finally:
            self._close_quietly()
            self.open()

    def _backup(self, target: str) -> None:
        """A copy of the database as this connection sees it (the deleted file and its WAL, through the
        descriptors SQLite still holds) at ``target``, synced."""
        dest = sqlite3.connect(target, isolation_level=None)
        try:
            self._db().backup(dest)
        finally:
            dest.close()

    def _close_quietly(self) -> None:
        with contextlib.suppress(sqlite3.Error):
            self.close()
        self._conn = None
        self._files = None

    def _set_aside(self, label: str) -> str:
        """Rename the damaged file (and what is left of its -wal and -shm) beside it; return the name."""
        moved = files.aside(self.path, label)
        for suffix in files.SUFFIXES:
            with contextlib.suppress(FileNotFoundError):
                os.rename(self.path + suffix, moved + suffix)
        _sync_directory(self.path)
        return moved

    def _db(self) -> sqlite3.Connection:
        if self._conn is None:
            raise sqlite3.OperationalError("the ledger database is not open")
        return self._conn

    def write(self, batches: Sequence[Sequence[DecisionRow]]) -> list[Written]:
        """Insert every batch's rows (INSERT OR IGNORE on (book, strategy, run, tick)) and journal their
        fold of ``pairs`` (the rows actually inserted), all in one transaction; return what happened to
        each batch."""
        conn = self._db()
        # In key order: SQLite's B-trees are keyed by pair first, so rows in the order they came (by tick,
        # then book) each touch a page of their own; in order, neighbours share pages (100,000 books,
        # transactions of 5,000 in random order: 49-54 against 39 us a row, 2026-12-05). Stable: a key sent
        # twice in one transaction keeps its first.
        rows = sorted((row for batch in batches for row in batch), key=_KEY_OF)
        with schema.transaction(conn):
            conn.execute("SAVEPOINT batch")
            if conn.executemany(INSERT_DECISION, rows).rowcount == len(rows):
                inserted = rows
                results = [Written(len(batch), 0, 0) for batch in batches]
            else:
                # Some were there already (a resend): redo row by row to learn which. Rare, so the
                # common case keeps executemany's speed.
                conn.execute("ROLLBACK TO batch")
                inserted, results = [], []
                for batch in batches:
                    results.append(self._insert_one_by_one(conn, batch, inserted))
            conn.execute("RELEASE batch")
            fold = pair_rows(inserted)
            if fold:
                conn.execute(_JOURNAL, (journal_entry(fold),))
                conn.execute(_ADD_ROWS, (len(inserted),))
        merge_pairs(self._pending, fold)  # committed: now part of what pairs_pending holds
        self.rows += len(inserted)
        self._written = True
        self.verify()  # committed to the file at the path, or not acknowledged
        return results

    def write_alerts(self, changes: Sequence[AlertChange]) -> None:
        """Apply alert changes (:func:`alert_store.write`) in a transaction of their own, on this
        connection: the file's watch covers them like the decisions."""
        alert_store.write(self._db(), changes)
        self._written = True
        self.verify()

    def open_alerts(self) -> list[AlertChange]:
        """The alerts raised and not cleared."""
        return alert_store.read_open(self._db())

    def update_pairs(self) -> int:
        """Fold the pending pairs into ``pairs`` and empty ``pairs_pending``, in one transaction; return
        how many pairs were written."""
        if not self._pending:
            return 0
        conn = self._db()
        pending = self._pending
        with schema.transaction(conn):
            # In key order (the upsert walks ``pairs`` and 7 indexes: 100,000 pairs in random order cost 72
            # us a pair, in order 28, 2026-12-05).
            conn.executemany(_UPSERT_PAIR, [pending[key] for key in sorted(pending)])
            conn.execute("DELETE FROM pairs_pending")
        count = len(self._pending)
        self._pending.clear()
        self._written = True
        return count

    def _insert_one_by_one(self, conn: sqlite3.Connection, rows: Sequence[DecisionRow],
                           inserted: list[DecisionRow]) -> Written:
        stored = duplicates = collisions = quarantined = unkept = 0
        for row in rows:
            if conn.execute(INSERT_DECISION, row).rowcount == 1:
                inserted.append(row)
                stored += 1
                continue
            duplicates += 1
            kept = conn.execute(_KEPT, row[:4]).fetchone()
            if kept is None or tuple(kept) == tuple(row):
                continue  # a resend
            collisions += 1
            if conn.execute(_QUARANTINED, row).fetchone() is not None:
                continue  # quarantined already
            if conn.execute(_COLLISIONS).fetchone()[0] >= schema.COLLISIONS_MAX:
                unkept += 1
                continue
            conn.execute(_QUARANTINE, (*row, self._wall()))
            quarantined += 1
        return Written(stored, duplicates, collisions, quarantined, unkept)

    def last_decided(self, pairs: Sequence[tuple[str, str]]) -> list[tuple[str, float] | None]:
        """The newest kept (price, ts) of each pair, in order; None for a pair never decided."""
        return [None if item is None else (item.price, item.ts) for item in self.newest(pairs)]

    def newest(self, pairs: Sequence[tuple[str, str]]) -> list[Newest | None]:
        """The newest kept decision of each pair (its price, time, run and tick), in order; None for a
        pair never decided. From ``pairs`` and what is pending for it: never behind the decisions
        acknowledged."""
        conn = self._db()
        query = "SELECT price, ts, run, tick FROM pairs WHERE book = ? AND strategy = ?"
        found: list[Newest | None] = []
        for pair in pairs:
            row = conn.execute(query, pair).fetchone()
            kept = None if row is None else Newest(str(row[0]), float(row[1]), float(row[2]), int(row[3]))
            pending = self._pending.get(pair)
            if pending is not None and (kept is None or (pending.ts, pending.run, pending.tick) > kept[1:]):
                kept = Newest(pending.price, pending.ts, pending.run, pending.tick)
            found.append(kept)
        return found

    def prune(self, retention: Retention, now: float) -> int:
        """Delete at most ``retention.step`` of the oldest rows that are over the age or row limit;
        return how many. Call again while it returns a full step."""
        conn = self._db()
        deleted = 0
        with schema.transaction(conn):
            cutoff = retention.cutoff(now)
            if cutoff is not None:
                deleted += conn.execute(_DELETE_OLDEST.format(where="WHERE ts < ?"),
                                        (cutoff, retention.step)).rowcount
                conn.execute(_DELETE_OLD_COLLISIONS, (cutoff, retention.step))
            excess = min(retention.excess(self.rows - deleted), retention.step - deleted)
            if excess > 0:
                deleted += conn.execute(_DELETE_OLDEST.format(where=""), (excess,)).rowcount
            if deleted:
                conn.execute(_ADD_ROWS, (-deleted,))
        self.rows -= deleted
        self._written = True
        return deleted


def quick_check(path: str, opened: files.Snapshot | None = None) -> tuple[files.FileId | None, str | None]:
    """``PRAGMA quick_check`` of the database at ``path`` on a read-only connection of its own: (the
    identity of the file checked, the first problem found or None). An error that is not a damaged
    file (busy, I/O) is no finding: (None, None).

    With ``opened`` (the writer's files), nothing is opened unless the files at the path are still
    those: a connection opened on a file put at the path with the writer's -wal and -shm still beside
    it would read (and index) that WAL as the new file's, under the writer's connection, whose saving
    of the old file then fails (disk I/O error) and the decisions it acknowledged are not set aside.
    Finding the change is the writer's (its own check of the path)."""
    now = files.snapshot(path)
    if opened is not None and files.change(path, opened, now) is not None:
        return None, None
    before = now.ids[0]
    try:
        conn = sqlite3.connect(f"file:{quote(os.path.abspath(path))}?mode=ro", uri=True, timeout=BUSY_TIMEOUT)
        try:
            # It reads every page once: a small cache is as fast, and keeps its thread's memory small.
            conn.execute("PRAGMA cache_size = -256")
            found = [str(row[0]) for row in conn.execute("PRAGMA quick_check(5)")]
        finally:
            conn.close()
    except sqlite3.DatabaseError as exc:
        if error_kind(exc) != "corrupt":
            return None, None
        found = [str(exc)]
    if files.snapshot(path).ids[0] != before:  # replaced meanwhile: the check says nothing of either
        return None, None
    return before, None if found == ["ok"] else "; ".join(found)[:300]


def _sync_directory(path: str) -> None:
    """Make a rename in ``path``'s directory durable."""
    fd = os.open(os.path.dirname(os.path.abspath(path)), os.O_RDONLY | os.O_DIRECTORY | os.O_NONBLOCK)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _remove_if(path: str, opened: files.Snapshot) -> None:
    """Remove the -wal and -shm files at ``path`` that are still those of ``opened``: SQLite leaves
    them when it closes a database whose file moved, and the next open of the path would replay that
    WAL onto whatever file is there now."""
    now = files.snapshot(path)
    for suffix, was, current in zip(files.SUFFIXES[1:], opened.ids[1:], now.ids[1:], strict=True):
        if current is not None and current == was:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path + suffix)
