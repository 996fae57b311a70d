"""Where each book's points are in the file, sparsely. Pure: no I/O.

The frontier notes the byte offset of every ``stride``-th point of every book as it reads (replay
mode). A book whose window was moved away from the ticks asked -- a request for an older tick, or one
far ahead of a parked book -- is found again by a seek to the indexed point at or below the one
needed: at most ``stride - 1`` of its points are read for nothing, never the file from the start.

Memory: 8 bytes per indexed point (an ``array('q')`` per book, ~64 bytes each), at most ``max_points``
points in all: when full, every book's index keeps every other entry and the stride doubles.
"""

from __future__ import annotations

from array import array
from bisect import bisect_left
from collections.abc import Iterable

from actors.data_manager.cursors import Book


class SparseIndex:
    def __init__(self, max_points: int, stride: int) -> None:
        if max_points < 1 or stride < 1:
            raise ValueError("max_points and stride must be >= 1")
        self.max_points = max_points
        self.stride = stride
        self.points = 0

    def clear(self, stride: int) -> None:
        self.stride = stride
        self.points = 0

    def note(self, book: Book, point: int, offset: int, books: Iterable[Book]) -> None:
        """The frontier read point ``point`` of ``book`` at byte ``offset``."""
        if point % self.stride:
            return
        if book.index is None:
            book.index = array("q")
        book.index.append(offset)
        self.points += 1
        if self.points > self.max_points:
            self._thin(books)

    def seek(self, book: Book, point: int) -> tuple[int, int] | None:
        """``(indexed point, its offset)`` for the indexed point at or below ``point``, if known."""
        entry = point // self.stride
        if book.index is None or entry >= len(book.index):
            return None
        return entry * self.stride, book.index[entry]

    def dense(self, book: Book, start: int, end: int) -> bool:
        """True when the book has an indexed point in ``[start, end)``: at least ``stride`` of its rows
        lie there, or about (a catch-up from ``start`` would re-read them for nothing)."""
        index = book.index
        if index is None:
            return False
        entry = bisect_left(index, start)
        return entry < len(index) and index[entry] < end

    def _thin(self, books: Iterable[Book]) -> None:
        self.stride *= 2
        self.points = 0
        for book in books:
            if book.index is not None:
                book.index = book.index[::2]  # entry j was point j*stride/2: now point j*stride
                self.points += len(book.index)
