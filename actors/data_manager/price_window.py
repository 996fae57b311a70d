"""The DataManager's bounded per-book price windows and the replay/follow lookup. Pure: no I/O.

Point ``i`` of a book is its i-th valid row in file order (0-based).

* ``replay``: tick ``k`` sees points ``k .. k+N-1`` (oldest first), as if the competitor posted one
  new price per tick. Past the end of the book's rows (file fully read) it sees the last N points.
* ``follow``: the newest N points in the file, whatever the tick.

Memory: every book keeps at most ``capacity`` (W >= N) points. One shared forward cursor (the
*global scan*) reads the file and feeds every row to :meth:`WindowStore.add`. In replay mode a point
still needed (index >= the book's *floor*: the latest tick requested, lowered while an older request
waits) is never evicted: when the global scan would have to, the book is *detached* instead -- the
store remembers only the byte offset of the first row it did not keep, and the global scan ignores
the book from then on. A later request that needs more of that book makes the reader run a *private
scan* from that offset, feeding only that book's rows to :meth:`WindowStore.add_private`; the book
re-attaches when the private scan reaches the global cursor (:meth:`WindowStore.reattach`), or
detaches again further on. So a file sorted by book (all of A, then all of B) is served in bounded
memory. A request for a tick older than the book's window answers an "evicted" error.
"""

from __future__ import annotations

from collections import Counter, deque
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Final, Literal

Mode = Literal["replay", "follow"]
MODES: Final[tuple[Mode, ...]] = ("replay", "follow")
ALL_BOOKS: Final = "\x00all"  # the series key when the file has no book_id column


@dataclass(frozen=True, slots=True)
class Ready:
    prices: tuple[Decimal, ...]


@dataclass(frozen=True, slots=True)
class Failed:
    error: str


@dataclass(frozen=True, slots=True)
class NeedGlobal:
    """Read further with the global cursor (or, at EOF, check the file once more for new rows)."""


@dataclass(frozen=True, slots=True)
class NeedPrivate:
    """Run (or continue) the private scan of ``book`` from byte ``offset``."""

    book: str
    offset: int


Answer = Ready | Failed | NeedGlobal | NeedPrivate


@dataclass(slots=True)
class BookWindow:
    points: deque[Decimal] = field(default_factory=deque)
    base: int = 0  # point index of points[0]
    detached_at: int | None = None  # resume offset of the private scan; None while attached
    max_tick: int = 0
    pins: Counter[int] = field(default_factory=Counter)  # ticks of requests still waiting

    @property
    def next_index(self) -> int:
        return self.base + len(self.points)

    def floor(self) -> int:
        """Lowest point index a current or future request may still need."""
        return min(self.max_tick, min(self.pins)) if self.pins else self.max_tick


