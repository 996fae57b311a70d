"""One book's bounded window of competitor prices, and the answers a request can get. Pure: no I/O.

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
from typing import TYPE_CHECKING, Final, Literal

if TYPE_CHECKING:
    from array import array

    from actors.data_manager.cursors import Cursor

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


TAKEOVER_STEPS: Final = 2  # another client takes a home by asking one of its next ticks
JUMPER_QUIET: Final = 1.0  # seconds before a client that jumped away from its home may take one again


class Book:
    """A book's window and where its next row comes from (``__slots__``: there may be a million)."""

    __slots__ = ("base", "cursor", "home", "home_at", "home_client", "index", "jumped_at", "jumper", "key",
                 "parked_at", "pins", "points", "served", "total", "want_end", "wants")

    def __init__(self, key: str, cursor: Cursor | None) -> None:
        self.key = key
        self.points: deque[Decimal] = deque()
        self.base = 0  # point index of points[0]
        self.total = 0  # valid rows of the book the frontier has read: points 0 .. total-1 exist
        self.cursor = cursor  # the cursor feeding the book; None while parked
        # Parked (cursor None), or waiting for ``cursor`` to reach it: the exact byte offset of the row
        # of point ``next_index``. -1 otherwise.
        self.parked_at = -1
        self.index: array[int] | None = None  # offsets of points 0, stride, 2*stride, ... (replay)
        self.pins: dict[int, int] | None = None  # tick -> waiting requests for it, oldest first
        self.wants: list[int] | None = None  # the end (exclusive point index) each waiting request needs
        self.want_end = 0  # the nearest of those ends still beyond the window; 0: none
        self.served = 0  # the tick last answered: the floor while no request waits
        # Where the client stepping through this book's ticks is (the Algorithm): the tick it was last
        # answered, which client, when. Requests near it go first (book_store._wake).
        self.home = -1
        self.home_client = b""
        self.home_at = 0.0
        # The client whose jump far from its home released it, and when: it may not take a home again
        # at once (a client asking ticks at random must not hold one).
        self.jumper = b""
        self.jumped_at = 0.0

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

    def answered(self, tick: int, client: bytes, now: float, near: int, ttl: float) -> None:
        """A request for ``tick`` was answered: it is the floor now, and the book's home follows the
        client stepping through the ticks. A fresh home (younger than ``ttl``) moves with its client
        while it steps (``near`` the home) and is released when it jumps far; another client takes it
        only by asking the home's next ticks (a reconnected DEALER has a new identity). With no fresh
        home the client answered takes it -- unless it is the one that just jumped away."""
        self.served = tick
        if self.home >= 0 and now - self.home_at <= ttl:
            if client == self.home_client:
                if abs(tick - self.home) <= near:
                    self.home, self.home_at = tick, now
                else:
                    self.home, self.home_client, self.jumper, self.jumped_at = -1, b"", client, now
            elif self.home <= tick <= self.home + TAKEOVER_STEPS:
                self.home, self.home_client, self.home_at = tick, client, now
        elif client != self.jumper or now - self.jumped_at > JUMPER_QUIET:
            self.home, self.home_client, self.home_at = tick, client, now

    def moves_away(self, tick: int, client: bytes, now: float, near: int, ttl: float) -> bool:
        """Whether serving ``client`` at ``tick`` takes the window away from another client's fresh
        home (that client then needs a seek back)."""
        return (self.home >= 0 and client != self.home_client and abs(tick - self.home) > near
                and now - self.home_at <= ttl)

    def seek_target(self, reach: int) -> int | None:
        """Where to move the window for its waiting requests, if a seek is needed. One window per book,
        so who goes first matters: ticks near the home (the client stepping through them) first,
        seeking back there if the window was moved away; else ticks the window reaches by reading
        (from its base to ``reach`` points past its end); else the longest-waiting tick. A request far
        from the others waits until they are answered instead of moving the window away and back each
        time: a client asking random ticks cannot make the Algorithm wait behind its seeks."""
        pins = self.pins
        if not pins:
            return None
        end = self.base + len(self.points) + reach
        if len(pins) == 1:  # the usual case: one tick waits
            tick = next(iter(pins))
            return None if self.base <= tick < end else tick
        home = [tick for tick in pins if self.home >= 0 and abs(tick - self.home) <= reach]
        if home:
            return home[0]
        if any(self.base <= tick < end for tick in pins):
            return None
        return next(iter(pins))  # the oldest

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

    # --- waiting requests (the store keeps ``want_end`` and its cursors' counts in step) ---------

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
