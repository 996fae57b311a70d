"""What the start of a competitor-price CSV says about the books to be priced, read before anything
starts: a file with no usable header, or with no valid row for any book priced, can never give a
decision, so the launcher refuses it at start in replay mode (in follow mode it waits, saying why in
one line), and the backtest refuses it the same way, with the same message (it calls
:func:`check_data_file` too).

:class:`FirstRows` is pure (fed the file's lines, as the DataManager parses them: the header, then each
row through :func:`~actors.csv_rows.parse_row`); :func:`check_data_file` reads the file
for it, bounded: it stops at the first valid row of every book priced, or after
:data:`SCAN_MAX_BYTES`, and says which. Rows of other books are split, not parsed.
"""

from __future__ import annotations

import enum
from collections.abc import Collection
from dataclasses import dataclass
from decimal import Decimal
from typing import Final

from actors.csv_fields import BadRow, not_utf8, split_fields, split_row
from actors.csv_rows import (
    Columns,
    CsvFormatError,
    PriceCache,
    book_of_bad_line,
    parse_header,
    parse_price,
    row_from_fields,
)
from transport import files, limits
from transport.logs import printable

SCAN_MAX_BYTES: Final = 8 * 1024 * 1024  # read at most this much at start (docs/csv-format.md: its cost)
HEADER_EXAMPLE: Final = "expected e.g. 'timestamp,book_id,price'"
NAMED: Final = 5  # books a message names; the count says the rest
_READ_BYTES: Final = 1 << 20


class Finding(enum.Enum):
    """What the part of the file read says."""

    USABLE = "usable"  # a valid row for a book priced (or for every book: no book_id column)
    NO_HEADER = "no_header"  # no line yet (empty, or blank lines only)
    BAD_HEADER = "bad_header"  # the first line cannot be a header: no row can ever be read
    NO_VALID_ROW = "no_valid_row"  # read to the end (or SCAN_MAX_BYTES of bad rows only): nothing for the books
    NOT_YET = "not_yet"  # SCAN_MAX_BYTES read, valid rows only for other books: the books may come later


REFUSED: Final = frozenset({Finding.NO_HEADER, Finding.BAD_HEADER, Finding.NO_VALID_ROW})


@dataclass(frozen=True, slots=True)
class DataCheck:
    """The verdict on a data file, with what to say about it. ``why`` is one line naming the line
    and the reason (empty when usable)."""

    finding: Finding
    why: str
    bad_only: tuple[tuple[str, BadRow], ...]  # books priced seen in bad rows only: the first NAMED, their first bad row
    bad_only_count: int
    unseen: tuple[str, ...]  # books priced with no row at all in the part read: the first NAMED
    unseen_count: int
    complete: bool  # the whole file was read (else it stopped at SCAN_MAX_BYTES or once every book was found)
    bytes_read: int

    @property
    def refused(self) -> bool:
        """Whether a replay must not start on this file (follow mode waits instead)."""
        return self.finding in REFUSED

    def problem(self, flag: str, path: str) -> str:
        """The one-line refusal (or, in follow mode, the reason to wait): ``--data-file PATH: why``."""
        return f"{flag} {printable(path)}: {self.why}"

    def warnings(self, flag: str, path: str) -> list[str]:
        """What to say about a usable file: books with bad rows only, books with no row, a scan that
        stopped early. At most three lines."""
        where = printable(path)
        part = "the file" if self.complete else f"{_first(self.bytes_read)} (not read further at start)"
        lines: list[str] = []
        if self.refused:
            return lines
        if self.bad_only_count:
            shown = ", ".join(f"{printable(book, 40)} (line {bad.line_no}: {bad.reason})"
                              for book, bad in self.bad_only)
            more = ", ..." if self.bad_only_count > len(self.bad_only) else ""
            lines.append(f"{flag} {where}: {self.bad_only_count} book(s) priced have only bad rows in {part}: "
                         f"{shown}{more}; the first: {self.bad_only[0][1].detail}")
        if self.unseen_count:
            shown = ", ".join(printable(book, 40) for book in self.unseen)
            more = ", ..." if self.unseen_count > len(self.unseen) else ""
            lines.append(f"{flag} {where}: {self.unseen_count} book(s) priced have no row in {part}: {shown}{more}")
        if self.finding is Finding.NOT_YET:
            lines.append(f"{flag} {where}: {self.why}")
        return lines


