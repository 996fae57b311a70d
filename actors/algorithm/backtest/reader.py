"""The competitor-price CSV as the DataManager reads it, in blocks of rows for the backtest: every valid
row in file order as (book index, price in millionths), every bad row counted by the same reason.

Fast path: a block of lines is parsed at once with numpy. A line is taken there only when it is
provably what the DataManager's row parser (``csv_rows.parse_row``) accepts and reads the same way:
printable ASCII, no quote, exactly the header's field count, a price of 1-7 digits with at most 6
decimals within the competitor limits, a book id of 1..128 characters with no surrounding space.
Every other line -- blank, quoted, spaced, non-ASCII, bad -- goes through the parser itself
(``csv_rows.line_row``), so a bad row is refused and counted exactly as the DataManager does
(``line_too_long`` and ``not_utf8`` included), and the rows of both paths are merged back in file
order. Memory: one block (4 MiB by default) and one small record per book; the file is never loaded
whole.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO, Final

import numpy as np
import numpy.typing as npt

from actors.algorithm.backtest.cents import I64, MICRO
from actors.csv_fields import BadRow
from actors.csv_rows import Columns, CsvFormatError, PriceCache, header_columns, line_row
from transport import files, limits
from transport.logs import printable

ALL_BOOKS: Final = "\x00all"  # the series every book gets when the file has no book_id column
BLOCK_BYTES: Final = 4 << 20
LINE_MAX: Final = limits.CSV_LINE_MAX_BYTES  # the DataManager's read size: a longer line is a bad row
EXAMPLES_MAX: Final = 10  # bad rows reported one by one; the rest only counted
_PRICE_WIDTH: Final = 7 + 1 + limits.PRICE_DECIMALS  # the longest plain price: 7 digits, a point, 6 decimals
_PRICE_LOW: Final = int(limits.COMPETITOR_PRICE_MIN * MICRO)
_PRICE_HIGH: Final = int(limits.COMPETITOR_PRICE_MAX * MICRO)
_FNV_PRIME: Final = np.uint64(1099511628211)

U8 = npt.NDArray[np.uint8]
Index = npt.NDArray[np.intp]


@dataclass(frozen=True, slots=True)
class Rows:
    """A block's valid rows in file order."""

    book: npt.NDArray[np.int32]  # index into BookIndex.ids
    price: I64  # millionths


