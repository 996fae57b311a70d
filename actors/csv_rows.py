"""Parse the competitor-price CSV: the header row and one data row at a time (a line is split into
its fields by :mod:`actors.csv_fields`, as the guardrail catalog's are). Read by the DataManager and
by the Algorithm's backtest, so both read a file the same way; the launcher checks its header. Pure:
no I/O.

CSV format
----------
* The first line is a header row (required). Column names are case-insensitive and trimmed.
* ``price`` (required): the competitor price, a decimal such as ``12.49`` in ASCII digits; kept as a
  :class:`~decimal.Decimal` exactly as written (never a float), within the limits of
  :mod:`transport.limits` (0.01 to 5,000,000, at most 6 digits after the point), so that whatever the
  rule makes of it is a price the API accepts.
* ``book_id`` (optional): which book the price is for. A file without it serves every book: any
  requested book id gets the same series.
* ``timestamp`` (optional): kept as text, not interpreted; rows are used in file order.
* Other named columns are allowed and ignored.
* Tolerated: a UTF-8 byte-order mark, CRLF line ends, blank lines (skipped, not counted as bad),
  spaces around fields, double-quoted fields (``"B001","12.50"``).
* A bad row is skipped, counted by reason and logged with its line number. Reasons:
  ``wrong_column_count`` (fewer or more fields than the header names), ``missing_price``,
  ``non_numeric_price``, ``not_finite_price`` (NaN, inf), ``negative_price``, ``zero_price``,
  ``too_many_decimals``, ``price_too_small``, ``price_too_large``, ``empty_book_id``, ``bad_book_id``
  (control characters, surrounding spaces or over 128 characters), ``malformed_quotes`` (and, from the
  reader, ``line_too_long`` and ``not_utf8``: a line that is not valid UTF-8 is refused whole, so no
  book id ever holds a U+FFFD that stands for bytes it did not have).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Final, NamedTuple

from actors.csv_fields import LINE_REASONS, BadRow, not_utf8, split_fields, split_row
from transport.limits import COMPETITOR_PRICE_MAX, COMPETITOR_PRICE_MIN, PRICE_DECIMALS, is_valid_book_id

BAD_ROW_REASONS: Final = (
    "missing_price", "non_numeric_price", "not_finite_price", "negative_price", "zero_price",
    "too_many_decimals", "price_too_small", "price_too_large", "empty_book_id", "bad_book_id", *LINE_REASONS,
)


class CsvFormatError(ValueError):
    """The header row is unusable, so no row of the file can be read."""


@dataclass(frozen=True, slots=True)
class Columns:
    """Positions of the known columns in a row; ``count`` is how many fields every row must have."""

    price: int
    book_id: int | None
    timestamp: int | None
    count: int


class Row(NamedTuple):
    """One valid data row (a tuple: made millions of times, and a frozen dataclass is 2x slower)."""

    book_id: str | None  # None when the file has no book_id column
    price: Decimal
    timestamp: str | None = None


def parse_header(line: str) -> Columns:
    """Locate the columns; raise :class:`CsvFormatError` with a clear message when ``price`` is absent."""
    text = line.lstrip("\ufeff").strip()
    if not text:
        raise CsvFormatError("the header row is empty: the first line must name the columns, e.g. "
                             "'timestamp,book_id,price'")
    fields = split_fields(text)
    if fields is None:
        raise CsvFormatError(f"the header row has malformed quotes: {text!r:.200}")
    written = [name.strip() for name in fields]
    names = [name.lower() for name in written]
    seen: set[str] = set()
    for name in names:
        if name and name in seen:
            raise CsvFormatError(f"the header names column {name!r} twice: {text!r:.200}")
        seen.add(name)
    if "price" not in names:
        raise CsvFormatError(f"the header has no 'price' column (got {written!r:.200}); "
                             "expected e.g. 'timestamp,book_id,price'")

    def find(name: str) -> int | None:
        return names.index(name) if name in names else None

    return Columns(price=names.index("price"), book_id=find("book_id"), timestamp=find("timestamp"),
                   count=len(names))


# The common case, checked in one step: ASCII digits, an optional point and at most PRICE_DECIMALS
# decimals, no sign, no exponent, at most 7 integer digits. Anything else takes the careful path
# below, which names the reason.
_PLAIN_PRICE: Final = re.compile(rf"[0-9]{{1,7}}(?:\.[0-9]{{1,{PRICE_DECIMALS}}})?")
# What Decimal() may parse at all: ASCII only (Decimal also reads Arabic-Indic and full-width digits), no '_' (it
# reads '1_000'), no spaces inside.
_NUMBER_CHARS: Final = frozenset("0123456789.+-eE" "infinitynans" "INFINITYNANS")


def parse_price(raw: str) -> Decimal | str:
    """The price, or the bad-row reason key."""
    if _PLAIN_PRICE.fullmatch(raw):
        price = Decimal(raw)
        if price < COMPETITOR_PRICE_MIN:
            return "zero_price" if not price else "price_too_small"
        return price if price <= COMPETITOR_PRICE_MAX else "price_too_large"
    if not raw:
        return "missing_price"
    if not _NUMBER_CHARS.issuperset(raw):
        return "non_numeric_price"
    try:
        price = Decimal(raw)
    except InvalidOperation:
        return "non_numeric_price"
    if not price.is_finite():  # before any comparison: comparing a signalling NaN raises
        return "not_finite_price"
    if price.is_signed() and price != 0:
        return "negative_price"
    if price == 0:
        return "zero_price"
    exponent = price.as_tuple().exponent
    if isinstance(exponent, int) and exponent < -PRICE_DECIMALS:
        return "too_many_decimals"
    if price < COMPETITOR_PRICE_MIN:
        return "price_too_small"
    if price > COMPETITOR_PRICE_MAX:
        return "price_too_large"
    if isinstance(exponent, int) and exponent > 0:
        price = price.quantize(Decimal(1))  # "1e3" is kept as 1000, never printed as "1E+3"
    return price


class PriceCache:
    """Parsed prices by their text, bounded: a file repeats the same prices over and over (a random walk
    in cents has a few thousand values), so most rows skip the regex and the ``Decimal`` constructor,
    and windows share one ``Decimal`` per distinct price instead of one per point."""

    def __init__(self, size: int = 65_536) -> None:
        self._size = size
        self._known: dict[str, Decimal | str] = {}

    def known(self, raw: str) -> Decimal | None:
        """The price of ``raw`` if it is one already parsed as a good price; None otherwise (parse it)."""
        known = self._known.get(raw)
        return known if type(known) is Decimal else None

    def parse(self, raw: str) -> Decimal | str:
        known = self._known.get(raw)
        if known is None:
            if len(self._known) >= self._size:
                self._known.clear()  # bounded; a new generation fills up with the prices in use
            known = self._known[raw] = parse_price(raw)
        return known


def row_from_fields(fields: list[str], columns: Columns, line_no: int, prices: PriceCache | None = None
                    ) -> Row | BadRow:
    raw = fields[columns.price].strip()
    price = prices.parse(raw) if prices is not None else parse_price(raw)
    if isinstance(price, str):
        return BadRow(line_no, price, f"price {raw!r:.40}")
    book: str | None = None
    if columns.book_id is not None:
        book = fields[columns.book_id].strip()
        if not book:
            return BadRow(line_no, "empty_book_id", "book_id is empty")
        if not is_valid_book_id(book):
            return BadRow(line_no, "bad_book_id", f"book_id {book!r:.60}: control characters or over "
                          "128 characters")
    timestamp = fields[columns.timestamp].strip() if columns.timestamp is not None else None
    return Row(book, price, timestamp)


_TUPLE_NEW: Final = tuple.__new__
if Row._fields != ("book_id", "price", "timestamp"):  # parse_row makes a Row by position
    raise ImportError("actors.csv_rows: parse_row makes Rows by position: teach it the change")


def parse_row(line: str, columns: Columns, line_no: int, prices: PriceCache | None = None
              ) -> Row | BadRow | None:
    """One data line (with or without its line end) -> a Row, a BadRow, or None for a blank line."""
    # The usual line (no quote, as many fields as the header, a known good price, a plain book id) in
    # one step: the DataManager parses every row of the file (1.45 -> 1.19 us a row, best of 7 rounds
    # alternating with the old parser in one process, 2026-12-05; a bare split and Decimal: 0.38 us).
    # Anything else takes the careful path, which names the reason.
    text = line.strip()
    if prices is not None and '"' not in text:
        fields = text.split(",")
        if len(fields) == columns.count:
            price = prices.known(fields[columns.price].strip())
            if price is not None:
                if columns.book_id is None:
                    book = None
                else:
                    book = fields[columns.book_id].strip()
                    if not (book and is_valid_book_id(book)):
                        return row_from_fields(fields, columns, line_no, prices)
                # Made without the Python call of Row.__new__ (0.83x the parser's time a row, in one process,
                # docs/performance.md; bench/batched.py measures the DataManager as a whole).
                row: Row = _TUPLE_NEW(Row, (book, price, fields[columns.timestamp].strip()
                                            if columns.timestamp is not None else None))
                return row
    careful = split_row(text, columns.count, line_no)
    if careful is None or isinstance(careful, BadRow):
        return careful
    return row_from_fields(careful, columns, line_no, prices)


def header_columns(raw: bytes) -> Columns | None:
    """The columns a header line (bytes, without its line end) names, or None for a blank line before
    the header; CsvFormatError for a bad one. Decoded with replacement: the header's own checks name
    what is wrong with it."""
    text = raw.decode("utf-8", "replace")
    return parse_header(text) if text.lstrip("\ufeff").strip() else None


def line_row(raw: bytes, columns: Columns, line_no: int, prices: PriceCache | None = None) -> Row | BadRow | None:
    """One data line as bytes (without its line end) -> a Row, a BadRow, or None for a blank line. A
    line that is not UTF-8 is refused whole: no book id ever holds a U+FFFD for bytes it did not have."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return not_utf8(line_no, exc)
    return parse_row(text, columns, line_no, prices)


def book_of_bad_line(line: str, columns: Columns) -> str | None:
    """The book a bad data line is most likely for, to say "only bad rows" rather than "unknown book"
    of a book whose every row is bad: its field at the header's ``book_id`` position when that is a
    valid book id (a decimal comma adds a field after the price, usually after the book id too).
    None without a ``book_id`` column, or when no such field can be read."""
    if columns.book_id is None:
        return None
    fields = split_fields(line.strip())
    if fields is None or len(fields) <= columns.book_id:
        return None
    book = fields[columns.book_id].strip()
    return book if is_valid_book_id(book) else None