def _first(size: int) -> str:
    return f"the first {size:,} bytes" if size < 1 << 20 else f"the first {size / (1 << 20):.0f} MiB"


_DECIMAL_COMMA: Final = " (a decimal comma? prices are written with a point, e.g. 18.02)"


def _explained(bad: BadRow, text: str, columns: Columns) -> BadRow:
    """``bad`` with the likely cause of a common mistake added for people: a decimal comma, which
    makes one field more than the header names (or, quoted, a price that is not a number)."""
    fields = split_fields(text.strip())
    comma = False
    if bad.reason == "wrong_column_count" and fields is not None and len(fields) == columns.count + 1:
        whole, cents = fields[columns.price].strip(), fields[columns.price + 1].strip()
        comma = whole.isdigit() and cents.isdigit()
    elif bad.reason == "non_numeric_price" and fields is not None and len(fields) == columns.count:
        comma = fields[columns.price].strip().replace(",", "", 1).isdigit()
    return BadRow(bad.line_no, bad.reason, bad.detail + _DECIMAL_COMMA) if comma else bad


def _header_hint(line: str) -> str:
    for separator, name in ((";", "semicolons"), ("\t", "tabs"), ("|", "'|'")):
        if separator in line and "," not in line:
            return f" (its fields are separated by {name}: the file must be comma-separated)"
    fields = split_fields(line.lstrip("\ufeff").strip()) or []
    if any(isinstance(parse_price(field.strip()), Decimal) for field in fields):  # a header names, never prices
        return " (it looks like a data row: the file must start with a header line naming the columns)"
    return ""


