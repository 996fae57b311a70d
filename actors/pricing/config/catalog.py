"""The guardrail catalog: per-book guardrails in a CSV file, for more books than a TOML file holds.
Pure: lines in, guardrails out (``files.catalog_lines`` streams the file).

Catalog format
--------------
* A header row (required) naming the columns: ``book_id``, ``floor``, ``ceiling`` (required), and
  optionally ``max_step_pct`` and ``ending``, in any order; other columns are ignored. Names are
  case-insensitive and trimmed.
* One row per book. An empty cell leaves that guardrail to the config's ``[guardrails]`` defaults.
* Same tolerance as the price CSV: a UTF-8 byte-order mark, CRLF line ends, blank lines, spaces
  around fields and double-quoted fields are fine; a bad row is skipped, counted by reason and
  reported with its line number. Reasons: ``wrong_column_count``, ``malformed_quotes``,
  ``empty_book_id``, ``bad_book_id``, ``bad_floor``, ``bad_ceiling``, ``bad_max_step_pct``,
  ``bad_ending``, ``floor_above_ceiling`` (after the defaults are merged in), ``duplicate_book_id``
  (the first row stays), ``line_too_long`` and ``not_utf8``.
* A row for a book the config does not price is counted (``unknown_books``) and reported as a
  warning, not an error: one catalog can serve several configs (its cells are not even parsed).
  Only rows of priced books are kept, so memory grows with the books priced, never with the file.
* The counts (:attr:`Catalog.counts`) become the Algorithm's ``catalog_*`` counters and the warnings
  (a summary with the count per reason, then the first ``EXAMPLES_MAX`` rows with their line numbers)
  are logged, the same at start and on every reload.
"""

from __future__ import annotations

from collections.abc import Callable, Container
from dataclasses import dataclass
from decimal import Decimal
from typing import Final

from actors.csv_fields import BadRow, split_fields, split_row
from actors.pricing.guardrails import FIELDS, NONE, PARSERS, Guardrails
from transport import limits
from transport.logs import printable

REQUIRED: Final = ("book_id", "floor", "ceiling")
EXAMPLES_MAX: Final = 10  # bad rows and unknown books reported one by one; the rest only counted
WARNINGS_MAX: Final = EXAMPLES_MAX + 2  # a loaded catalog's warnings: a summary, the examples, "N more"
PARSED_CACHE_MAX: Final = 65_536  # distinct cell values remembered while loading


class CatalogFormatError(ValueError):
    """The header row is unusable, so no row of the catalog can be read."""


@dataclass(frozen=True, slots=True)
class CatalogColumns:
    book_id: int
    fields: tuple[tuple[str, int], ...]  # (guardrail field, column index)
    count: int


def parse_catalog_header(line: str) -> CatalogColumns:
    text = line.lstrip("\ufeff").strip()
    fields = split_fields(text)
    if fields is None:
        raise CatalogFormatError(f"the header row has malformed quotes: {printable(text, 120)}")
    names = [name.strip().lower() for name in fields]
    for name in names:
        if name and names.count(name) > 1:
            raise CatalogFormatError(f"the header names column {printable(name, 40)!r} twice")
    missing = [name for name in REQUIRED if name not in names]
    if missing:
        raise CatalogFormatError(f"the header has no {', '.join(missing)} column (got {printable(names, 120)}); "
                                 "expected book_id,floor,ceiling[,max_step_pct][,ending]")
    return CatalogColumns(names.index("book_id"),
                          tuple((name, names.index(name)) for name in FIELDS if name in names), len(names))


def split_catalog_row(line: str, columns: CatalogColumns, line_no: int) -> tuple[str, list[str]] | BadRow | None:
    """One data line -> (its valid book id, its fields), a BadRow, or None for a blank line."""
    fields = split_row(line, columns.count, line_no)
    if fields is None or isinstance(fields, BadRow):
        return fields
    book = fields[columns.book_id].strip()
    if not book:
        return BadRow(line_no, "empty_book_id", "book_id is empty")
    if not limits.is_valid_book_id(book):
        return BadRow(line_no, "bad_book_id", f"book_id {printable(book, 60)}: control characters or over "
                      f"{limits.BOOK_ID_MAX_LEN} characters")
    return book, fields


def row_guardrails(fields: list[str], columns: CatalogColumns, line_no: int,
                   parse: Callable[[str, str], Decimal | str] | None = None) -> Guardrails | BadRow:
    """The guardrails a row's cells set (an empty cell sets none), or the BadRow of its first bad
    cell. ``parse(field, text)`` defaults to the field's parser (the loader passes a cached one)."""
    values: dict[str, Decimal] = {}
    for name, index in columns.fields:
        raw = fields[index].strip()
        if not raw:
            continue  # the default applies
        value = parse(name, raw) if parse is not None else PARSERS[name](raw)
        if isinstance(value, str):
            return BadRow(line_no, f"bad_{name}", f"{name} {printable(raw, 40)}: {value}")
        values[name] = value
    return Guardrails(**values) if values else NONE


