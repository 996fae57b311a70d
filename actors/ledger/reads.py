"""The Ledger answers reads of its database on its socket, so a Dashboard on another machine shows the
history (a :class:`LedgerQuery` in, a :class:`LedgerQueryReply` out).

Writes first: a read never runs on the writer's thread or connection, nor on the event loop. It runs
the Dashboard's own query (:mod:`actors.ledger_reads.queries`, written once for both) on a read-only
connection of one thread of its own (WAL: a reader never blocks the writer), and the reply is packed
on that thread too. While the writer has decisions to write, a read waits for a gap, up to
:data:`WRITES_FIRST_WAIT` (so a Ledger written flat out still answers, slowly), and the read thread
rests after each read :data:`READ_REST` times as long as it took: reads take at most a quarter of
the CPU and of the GIL, whatever a peer asks, and the rest goes to the writes and the event loop
(``bench/ledger.py`` measures the insert rate and the loop's stall with and without a Dashboard
reading flat out). Bounded:

- ``max_inflight`` reads at once (waiting or running), for every peer together; one more is answered
  ``busy`` at once, counted (``reads_busy``);
- each read has a deadline (``query_timeout``: SQLite interrupts it), then is answered ``busy``;
- each answer is bounded in rows by its query and in bytes by one frame: larger is ``too_large``;
- a read that is not one of the queries, or whose arguments are wrong, is answered ``bad_query``, with
  one rate-limited line and a counter (``reads_refused``); garbage frames are the socket's
  ``bad_frames``, as for every other message.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final

from actors.ledger import files
from actors.ledger_reads import queries
from actors.ledger_reads.pool import LedgerBusy, LedgerUnavailable, ReadPool
from transport import limits, protocol
from transport.logs import RateLimitedLog
from transport.protocol import LedgerQuery, LedgerQueryReply, QueryStatus

log = logging.getLogger("ledger")

READ_THREADS: Final = 1  # one: reads take turns, so at most one competes with the writer for the CPU
MAX_INFLIGHT: Final = 8  # reads waiting or running, for every peer together
QUERY_TIMEOUT: Final = 2.0  # seconds a read may run (the Dashboard waits longer: --ledger-timeout)
WRITES_FIRST_WAIT: Final = 0.5  # seconds a read waits at most for a gap in the writes
WRITES_FIRST_LOOK: Final = 0.005  # seconds between two looks for that gap
READ_REST: Final = 3.0  # after a read, the read thread rests this many times as long as it took
READ_COUNTERS: Final = ("reads", "reads_answered", "reads_busy", "reads_refused", "reads_unavailable",
                        "reads_too_large", "reads_failed")


class _TooLarge(Exception):
    pass


def _packed(request_id: int, result: Any) -> bytes:
    """The reply frame of a result (on the read thread: packing a large page is work the loop is spared)."""
    frame = protocol.encode(LedgerQueryReply(request_id, QueryStatus.OK, result))
    if len(frame) > limits.FRAME_MAX_BYTES:
        raise _TooLarge(f"the answer is {len(frame)} bytes, over the {limits.FRAME_MAX_BYTES}-byte frame limit")
    return frame


def opening_guard(path: str, opened: Callable[[], files.Snapshot | None]) -> Callable[[], str | None]:
    """``may_open`` for the read pool: a read connection is opened only while the files at ``path`` are
    the writer's (``opened()``). One opened on a file put at the path with the writer's -wal and -shm
    still beside it would read (and index) that WAL as the new file's, under the writer, whose saving of
    the old file then fails: the hazard the periodic quick_check avoids the same way. Finding and
    recovering the change is the writer's; reads wait for it, answered ``unavailable``."""

    def may_open() -> str | None:
        snapshot = opened()
        if snapshot is None:
            return f"the Ledger has no database open at {path} (starting, or recovering it)"
        found = files.change(path, snapshot, files.snapshot(path))
        return None if found is None else f"{found.detail}: the Ledger is recovering its database"

    return may_open


