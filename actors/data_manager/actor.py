"""The DataManager: answers "the last N competitor prices of book B as of tick k" from a CSV file,
on a ZeroMQ ROUTER socket (the Algorithms' DEALER clients send one-frame LastPricesRequests).

The file is never read whole: one reader task reads 256 KiB chunks in the default executor (file I/O
releases the GIL) and parses them in the event loop in batches of 500 lines (~1 ms), yielding in between,
so a request whose window is in memory is answered within milliseconds while a multi-GB file is
being read. The reader is driven by demand: it reads only while some request waits for rows. Memory
is bounded per book (``--window-capacity`` points, see :mod:`actors.price_window` for the replay /
follow semantics and the detach / private-scan scheme that keeps book-sorted files bounded too).

File handling, like ``tail -F``: rows appended later are picked up (a request that would be answered
"past the end" or "unknown book" first makes the reader check the file once more); a file that
shrank below the read position was truncated and is read again from the start (windows cleared); a
path that now names another inode was rotated and the new file is read from the start. A last line
without its newline is accepted once the file size has not changed for 0.5 s. A missing, unreadable
or header-less file is logged, counted and retried every second; requests meanwhile get an error
reply ("data file unavailable: ..."); the actor itself never exits over its data.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import stat
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Final, TypeVar

import zmq
import zmq.asyncio

from actors import runtime
from actors.data_manager.csv_rows import BAD_ROW_REASONS, BadRow, Columns, CsvFormatError, parse_header, parse_row
from actors.data_manager.options import DataManagerOptions
from actors.data_manager.price_window import (
    ALL_BOOKS,
    Failed,
    Mode,
    NeedGlobal,
    NeedPrivate,
    Ready,
    WindowStore,
)
from actors.kinds import DATA_MANAGER
from transport import limits, protocol
from transport.logs import RateLimitedLog
from transport.protocol import LastPricesReply, LastPricesRequest, ProtocolError
from transport.sockets import Sockets

log = logging.getLogger("datamanager")

T = TypeVar("T")

CHUNK_BYTES: Final = limits.CSV_LINE_MAX_BYTES  # a line longer than one chunk is skipped as a bad row
# ~1 ms of parsing: a request travels through a few loop turns, each may wait for one batch.
BATCH_LINES: Final = 500
MAX_WAITING: Final = 10_000
WAIT_LIMIT: Final = 10.0  # a client retries after ~1 s anyway; older waiters only hold memory
PARTIAL_LINE_SETTLE: Final = 0.5
RETRY_INTERVAL: Final = 1.0
IDLE_CHECK_INTERVAL: Final = 2.0  # truncation/rotation check while idle (a request checks at once)
STOP_POLL: Final = 0.1  # how often waits look at ``stop``: bounds the shutdown time


@dataclass(slots=True)
class _Waiter:
    identity: bytes
    request: LastPricesRequest
    key: str
    eof_gen: int  # the reader's EOF-pass count when the request arrived
    since: float


@dataclass(slots=True)
class _OpenFile:
    fd: int
    dev: int
    ino: int
    columns: Columns | None = None  # None until the header line has been read
    cursor: int = 0  # byte offset of the first line the global scan has not consumed
    line_no: int = 0  # lines consumed by the global scan
    partial: tuple[int, float] | None = None  # (file size, first seen) of an unterminated last line


@dataclass(frozen=True, slots=True)
class _Block:
    data: bytes  # complete lines (the last one may lack its newline only when it ends at ``limit``)
    next: int  # offset after ``data`` (or after a skipped overlong line)
    kind: str  # "lines", "eof", "partial" (unterminated last line), "long" (a line over a chunk, skipped)


def _open_regular(path: str) -> tuple[int, os.stat_result]:
    fd = os.open(path, os.O_RDONLY)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise OSError(f"not a regular file: {path}")
    except BaseException:
        os.close(fd)
        raise
    return fd, st


class DataManager:
    name = DATA_MANAGER.name

    def __init__(self, sockets: Sockets[zmq.asyncio.Socket], options: DataManagerOptions) -> None:
        self._sockets = sockets
        self.endpoint = options.data
        self.path = options.csv
        self.mode: Mode = "follow" if options.mode == "follow" else "replay"
        self._store = WindowStore(options.window_capacity, self.mode, options.max_books)
        self._file: _OpenFile | None = None
        self._unavailable: str | None = None
        self._retry_at = 0.0  # monotonic time of the next attempt to open a failed file
        self._at_eof = False
        self._eof_gen = 0
        self._waiters: list[_Waiter] = []
        self._demand = asyncio.Event()
        self._sock: zmq.asyncio.Socket | None = None
        self._rlog = RateLimitedLog(log)
        self._counters: dict[str, int] = {
            "requests": 0, "replies": 0, "errors": 0, "bad_frames": 0, "busy": 0, "expired": 0,
            "waiting": 0, "rows_read": 0, "bad_rows": 0, "file_errors": 0, "truncations": 0,
            "rotations": 0, "private_scan_chunks": 0, "detaches": 0, "books": 0, "books_over_limit": 0,
            **{f"bad_rows_{reason}": 0 for reason in BAD_ROW_REASONS},
        }

    @property
    def counters(self) -> dict[str, int]:
        self._counters["waiting"] = len(self._waiters)
        self._counters["detaches"] = self._store.detaches
        self._counters["books"] = len(self._store.books)
        return self._counters

    async def run(self, stop: asyncio.Event) -> None:
        sock = self._sock = self._sockets.router(self.endpoint)
        log.info("serving %s (%s mode, window %d) on %s", self.path, self.mode, self._store.capacity,
                 self.endpoint)
        try:
            async with asyncio.TaskGroup() as group:
                # Both loops wait with no timeout (an idle DataManager wakes only for its file
                # check); stop cancels them.
                tasks = [group.create_task(self._reader(stop)), group.create_task(self._receive(sock))]
                await stop.wait()
                for task in tasks:
                    task.cancel()
        finally:
            self._close_file()
            sock.close(linger=0)

    # --- requests --------------------------------------------------------------------------------

    async def _receive(self, sock: zmq.asyncio.Socket) -> None:
        while True:
            await self._on_frames(await sock.recv_multipart())
            for _ in range(1000):  # drain what else has arrived, bounded so the reader gets its turns
                try:
                    frames = await sock.recv_multipart(zmq.NOBLOCK)
                except zmq.Again:
                    break
                await self._on_frames(frames)

    def _bad_frame(self, message: str, *args: object) -> None:
        self._counters["bad_frames"] += 1
        self._rlog.warning("bad_frame", "rejected a frame: " + message, *args)

    async def _on_frames(self, frames: list[bytes]) -> None:
        if len(frames) != 2:  # [identity, request]: a DEALER sends one frame, no delimiter
            self._bad_frame("expected [identity, frame], got %d frames", len(frames))
            return
        identity, frame = frames
        try:
            request = protocol.decode_as(frame, LastPricesRequest)
        except ProtocolError as exc:
            self._bad_frame("%s", exc)
            return
        self._counters["requests"] += 1
        if self._unavailable is not None:
            await self._reply(identity, request, error=f"data file unavailable: {self._unavailable}")
            return
        key = self._key(request.book)
        self._store.note_request(key, request.tick)
        answer = self._store.lookup(key, request.tick, request.count, at_eof=False, name=request.book)
        if isinstance(answer, Ready):
            await self._reply(identity, request, answer.prices)
        elif isinstance(answer, Failed):
            await self._reply(identity, request, error=answer.error)
        elif len(self._waiters) >= MAX_WAITING:
            self._counters["busy"] += 1
            await self._reply(identity, request, error=f"busy: {len(self._waiters)} requests wait for rows")
        else:
            self._waiters.append(_Waiter(identity, request, key, self._eof_gen, time.monotonic()))
            self._store.pin(key, request.tick)
            self._demand.set()

    def _key(self, book: str) -> str:
        columns = self._file.columns if self._file is not None else None
        return ALL_BOOKS if columns is not None and columns.book_id is None else book

    async def _reply(self, identity: bytes, request: LastPricesRequest, prices: tuple[Decimal, ...] = (),
                     error: str = "") -> None:
        assert self._sock is not None
        reply = LastPricesReply(request.request_id, request.book, request.tick, prices, error[:500])
        self._counters["replies"] += 1
        if error:
            self._counters["errors"] += 1
        # ROUTER never blocks: a reply to a vanished or saturated peer is dropped.
        with contextlib.suppress(zmq.Again):
            await self._sock.send_multipart([identity, protocol.encode(reply)], zmq.NOBLOCK)

    async def _serve_waiters(self) -> NeedGlobal | NeedPrivate | None:
        """Answer every waiter that can be answered now; return the work the rest need."""
        now = time.monotonic()
        # Requests arriving while the sends below are awaited go to the fresh list and are kept.
        current, self._waiters = self._waiters, []
        remaining: list[_Waiter] = []
        need: NeedGlobal | NeedPrivate | None = None
        for waiter in current:
            request = waiter.request
            key = self._key(request.book)
            if key != waiter.key:  # the header arrived after the request: the file has no book_id
                self._store.unpin(waiter.key, request.tick)
                self._store.pin(key, request.tick)
                waiter.key = key
            if self._unavailable is not None:
                answer: Ready | Failed | NeedGlobal | NeedPrivate = Failed(
                    f"data file unavailable: {self._unavailable}")
            else:
                final = self._at_eof and self._eof_gen > waiter.eof_gen
                answer = self._store.lookup(key, request.tick, request.count, final, request.book)
                if not isinstance(answer, Ready | Failed) and now - waiter.since > WAIT_LIMIT:
                    self._counters["expired"] += 1
                    answer = Failed(f"no answer within {WAIT_LIMIT:.0f}s: the reader is still reading "
                                    f"{self.path}")
            if isinstance(answer, Ready):
                self._store.unpin(key, request.tick)
                await self._reply(waiter.identity, request, answer.prices)
            elif isinstance(answer, Failed):
                self._store.unpin(key, request.tick)
                await self._reply(waiter.identity, request, error=answer.error)
            else:
                remaining.append(waiter)
                if need is None or isinstance(answer, NeedPrivate):
                    need = answer  # private scans first: they are bounded by one book's window
        self._waiters = remaining + self._waiters
        return need

    # --- the reader ------------------------------------------------------------------------------

    async def _io(self, fn: Callable[..., T], *args: object) -> T:
        return await asyncio.get_running_loop().run_in_executor(None, fn, *args)

    async def _reader(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            if self._file is None:
                wait = self._retry_at - time.monotonic()
                if wait > 0 or not await self._open():
                    await self._serve_waiters()  # fail them: the file is unavailable
                    await self._sleep(stop, wait if wait > 0 else RETRY_INTERVAL)
                    continue
            need = await self._serve_waiters()
            if need is None and self._file is not None and self._file.columns is None and not self._at_eof:
                need = NeedGlobal()  # read the header right away: a bad one must be reported
            try:
                if isinstance(need, NeedPrivate):
                    await self._private_step(need.book)
                elif isinstance(need, NeedGlobal):
                    await self._global_step(stop)
                else:
                    await self._idle()
            except OSError as exc:
                self._file_failed(f"{exc.strerror or exc}: {self.path}")

    async def _sleep(self, stop: asyncio.Event, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await stop.wait()

    async def _idle(self) -> None:
        self._demand.clear()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(IDLE_CHECK_INTERVAL):
                await self._demand.wait()
        if not self._demand.is_set() and self._file is not None:
            await self._check_file(self._file)  # notice truncation / rotation while idle

    async def _open(self) -> bool:
        try:
            fd, st = await self._io(_open_regular, self.path)
        except OSError as exc:
            self._file_failed(f"{exc.strerror or exc}: {self.path}")
            return False
        if self._unavailable is not None and not self._unavailable.startswith("bad header"):
            log.info("data file %s is available again", self.path)
            self._unavailable = None  # a bad header stays the reason until a good one is read
        self._file = _OpenFile(fd, st.st_dev, st.st_ino)
        self._at_eof = False
        return True

    def _close_file(self) -> None:
        if self._file is not None:
            with contextlib.suppress(OSError):
                os.close(self._file.fd)
            self._file = None

    def _reset(self) -> None:
        self._store.clear()
        self._at_eof = False

    def _file_failed(self, reason: str) -> None:
        self._counters["file_errors"] += 1
        self._rlog.warning("file_error", "data file unavailable (retrying every %.0fs): %s",
                           RETRY_INTERVAL, reason)
        self._unavailable = reason
        self._retry_at = time.monotonic() + RETRY_INTERVAL
        self._close_file()
        self._reset()

    async def _check_file(self, f: _OpenFile) -> bool:
        """True when the file was truncated, rotated or removed (state reset; nothing to read now)."""
        try:
            st = await self._io(os.stat, self.path)
        except OSError as exc:
            self._file_failed(f"{exc.strerror or exc}: {self.path}")
            return True
        if (st.st_dev, st.st_ino) != (f.dev, f.ino):
            self._counters["rotations"] += 1
            log.warning("%s was replaced (rotated): reading the new file from the start", self.path)
            self._close_file()
            self._reset()
            return True
        size = (await self._io(os.fstat, f.fd)).st_size
        if size < f.cursor:
            self._counters["truncations"] += 1
            log.warning("%s shrank from %d to %d bytes (truncated): reading it again from the start",
                        self.path, f.cursor, size)
            f.cursor, f.line_no, f.columns, f.partial = 0, 0, None, None
            self._reset()
            return True
        return False

    async def _read_block(self, f: _OpenFile, start: int, limit: int | None) -> _Block:
        size = CHUNK_BYTES if limit is None else min(CHUNK_BYTES, limit - start)
        data = await self._io(os.pread, f.fd, size, start)
        if not data:
            return _Block(b"", start, "eof")
        cut = data.rfind(b"\n") + 1
        if cut:
            return _Block(data[:cut], start + cut, "lines")
        if limit is not None and start + len(data) == limit:
            return _Block(data, limit, "lines")  # the accepted unterminated last line
        if len(data) < size:
            return _Block(data, start, "partial")
        pos = start + len(data)  # a line longer than a chunk: find its end and skip it
        while True:
            more = await self._io(os.pread, f.fd, CHUNK_BYTES, pos)
            if not more:
                return _Block(b"", start, "partial")
            newline = more.find(b"\n")
            if newline >= 0:
                return _Block(b"", pos + newline + 1, "long")
            pos += len(more)

    def _bad_row(self, bad: BadRow) -> None:
        self._counters["bad_rows"] += 1
        self._counters[f"bad_rows_{bad.reason}"] = self._counters.get(f"bad_rows_{bad.reason}", 0) + 1
        self._rlog.warning(f"bad_row_{bad.reason}", "%s line %d: skipped a bad row (%s): %s",
                           self.path, bad.line_no, bad.reason, bad.detail)

    async def _global_step(self, stop: asyncio.Event) -> None:
        f = self._file
        assert f is not None
        block = await self._read_block(f, f.cursor, None)
        if block.kind in ("eof", "partial"):
            if await self._check_file(f):
                return
            if block.kind == "partial":
                size = (await self._io(os.fstat, f.fd)).st_size
                now = time.monotonic()
                if f.partial is None or f.partial[0] != size:
                    f.partial = (size, now)
                waited = now - f.partial[1]
                if waited < PARTIAL_LINE_SETTLE:  # a writer may be mid-line: wait for its newline
                    await self._sleep(stop, min(STOP_POLL, PARTIAL_LINE_SETTLE - waited))
                    return
                f.partial = None
                if block.data:
                    await self._consume(f, block.data, f.cursor)
                else:
                    f.line_no += 1
                    self._bad_row(BadRow(f.line_no, "line_too_long", f"over {CHUNK_BYTES} bytes"))
                    f.cursor = size
                return
            f.partial = None
            self._at_eof = True
            self._eof_gen += 1
            return
        self._at_eof = False
        f.partial = None
        if block.kind == "long":
            f.line_no += 1
            self._bad_row(BadRow(f.line_no, "line_too_long", f"over {CHUNK_BYTES} bytes"))
            f.cursor = block.next
            return
        await self._consume(f, block.data, f.cursor)

    async def _consume(self, f: _OpenFile, data: bytes, start: int) -> None:
        """Parse the global scan's lines ``data`` (starting at byte ``start``) into the windows."""
        lines = data.split(b"\n")
        if data.endswith(b"\n"):
            lines.pop()
        end = start + len(data)
        pos = start
        store = self._store
        for first in range(0, len(lines), BATCH_LINES):
            if self._file is not f:
                return  # failed meanwhile
            line_no = f.line_no
            rows = 0
            for raw in lines[first:first + BATCH_LINES]:
                offset = pos
                pos += len(raw) + 1
                line_no += 1
                text = raw.decode("utf-8", "replace")
                columns = f.columns
                if columns is None:
                    if not text.lstrip("\ufeff").strip():
                        continue
                    try:
                        f.columns = parse_header(text)
                    except CsvFormatError as exc:
                        self._file_failed(f"bad header in {self.path}: {exc}")
                        return
                    if self._unavailable is not None:
                        log.info("data file %s has a valid header again", self.path)
                        self._unavailable = None
                    continue
                row = parse_row(text, columns, line_no)
                if row is None:
                    continue
                if isinstance(row, BadRow):
                    self._bad_row(row)
                    continue
                rows += 1
                if not store.add(ALL_BOOKS if row.book_id is None else row.book_id, row.price, offset):
                    self._counters["books_over_limit"] += 1
                    self._rlog.warning("books_over_limit", "%s line %d: book %r ignored: more than %d books "
                                       "(raise --max-books)", self.path, line_no, row.book_id, store.max_books)
            f.line_no = line_no
            f.cursor = min(pos, end)
            self._counters["rows_read"] += rows
            await asyncio.sleep(0)  # let requests for windows in memory through

    async def _private_step(self, key: str) -> None:
        """Read one chunk of the detached book ``key``'s private scan (up to the global cursor)."""
        f = self._file
        assert f is not None
        book = self._store.books.get(key)
        if book is None or book.detached_at is None:
            return
        start = book.detached_at
        if start >= f.cursor:
            self._store.reattach(key)
            return
        self._counters["private_scan_chunks"] += 1
        block = await self._read_block(f, start, f.cursor)
        if block.kind in ("eof", "partial"):  # the file shrank under us
            if not await self._check_file(f):
                self._store.reattach(key)
            return
        if block.kind == "long":
            self._store.advance_private(key, block.next)
            return
        columns = f.columns
        assert columns is not None  # rows before the global cursor were read with a header
        lines = block.data.split(b"\n")
        if block.data.endswith(b"\n"):
            lines.pop()
        pos = start
        for first in range(0, len(lines), BATCH_LINES):
            for raw in lines[first:first + BATCH_LINES]:
                offset = pos
                pos += len(raw) + 1
                row = parse_row(raw.decode("utf-8", "replace"), columns, 0)
                if row is None or isinstance(row, BadRow):
                    continue  # counted by the global scan already
                if (ALL_BOOKS if row.book_id is None else row.book_id) != key:
                    continue
                if not self._store.add_private(key, row.price, offset, min(pos, block.next)):
                    return  # detached again: the window is full of needed points
            self._store.advance_private(key, min(pos, block.next))
            await asyncio.sleep(0)
            if self._file is not f:
                return
        if block.next >= f.cursor:
            self._store.reattach(key)


def main(argv: Sequence[str] | None = None, liveness: runtime.Liveness | None = None) -> int:
    options, runtime_options = runtime.parse_options(DATA_MANAGER, DataManagerOptions, __doc__, argv)
    return runtime.run_actor(DATA_MANAGER.name, lambda sockets: DataManager(sockets, options), runtime_options,
                             liveness)
