"""One book's bounded window of competitor prices, the requests waiting on it, and the answers a request
can get. Pure: no I/O, and nothing of where the rows come from (the scan: :mod:`actors.data_manager.cursors`)
or of which client steps through the ticks (:mod:`actors.data_manager.homes`).

Point ``i`` of a book is its i-th valid row in file order (0-based).

* ``replay``: tick ``k`` sees points ``k .. k+N-1`` (oldest first), as if the competitor posted one
  new price per tick. Past the end of the book's rows (file fully read) it sees the last N points.
* ``follow``: the newest N points in the file, whatever the tick.

A window keeps at most ``capacity`` points (``base`` is the index of the oldest). Points below the
book's *floor* -- the lowest tick a waiting request may get from this window, else the tick last
answered -- are no longer needed and are evicted first; a window full of needed points takes no more
(the book is parked, see :mod:`actors.data_manager.book_store`).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
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
class Wait:
    """Not answerable yet. Replay: points ``tick .. end-1`` of the book are needed; ``end == 0``: the
    frontier must first pass the end of the file (follow mode, an unknown book)."""

    tick: int
    end: int


Answer = Ready | Failed | Wait


class PriceWindow:
    """The points of a book kept in memory and the requests waiting on them (``__slots__``: there may
    be a million books)."""

    __slots__ = ("base", "pins", "points", "served", "total", "wants")

    def __init__(self) -> None:
        self.points: deque[Decimal] = deque()
        self.base = 0  # point index of points[0]
        self.total = 0  # valid rows of the book the frontier has read: points 0 .. total-1 exist
        self.pins: dict[int, int] | None = None  # tick -> waiting requests for it, oldest first
        self.wants: list[int] | None = None  # the end (exclusive point index) each waiting request needs
        self.served = 0  # the tick last answered: the floor while no request waits

    @property
    def next_index(self) -> int:
        return self.base + len(self.points)

    def floor(self) -> int:
        """The lowest point a waiting request may still get from this window (one asking for a tick
        below the window needs a seek anyway), else the tick last answered (replay moves forward)."""
        if self.pins:
            reachable = [tick for tick in self.pins if tick >= self.base]
            if reachable:
                return min(reachable)
        return self.served

    def full_of_needed(self, capacity: int) -> bool:
        return len(self.points) >= capacity and self.base >= self.floor()

    def push(self, price: Decimal, capacity: int) -> None:
        """Append the next point, evicting the oldest when full (the caller checked it may)."""
        if len(self.points) >= capacity:
            self.points.popleft()
            self.base += 1
        self.points.append(price)

    def reset(self, base: int) -> None:
        """Drop the window; the next point pushed is point ``base``."""
        self.points.clear()
        self.base = base

    def window(self, tick: int, count: int) -> tuple[Decimal, ...] | None:
        start = tick - self.base
        if start < 0 or start + count > len(self.points):
            return None
        points = self.points
        return tuple(points[i] for i in range(start, start + count))

    def newest(self, count: int) -> tuple[Decimal, ...]:
        n = len(self.points)
        return tuple(self.points[i] for i in range(max(0, n - count), n))

    # --- waiting requests (the store keeps its cursors' demand in step) ------------------------

    def pin(self, tick: int, end: int) -> None:
        pins = self.pins if self.pins is not None else {}
        pins[tick] = pins.get(tick, 0) + 1
        self.pins = pins
        if end:
            self.wants = [*(self.wants or ()), end]

    def unpin(self, tick: int, end: int) -> None:
        if self.pins and tick in self.pins:
            self.pins[tick] -= 1
            if not self.pins[tick]:
                del self.pins[tick]
            if not self.pins:
                self.pins = None
        if end and self.wants and end in self.wants:
            self.wants.remove(end)
            if not self.wants:
                self.wants = None

    def next_want(self) -> int:
        """The nearest end a waiting request needs beyond the window (0: every one is satisfied)."""
        wants = self.wants
        if not wants:
            return 0
        have = self.base + len(self.points)
        if len(wants) == 1:
            return wants[0] if wants[0] > have else 0
        return min((end for end in wants if end > have), default=0)

    @property
    def idle(self) -> bool:
        """No point, no row seen, no request: a placeholder that can go."""
        return not self.points and not self.total and not self.pins
