"""Books the frontier has seen in bad rows only, with their first bad row: a request for such a book
is answered "only bad rows (first: line N, reason)" rather than "unknown book", so that a book whose
every row is bad (a decimal comma, say) is not taken for one missing from the file. Pure, bounded.
"""

from __future__ import annotations

from typing import Final

from actors.csv_fields import BadRow

BAD_BOOKS_MAX: Final = 10_000  # books remembered; past it a reply says how many bad rows the file has


class BadBooks:
    def __init__(self, limit: int = BAD_BOOKS_MAX) -> None:
        self._limit = limit
        self._first: dict[str, BadRow] = {}
        self.rows = 0  # bad rows seen since the file was (re)opened

    def note(self, book: str | None, bad: BadRow) -> None:
        """A bad row, for ``book`` when it can be told (:func:`~actors.csv_rows.book_of_bad_line`)."""
        self.rows += 1
        if book is not None and book not in self._first and len(self._first) < self._limit:
            self._first[book] = bad

    def unknown(self, book: str) -> str:
        """The error for a request for ``book``, which has no valid row in the whole file: its rows
        are all bad, or it is unknown (and whether the file has bad rows at all)."""
        bad = self._first.get(book)
        if bad is not None:
            return (f"book {book} has only bad rows in the data file (first: line {bad.line_no}: {bad.reason}: "
                    f"{bad.detail})")
        if self.rows:
            return f"unknown book {book} (the data file has {self.rows} bad row(s): see the DataManager's log)"
        return f"unknown book {book}"

    def clear(self) -> None:
        self._first.clear()
        self.rows = 0
