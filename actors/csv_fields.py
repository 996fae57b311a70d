"""One CSV line into its fields, and the record of a line refused: what the price CSV
(:mod:`actors.csv_rows`), the guardrail catalog (:mod:`actors.pricing.config.catalog`) and the
backtest's costs file share. Pure: no I/O.

Both files tolerate the same things (CRLF line ends, blank lines, spaces around fields, double-quoted
fields) and refuse a line for the same reasons before any cell is read: its quotes are malformed, it
has not as many fields as the header names, it is longer than the line limit, or it is not UTF-8 text.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from typing import Final

# The reasons a line is refused whole (counter names: ``bad_rows_<reason>``, ``catalog_bad_rows_<reason>``).
MALFORMED_QUOTES: Final = "malformed_quotes"
WRONG_COLUMN_COUNT: Final = "wrong_column_count"
LINE_TOO_LONG: Final = "line_too_long"  # found by the readers, which never hand such a line over
NOT_UTF8: Final = "not_utf8"  # likewise: refused whole, so no U+FFFD ever stands for bytes it did not have
LINE_REASONS: Final = (WRONG_COLUMN_COUNT, MALFORMED_QUOTES, LINE_TOO_LONG, NOT_UTF8)


def csv_bool(value: bool) -> str:
    """A boolean in every CSV written (the Ledger's history, the Dashboard's download, the backtest's
    decisions): one spelling, as JSON writes it."""
    return "true" if value else "false"


@dataclass(frozen=True, slots=True)
class BadRow:
    line_no: int
    reason: str  # a short stable key (LINE_REASONS or the file's own), usable as a counter name
    detail: str = ""


def not_utf8(line_no: int, exc: UnicodeDecodeError) -> BadRow:
    """The BadRow of a line that is not valid UTF-8."""
    return BadRow(line_no, NOT_UTF8, f"not UTF-8 text (byte {exc.start} of the line)")


def split_fields(line: str) -> list[str] | None:
    """The fields of one line, or None when its quoting is malformed (``csv`` raises on some byte
    sequences, e.g. a quoted field followed by a bare carriage return)."""
    # The plain split is the hot path; the csv module only when a quote makes it necessary.
    if '"' in line:
        try:
            return next(csv.reader([line]), [])
        except csv.Error:
            return None
    return line.split(",")


def split_row(line: str, count: int, line_no: int) -> list[str] | BadRow | None:
    """The fields of one data line (with or without its line end), a BadRow when it has malformed quotes
    or not the ``count`` fields its header names, or None for a blank line."""
    text = line.strip()
    if not text:
        return None
    fields = split_fields(text)
    if fields is None:
        return BadRow(line_no, MALFORMED_QUOTES, f"line {text!r:.60}")
    if len(fields) != count:
        return BadRow(line_no, WRONG_COLUMN_COUNT, f"expected {count} fields as in the header, got {len(fields)}")
    return fields
