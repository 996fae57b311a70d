"""The scan: one loop that reads lines for a cursor and hands their rows to the book store.

A step parses one batch of ``BATCH_LINES`` (~1 ms) of the cursor's lines -- read in blocks of complete
lines, the frontier's from the data file (with its end-of-file and partial-line handling), a
catch-up's up to the frontier; what a block holds beyond the batch is kept for the cursor's next step.
The reader yields to the event loop after each step (requests for windows in memory are answered
within milliseconds) and lets its clients take turns between steps. A step stops at the exact line
where its cursor's demand is met, or where a catch-up reaches another cursor.

Only the frontier validates rows for the record: it counts bad rows and learns books; a catch-up
re-reads rows the frontier has seen, parsing the price only of rows that feed one of its books.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Final, Literal

from actors.csv_fields import LINE_TOO_LONG, BadRow, not_utf8, split_row
from actors.csv_rows import PriceCache, Row, book_of_bad_line, parse_row, row_from_fields
from actors.data_manager.bad_books import BadBooks
from actors.data_manager.book_store import BookStore
from actors.data_manager.chunks import CHUNK_BYTES, read_lines
from actors.data_manager.cursors import Cursor
from actors.data_manager.data_file import DataFile, FrontierEvent
from actors.data_manager.price_window import ALL_BOOKS
from transport.logs import RateLimitedLog

log = logging.getLogger("datamanager")

BATCH_LINES: Final = 500  # ~1 ms of parsing between two turns of the event loop
# A catch-up's first read: it usually needs a few rows per book. Its reads double while it keeps
# reading, up to CATCH_UP_MAX_BYTES.
CATCH_UP_BYTES: Final = 4096
CATCH_UP_MAX_BYTES: Final = 64 * 1024
REST_KEPT: Final = 8  # cursors whose read-ahead lines are kept between their turns (~0.5 MB each at most)

ScanOutcome = Literal["lines", "eof", "wait", "changed"]


@dataclass(slots=True)
class _Lines:
    """Lines read for a cursor; ``lines[index:]`` (from byte ``pos``) are not parsed yet."""

    pos: int
    lines: list[bytes]
    index: int
    end: int


class Scanner:
    def __init__(self, file: DataFile, store: BookStore, counters: dict[str, int], rlog: RateLimitedLog,
                 on_batch: Callable[[], Awaitable[None]], bad_books: BadBooks | None = None) -> None:
        self._file = file
        self._bad_books = bad_books or BadBooks()
        self._store = store
        self._counters = counters
        self._rlog = rlog
        self._on_batch = on_batch  # after each batch: answer the requests whose books became ready
        self._prices = PriceCache()
        self._rest: dict[Cursor, _Lines] = {}  # lines read and not parsed yet, by cursor (a few kept)
        self._step_start = 0

    def forget(self) -> None:
        """The file changed under the cursors: drop what they read ahead."""
        self._rest.clear()

    async def scan(self, cursor: Cursor) -> ScanOutcome:
        """One batch of ``cursor``'s lines (at most ``BATCH_LINES``, ~1 ms): the reader's unit of work,
        so that clients take turns at it every millisecond or so."""
        lines = self._rest.pop(cursor, None)
        if lines is None or lines.pos != cursor.position:
            got = await (self._frontier_lines(cursor) if cursor.frontier else self._catch_up_lines(cursor))
            if isinstance(got, str):
                return got
            lines = got
        went_on = await self._parse(cursor, lines)
        if went_on is cursor and lines.index < len(lines.lines):
            self._rest[cursor] = lines
            if len(self._rest) > REST_KEPT:
                del self._rest[next(iter(self._rest))]  # the least recently stepped
        return "lines"

    async def _frontier_lines(self, frontier: Cursor) -> _Lines | FrontierEvent:
        got = await self._file.read_frontier(frontier.position)
        if isinstance(got, str):
            return got
        if got.kind == "long":
            self._file.line_no += 1
            self.bad_row(BadRow(self._file.line_no, LINE_TOO_LONG, f"over {CHUNK_BYTES} bytes"))
            self._advance(frontier, got.end, got.end - got.start)
            return _Lines(got.end, [], 0, got.end)
        return _Lines(got.start, got.lines, 0, got.end)

    async def _catch_up_lines(self, cursor: Cursor) -> _Lines | ScanOutcome:
        frontier = self._store.frontier.position
        if cursor.position >= frontier:
            self._store.cursors.merge(cursor, self._store.frontier)
            return "lines"
        long_end = self._file.long_lines.get(cursor.position)
        if long_end is not None:  # a line over a chunk the frontier skipped: skipped unread
            self._advance(cursor, long_end, long_end - cursor.position)
            return "lines"
        size = cursor.read_size or CATCH_UP_BYTES
        block = await read_lines(self._file.fd, cursor.position, size, frontier)
        if block.kind in ("eof", "partial"):  # the file shrank under the frontier
            return "changed" if self._file.changed(frontier) else "wait"
        if block.kind == "long":
            self._advance(cursor, block.end, block.end - block.start)
            return "lines"
        cursor.read_size = min(CATCH_UP_MAX_BYTES, 2 * size)  # a catch-up that keeps reading reads more
        return _Lines(block.start, block.lines, 0, block.end)

    async def _parse(self, cursor: Cursor, lines: _Lines) -> Cursor:
        """THE scan loop: every line any cursor reads goes through here, a batch at a time. Returns the
        cursor that goes on (the one it merged into, if it did)."""
        handle = self._frontier_line if cursor.frontier else self._catch_up_line
        pos, index, end = lines.pos, lines.index, lines.end
        self._step_start = pos
        for raw in lines.lines[index:index + BATCH_LINES]:
            offset = pos
            pos = min(pos + len(raw) + 1, end)
            index += 1
            if handle(cursor, raw, offset, pos):
                break
        if not cursor.frontier:
            self._counters["lines_caught_up"] += index - lines.index
        lines.pos, lines.index = pos, index
        cursor = self._advance(cursor, pos, pos - self._step_start)
        await self._on_batch()
        return cursor

    def _advance(self, cursor: Cursor, position: int, read: int) -> Cursor:
        cursor.run_bytes += read
        if cursor.frontier:
            self._counters["lines_read"] = self._file.line_no
        return self._store.cursors.move(cursor, position)

    # --- one line ------------------------------------------------------------------------------

    def _frontier_line(self, cursor: Cursor, raw: bytes, offset: int, end: int) -> bool:
        """Validate, count and feed one line; True when the frontier should stop after it."""
        file = self._file
        file.line_no += 1
        columns = file.columns
        try:
            text = raw.decode("utf-8")  # strict: a replaced byte would make another book id
        except UnicodeDecodeError as exc:
            if columns is not None:
                self.bad_row(not_utf8(file.line_no, exc))
                return False
            text = raw.decode("utf-8", "replace")  # the header: its own checks name what is wrong
        if columns is None:
            if not text.lstrip("\ufeff").strip():
                return False
            return not file.header(text) or not cursor.demand
        row = parse_row(text, columns, file.line_no, self._prices)
        if row is None:
            return False
        if isinstance(row, BadRow):
            self.bad_row(row, book_of_bad_line(text, columns))
            return False
        self._counters["rows_read"] += 1
        if not self._store.frontier_row(ALL_BOOKS if row.book_id is None else row.book_id, row.price, offset):
            self._counters["books_over_limit"] += 1
            self._rlog.warning("books_over_limit", "%s line %d: book %r ignored: more than %d books "
                               "(raise --max-books)", file.path, file.line_no, row.book_id, self._store.max_books)
        return self._store.cursors.stop_after(cursor, end, 0)

    def _catch_up_line(self, cursor: Cursor, raw: bytes, offset: int, end: int) -> bool:
        """Feed one line to the catch-up's books; True when it should stop after it."""
        columns = self._file.columns
        assert columns is not None  # rows behind the frontier were read with a header
        fed = False
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:  # the frontier refused it (not_utf8): skip it as well
            text = ""
        fields = split_row(text, columns.count, 0)
        if fields is not None and not isinstance(fields, BadRow):
            key = ALL_BOOKS if columns.book_id is None else fields[columns.book_id].strip()
            book = self._store.claim(cursor, key, offset)
            if book is not None:
                row = row_from_fields(fields, columns, 0, self._prices)
                if isinstance(row, Row):
                    fed = self._store.feed(book, row.price, offset)
        return self._store.cursors.stop_after(cursor, end, end - self._step_start, fed)

    def bad_row(self, bad: BadRow, book: str | None = None) -> None:
        self._bad_books.note(book, bad)
        self._counters["bad_rows"] += 1
        key = f"bad_rows_{bad.reason}"
        self._counters[key] = self._counters.get(key, 0) + 1
        self._rlog.warning(f"bad_row_{bad.reason}", "%s line %d: skipped a bad row (%s): %s", self._file.path,
                           bad.line_no, bad.reason, bad.detail)
