"""The DataManager: answers "the last N competitor prices of book B as of tick k" from a CSV file, on a
ZeroMQ ROUTER socket -- one book per ``LastPricesRequest``, or many at one tick per ``WindowsRequest``.

The file is never read whole: one reader task steps one cursor at a time (see
:mod:`actors.data_manager.scanner`), only as far as waiting requests need, so a request whose window
is in memory is answered within milliseconds while a multi-GB file is being read, and replay stays
O(rows) whatever the file's layout (:mod:`actors.data_manager.book_store`). Memory is bounded per
book (``--window-capacity`` points) and in books (``--max-books``). The file is followed like
``tail -F`` (:mod:`actors.data_manager.data_file`).

The receive loop yields to the event loop after a bounded amount of work, so a flooding client never
starves the reader or the heartbeat; it reads a turn's messages at once and serves the clients
stepping through the ticks first, shedding what others send beyond a bound while a backlog waits
(:mod:`actors.data_manager.intake`: ZeroMQ's fair queue alone gave a client cycling through
identities most of the reads); the waiter queue bounds what each client may leave waiting
(:mod:`actors.data_manager.waiters`). A request that
fails validation is answered with an error when its request id can be read.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import time
from collections.abc import Sequence
from typing import Final

import zmq
import zmq.asyncio

from actors import runtime
from actors.csv_rows import BAD_ROW_REASONS
from actors.data_manager.bad_books import BadBooks
from actors.data_manager.book_store import BookStore
from actors.data_manager.chunks import io
from actors.data_manager.data_file import RETRY_INTERVAL, DataFile
from actors.data_manager.intake import INTAKE_MAX, Intake
from actors.data_manager.options import DataManagerOptions
from actors.data_manager.scanner import Scanner
from actors.data_manager.waiters import Outgoing, Waiters
from actors.kinds import DATA_MANAGER
from actors.probes import READY, Readiness, not_ready
from transport import memory, protocol
from transport.logs import FrameDecoder, RateLimitedLog
from transport.protocol import (
    LastPricesReply,
    LastPricesRequest,
    MessageType,
    WindowsReply,
    WindowsRequest,
    data_file_unavailable,
)
from transport.roles import DATA
from transport.sockets import Sockets

log = logging.getLogger("datamanager")

INTAKE_TIME: Final = 0.01  # seconds of reading in one turn at most (the turn's messages are sorted next)
DRAIN_CHECK: Final = 256  # messages read between two looks at the clock
RECEIVE_BUDGET: Final = 64  # books asked for between two turns of the event loop (~1-2 ms of work)
IDLE_CHECK_INTERVAL: Final = 2.0  # truncation/rotation check while idle (a request checks at once)
OVERLOAD_HOLD: Final = 1.0  # seconds after the last shed turn during which others get no reading back
TRIM_QUIET: Final = 2.0  # seconds without shedding before the memory a flood took is given back
STOP_POLL: Final = 0.1  # how often waits look at ``stop``: bounds the shutdown time
# Books live long and hold no reference cycles, but the cyclic GC walks them all at every full
# collection: with 100,000 books that was 100-170 ms of event-loop stall, several times a tick.
# gc.freeze() takes the objects alive then out of its walks (refcounting still frees them).
GC_FREEZE_BOOKS: Final = 10_000  # freeze again after the frontier learned this many more books
COUNTERS: Final = (
    "requests", "batch_requests", "replies", "errors", "bad_frames", "refused_frames", "busy", "expired",
    "deduped", "rows_read", "lines_read", "lines_caught_up", "bad_rows", "file_errors", "truncations", "rotations",
    "not_regular",
    "books_over_limit", "shed", "memory_trims",
)


class DataManager:
    name = DATA_MANAGER.name

    def __init__(self, sockets: Sockets[zmq.asyncio.Socket], options: DataManagerOptions) -> None:
        self._sockets = sockets
        self.endpoint = options.data_endpoint
        self.path = options.data_file
        self.mode = "follow" if options.mode == "follow" else "replay"
        self._rlog = RateLimitedLog(log)
        self._counters: dict[str, int] = {name: 0 for name in COUNTERS}
        self._counters.update({f"bad_rows_{reason}": 0 for reason in BAD_ROW_REASONS})
        self._frames = FrameDecoder(self._counters, "bad_frames", self._rlog, "bad_frame", "rejected a frame")
        self._store = BookStore(options.window_capacity, "follow" if self.mode == "follow" else "replay",
                                options.max_books)
        self._file = DataFile(options.data_file, self._counters, self._rlog)
        self._bad_books = BadBooks()  # so a book whose every row is bad is not called unknown
        self._waiters = Waiters(self._store, self._file, self._counters, bad_books=self._bad_books)
        self._intake = Intake(self._store.steppers)
        self._scanner = Scanner(self._file, self._store, self._counters, self._rlog, self._on_batch, self._bad_books)
        self._demand = asyncio.Event()
        self._sock: zmq.asyncio.Socket | None = None
        self._frozen_books = 0
        self._flooded = asyncio.Event()  # something was shed: trim the memory once it is over

    @property
    def counters(self) -> dict[str, int]:
        store = self._store
        self._counters.update(waiting=self._waiters.waiting, books=len(store.books), parks=store.parks,
                              seeks=store.seeks, moves_refused=store.moves_refused,
                              overload_refused=store.overload_refused, shed_behind=self._intake.behind,
                              steppers=len(store.steppers.active(time.monotonic())), cursors=len(store.cursors),
                              merges=store.cursors.merges,
                              catch_ups=store.cursors.started, index_points=store.index.points,
                              index_stride=store.index.stride)
        return self._counters

    def readiness(self) -> Readiness:
        """Ready when it listens and its data file is open with a good header: requests get windows."""
        if self._sock is None:
            return not_ready(f"not yet bound to {self.endpoint}")
        if self._file.unavailable is not None:
            return not_ready(data_file_unavailable(self._file.unavailable))
        if not self._file.is_open or self._file.columns is None:
            return not_ready(f"data file {self.path} not read yet")
        return READY

    async def run(self, stop: asyncio.Event) -> None:
        sock = self._sock = self._sockets.router(self.endpoint, channel=DATA)
        log.info("serving %s (%s mode, window %d) on %s", self.path, self.mode, self._store.capacity, self.endpoint)
        try:
            async with asyncio.TaskGroup() as group:
                # Both loops wait with no timeout (an idle DataManager wakes only for its file check);
                # stop cancels them.
                tasks = [group.create_task(self._reader(stop)), group.create_task(self._receive(sock)),
                         group.create_task(self._trim_after_floods())]
                await stop.wait()
                for task in tasks:
                    task.cancel()
        finally:
            self._file.close()
            sock.close(linger=0)

    # --- requests --------------------------------------------------------------------------------

    async def _receive(self, sock: zmq.asyncio.Socket) -> None:
        raw: zmq.Socket[bytes] = zmq.Socket.shadow(sock.underlying)
        while True:
            batch = [await sock.recv_multipart()]
            more = _drain(raw, batch, INTAKE_MAX, time.monotonic() + INTAKE_TIME)
            now = time.monotonic()
            serve, shed = self._intake.triage(batch, more, now)
            if shed:
                self._shed(shed)
                self._store.overloaded_until = now + OVERLOAD_HOLD
            budget = RECEIVE_BUDGET
            for frames in serve:
                budget -= await self._on_frames(frames)
                if budget <= 0:
                    await asyncio.sleep(0)  # yield at a bound: the reader and the heartbeat get turns
                    budget = RECEIVE_BUDGET
            await asyncio.sleep(0)

    def _shed(self, count: int) -> None:
        self._flooded.set()
        self._counters["shed"] += count
        self._rlog.warning("shed", "overloaded: %d request(s) of clients stepping through no book's ticks shed "
                           "unanswered (they retry; the Algorithm's are served first); %d shed in all",
                           count, self._counters["shed"])

    async def _on_frames(self, frames: list[bytes]) -> int:
        """Handle one message; return its cost in books asked for (at least 1)."""
        routed = self._frames.routed(frames, LastPricesRequest, WindowsRequest)
        if routed is None:
            if len(frames) == 2:  # an error reply when the request's id can be read
                await self._refuse(frames[0], frames[1], self._frames.last_error)
            return 1
        identity, request = routed
        self._counters["requests"] += 1
        books = 1
        if isinstance(request, WindowsRequest):
            self._counters["batch_requests"] += 1
            books = len(request.books)
        self._intake.settle(identity, frames[1], books, time.monotonic())
        waiting = self._waiters.waiting
        await self._send(self._waiters.add(identity, request))
        if self._waiters.waiting != waiting:
            self._demand.set()
        return books

    async def _refuse(self, identity: bytes, frame: bytes, error: str) -> None:
        """Answer an invalid request whose id can be read, so its client is not left waiting."""
        refused = protocol.refused_request(frame)
        if refused is None:
            return
        self._counters["refused_frames"] += 1
        text = f"invalid request: {error}"[:500]
        reply: LastPricesReply | WindowsReply
        if refused.kind == MessageType.LAST_PRICES_REQUEST:
            reply = LastPricesReply(refused.request_id, refused.book, refused.tick, (), text)
        else:
            reply = WindowsReply(refused.request_id, refused.tick, ((),) * refused.books, (text,) * refused.books)
        await self._send([(identity, reply)])

    async def _send(self, replies: list[Outgoing]) -> None:
        assert self._sock is not None
        for identity, reply in replies:
            self._counters["replies"] += 1
            if reply.error if isinstance(reply, LastPricesReply) else any(reply.errors):
                self._counters["errors"] += 1
            # ROUTER never blocks: a reply to a vanished or saturated peer is dropped.
            with contextlib.suppress(zmq.Again):
                await self._sock.send_multipart([identity, protocol.encode(reply)], zmq.NOBLOCK)

    async def _on_batch(self) -> None:
        """After each batch of lines: answer the requests whose books became ready."""
        if self._store.ready:
            await self._send(self._waiters.serve(self._store.take_ready()))

    async def _trim_after_floods(self) -> None:
        """Once a flood has been shed and is over (nothing shed for ``TRIM_QUIET`` s), give the memory
        it took back to the system: libzmq buffered its connections' messages, and glibc keeps what
        was freed."""
        while True:
            await self._flooded.wait()
            self._flooded.clear()
            await asyncio.sleep(TRIM_QUIET)
            if self._flooded.is_set():
                continue  # still shedding
            self._waiters.compact()
            self._store.moves.compact()
            if await io(memory.trim):
                self._counters["memory_trims"] += 1

    # --- the reader ------------------------------------------------------------------------------

    async def _reader(self, stop: asyncio.Event) -> None:
        file, store = self._file, self._store
        while not stop.is_set():
            await self._send(self._waiters.expire())
            if self._waiters.revisiting:  # in slices, each followed by a turn of the event loop
                await self._send(self._waiters.revisit())
                await asyncio.sleep(0)
                continue
            if not file.is_open:
                wait = file.retry_at - time.monotonic()
                if wait > 0 or not await file.open():
                    await self._reset()  # fail waiting requests: the file is unavailable
                    await self._sleep(stop, wait if wait > 0 else RETRY_INTERVAL)
                    continue
                await self._reset()
            need = self._waiters.next_need()  # clients take turns at the reader
            cursor = store.cursor_for(*need) if need is not None else store.cursors.next_busy()
            if cursor is None and file.columns is None and not file.at_eof:
                cursor = store.frontier  # read the header right away: a bad one must be reported
            if cursor is None:
                await self._idle()
                continue
            columns = file.columns
            try:
                outcome = await self._scanner.scan(cursor)
            except OSError as exc:
                file.fail(f"{exc.strerror or exc}: {self.path}")
                outcome = "changed"
            if outcome == "changed" or not file.is_open:
                await self._reset()
            elif file.columns is not columns:
                self._waiters.revisit_all()  # the header: every request's book is known now
            elif outcome == "eof":
                self._waiters.revisit_at_end()
            elif outcome == "wait":
                await self._sleep(stop, min(STOP_POLL, file.settle_wait or STOP_POLL))
            await self._on_batch()
            if len(store.books) >= self._frozen_books + GC_FREEZE_BOOKS:
                self._frozen_books = len(store.books)
                gc.freeze()
            await asyncio.sleep(0)  # one batch per turn: requests (and the heartbeat) get the loop next

    async def _reset(self) -> None:
        """The file changed or failed: forget it, and register (or fail) every waiting request again."""
        self._store.clear()
        self._bad_books.clear()
        self._scanner.forget()
        self._waiters.forget_all()

    async def _sleep(self, stop: asyncio.Event, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await stop.wait()

    async def _idle(self) -> None:
        self._demand.clear()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(IDLE_CHECK_INTERVAL):
                await self._demand.wait()
        if not self._demand.is_set() and self._file.is_open and self._file.changed(self._store.frontier.position):
            await self._reset()  # truncated or rotated while idle


def _drain(raw: zmq.Socket[bytes], messages: list[list[bytes]], limit: int, deadline: float) -> bool:
    """Add queued messages to ``messages`` without waiting, up to ``limit`` in all or until the
    monotonic ``deadline`` (checked every ``DRAIN_CHECK`` messages: a process descheduled mid-read on
    a loaded machine then yields as soon as it runs again); return whether more may wait. The plain
    socket, frame by frame: about 4 us a message against 7 for ``recv_multipart`` and 11 for the
    asyncio socket's done futures (a flood is read whole to be shed; the next awaited recv checks
    ZMQ_EVENTS before it waits)."""
    recv, more = raw.recv, raw.getsockopt
    while len(messages) < limit:
        if not len(messages) % DRAIN_CHECK and time.monotonic() >= deadline:
            return True
        try:
            frames = [recv(zmq.NOBLOCK)]
        except zmq.Again:
            return False
        while more(zmq.RCVMORE):  # a message's frames arrive together: never Again here
            frames.append(recv())
        messages.append(frames)
    return True


def main(argv: Sequence[str] | None = None, liveness: runtime.Liveness | None = None) -> int:
    options, runtime_options = runtime.parse_options(DATA_MANAGER, DataManagerOptions, __doc__, argv)
    return runtime.run_actor(DATA_MANAGER.name, lambda sockets: DataManager(sockets, options), runtime_options,
                             liveness)
