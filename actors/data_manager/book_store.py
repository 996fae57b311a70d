"""Every book's window, the cursors that feed them, and the answer to a request. Pure: no I/O.

The scan (:mod:`actors.data_manager.scanner`) reads the file and hands rows here; requests ask here.

* The **frontier** (the one cursor reading new rows) feeds every book that follows it and, in replay
  mode, notes every ``stride``-th point of every book in a sparse index. It stops as soon as no
  waiting request needs more of its books (``Cursor.demand``), so it never reads further ahead than
  requests need -- in an interleaved file no window ever overflows.
* A replay window full of points still needed (from its floor up, see
  :mod:`actors.data_manager.price_window`) takes no more: the book is **parked** at the exact offset
  of its next row, and costs nothing while the frontier reads on (a file sorted by book).
* A parked book that a request needs again is fed by a **catch-up** cursor from that offset, shared
  with every parked book near it (:mod:`actors.data_manager.cursors`) -- unless the rows between hold
  many of the book's own rows (which it has read already: a file sorted by book), then it gets its
  own; a catch-up merges into the frontier when it reaches it.
* A request for a tick older than a book's window (a new Scheduler run, a hand-made request), or
  far ahead of a parked book, moves the window with a seek from the sparse index: no request can move
  a window in a way another cannot undo.
* Moving a window away from where another client steps through the ticks (the book's *home*) costs
  that client a seek and a re-read back, so such requests are budgeted per client
  (:class:`MoveBudget`), and for all clients together (a client cycling through identities gets a
  fresh budget with each): a client asking other ticks of every book as fast as it can gets "busy"
  replies instead of making the DataManager move windows back and forth while the Algorithm waits.
  On a book a *stepper* steps through (:mod:`actors.data_manager.intake`: the Algorithm), every
  request of a non-stepper that needs reading is charged to the budget of all clients, near the home
  or not (issue 20). The stepping client itself is never charged (a new Scheduler run included).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Final

from actors.data_manager.cursors import Book, Cursor, Cursors
from actors.data_manager.homes import TAKEOVER_STEPS
from actors.data_manager.intake import Bucket, Steppers
from actors.data_manager.price_window import MODES, Answer, Failed, Mode, Ready, Wait
from actors.data_manager.sparse_index import SparseIndex
from transport import limits

CATCH_UP_REACH: Final = 256 * 1024  # a parked book joins a catch-up at most this many bytes behind it
STEPPER_STREAK: Final = 3  # forward steps in a row through a book's ticks that make its client a stepper
HOME_TTL: Final = 30.0  # seconds a book's home outlives the last request of the client that set it
INDEX_STRIDE: Final = 16  # points between two indexed offsets of a book (doubles when the index is full)


MOVES_PER_SECOND: Final = 20.0  # windows a client may take away from another client's home, per second
MOVES_BURST: Final = 40.0
MOVE_CLIENTS_MAX: Final = 1024  # clients whose budget is remembered (the least recently charged go first)
# All clients together: a client that reconnects with a new identity every few requests (each one
# starting with a full burst) must not escape the budget (issue 20).
MOVES_ALL_PER_SECOND: Final = MOVES_PER_SECOND  # one honest client asking old ticks keeps its rate
MOVES_ALL_BURST: Final = MOVES_BURST


class MoveBudget:
    """Token buckets for taking windows away from other clients' homes: one per client and one for all
    of them together. Pure; bounded: a forgotten client starts again with a full burst, which the
    shared bucket caps however many identities a client cycles through."""

    def __init__(self, rate: float = MOVES_PER_SECOND, burst: float = MOVES_BURST,
                 clients: int = MOVE_CLIENTS_MAX, rate_all: float = MOVES_ALL_PER_SECOND,
                 burst_all: float = MOVES_ALL_BURST) -> None:
        self.rate = rate
        self.burst = burst
        self._clients = clients
        self._buckets: dict[bytes, tuple[float, float]] = {}  # client -> (tokens, at); insertion order = LRU
        self.all = Bucket(rate_all, burst_all)
        self.refused_all = 0  # refusals by the shared bucket (the client's own had a token)

    def compact(self) -> None:
        """Forget the clients' buckets (a flood's identities): each starts again with a full burst,
        which the shared bucket still caps."""
        self._buckets = {}

    def take(self, client: bytes, now: float, shared: bool = True) -> bool:
        """A token of ``client``'s bucket, and (``shared``) of the shared one."""
        tokens, at = self._buckets.pop(client, (self.burst, now))
        tokens = min(self.burst, tokens + max(0.0, now - at) * self.rate)
        allowed = tokens >= 1.0 and (not shared or self.all.refill(now) >= 1.0)
        if tokens >= 1.0 and not allowed:
            self.refused_all += 1
        if allowed:
            tokens -= 1.0
            if shared:
                self.all.tokens -= 1.0
        self._buckets[client] = (tokens, now)
        if len(self._buckets) > self._clients:
            del self._buckets[next(iter(self._buckets))]
        return allowed


