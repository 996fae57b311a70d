"""The Ledger's database work, kept off the event loop.

One thread owns the SQLite connection (a single-thread executor: a connection belongs to the thread
that made it, and one writer is all SQLite allows anyway); the event loop only queues work and awaits
its result. The queues are bounded: a batch that does not fit is refused at once ("busy"), and the
client sends it again later. Every batch waiting when the thread comes free is written in one
transaction (group commit) and each is acknowledged only once that transaction has committed.
``pairs`` is brought up to date every ``PAIRS_INTERVAL`` (sooner when many pairs wait: see
:mod:`actors.ledger.store`; later when an update takes long: ``PAIRS_DUTY``). Retention runs on the
same thread, one small delete per turn, alternating with the writes.

A database that cannot be opened or written (corrupt, not SQLite, read-only, full, locked) is
logged with a hint and counted by kind; meanwhile every batch is refused at once with the reason, and
the Ledger tries again every ``retry`` seconds. It never exits over its database, and never
overwrites a file it could not open.

The file it has open is watched (:mod:`actors.ledger.files`): after every commit and every second
the store checks that the path still names the open files, whole, and a ``PRAGMA quick_check`` runs
every ``quick_check_every`` seconds on a thread and connection of its own. A file deleted, replaced,
truncated or damaged while open is logged once, counted (``db_lost_<kind>``), the batches of the
commit that found it are refused (not acknowledged: they may not be in any file), and the Ledger
recovers at once, by itself (:meth:`LedgerStore.recover`): a deleted file is restored at its path
from the still-open one (nothing lost); a replaced one is used, the open one saved beside it
(``<path>.lost-<time>``); a truncated or damaged one is moved aside (``<path>.damaged-<time>``) for
an operator and a new ledger is started at the path.

The alert changes of the Ledger's watch are written here too (:meth:`LedgerWriter.submit_alerts`), in
small transactions of their own on the same connection, so that watch covers them; a failed one stays
queued and is written again after the retry (raises and clears are idempotent).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Final, TypeVar

from actors.kinds import LEDGER
from actors.ledger import schema
from actors.ledger.alert_store import AlertQueue
from actors.ledger.errors import ERROR_KINDS, HINTS, FileLost, error_kind
from actors.ledger.files import LOSS_KINDS, Change
from actors.ledger.records import Retention, stored_price
from actors.ledger.store import LedgerStore, Written, quick_check
from actors.ledger.watch import AlertChange
from transport import limits
from transport.ledger_rows import DecisionRow
from transport.logs import RateLimitedLog
from transport.protocol import LastDecidedReply, LastDecidedRequest, LedgerAck, Message

log = logging.getLogger(LEDGER.name)

T = TypeVar("T")
QUEUE_MAX: Final = 200 * limits.LEDGER_BATCH_MAX  # decisions waiting for the thread (12 workers' 16 batches; ~20 MB)
QUERIES_MAX: Final = 64  # LastDecidedRequests waiting for the thread
TRANSACTION_MAX: Final = 25 * limits.LEDGER_BATCH_MAX  # decisions in one group commit
PAIRS_INTERVAL: Final = 5.0  # seconds ``pairs`` may lag behind the decisions (readers of the file see it)
# The most of the database thread's time updates of ``pairs`` may take: after an update of T seconds the
# next waits max(PAIRS_INTERVAL, T / PAIRS_DUTY). At 100,000 books an update costs ~28 us a pair (its 7
# indexes), so on a 5 s interval, each pair decided about once in it, it took more of the thread than the
# decisions' inserts (35% of the Ledger's samples, 2026-12-05); the books page then lags more, not the
# decisions.
PAIRS_DUTY: Final = 0.2
# Pairs waiting for ``pairs``: more updates it at once (bounds the memory: ~310 bytes a pair waiting, so
# ~62 MB). Above the pairs of a 100,000-book catalogue: at 100,000 the update came about every tick
# instead of every PAIRS_INTERVAL (each pair rewritten once per decision, with its 7 indexes: 31 against
# 20 us of the database thread per decision, 100,000 books, 5 ticks, 2026-12-05). An update of this many
# holds the writes back ~2-3 s (~11-14 us a pair).
PAIRS_PENDING_MAX: Final = 200_000
PRUNE_INTERVAL: Final = 60.0  # seconds between age checks once nothing is due (an idle Ledger wakes for it)
FILE_CHECK_INTERVAL: Final = 1.0  # seconds between checks of the files (and checkpoints), idle or not
QUICK_CHECK_DUTY: Final = 0.1  # the most of the time quick_check may run: a long check spaces them further
# Seconds a write waits while the socket edge still reads batches that arrived with the first one
# waiting: they are committed together (one fsync), and the event loop's reading does not contend
# with the database thread for the GIL (each row SQLite steps gives it up and waits to take it back:
# a write beside a reading loop took 5-15x its CPU time, bench.ledger, 2026-12-05).
HOLD_MAX: Final = 0.02
Reply = Callable[[bytes, Message], None]


def pairs_interval(took: float) -> float:
    """Seconds from the start of an update of ``pairs`` that took ``took`` seconds to the next."""
    return max(PAIRS_INTERVAL, took / PAIRS_DUTY)


@dataclass(slots=True)
class PendingBatch:
    identity: bytes  # the ROUTER identity of the client that sent it
    batch_id: int
    rows: list[DecisionRow]
    rejected: int  # decisions of the batch that failed the checks (acknowledged, never stored)


@dataclass(slots=True)
class PendingQuery:
    identity: bytes
    request: LastDecidedRequest


class LedgerWriter:
    def __init__(self, store: LedgerStore, retention: Retention, retry: float, reply: Reply,
                 clock: Callable[[], float] = time.monotonic, wall: Callable[[], float] = time.time,
                 quick_check_every: float = 0.0) -> None:
        """``clock`` schedules retries and retention steps; ``wall`` dates the retention cutoff;
        ``quick_check_every``: seconds between quick_checks (0: none)."""
        self._store = store
        self._quick_check_every = quick_check_every
        self._files_at = 0.0  # when the files are next checked
        self._lost: FileLost | None = None  # a loss found, to recover from before anything else
        self._retention = retention
        self._retry = retry
        self._reply = reply
        self._clock = clock
        self._wall = wall
        self._batches: deque[PendingBatch] = deque()
        self._queued = 0  # decisions in ``_batches``: <= QUEUE_MAX
        self._writing = False  # a group of batches is being written
        self._arriving = False  # the socket edge has more frames to read now (see HOLD_MAX)
        self._held_since = 0.0  # when the first batch waiting was queued
        self._queries: deque[PendingQuery] = deque()
        self.alerts = AlertQueue()
        self._opened_once = asyncio.Event()
        self._wake = asyncio.Event()
        self._unavailable: str | None = None  # why the database cannot be written now
        self._retry_at = 0.0  # no write or open is tried before this time after a failure
        self._prune_at = 0.0
        self._pairs_at = 0.0  # when ``pairs`` is next brought up to date, if any pair waits
        self._prune_turn = False  # the next turn goes to a due retention step rather than a write
        self._rlog = RateLimitedLog(log)
        self._executor: ThreadPoolExecutor | None = None
        self._is_open = False  # as the loop knows it: the thread closes the store after a failure
        self.counters: dict[str, int] = {
            "transactions": 0, "pairs_updates": 0, "pairs_pending": 0,
            "pairs_interval_ms": round(1000 * PAIRS_INTERVAL),
            "stored": 0, "duplicates": 0, "key_collisions": 0, "collisions_kept": 0, "collisions_unkept": 0,
            "acks": 0, "nacks": 0,
            "busy": 0, "queries_answered": 0, "pruned": 0, "db_open": 0, "rows": 0, "db_errors": 0,
            **{f"db_errors_{kind}": 0 for kind in ERROR_KINDS},
            "quick_checks": 0, "db_lost": 0, **{f"db_lost_{kind}": 0 for kind in LOSS_KINDS},
        }

    @property
    def queued(self) -> int:
        """Decisions waiting for the database thread."""
        return self._queued

    @property
    def writing(self) -> bool:
        """Decisions wait for the database thread, or it writes some: the Ledger's reads hold back."""
        return self._queued > 0 or self._writing

    # --- what the socket edge hands over --------------------------------------------------------

    def submit_batch(self, batch: PendingBatch) -> None:
        if not batch.rows:
            self._ack(batch, Written(0, 0, 0))
        elif self._unavailable is not None and self._clock() < self._retry_at:
            self._nack(batch, f"ledger database unavailable: {self._unavailable}")
        elif self._queued + len(batch.rows) > QUEUE_MAX:
            self.counters["busy"] += 1
            self._nack(batch, f"busy: {self._queued} decisions wait to be written")
        else:
            if not self._batches:
                self._held_since = self._clock()
            self._batches.append(batch)
            self._queued += len(batch.rows)
            self._wake.set()

    def arriving(self, more: bool) -> None:
        """Whether the socket edge has more frames waiting to be read: while it has, a write waits for
        them (up to ``HOLD_MAX``, or until a transaction's worth waits), so batches that arrive
        together are committed together."""
        if more != self._arriving:
            self._arriving = more
            if not more:
                self._wake.set()

    def _held(self, now: float) -> bool:
        return self._arriving and self._queued < TRANSACTION_MAX and now < self._held_since + HOLD_MAX

    def submit_query(self, query: PendingQuery) -> None:
        # Reads work on a full or write-locked database: refused only while it cannot be opened (before
        # the first attempt they wait for it).
        if not self._is_open and self._unavailable is not None:
            self._refuse(query, f"ledger database unavailable: {self._unavailable}")
        elif len(self._queries) >= QUERIES_MAX:
            self.counters["busy"] += 1
            self._refuse(query, f"busy: {len(self._queries)} queries wait")
        else:
            self._queries.append(query)
            self._wake.set()

    def submit_alerts(self, changes: list[AlertChange]) -> None:
        """Alert changes to write, in order; never blocks (the queue is bounded)."""
        self.alerts.add(changes)
        self._wake.set()

    async def open_alerts(self, within: float) -> list[AlertChange] | None:
        """The open alerts, once the database is open; None if it was not within ``within`` seconds or
        could not be read."""
        try:
            async with asyncio.timeout(within):
                await self._opened_once.wait()
            return await self._call(self._store.open_alerts)
        except (TimeoutError, sqlite3.Error):
            return None

    # --- replies -------------------------------------------------------------------------------

    def _ack(self, batch: PendingBatch, written: Written) -> None:
        self.counters["acks"] += 1
        self._reply(batch.identity, LedgerAck(batch.batch_id, written.stored, written.duplicates, batch.rejected))

    def _nack(self, batch: PendingBatch, error: str) -> None:
        self.counters["nacks"] += 1
        self._reply(batch.identity, LedgerAck(batch.batch_id, 0, 0, 0, error[:500]))

    def _refuse(self, query: PendingQuery, error: str) -> None:
        self._reply(query.identity, LastDecidedReply(query.request.request_id, (), (), error[:500]))

    # --- the loop ------------------------------------------------------------------------------

    async def _call(self, fn: Callable[..., T], *args: object) -> T:
        assert self._executor is not None
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    async def run(self) -> None:
        """Serve the queues until cancelled; run it in the actor's TaskGroup."""
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="ledger-db")
        try:
            async with asyncio.TaskGroup() as group:
                if self._quick_check_every > 0:
                    group.create_task(self._quick_checks())
                await self._serve()
        finally:
            # The thread finishes what it is doing (a write commits or rolls back whole), brings ``pairs``
            # up to date (else the next start does it), then closes.
            self._executor.submit(self._last_pairs_update)
            self._executor.submit(self._store.close)
            self._executor.shutdown(wait=True)

    async def _serve(self) -> None:
        while True:
            now = self._clock()
            if self._lost is not None:
                await self._recover(self._lost)
                continue
            if not self._is_open and now >= self._retry_at:
                await self._open()
            writable = self._is_open and bool(self._batches) and now >= self._retry_at and not self._held(now)
            prunable = self._is_open and self._retention.enabled and now >= self._prune_at
            if self._is_open and now >= self._files_at:
                await self._check_files(now)
            elif self._queries and self._is_open:
                await self._answer_queries()
            elif self.alerts and self._is_open and now >= self._retry_at:
                await self._write_alerts()
            elif self._pairs_due(now):
                await self._update_pairs(now)
            elif prunable and (self._prune_turn or not writable):
                # A due retention step after every write: a busy Ledger still keeps its disk bounded.
                self._prune_turn = False
                await self._prune(now)
            elif writable:
                self._prune_turn = True
                await self._write()
            else:
                await self._idle(now)

    async def _idle(self, now: float) -> None:
        """Wait for work, or until the next retry or retention check is due (no polling otherwise)."""
        due = self.next_due(now)
        self._wake.clear()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(None if due is None else max(0.0, due - now)):
                await self._wake.wait()

    def next_due(self, now: float) -> float | None:
        """When the writer has something to do next without being woken (None: only when woken)."""
        # A retry already due is not waited for: what it was for has run, or is held (a past time here
        # made a held write spin the event loop until its hold ended, 2026-12-05).
        due = [t for t, wanted in ((self._retry_at, self._retry_at > now and (not self._is_open or bool(self._batches)
                                                                               or bool(self.alerts))),
                                   (self._prune_at, self._retention.enabled and self._is_open),
                                   (self._pairs_at, self._is_open and self._store.pending_pairs > 0),
                                   (self._files_at, self._is_open),
                                   (self._held_since + HOLD_MAX, self._arriving and bool(self._batches))) if wanted]
        return min(due) if due else None

    async def _open(self) -> None:
        try:
            versions = await self._call(self._store.open)
        except Exception as exc:
            self._fail("open", exc)
            return
        self._opened(versions)

    def _opened(self, versions: tuple[int, int]) -> None:
        self._is_open = True
        self._opened_once.set()
        self._unavailable = None
        self.counters["db_open"] = 1
        self.counters["rows"] = self._store.rows
        how = "created" if versions[0] == 0 else "opened" if versions[0] == versions[1] else "migrated"
        log.info("%s %s (schema version %d, %d decisions kept)", how, self._store.path, versions[1],
                 self._store.rows)
        if self._store.pending_pairs:
            log.info("%d pairs of decisions committed by the last run are not yet in the pairs table: updating it",
                     self._store.pending_pairs)
        if self._store.journal_skipped:
            log.warning("%d rows of pairs_pending are not ones this Ledger writes: skipped (those pairs' counts may be "
                        "short in the pairs table; their decisions are all kept)", self._store.journal_skipped)
        self._pairs_at = self._clock()
        self.counters["pairs_pending"] = self._store.pending_pairs

    async def _write(self) -> None:
        group: list[PendingBatch] = []
        size = 0
        while self._batches and (not group or size + len(self._batches[0].rows) <= TRANSACTION_MAX):
            batch = self._batches.popleft()
            group.append(batch)
            size += len(batch.rows)
        self._queued -= size
        self._writing = True
        try:
            written = await self._call(self._store.write, [batch.rows for batch in group])
        except FileLost as exc:  # committed, but to a file no longer at the path: not acknowledged
            self._found_lost(exc, group)
            return
        except Exception as exc:
            for batch in group:
                self._nack(batch, f"not stored: {self._fail('write', exc)}")
            return
        finally:
            self._writing = False
        self._unavailable = None
        self.counters["transactions"] += 1
        self.counters["rows"] = self._store.rows
        self.counters["pairs_pending"] = self._store.pending_pairs
        if self._retention.excess(self._store.rows):  # over the row limit: trim now, not at the next age check
            self._prune_at = min(self._prune_at, self._clock())
        for batch, result in zip(group, written, strict=True):
            self.counters["stored"] += result.stored
            self.counters["duplicates"] += result.duplicates
            self._note_collisions(result)
            self._ack(batch, result)

    async def _write_alerts(self) -> None:
        group = self.alerts.group()
        try:
            await self._call(self._store.write_alerts, group)
        except FileLost as exc:  # to a file no longer at the path: written again once recovered
            self._found_lost(exc, [])
            return
        except Exception as exc:
            self.alerts.counters["alerts_write_errors"] += 1
            self._fail("write of alerts", exc)  # sets the retry: they stay queued until then
            return
        self.alerts.written(len(group))

    def _note_collisions(self, result: Written) -> None:
        if result.collisions:
            self.counters["key_collisions"] += result.collisions
            self.counters["collisions_kept"] += result.quarantined
            self.counters["collisions_unkept"] += result.unkept
            self._rlog.warning("collision", "%d decision(s) arrived for a (book, strategy, run, tick) that holds "
                               "another decision: %d kept in the collisions table (the key is disputed: history "
                               "shows both), %d already there, %d not kept (the table holds its %d rows); a sender "
                               "without its run, a pair decided twice on one tick, or a forger?", result.collisions,
                               result.quarantined, result.collisions - result.quarantined - result.unkept,
                               result.unkept, schema.COLLISIONS_MAX)

    async def _answer_queries(self) -> None:
        queries = list(self._queries)
        self._queries.clear()
        pairs = [pair for query in queries for pair in query.request.pairs]
        try:
            found = await self._call(self._store.newest, pairs)
        except Exception as exc:
            reason = self._fail("query", exc)
            for query in queries:
                self._refuse(query, f"no answer: {reason}")
            return
        start = 0
        for query in queries:
            part = found[start:start + len(query.request.pairs)]
            start += len(query.request.pairs)
            prices = tuple(None if item is None else stored_price(item.price) for item in part)
            stamps = tuple(0.0 if item is None else item.ts for item in part)
            runs = tuple(0.0 if item is None else item.run for item in part)
            ticks = tuple(-1 if item is None else item.tick for item in part)
            self.counters["queries_answered"] += 1
            self._reply(query.identity, LastDecidedReply(query.request.request_id, prices, stamps, "", runs, ticks))

    # --- the files ------------------------------------------------------------------------------

    async def _check_files(self, now: float) -> None:
        self._files_at = now + FILE_CHECK_INTERVAL
        try:
            await self._call(self._store.checkpoint)
        except FileLost as exc:
            self._found_lost(exc, [])
        except Exception as exc:
            self._fail("checkpoint", exc)

    async def _quick_checks(self) -> None:
        """Every ``quick_check_every`` seconds (further apart if a check takes long), on a thread and a
        read-only connection of their own: a damaged page anywhere in the file is found within one."""
        with ThreadPoolExecutor(1, thread_name_prefix="ledger-check") as executor:
            loop = asyncio.get_running_loop()
            while True:
                await asyncio.sleep(self._quick_check_every)
                opened = self._store.main_file
                if not self._is_open or opened is None:
                    continue
                started = self._clock()
                checked, problem = await loop.run_in_executor(executor, quick_check, self._store.path,
                                                              self._store.opened_files)
                took = self._clock() - started
                self.counters["quick_checks"] += 1
                if problem is not None and checked == self._store.main_file == opened and self._lost is None:
                    self._found_lost(FileLost(Change("corrupt", f"{self._store.path}: quick_check: {problem}",
                                                     main=True)), [])
                await asyncio.sleep(max(0.0, took / QUICK_CHECK_DUTY - took - self._quick_check_every))

    def _found_lost(self, exc: FileLost, group: list[PendingBatch]) -> None:
        """Stop acknowledging until :meth:`_recover` has put a ledger back at the path."""
        kind = exc.change.kind
        self.counters["db_lost"] += 1
        self.counters[f"db_lost_{kind}"] += 1
        log.error("%s; what was committed to it since it was last checked is not acknowledged; recovering",
                  exc.change.detail)
        self._lost = exc
        self._unavailable = f"lost: {exc.change.detail} (recovering)"
        for batch in group:
            self._nack(batch, f"not stored: ledger database lost: {exc.change.detail}")
        for batch in self._batches:
            self._nack(batch, f"ledger database unavailable: {self._unavailable}")
        self._batches.clear()
        self._queued = 0
        self._wake.set()

    async def _recover(self, lost: FileLost) -> None:
        self._lost = None
        self._retry_at = self._clock() + self._retry  # batches meanwhile: refused
        try:
            done = await self._call(self._store.recover, lost)
        except Exception as exc:
            self._is_open = False
            self.counters["db_open"] = 0
            self._fail("recovery", exc)
            return
        log.warning("ledger database %s: %s; acknowledging again", lost.change.kind, done)
        self._retry_at = self._clock()
        self._opened((schema.VERSION, schema.VERSION))

    def _pairs_due(self, now: float) -> bool:
        pending = self._store.pending_pairs
        return self._is_open and pending > 0 and (now >= self._pairs_at or pending >= PAIRS_PENDING_MAX)

    async def _update_pairs(self, now: float) -> None:
        try:
            await self._call(self._store.update_pairs)
        except Exception as exc:
            self._fail("update of pairs", exc)
            return
        self.counters["pairs_updates"] += 1
        self.counters["pairs_pending"] = self._store.pending_pairs
        interval = pairs_interval(self._clock() - now)
        self.counters["pairs_interval_ms"] = round(1000 * interval)
        self._pairs_at = now + interval

    def _last_pairs_update(self) -> None:
        """On the database thread, at a clean stop: a failure only leaves it to the next start."""
        if self._store.is_open:
            with contextlib.suppress(Exception):
                self._store.update_pairs()

    async def _prune(self, now: float) -> None:
        try:
            deleted = await self._call(self._store.prune, self._retention, self._wall())
        except Exception as exc:
            self._fail("retention", exc)
            return
        self.counters["pruned"] += deleted
        self.counters["rows"] = self._store.rows
        # A full step means more is due: go on at once (writes still come first, a step at a time).
        self._prune_at = now if deleted >= self._retention.step else now + PRUNE_INTERVAL

    def _fail(self, doing: str, exc: Exception) -> str:
        """Count and log a database failure, refuse what waits, and schedule the retry; return the
        reason given to clients."""
        kind = error_kind(exc)
        if kind == "corrupt" and self._is_open and self._lost is None:
            # SQLite found a damaged page of the file it had open and verified: the file went bad
            # under it (a corrupt file at open is refused and left alone, below).
            self._found_lost(FileLost(Change("corrupt", f"{self._store.path}: {doing}: {exc}", main=True)), [])
            return f"ledger database lost: {self._store.path}: {exc}"
        self.counters["db_errors"] += 1
        self.counters[f"db_errors_{kind}"] += 1
        reason = f"{kind}: {exc}"
        self._unavailable = reason
        self._retry_at = self._clock() + self._retry
        self._rlog.error(f"db_{kind}", "%s of %s failed: %s (%s); retrying every %.1fs", doing, self._store.path,
                         exc, HINTS[kind], self._retry)
        if kind not in ("full", "locked") and self._is_open and self._executor is not None:
            # Reopen later: the file may have been replaced or repaired meanwhile.
            self._executor.submit(self._store.close)
            self._is_open = False
            self.counters["db_open"] = 0
        while self._batches:
            batch = self._batches.popleft()
            self._nack(batch, f"ledger database unavailable: {reason}")
        self._queued = 0
        while self._queries:
            self._refuse(self._queries.popleft(), f"ledger database unavailable: {reason}")
        return reason