class FirstRows:
    """The verdict on a file from its first lines. Feed each line (1-based number, text without its
    line end or None when it is not UTF-8 or over the line limit) until :attr:`done`, then
    :meth:`verdict`. ``books``: the books priced (None: any book will do)."""

    def __init__(self, books: Collection[str] | None) -> None:
        self._books = None if books is None else frozenset(books)
        self._columns: Columns | None = None
        self._header_error: tuple[int, str] | None = None
        self._prices = PriceCache(4096)
        self._valid: set[str] = set()  # books priced with a valid row
        self._bad: dict[str, BadRow] = {}  # books priced with bad rows only so far: their first
        self._first_bad: BadRow | None = None
        self._rows = 0  # valid rows, any book
        self._other: str | None = None  # a book of the file not priced, for the message
        self.done = False

    @property
    def before_header(self) -> bool:
        return self._columns is None

    def feed(self, line_no: int, text: str | None, problem: BadRow | None = None) -> None:
        if self.done:
            return
        if self._columns is None:
            self._header(line_no, text)
            return
        if text is None:
            self._bad_row(None, problem or BadRow(line_no, "not_utf8"))
            return
        columns = self._columns
        fields = split_row(text, columns.count, line_no)
        if fields is None:
            return
        if not isinstance(fields, BadRow) and columns.book_id is not None and self._books is not None \
                and fields[columns.book_id].strip() not in self._books:
            self._rows += 1  # another book's row: not parsed further (the DataManager judges it)
            if self._other is None:
                self._other = fields[columns.book_id].strip()
            return
        row = fields if isinstance(fields, BadRow) else row_from_fields(fields, columns, line_no, self._prices)
        if isinstance(row, BadRow):
            self._bad_row(book_of_bad_line(text, columns), _explained(row, text, columns))
            return
        self._rows += 1
        book = row.book_id
        if book is None or self._books is None:
            self._valid.add(book or "")
            self.done = True  # every book is served (no book_id column), or any will do
        else:
            self._valid.add(book)
            self._bad.pop(book, None)
            self.done = len(self._valid) == len(self._books)

    def _header(self, line_no: int, text: str | None) -> None:
        if text is None:
            self._header_error = (line_no, "the header row is over the line limit")
            self.done = True
            return
        if not text.lstrip("\ufeff").strip():
            return  # blank lines before the header are skipped, as the DataManager does
        try:
            self._columns = parse_header(text)
        except CsvFormatError as exc:
            self._header_error = (line_no, f"unusable header: {exc}{_header_hint(text)}")
            self.done = True

    def _bad_row(self, book: str | None, bad: BadRow) -> None:
        if self._first_bad is None:
            self._first_bad = bad
        if book is not None and self._books is not None and book in self._books and book not in self._valid:
            self._bad.setdefault(book, bad)

    def verdict(self, complete: bool, bytes_read: int) -> DataCheck:
        """``complete``: every line of the file was fed; ``bytes_read``: how much was."""
        bad_only = tuple(sorted(self._bad.items(), key=lambda item: item[1].line_no)[:NAMED])
        books = self._books
        unseen_all = [] if books is None else [b for b in books if b not in self._valid and b not in self._bad]
        unseen = tuple(sorted(unseen_all)[:NAMED])

        def check(finding: Finding, why: str) -> DataCheck:
            return DataCheck(finding, why, bad_only, len(self._bad), unseen, len(unseen_all), complete, bytes_read)

        if self._header_error is not None:
            line_no, why = self._header_error
            return check(Finding.BAD_HEADER, f"line {line_no}: {why}")
        if self._columns is None:
            return check(Finding.NO_HEADER, f"no header row: the file is empty ({HEADER_EXAMPLE})")
        if self._valid:
            return check(Finding.USABLE, "")
        first_bad = self._first_bad
        bad = "" if first_bad is None else (f"; first bad line {first_bad.line_no}: {first_bad.reason}: "
                                            f"{first_bad.detail}")
        priced = "any book" if books is None else f"any of the {len(books)} book(s) priced"
        read = _first(bytes_read)
        if not complete and first_bad is not None and not self._rows:
            return check(Finding.NO_VALID_ROW, f"no valid row at all in {read}{bad}")
        if not complete:
            other = f", only rows of other books (e.g. {printable(self._other, 40)})" if self._other else ""
            return check(Finding.NOT_YET, f"no valid row for {priced} in {read}{other}: not read further at start, "
                         f"the DataManager reads on{bad}")
        if self._rows:
            other = f" (e.g. {printable(self._other, 40)})" if self._other else ""
            return check(Finding.NO_VALID_ROW, f"no valid row for {priced}: its rows are for other books{other}{bad}")
        if first_bad is None:
            return check(Finding.NO_VALID_ROW, "a header and no data row")
        return check(Finding.NO_VALID_ROW, f"no valid row for {priced}{bad}")


def check_data_file(path: str, books: Collection[str] | None, max_bytes: int = SCAN_MAX_BYTES) -> DataCheck:
    """Read ``path`` as the DataManager would, until every book of ``books`` has a valid row (any
    valid row when ``books`` is None), or ``max_bytes`` were read, or the file ends. Raises OSError
    when it cannot be read (the caller says so in its own words)."""
    rows = FirstRows(books)
    with files.open_bytes(path) as f:  # a FIFO never blocks the open; anything but a regular file refused
        line_no, total, complete = 0, 0, False
        while not rows.done:
            if total >= max_bytes:
                break
            raw = f.readline(limits.CSV_LINE_MAX_BYTES + 1)
            if not raw:
                complete = True
                break
            total += len(raw)
            line_no += 1
            if len(raw) > limits.CSV_LINE_MAX_BYTES:  # a bad row to the DataManager: skip to its end
                while raw and not raw.endswith(b"\n") and total < max_bytes:
                    raw = f.readline(_READ_BYTES)
                    total += len(raw)
                rows.feed(line_no, None, BadRow(line_no, "line_too_long", f"over {limits.CSV_LINE_MAX_BYTES} bytes"))
                continue
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                if not rows.before_header:
                    rows.feed(line_no, None, not_utf8(line_no, exc))
                    continue
                text = raw.decode("utf-8", "replace")  # the header: its own checks name what is wrong
            rows.feed(line_no, text.rstrip("\r\n"))
        else:
            complete = not f.read(1)
    return rows.verdict(complete, total)