class BookStore:
    def __init__(self, capacity: int, mode: Mode = "replay", max_books: int = limits.BOOKS_MAX, *,
                 index_points: int = limits.DM_INDEX_POINTS_MAX, stride: int = INDEX_STRIDE,
                 reach: int = CATCH_UP_REACH) -> None:
        if capacity < 1 or max_books < 1:
            raise ValueError("capacity and max_books must be >= 1")
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        self.capacity = capacity
        self.mode: Mode = mode
        self.replay = mode == "replay"
        self.max_books = max_books  # memory is bounded per book *and* in the number of books
        self.books: dict[str, Book] = {}
        self.cursors = Cursors(reach)
        self._stride = stride
        self.index = SparseIndex(index_points, stride)
        self.jump = max(capacity, stride)  # move a window ahead by a seek when it saves this many points
        self.ready: dict[str, None] = {}  # books whose waiting requests may be answerable now
        self.parks = 0
        self.seeks = 0
        self.moves = MoveBudget()
        self.steppers = Steppers()  # clients stepping through books' ticks: served first under a flood
        # Until this monotonic time (a flood is being shed), a request of another client that would take
        # a window from a stepper's home is answered "busy" at once.
        self.overloaded_until = 0.0
        self.overload_refused = 0
        self.moves_refused = 0

    def clear(self) -> None:
        """Forget the file (truncated or replaced); waiting requests must be registered again."""
        self.books = {}
        self.cursors.clear()
        self.index.clear(self._stride)
        self.ready.clear()

    @property
    def frontier(self) -> Cursor:
        return self.cursors.frontier

    def take_ready(self) -> list[str]:
        keys = list(self.ready)
        self.ready.clear()
        return keys

    # --- rows ------------------------------------------------------------------------------------

    def frontier_row(self, key: str, price: Decimal, offset: int) -> bool:
        """A valid row read by the frontier; False when refused (``key`` would be a book beyond
        ``max_books``)."""
        book = self.books.get(key)
        frontier = self.cursors.frontier
        if book is None:
            if len(self.books) >= self.max_books:
                return False
            book = self.books[key] = Book(key)
            self.cursors.reassign(book, frontier, 0)
        point = book.total
        book.total = point + 1
        if self.replay and not point % self.index.stride:
            self.index.note(book, point, offset, self.books.values())
        cursor = book.cursor
        if cursor is not frontier and cursor is not None and Cursors.root(cursor) is frontier:
            cursor = book.cursor = frontier  # its catch-up merged into the frontier
        if cursor is frontier:
            self._push(book, price, offset)
        return True

    def claim(self, cursor: Cursor, key: str, offset: int) -> Book | None:
        """The book a catch-up's row at ``offset`` feeds, if any (only then is its price parsed)."""
        book = self.books.get(key)
        if book is None:
            return None
        own = book.cursor
        if own is None:  # parked: taken along if this is its next row and its window has room
            if book.parked_at != offset or book.full_of_needed(self.capacity):
                return None
            book.parked_at = -1
            self.cursors.reassign(book, cursor, book.want_end)
            return book
        if own is not cursor:
            own = Cursors.root(own)
            if own is not cursor:
                return None
            book.cursor = own
        if book.parked_at >= 0:  # waiting for this cursor to reach its offset
            if offset != book.parked_at:
                return None
            book.parked_at = -1
            if book.full_of_needed(self.capacity):
                self._park(book, offset)  # no room any more: parked again, right here
                return None
        return book

    def feed(self, book: Book, price: Decimal, offset: int) -> bool:
        """A valid row of a book that ``claim`` gave to a catch-up; False when the book took no more
        (parked) or its next row lies beyond the frontier (it follows the frontier now)."""
        if not self._push(book, price, offset):
            return False
        if book.next_index == book.total and book.cursor is not None:
            self.cursors.reassign(book, self.cursors.frontier, book.want_end)  # its next row is beyond the frontier
            return False
        return True

    def _push(self, book: Book, price: Decimal, offset: int) -> bool:
        if self.replay and len(book.points) >= self.capacity and book.base >= book.floor():
            self._park(book, offset)  # every kept point is still needed: stop feeding, remember where
            return False
        book.push(price, self.capacity)
        if book.want_end and book.next_index >= book.want_end:
            self.ready[book.key] = None
            self.cursors.reassign(book, book.cursor, book.next_want())
        return True

    def _park(self, book: Book, offset: int) -> None:
        self.parks += 1
        self.cursors.park(book, offset)

    # --- requests --------------------------------------------------------------------------------

    def answer(self, key: str, tick: int, count: int, final: bool, name: str, client: bytes = b"",
               now: float = 0.0, charge: bool = True) -> Answer:
        """What answers ``count`` prices of ``key`` at ``tick`` now. ``final``: the frontier has passed
        the end of the file since the request arrived, so "no more rows" is the truth. ``name`` is
        the book id for error texts; ``client`` who asks, at monotonic time ``now``: the book's home
        follows the client stepping through the ticks (:mod:`actors.data_manager.homes`). ``charge``:
        a new request (a second look at a waiting one is not charged again to its client's
        :class:`MoveBudget`)."""
        if count > self.capacity:
            return Failed(f"count {count} exceeds the window capacity {self.capacity}; raise --window-capacity")
        book = self.books.get(key)
        if book is None or not book.total:
            return Failed(f"unknown book {name}") if final else Wait(tick, 0 if not self.replay else tick + count)
        if final and book.total < count:
            return Failed(f"only {book.total} prices for book {name}")
        if not self.replay:
            if not final:
                return Wait(tick, 0)
            # The newest rows whatever the tick; the client stepping through the ticks is still told
            # apart (a stepper, served first under a flood): it asks tick after tick.
            self._stepped(book, tick, client, now, self._stranger(book, client, now))
            return Ready(book.newest(count))
        if final:
            tick = min(tick, book.total - count)  # past the end of the book's rows: the last ones
        prices = book.window(tick, count)
        stranger = self._stranger(book, client, now)
        if prices is not None:
            if not stranger:
                # The window's floor while nothing waits: a stranger answered from memory ahead of a
                # stepper's home must not let reading on evict the stepper's next points (issue 20:
                # each book of a flood's 50-book requests did, then the stepper's tick needed a seek).
                book.served = tick
            self._stepped(book, tick, client, now, stranger)
            return Ready(prices)
        far = tick < book.base or tick >= book.next_index + self.jump  # it needs a seek
        if charge and far and stranger and now < self.overloaded_until and (
                book.moves_away(tick, client, now, self.jump, HOME_TTL) or book.homed_by(client, now, HOME_TTL)):
            self.overload_refused += 1  # the stepper would have to seek back: the reader is theirs now
            return Failed("busy: overloaded, serving the clients that step through the ticks first; retry later")
        if tick < book.base and self.index.seek(book, tick) is None:
            return Failed(f"window evicted: tick {tick} of book {name} is older than its window "
                          f"(points {book.base}..{book.next_index - 1})")
        # The home's client reads free -- unless it is a stranger on a stepper's book: it took the home
        # by asking one of its next ticks, which a flood's identity does as easily as a restarted Algorithm.
        if charge and (stranger or not book.homed_by(client, now, HOME_TTL)) and not self._may_read(
                book, tick, count, client, now, far):
            self.moves_refused += 1
            return Failed(f"busy: requests took windows away from another client's ticks more than "
                          f"{self.moves.rate:.0f} times a second (yours) or {self.moves.all.rate:.0f} (all "
                          "clients'); retry later")
        return Wait(tick, tick + count)

    def _guarded(self, book: Book, now: float) -> bool:
        """Whether a stepper (the Algorithm) was answered lately as ``book``'s home: its window is kept
        for it, whoever holds the home now."""
        return now - book.stepped_at <= self.steppers.ttl

    def _stranger(self, book: Book, client: bytes, now: float) -> bool:
        """Whether ``client``, not a stepper, asks a book a stepper steps through: it gets none of a
        home's rights there, whatever its identity did before (issue 20: a flood of cycling identities
        took homes by asking their next ticks, then read and moved the windows free)."""
        return self._guarded(book, now) and not self.steppers.stepping(client, now)

    def _may_read(self, book: Book, tick: int, count: int, client: bytes, now: float, far: bool) -> bool:
        """Whether a request of ``client`` (not the book's home) that the window cannot answer now may
        wait for reading. A stepper (the Algorithm) always may. On a book a stepper stepped through
        lately, another client's request is charged to the budget of all clients together -- a seek
        back, however near, costs the stepper a seek home again, and a client that took the home by
        asking one of its next ticks is no exception (issue 20: a flood of random old ticks near the
        home cost the Algorithm a seek back per book and tick) -- unless it asks one of the home's
        next ticks, or, while nothing is being shed, reads forward no further than the window keeps
        the home: rows the stepper needs soon (a restarted Algorithm, not a stepper yet, asks those;
        under a flood of 50-book batches that reach kept the reader busy: 0.92 of the decisions).
        Elsewhere only a seek that takes the window from another client's
        home is charged (:meth:`_may_move`)."""
        if self.steppers.stepping(client, now):
            return True
        if self._guarded(book, now):
            if book.home <= tick <= book.home + TAKEOVER_STEPS:
                return True  # the home's next ticks
            ahead = now >= self.overloaded_until and book.home <= tick and tick + count <= book.home + self.capacity
            return ahead or self.moves.take(client, now, shared=True)
        return not far or self._may_move(book, tick, client, now)

    def _may_move(self, book: Book, tick: int, client: bytes, now: float) -> bool:
        """Whether ``client``, not the book's home, may seek its window to ``tick`` now: free unless that
        takes the window from another client's home; then charged to its own budget, and, when that
        home is a stepper's (the Algorithm's), to the one shared by all clients -- unless it steps
        through other books' ticks itself (the Algorithm, whose home a flood took)."""
        if not book.moves_away(tick, client, now, self.jump, HOME_TTL):
            return True
        shared = self.steppers.stepping(book.home_client, now) and not self.steppers.stepping(client, now)
        return self.moves.take(client, now, shared=shared)

    def want(self, key: str, wait: Wait) -> Wait:
        """Register a request waiting as ``wait`` says; return what was registered (an unknown book
        beyond ``max_books`` waits for the end of the file instead). Undo with :meth:`unwant`."""
        book = self.books.get(key)
        if wait.end and book is None:
            if len(self.books) >= self.max_books:
                wait = Wait(wait.tick, 0)
            else:
                book = self.books[key] = Book(key)  # a placeholder, gone with its last request
                self.cursors.reassign(book, self.cursors.frontier, 0)
        if not wait.end or book is None:
            self.cursors.add(self.cursors.frontier, 0, 1)
            return wait
        book.pin(wait.tick, wait.end)
        self._wake(book)
        return wait

    def unwant(self, key: str, wait: Wait) -> None:
        if not wait.end:
            self.cursors.add(self.cursors.frontier, 0, -1)
            return
        book = self.books.get(key)
        if book is None:
            return
        book.unpin(wait.tick, wait.end)
        self._wake(book)
        if book.idle and book.cursor is not None:
            self.cursors.reassign(book, None, 0)
            del self.books[key]

    def beyond_read(self, key: str, wait: Wait) -> bool:
        """Whether a request registered as ``wait`` asks for more than the frontier has read: only the
        end of the file (or new rows) can answer it."""
        book = self.books.get(key)
        return not wait.end or book is None or wait.end > book.total

    def cursor_for(self, key: str, wait: Wait) -> Cursor | None:
        """The busy cursor whose step serves a request registered as ``wait``, if any."""
        frontier = self.cursors.frontier
        if not wait.end:
            return frontier if frontier.demand else None
        book = self.books.get(key)
        if book is None or not book.want_end or book.cursor is None:
            return None
        cursor = Cursors.root(book.cursor)
        return cursor if cursor.busy else None

    def _stepped(self, book: Book, tick: int, client: bytes, now: float, stranger: bool) -> None:
        """``client`` was answered ``book`` at ``tick``: its home follows the client stepping through it
        (``stranger``: see :meth:`_stranger`)."""
        book.stepped(tick, client, now, self.jump, HOME_TTL, keep=stranger)
        if book.streak >= STEPPER_STREAK and book.home_client == client:
            self.steppers.note(client, now)  # it steps through this book's ticks: the Algorithm
        if book.home_client == client and self.steppers.stepping(client, now):
            book.stepped_at = now

    def _wake(self, book: Book) -> None:
        """The book's waiting requests changed: position its window (``seek_target``: its home first),
        count its demand on its cursor, and start a catch-up for a parked book that needs rows."""
        target = book.seek_target(self.jump)
        if target is not None:
            self._seek(book, target)
        self.cursors.reassign(book, book.cursor, book.next_want())
        if book.cursor is None and book.want_end and not book.full_of_needed(self.capacity):
            cursor = self.cursors.nearest_below(book.parked_at)
            if cursor is None or self.index.dense(book, cursor.position, book.parked_at):
                cursor = self.cursors.start(book.parked_at)
            self.cursors.reassign(book, cursor, book.want_end)  # it takes the book when it reaches parked_at

    def _seek(self, book: Book, tick: int) -> None:
        """Move the window to ``tick`` by a seek when it is older than the window, or far ahead of a
        book not fed by the frontier (whose rows up to there were read already)."""
        behind = tick < book.base
        fed_by_frontier = book.cursor is not None and Cursors.root(book.cursor) is self.cursors.frontier
        if not behind and (fed_by_frontier or tick < book.next_index + self.jump or tick >= book.total):
            return
        found = self.index.seek(book, tick)
        if found is None or (not behind and found[0] < book.next_index + self.jump):
            return
        self.seeks += 1
        point, offset = found
        book.reset(point)
        self.cursors.park(book, offset)