class ReadServer:
    """Answers :class:`LedgerQuery` messages; ``send(identity, frame)`` puts a reply on the socket."""

    def __init__(self, path: str | Path, send: Callable[[bytes, bytes], None], *, threads: int = READ_THREADS,
                 max_inflight: int = MAX_INFLIGHT, query_timeout: float = QUERY_TIMEOUT,
                 writing: Callable[[], bool] = lambda: False,
                 may_open: Callable[[], str | None] = lambda: None) -> None:
        """``writing()``: whether the writer has decisions to write (read from the read thread: a bool);
        ``may_open()``: None, or why no read connection may be opened now (see :func:`opening_guard`)."""
        self._writing = writing
        self._pool = ReadPool(path, threads=threads, query_timeout=query_timeout, max_pending=max_inflight,
                              name="ledger-reads", may_open=may_open)
        self._send = send
        self._rlog = RateLimitedLog(log)
        self._tasks: set[asyncio.Task[None]] = set()  # at most max_inflight (the pool's bound)
        self.counters: dict[str, int] = dict.fromkeys(READ_COUNTERS, 0)

    @property
    def inflight(self) -> int:
        return len(self._tasks)

    def submit(self, identity: bytes, query: LedgerQuery) -> None:
        """On the event loop: refuse at once, or start the read (never waits)."""
        self.counters["reads"] += 1
        try:
            work = queries.prepare(query.name, list(query.args))
        except queries.BadQuery as exc:
            self.counters["reads_refused"] += 1
            self._rlog.warning("bad_read", "refused a read %s: %s", query.name, exc)
            self._reply(identity, LedgerQueryReply(query.request_id, QueryStatus.BAD_QUERY, None, str(exc)))
            return
        if len(self._tasks) >= self._pool.max_pending:
            self.counters["reads_busy"] += 1
            self._reply(identity, LedgerQueryReply(query.request_id, QueryStatus.BUSY, None,
                                                   f"{len(self._tasks)} reads in flight (the Ledger's limit)"))
            return
        task = asyncio.get_running_loop().create_task(self._answer(identity, query.request_id, work))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _answer(self, identity: bytes, request_id: int, work: Callable[[sqlite3.Connection], Any]) -> None:
        status, error = QueryStatus.OK, ""
        try:
            frame = await self._pool.call(lambda conn: self._after_writes(lambda: _packed(request_id, work(conn))))
        except LedgerBusy as exc:
            status, error, counter = QueryStatus.BUSY, str(exc), "reads_busy"
        except LedgerUnavailable as exc:
            status, error, counter = QueryStatus.UNAVAILABLE, str(exc), "reads_unavailable"
        except _TooLarge as exc:
            status, error, counter = QueryStatus.TOO_LARGE, str(exc), "reads_too_large"
        except Exception as exc:  # a bug of a query: one line, the peer told, the Ledger goes on
            status, error, counter = QueryStatus.UNAVAILABLE, f"the read failed: {type(exc).__name__}", "reads_failed"
            self._rlog.error("read_failed", "a read failed: %s: %s", type(exc).__name__, exc)
        if status is QueryStatus.OK:
            self.counters["reads_answered"] += 1
            self._send(identity, frame)
            return
        self.counters[counter] += 1
        self._reply(identity, LedgerQueryReply(request_id, status, None, error[:protocol.QUERY_ERROR_MAX_LEN]))

    def _after_writes(self, read: Callable[[], bytes]) -> bytes:
        """On the read thread: ``read()`` once the writer is idle, or WRITES_FIRST_WAIT from now; then a
        rest READ_REST times as long as the read took, so reads hold the GIL (the event loop's and the
        writer's wait) a quarter of the time at most, however fast they are asked."""
        end = time.monotonic() + WRITES_FIRST_WAIT
        while self._writing() and time.monotonic() < end:
            time.sleep(WRITES_FIRST_LOOK)
        began = time.monotonic()
        try:
            return read()
        finally:
            time.sleep(min((time.monotonic() - began) * READ_REST, WRITES_FIRST_WAIT))

    def _reply(self, identity: bytes, reply: LedgerQueryReply) -> None:
        self._send(identity, protocol.encode(reply))

    async def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await asyncio.to_thread(self._pool.close)
