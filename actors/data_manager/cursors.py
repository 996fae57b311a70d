"""Scan positions in the CSV file. Pure: no I/O.

The *frontier* is the one cursor that reads new rows: it validates and counts every row, learns new
books and indexes them. A book whose window is full of points still needed is *parked* at the exact
byte offset of its next row while the frontier reads on (see :mod:`actors.data_manager.book_store`);
when a request needs that book again, a *catch-up* cursor reads forward from there, feeding every
book that follows it. Catch-ups are shared, which keeps replay O(rows) whatever the file's layout:

* a parked book that needs rows joins the nearest catch-up within ``reach`` bytes below its offset
  (the catch-up picks it up when it reaches that offset) instead of starting its own scan, and a
  catch-up passing a parked book's offset takes that book along if its window has room;
* a catch-up that reaches another cursor's position merges into it (their followers need the same
  rows from there on), and one whose demand is met keeps reading to a cursor just ahead -- at most as
  far as it has read since it started -- so cursors that move together in an interleaved region
  become one instead of reading the same rows side by side.

Followers of a merged cursor are found through ``merged_into`` (a union-find), so a merge costs O(1).

A book's place in the scan is kept here too: :class:`Book` is its window (with its home) plus which
cursor feeds it, the offset it is parked at, the demand it puts on its cursor and where its rows are
(the sparse index); :class:`Cursors` keeps a book's cursor and its cursor's counts in step.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from actors.data_manager.homes import HomedWindow

if TYPE_CHECKING:
    from array import array

BUCKET_BITS: Final = 16  # positions are bucketed by 64 KiB to find the cursor nearest an offset


class Cursor:
    """A scan position: the byte offset of the next line to read."""

    __slots__ = ("demand", "followers", "frontier", "merged_into", "position", "read_size", "run_bytes", "target")

    def __init__(self, position: int, frontier: bool = False) -> None:
        self.position = position
        self.frontier = frontier
        self.followers = 0  # books fed by this cursor (or waiting for it to reach their offset)
        self.demand = 0  # of those, books a waiting request needs more points of (+ EOF waits, frontier)
        self.merged_into: Cursor | None = None
        self.run_bytes = 0  # bytes read since the cursor last became busy: the forced-merge budget
        self.target = -1  # position of a cursor just ahead to merge into, once the demand is met
        self.read_size = 0  # bytes of its next read (a catch-up reads more the longer it keeps reading)

    @property
    def busy(self) -> bool:
        return self.demand > 0 or self.target >= 0

    def __repr__(self) -> str:  # pragma: no cover - debugging aid
        kind = "frontier" if self.frontier else "catch-up"
        return f"<{kind} @{self.position} followers={self.followers} demand={self.demand}>"


class Book(HomedWindow):
    """A book: its window, its home and its place in the scan (``__slots__``: there may be a million)."""

    __slots__ = ("cursor", "index", "key", "parked_at", "want_end")

    def __init__(self, key: str) -> None:
        super().__init__()
        self.key = key
        self.cursor: Cursor | None = None  # the cursor feeding the book; None while parked (Cursors.reassign)
        # Parked (cursor None), or waiting for ``cursor`` to reach it: the exact byte offset of the row
        # of point ``next_index``. -1 otherwise.
        self.parked_at = -1
        self.want_end = 0  # the nearest end a waiting request needs beyond the window (next_want); 0: none
        self.index: array[int] | None = None  # offsets of points 0, stride, 2*stride, ... (replay)


class Cursors:
    """The frontier and the catch-ups, by position; which one to step next."""

    def __init__(self, reach: int) -> None:
        self.reach = reach
        self.started = 0
        self.merges = 0
        self.frontier = Cursor(0, frontier=True)
        self._at: dict[int, Cursor] = {}
        self._buckets: dict[int, set[Cursor]] = {}
        self._busy: dict[Cursor, None] = {}  # busy catch-ups, oldest first (an ordered set)
        self._place(self.frontier)

    def __len__(self) -> int:
        """Live catch-up cursors."""
        return len(self._at) - (self._at.get(self.frontier.position) is self.frontier)

    def clear(self) -> None:
        """Forget every position (the file was truncated or replaced): a new frontier at 0."""
        self.frontier = Cursor(0, frontier=True)
        self._at.clear()
        self._buckets.clear()
        self._busy.clear()
        self._place(self.frontier)

    @staticmethod
    def root(cursor: Cursor) -> Cursor:
        top = cursor
        while top.merged_into is not None:
            top = top.merged_into
        while cursor.merged_into is not None and cursor.merged_into is not top:  # path compression
            cursor.merged_into, cursor = top, cursor.merged_into
        return top

    # --- positions -----------------------------------------------------------------------------

    def _place(self, cursor: Cursor) -> None:
        self._at[cursor.position] = cursor
        self._buckets.setdefault(cursor.position >> BUCKET_BITS, set()).add(cursor)

    def _unplace(self, cursor: Cursor) -> None:
        if self._at.get(cursor.position) is cursor:
            del self._at[cursor.position]
        bucket = self._buckets.get(cursor.position >> BUCKET_BITS)
        if bucket is not None:
            bucket.discard(cursor)
            if not bucket:
                del self._buckets[cursor.position >> BUCKET_BITS]

    def at(self, position: int) -> Cursor | None:
        return self._at.get(position)

    def start(self, position: int) -> Cursor:
        """A catch-up at ``position`` (the one already there, if any)."""
        cursor = self._at.get(position)
        if cursor is None:
            cursor = Cursor(position)
            self.started += 1
            self._place(cursor)
        return cursor

    def move(self, cursor: Cursor, position: int) -> Cursor:
        """Set ``cursor``'s position; if another cursor is there, merge into it. The cursor that
        continues (``cursor`` or the one it merged into) is returned."""
        if position == cursor.position:
            return cursor
        self._unplace(cursor)
        cursor.position = position
        other = self._at.get(position)
        if other is not None and not cursor.frontier:
            self.merge(cursor, other)
            return other
        self._place(cursor)
        return cursor

    def nearest_below(self, position: int) -> Cursor | None:
        """The catch-up with the highest position in ``[position - reach, position]``."""
        best: Cursor | None = None
        for bucket in range((position - self.reach) >> BUCKET_BITS, (position >> BUCKET_BITS) + 1):
            for cursor in self._buckets.get(bucket, ()):
                if (not cursor.frontier and position - self.reach <= cursor.position <= position
                        and (best is None or cursor.position > best.position)):
                    best = cursor
        return best

    def nearest_above(self, position: int, within: int) -> Cursor | None:
        """The cursor (the frontier included) with the lowest position in ``(position, position + within]``."""
        best: Cursor | None = None
        for bucket in range(position >> BUCKET_BITS, ((position + within) >> BUCKET_BITS) + 1):
            for cursor in self._buckets.get(bucket, ()):
                if (position < cursor.position <= position + within
                        and (best is None or cursor.position < best.position)):
                    best = cursor
        return best

    # --- demand --------------------------------------------------------------------------------

    def add(self, cursor: Cursor, followers: int, demand: int) -> None:
        """Change a root cursor's follower and demand counts; drop a catch-up left with neither."""
        was = cursor.busy
        cursor.followers += followers
        cursor.demand += demand
        if demand and not cursor.frontier:
            if cursor.busy and not was:
                cursor.run_bytes = 0
                self._busy[cursor] = None
            elif was and not cursor.busy:
                self._busy.pop(cursor, None)
        self.release(cursor)

    def reassign(self, book: Book, cursor: Cursor | None, want_end: int) -> None:
        """Set who feeds ``book`` and what it still needs, keeping the counts: a book is one follower
        of its cursor, and one unit of its demand while ``want_end`` is set."""
        old = book.cursor
        had = 1 if old is not None and book.want_end else 0
        has = 1 if cursor is not None and want_end else 0
        book.want_end = want_end
        if old is not None:
            old = self.root(old)
        if cursor is not None:
            cursor = self.root(cursor)
        book.cursor = cursor
        if old is cursor:
            if old is not None and had != has:
                self.add(old, 0, has - had)
            return
        if old is not None:
            self.add(old, -1, -had)
        if cursor is not None:
            self.add(cursor, 1, has)

    def park(self, book: Book, offset: int) -> None:
        """No cursor feeds ``book`` until one reaches ``offset``, the exact offset of its next row."""
        book.parked_at = offset
        self.reassign(book, None, book.want_end)

    def release(self, cursor: Cursor) -> None:
        if not cursor.frontier and cursor.followers <= 0 and not cursor.busy and cursor.merged_into is None:
            self._unplace(cursor)
            self._busy.pop(cursor, None)

    def aim(self, cursor: Cursor, target: Cursor | None) -> None:
        """Keep ``cursor`` reading up to ``target``'s position (a forced merge), or stop aiming."""
        cursor.target = -1 if target is None else target.position
        if cursor.busy:
            self._busy[cursor] = None
        else:
            self._busy.pop(cursor, None)
            self.release(cursor)

    def stop_after(self, cursor: Cursor, end: int, read: int, fed: bool = False) -> bool:
        """After a line of a step of ``cursor`` ending at ``end`` (``read`` bytes into the step; ``fed``:
        the line went into one of its books' windows): True to stop there. The frontier stops when its
        demand is met. A catch-up stops on reaching another cursor (to merge into it); once its demand
        is met it reads on while the lines it reads feed its books (in a file sorted by book: the
        book's next rows, already read, until its window is full -- one step then serves many ticks),
        then to a cursor just ahead -- at most as far as it has read since it became busy, so at most
        doubling its reading -- else it stops."""
        if cursor.frontier:
            return not cursor.demand
        if end in self._at:
            return True
        if cursor.demand or fed:
            return False
        if cursor.target < 0:
            ahead = self.nearest_above(end, min(self.reach, cursor.run_bytes + read))
            if ahead is None:
                return True
            self.aim(cursor, ahead)
        return False

    def merge(self, cursor: Cursor, into: Cursor) -> None:
        """``cursor`` reached ``into``'s position: its followers and demand move there."""
        self.merges += 1
        self._unplace(cursor)
        self._busy.pop(cursor, None)
        cursor.target = -1
        cursor.merged_into = into
        self.add(into, cursor.followers, cursor.demand)

    def next_busy(self) -> Cursor | None:
        """The cursor to step: the oldest busy catch-up, else the frontier if it has demand."""
        for cursor in self._busy:
            return cursor
        return self.frontier if self.frontier.demand > 0 else None