class BookIndex:
    """Book ids in order of first appearance. The fast path finds a row's book by its id's bytes read
    as 64-bit words: an id of up to 8 bytes is its own key; a longer one is hashed and checked word
    for word (a collision only sends that book's rows the slow way)."""

    def __init__(self, max_books: int = limits.BOOKS_MAX) -> None:
        self.max_books = max_books
        self.ids: list[str] = []
        self.by_id: dict[str, int] = {}
        self._keys = np.zeros(0, dtype=np.uint64)  # sorted
        self._owner = np.zeros(0, dtype=np.int64)  # the book index of each key
        self._words = np.zeros((16, 1), dtype=np.uint64)  # row i: book i's id as zero-padded words
        self._pending: list[tuple[int, int]] = []  # (key, index) to merge into the sorted table

    def add(self, book: str) -> int | None:
        """The index of ``book``, added if new; None when the index is full. :meth:`flush` makes new
        books findable by :meth:`find`."""
        index = self.by_id.get(book)
        if index is None:
            if len(self.ids) >= self.max_books:
                return None
            index = self.by_id[book] = len(self.ids)
            self.ids.append(book)
            self._remember(book, index)
        return index

    def _remember(self, book: str, index: int) -> None:
        raw = book.encode("utf-8")
        if not raw.isascii():
            return  # only ASCII ids take the fast path
        words = np.frombuffer(raw.ljust(-(-len(raw) // 8) * 8, b"\0"), dtype=np.uint64)
        rows, width = self._words.shape
        if index >= rows or len(words) > width:
            grown = np.zeros((max(rows, 2 * index + 1), max(width, len(words))), dtype=np.uint64)
            grown[:rows, :width] = self._words
            self._words = grown
        self._words[index, :len(words)] = words
        self._pending.append((int(_key(words[None, :])[0]), index))

    def flush(self) -> None:
        """Merge the books added since into the sorted table (once per block, not once per book)."""
        if not self._pending:
            return
        keys = np.concatenate([self._keys, np.array([k for k, _ in self._pending], dtype=np.uint64)])
        owner = np.concatenate([self._owner, np.array([i for _, i in self._pending], dtype=np.int64)])
        self._pending = []
        order = np.argsort(keys, kind="stable")
        keys, owner = keys[order], owner[order]
        first = np.ones(len(keys), dtype=np.bool_)  # a colliding key keeps its first owner only
        first[1:] = keys[1:] != keys[:-1]
        self._keys, self._owner = keys[first], owner[first]

    def find(self, words: npt.NDArray[np.uint64]) -> npt.NDArray[np.int64]:
        """Each row's book index (rows: ids as zero-padded words), -1 where not found (a new book, or
        a collision)."""
        found = np.full(len(words), -1, dtype=np.int64)
        if not len(self._keys) or not len(words):
            return found
        at = np.minimum(np.searchsorted(self._keys, _key(words)), len(self._keys) - 1)
        owner = self._owner[at]
        width = min(words.shape[1], self._words.shape[1])
        same = (self._words[owner, :width] == words[:, :width]).all(axis=1)
        if words.shape[1] > width:
            same &= ~words[:, width:].any(axis=1)
        elif self._words.shape[1] > width:
            same &= ~self._words[owner, width:].any(axis=1)
        found[same] = owner[same]
        return found


def _key(words: npt.NDArray[np.uint64]) -> npt.NDArray[np.uint64]:
    """An id's first word (its bytes: exact for ids of up to 8 bytes), mixed FNV-style with the
    others."""
    key = words[:, 0].copy()
    for column in range(1, words.shape[1]):
        key = (key ^ words[:, column]) * _FNV_PRIME
    return key


PAD: Final = limits.BOOK_ID_MAX_LEN + 16  # zero bytes after a block: every field's words can be read
_MASKS: Final = np.array([(1 << (8 * k)) - 1 for k in range(9)], dtype=np.uint64)  # the low k bytes of a word
_MASKS.setflags(write=False)  # a constant table


def _field_words(buf: U8, starts: I64, lengths: I64, count: int) -> npt.NDArray[np.uint64]:
    """Each field's bytes as ``count`` little-endian 64-bit words, zero past its length (``buf`` ends
    with :data:`PAD` zero bytes). Read through an unaligned view: one gather per word."""
    view = np.ndarray((len(buf) - 7,), dtype="<u8", buffer=buf, strides=(1,))
    words = np.empty((len(starts), count), dtype=np.uint64)
    for j in range(count):
        words[:, j] = view[starts + 8 * j] & _MASKS[np.clip(lengths - 8 * j, 0, 8)]
    return words


def _bytes_of(words: npt.NDArray[np.uint64]) -> U8:
    """The byte matrix of :func:`_field_words` (a view: column c is the field's c-th byte)."""
    return words.view(np.uint8).reshape(len(words), 8 * words.shape[1])


def _lanes(byte: int, lanes: list[int]) -> np.uint64:
    """A word holding ``byte`` in each of ``lanes`` (byte positions 0..7)."""
    return np.uint64(sum(byte << (8 * lane) for lane in lanes))


_HIGH: Final = _lanes(0xF0, list(range(8)))
_THREES: Final = _lanes(0x30, list(range(8)))
_SIXES: Final = _lanes(0x06, list(range(8)))
_ONES: Final = _lanes(0x01, list(range(8)))
_TOPS: Final = _lanes(0x80, list(range(8)))
_POINTS: Final = _lanes(0x2E, list(range(8)))


def _all_digits(word: npt.NDArray[np.uint64], lanes: list[int]) -> npt.NDArray[np.bool_]:
    """Whether every byte of ``lanes`` is an ASCII digit (the other lanes are ignored): high nibble 3,
    and low nibble at most 9 (adding 6 carries out of it otherwise)."""
    keep = _lanes(0xFF, lanes)
    word = (word & keep) | (_THREES & ~keep)
    result: npt.NDArray[np.bool_] = ((word & _HIGH) == _THREES) & (((word + _SIXES) & _HIGH) == _THREES)
    return result


def parse_prices(words: npt.NDArray[np.uint64], lengths: I64) -> tuple[I64, npt.NDArray[np.bool_]]:
    """Plain prices (``[0-9]{1,7}(\\.[0-9]{1,6})?`` within the competitor limits) in millionths, and
    which rows hold one (the others go the slow way). ``words``: each field's first 16 bytes as two
    words. Rows are grouped by length and point position (a file holds a handful of shapes), and each
    group is checked and summed a byte lane at a time on whole words."""
    n = len(lengths)
    value = np.zeros(n, dtype=np.int64)
    ok = np.zeros(n, dtype=np.bool_)
    if not n:
        return value, ok
    first = words[:, 0]
    points = first ^ _POINTS  # a '.' byte becomes 0; the lowest zero byte is the first point
    found = (points - _ONES) & ~points & _TOPS
    lowest = found & (~found + np.uint64(1))
    at = np.where(found != 0, np.log2(np.maximum(lowest, 1).astype(np.float64)).astype(np.int64) // 8, lengths)
    shape = np.where((lengths >= 1) & (lengths <= _PRICE_WIDTH), lengths * 16 + np.minimum(at, 15), 0)
    for key in np.flatnonzero(np.bincount(shape, minlength=1)).tolist():
        size, point = divmod(key, 16)
        decimals = size - point - 1 if point < size else 0
        if not (1 <= point <= 7 and decimals <= limits.PRICE_DECIMALS and (point == size or decimals >= 1)):
            continue
        rows = np.flatnonzero(shape == key)
        digits = [c for c in range(size) if c != point]
        good = _all_digits(words[rows, 0], [c for c in digits if c < 8])
        if size > 8:
            good &= _all_digits(words[rows, 1], [c - 8 for c in digits if c >= 8])
        total = np.zeros(len(rows), dtype=np.int64)
        for c in digits:
            weight = 10 ** (point - 1 - c + limits.PRICE_DECIMALS) if c < point \
                else 10 ** (limits.PRICE_DECIMALS - (c - point))
            nibble = (words[rows, c // 8] >> np.uint64(8 * (c % 8))) & np.uint64(15)
            total += nibble.astype(np.int64) * weight
        value[rows] = total
        ok[rows] = good
    ok &= (value >= _PRICE_LOW) & (value <= _PRICE_HIGH)
    return value, ok


class PriceFile:
    """One pass over a CSV file: its header, then :meth:`blocks` of rows; ``counters`` count what
    the DataManager counts (``rows_read``, ``bad_rows`` and ``bad_rows_<reason>``, ``books_over_limit``,
    ``lines_read``); ``examples`` holds the first bad rows' messages."""

    def __init__(self, path: str, books: BookIndex | None = None, block_bytes: int = BLOCK_BYTES) -> None:
        self.path = path
        self.books = books or BookIndex()
        self.block_bytes = max(block_bytes, 1024)
        self.columns: Columns | None = None
        self.counters: dict[str, int] = {"lines_read": 0, "rows_read": 0, "bad_rows": 0, "books_over_limit": 0}
        self.examples: list[str] = []
        self._prices = PriceCache()

    # --- the slow path: the DataManager's own parser -------------------------------------------

    def _bad(self, bad: BadRow) -> None:
        self.counters["bad_rows"] += 1
        key = f"bad_rows_{bad.reason}"
        self.counters[key] = self.counters.get(key, 0) + 1
        if len(self.examples) < EXAMPLES_MAX:
            self.examples.append(f"{printable(self.path)} line {bad.line_no}: skipped a bad row ({bad.reason}): "
                                 f"{printable(bad.detail)}")

    def _header(self, raw: bytes) -> None:
        self.columns = header_columns(raw)  # CsvFormatError: the file cannot be read

    def _slow_row(self, raw: bytes, line_no: int) -> tuple[int, int] | None:
        """(book index, price) of one line parsed by the DataManager's parser; None when skipped."""
        assert self.columns is not None
        row = line_row(raw, self.columns, line_no, self._prices)
        if row is None:
            return None
        if isinstance(row, BadRow):
            self._bad(row)
            return None
        self.counters["rows_read"] += 1
        book = self.books.add(ALL_BOOKS if row.book_id is None else row.book_id)
        if book is None:
            self.counters["books_over_limit"] += 1
            return None
        return book, int(row.price * MICRO)

    # --- lines ---------------------------------------------------------------------------------

    def _lines(self, f: BinaryIO) -> Iterator[tuple[bytes, int]]:
        """Blocks of whole lines (each ending in a newline; the last line of the file gets one) with
        the number of the block's first line; a line too long for the DataManager is counted here."""
        rest = b""
        line_no = 0
        skipping = False  # inside a line too long, up to its end
        while True:
            data = f.read(self.block_bytes)
            if not data:
                if rest and not skipping:
                    yield rest + b"\n", line_no + 1
                return
            if skipping:
                end = data.find(b"\n")
                if end < 0:
                    continue
                data, skipping = data[end + 1:], False
            block = rest + data
            cut = block.rfind(b"\n") + 1
            if not cut:
                rest = block
                if len(rest) >= LINE_MAX:
                    line_no += 1
                    self.counters["lines_read"] += 1
                    self._line_too_long(line_no)
                    rest, skipping = b"", True
                continue
            whole, rest = block[:cut], block[cut:]
            yield whole, line_no + 1
            line_no += whole.count(b"\n")
            if len(rest) >= LINE_MAX:
                line_no += 1
                self.counters["lines_read"] += 1
                self._line_too_long(line_no)
                rest, skipping = b"", True

    def _line_too_long(self, line_no: int) -> None:
        self._bad(BadRow(line_no, "line_too_long", f"over {LINE_MAX} bytes"))

    def blocks(self) -> Iterator[Rows]:
        """Every valid row of the file in order, a block at a time (blocks may be empty)."""
        with files.open_bytes(self.path, buffering=0) as f:  # a FIFO or device: refused
            if hasattr(os, "posix_fadvise"):
                os.posix_fadvise(f.fileno(), 0, 0, os.POSIX_FADV_SEQUENTIAL)
            for block, first_line in self._lines(f):
                rows = self._block(block, first_line)
                if rows is not None:
                    yield rows

    def _block(self, block: bytes, first_line: int) -> Rows | None:
        buf = np.frombuffer(block + bytes(PAD), dtype=np.uint8)
        ends = np.flatnonzero(buf == 10).astype(np.int64)
        starts = np.empty_like(ends)
        starts[0], starts[1:] = 0, ends[:-1] + 1
        self.counters["lines_read"] += len(ends)
        first = 0
        while self.columns is None and first < len(ends):  # the header: the first line that is not blank
            raw = block[starts[first]:ends[first]]
            if len(raw) >= LINE_MAX:
                self._line_too_long(first_line + first)
            else:
                self._header(raw)
            first += 1
        if self.columns is None or first >= len(ends):
            return None
        return self._rows(buf, block, starts[first:], ends[first:], first_line + first)

    def _rows(self, buf: U8, block: bytes, starts: I64, ends: I64, first_line: int) -> Rows:
        columns = self.columns
        assert columns is not None
        cr = (ends > starts) & (buf[np.maximum(ends - 1, 0)] == 13)
        stop = ends - cr  # a CRLF line ends before its \r
        slow = (stop == starts) | (ends - starts >= LINE_MAX)
        if not block.isascii() or b'"' in block:  # quotes and non-ASCII bytes: those lines the slow way
            odd = np.flatnonzero((buf == 34) | (buf >= 128))
            slow[np.searchsorted(ends, odd[(odd >= starts[0]) & (odd <= ends[-1])])] = True
        commas = np.flatnonzero(buf == 44)
        first_comma = np.searchsorted(commas, np.append(starts, ends[-1] + 1))
        slow |= np.diff(first_comma) != columns.count - 1
        first_comma = first_comma[:-1]

        def field(j: int, fast: Index) -> tuple[I64, I64]:
            begin = starts[fast] if j == 0 else commas[first_comma[fast] + j - 1] + 1
            end = stop[fast] if j == columns.count - 1 else commas[first_comma[fast] + j]
            return begin, end - begin

        fast = np.flatnonzero(~slow)
        p_start, p_len = field(columns.price, fast)
        price, ok = parse_prices(_field_words(buf, p_start, np.minimum(p_len, 16), 2), p_len)
        if columns.book_id is not None:
            b_start, b_len = field(columns.book_id, fast)
            ok &= (b_len >= 1) & (b_len <= limits.BOOK_ID_MAX_LEN)
            count = -(-int(b_len[ok].max(initial=1)) // 8)
            words = _field_words(buf, b_start, np.where(ok, b_len, 0), count)
            matrix = _bytes_of(words)
            # printable ASCII (control bytes go the slow way), no surrounding space: is_valid_book_id
            inside = np.arange(8 * count)[None, :] < b_len[:, None]
            last = matrix[np.arange(len(fast)), np.clip(b_len - 1, 0, 8 * count - 1)]
            ok &= (((matrix >= 32) & (matrix != 127)) | ~inside).all(axis=1) & (matrix[:, 0] != 32) & (last != 32)
            book = self._find_books(words, b_len, ok)
        else:
            book = np.full(len(fast), self.books.add(ALL_BOOKS) or 0, dtype=np.int64)
        over = ok & (book == -2)
        self.counters["books_over_limit"] += int(over.sum())
        self.counters["rows_read"] += int(ok.sum())
        slow[fast[~ok]] = True
        keep = ok & ~over
        good_line, good_book, good_price = fast[keep], book[keep], price[keep]
        slow_lines = np.flatnonzero(slow)
        if not len(slow_lines):
            return Rows(good_book.astype(np.int32), good_price)
        extra = self._slow_rows(block, starts, ends, slow_lines, first_line)
        if not extra:
            return Rows(good_book.astype(np.int32), good_price)
        lines = np.concatenate([good_line, np.array([e[0] for e in extra], dtype=np.int64)])
        order = np.argsort(lines, kind="stable")
        books = np.concatenate([good_book, np.array([e[1] for e in extra], dtype=np.int64)])[order]
        prices = np.concatenate([good_price, np.array([e[2] for e in extra], dtype=np.int64)])[order]
        return Rows(books.astype(np.int32), prices)

    def _find_books(self, words: npt.NDArray[np.uint64], lengths: I64, ok: npt.NDArray[np.bool_]
                    ) -> npt.NDArray[np.int64]:
        """The book index of each row's id (-2: a new book past the limit)."""
        book = self.books.find(words)
        new = np.flatnonzero(ok & (book < 0))
        if not len(new):
            return book
        # New books (or a collision): added by their text once per distinct id, not once per row.
        keys = _key(words[new])
        _, first, group = np.unique(keys, return_index=True, return_inverse=True)
        alike = (words[new] == words[new[first[group]]]).all(axis=1)
        matrix = _bytes_of(words)
        index = np.array([self._add(matrix[i, :lengths[i]].tobytes()) for i in new[first].tolist()],
                         dtype=np.int64)
        book[new] = index[group]
        for i in new[~alike].tolist():  # a key shared by two new ids: each row by its own text
            book[i] = self._add(matrix[i, :lengths[i]].tobytes())
        self.books.flush()
        return book

    def _add(self, raw: bytes) -> int:
        found = self.books.add(raw.decode("ascii"))
        return -2 if found is None else found

    def _slow_rows(self, block: bytes, starts: I64, ends: I64, lines: Index, first_line: int
                   ) -> list[tuple[int, int, int]]:
        """(line, book, price) of the lines the fast path left, by the DataManager's parser."""
        extra: list[tuple[int, int, int]] = []
        for i in lines.tolist():
            if ends[i] - starts[i] >= LINE_MAX:
                self._line_too_long(first_line + i)
                continue
            got = self._slow_row(block[starts[i]:ends[i]], first_line + i)
            if got is not None:
                extra.append((i, *got))
        self.books.flush()
        return extra


def read_header(path: str) -> Columns:
    """The file's columns, read from its first line that is not blank; CsvFormatError when it has
    none or a bad one."""
    with files.open_bytes(path) as f:
        line_no = 0
        while line_no < 1_000_000:
            raw = f.readline(LINE_MAX + 1)
            if not raw:
                break
            line_no += 1
            columns = header_columns(raw.rstrip(b"\r\n"))
            if columns is not None:
                return columns
    raise CsvFormatError("no header row: the first line must name the columns, e.g. 'timestamp,book_id,price'")