def parse_catalog_row(line: str, columns: CatalogColumns, line_no: int) -> tuple[str, Guardrails] | BadRow | None:
    """One data line -> (book id, the guardrails its cells set), a BadRow, or None for a blank line."""
    split = split_catalog_row(line, columns, line_no)
    if split is None or isinstance(split, BadRow):
        return split
    guardrails = row_guardrails(split[1], columns, line_no)
    return guardrails if isinstance(guardrails, BadRow) else (split[0], guardrails)


@dataclass(frozen=True, slots=True)
class Catalog:
    """A loaded catalog: the merged guardrails of each priced book it lists, what was skipped, and
    the warnings to log (bounded)."""

    name: str  # the path as the config names it
    overrides: dict[str, Guardrails]
    counts: dict[str, int]
    warnings: tuple[str, ...]


class CatalogLoader:
    """Accumulates a streamed catalog, line by line, keeping only the books in ``known``.

    Equal guardrails are shared (interned): a million books with a few price points cost one
    dictionary entry each, not one object per value."""

    def __init__(self, name: str, known: Container[str], defaults: Guardrails) -> None:
        self._name = name
        self._known = known
        self._defaults = defaults
        self._columns: CatalogColumns | None = None
        self._overrides: dict[str, Guardrails] = {}
        self._interned: dict[Guardrails, Guardrails] = {}
        self._parsed: dict[tuple[str, str], Decimal | str] = {}  # cells seen before: one Decimal per value
        self._counts: dict[str, int] = {"rows": 0, "bad_rows": 0, "unknown_books": 0}
        self._warnings: list[str] = []

    def feed(self, line_no: int, text: str | None, problem: str | None = None) -> None:
        """One line of the file: its text, or None and the reason it could not be read
        (``line_too_long``, ``not_utf8``). Raises CatalogFormatError for a bad header."""
        if text is None:
            self._bad(BadRow(line_no, problem or "unreadable", "skipped"))
            return
        if self._columns is None:
            if text.lstrip("\ufeff").strip():
                self._columns = parse_catalog_header(text)
            return
        split = split_catalog_row(text, self._columns, line_no)
        if split is None:
            return
        if isinstance(split, BadRow):
            self._bad(split)
            return
        book, fields = split
        if book not in self._known:  # before its values are parsed: most rows may be for other configs
            self._counts["unknown_books"] += 1
            self._example(f"{self._name} line {line_no}: book {printable(book, 60)} is not priced by this "
                          "config: row ignored")
            return
        if book in self._overrides:
            self._bad(BadRow(line_no, "duplicate_book_id", f"book {printable(book, 60)} has an earlier row: "
                             "this one is ignored"))
            return
        own = row_guardrails(fields, self._columns, line_no, self._parse)
        if isinstance(own, BadRow):
            self._bad(own)
            return
        merged = self._defaults.override(own)  # each value is valid: only their order can be wrong
        if merged.floor is not None and merged.ceiling is not None and merged.floor > merged.ceiling:
            self._bad(BadRow(line_no, "floor_above_ceiling", f"floor {merged.floor} is above the ceiling "
                             f"{merged.ceiling} (empty cells take the [guardrails] defaults)"))
            return
        self._overrides[book] = self._interned.setdefault(merged, merged)
        self._counts["rows"] += 1

    def _parse(self, name: str, raw: str) -> Decimal | str:
        key = (name, raw)
        value = self._parsed.get(key)
        if value is None:
            if len(self._parsed) >= PARSED_CACHE_MAX:
                self._parsed.clear()  # bounded: a catalog of all-distinct values only loses the sharing
            value = self._parsed[key] = PARSERS[name](raw)
        return value

    def _bad(self, bad: BadRow) -> None:
        self._counts["bad_rows"] += 1
        key = f"bad_rows_{bad.reason}"
        self._counts[key] = self._counts.get(key, 0) + 1
        self._example(f"{self._name} line {bad.line_no}: skipped a bad row ({bad.reason}): {bad.detail}")

    def _example(self, message: str) -> None:
        if len(self._warnings) < EXAMPLES_MAX:
            self._warnings.append(message)

    def finish(self) -> Catalog:
        if self._columns is None:
            raise CatalogFormatError("no header row: the first line must name the columns, e.g. "
                                     "book_id,floor,ceiling,max_step_pct,ending")
        warnings: list[str] = []
        skipped = self._counts["bad_rows"] + self._counts["unknown_books"]
        if skipped:  # the summary first: if a log limits the lines, it is the one kept
            reasons = ", ".join(f"{key.removeprefix('bad_rows_')} {count}" for key, count in
                                sorted(self._counts.items()) if key.startswith("bad_rows_"))
            warnings.append(f"{self._name}: {self._counts['rows']} row(s) used, {self._counts['bad_rows']} bad "
                            f"({reasons or 'none'}), {self._counts['unknown_books']} for books not priced")
        warnings += self._warnings
        if skipped > len(self._warnings):
            warnings.append(f"{self._name}: {skipped - len(self._warnings)} more skipped row(s) not listed")
        self._interned, self._parsed = {}, {}
        return Catalog(self._name, self._overrides, dict(self._counts), tuple(warnings))