class WindowStore:
    def __init__(self, capacity: int, mode: Mode = "replay", max_books: int = 1_000_000) -> None:
        if capacity < 1 or max_books < 1:
            raise ValueError("capacity and max_books must be >= 1")
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        self.capacity = capacity
        self.mode: Mode = mode
        self.books: dict[str, BookWindow] = {}
        self.max_books = max_books  # memory is bounded per book *and* in the number of books
        self.detaches = 0

    def clear(self) -> None:
        """Forget everything (the file was truncated or replaced); requests' pins are kept."""
        for book in self.books.values():
            book.points.clear()
            book.base = 0
            book.detached_at = None
        self.books = {k: b for k, b in self.books.items() if b.pins}

    # --- feeding ---------------------------------------------------------------------------------

    def _book(self, key: str) -> BookWindow:
        book = self.books.get(key)
        if book is None:
            book = self.books[key] = BookWindow()
        return book

    def add(self, key: str, price: Decimal, offset: int) -> bool:
        """A row from the global scan starting at byte ``offset``; ignored while the book is detached.
        False when the row is refused because ``key`` would be a book beyond ``max_books``."""
        if key not in self.books and len(self.books) >= self.max_books:
            return False
        book = self._book(key)
        if book.detached_at is None:
            self._push(book, price, offset)
        return True

    def add_private(self, key: str, price: Decimal, offset: int, end: int) -> bool:
        """A row of the detached book ``key`` from its private scan (the line spans ``offset..end``);
        False when the book detached again at this row, so the private scan stops."""
        book = self._book(key)
        if book.detached_at is None:
            return False
        book.detached_at = None
        kept = self._push(book, price, offset)
        if kept:
            book.detached_at = end
        return kept

    def advance_private(self, key: str, offset: int) -> None:
        """The private scan read every line before ``offset``: resume there next time."""
        book = self.books.get(key)
        if book is not None and book.detached_at is not None:
            book.detached_at = max(book.detached_at, offset)

    def reattach(self, key: str) -> None:
        """The private scan reached the global cursor: the global scan feeds the book again."""
        book = self.books.get(key)
        if book is not None:
            book.detached_at = None

    def _push(self, book: BookWindow, price: Decimal, offset: int) -> bool:
        if len(book.points) >= self.capacity:
            if self.mode == "replay" and book.base >= book.floor():
                book.detached_at = offset  # every kept point is still needed: stop feeding, remember where
                self.detaches += 1
                return False
            book.points.popleft()
            book.base += 1
        book.points.append(price)
        return True

    # --- requests --------------------------------------------------------------------------------

    def note_request(self, key: str, tick: int) -> None:
        """A request for ``tick`` arrived: points before the newest requested tick may be evicted."""
        book = self.books.get(key)
        if book is not None and tick > book.max_tick:
            book.max_tick = tick

    def pin(self, key: str, tick: int) -> None:
        """A request for ``tick`` waits for rows: keep its points until :meth:`unpin`."""
        book = self._book(key)
        book.pins[tick] += 1
        book.max_tick = max(book.max_tick, tick)

    def unpin(self, key: str, tick: int) -> None:
        book = self.books.get(key)
        if book is not None and book.pins[tick] > 0:
            book.pins[tick] -= 1
            if not book.pins[tick]:
                del book.pins[tick]
            if not book.pins and not book.points and book.detached_at is None:
                del self.books[key]  # a request for an unknown book leaves nothing behind

    def lookup(self, key: str, tick: int, count: int, at_eof: bool, name: str | None = None) -> Answer:
        """What answers ``count`` prices of ``key`` at ``tick``. ``at_eof``: the global scan has read the
        whole file *since the request arrived*, so "no more rows" is final. ``name`` is the book id
        used in error texts (defaults to ``key``)."""
        name = key if name is None else name
        if count > self.capacity:
            return Failed(f"count {count} exceeds the window capacity {self.capacity}; "
                          "raise --window-capacity")
        book = self.books.get(key)
        if book is None or (not book.points and book.detached_at is None):
            return Failed(f"unknown book {name}") if at_eof else NeedGlobal()
        if self.mode == "follow":
            if not at_eof:
                return NeedGlobal()
            return self._last(book, count, name)
        end = tick + count
        if book.next_index >= end:
            if tick >= book.base:
                start = tick - book.base
                return Ready(tuple(book.points[i] for i in range(start, start + count)))
            return Failed(f"window evicted: tick {tick} of book {name} is older than its window "
                          f"(points {book.base}..{book.next_index - 1}); book {name}'s rows are too far "
                          "apart in the file or the tick went back; raise --window-capacity")
        if book.detached_at is not None:
            return NeedPrivate(key, book.detached_at)
        if not at_eof:
            return NeedGlobal()
        return self._last(book, count, name)  # past the end of the book's rows

    @staticmethod
    def _last(book: BookWindow, count: int, name: str) -> Answer:
        if book.next_index < count:
            return Failed(f"only {book.next_index} prices for book {name}")
        n = len(book.points)
        return Ready(tuple(book.points[i] for i in range(n - count, n)))

    def max_len(self) -> int:
        return max((len(b.points) for b in self.books.values()), default=0)
