"""The replay core, pure: the book store, its cursors and the waiter queue, driven the way the
DataManager's reader drives them (a cursor at a time, a block of lines per step), over rows in memory
whose byte offsets are those of ``book,price`` lines. Answers are compared with a naive model that
holds every point, and the lines read are counted."""

from __future__ import annotations

import itertools
import random
import time
from bisect import bisect_left
from collections import Counter
from collections.abc import Iterator
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from actors.csv_rows import Columns, parse_header
from actors.data_manager.book_store import BookStore
from actors.data_manager.cursors import Cursor
from actors.data_manager.price_window import Failed, Mode, Ready
from actors.data_manager.waiters import Waiters
from transport.protocol import LastPricesReply, LastPricesRequest, WindowsReply, WindowsRequest

Rows = list[tuple[str, Decimal]]


def d(value: int) -> Decimal:
    return Decimal(value) / 100


class FileState:
    """What the waiters read of the data file: a header read, not at its end, nothing wrong."""

    def __init__(self) -> None:
        self.columns: Columns | None = parse_header("book_id,price")
        self.at_eof = False
        self.eof_gen = 0
        self.unavailable: str | None = None


class Sim:
    """The reader's loop over an in-memory file: row i starts at byte ``offsets[i]``."""

    def __init__(self, rows: Rows, capacity: int, mode: Mode = "replay", block: int = 7, stride: int = 4,
                 reach: int = 4096) -> None:
        self.rows = rows
        self.offsets = list(itertools.accumulate((len(f"{b},{p}\n") for b, p in rows), initial=0))
        self.capacity = capacity
        self.block = block
        self.store = BookStore(capacity, mode, stride=stride, reach=reach)
        self.file = FileState()
        self.counters: Counter[str] = Counter()
        self.waiters = Waiters(self.store, self.file, self.counters)
        self.replies: dict[int, LastPricesReply | WindowsReply] = {}
        self.ids = itertools.count(1)
        self.scanned = 0

    def request(self, book: str, tick: int, count: int, peer: bytes = b"peer") -> Ready | Failed:
        request_id = next(self.ids)
        self._collect(self.waiters.add(peer, LastPricesRequest(request_id, book, tick, count)))
        self.pump()
        reply = self.replies.pop(request_id)
        assert isinstance(reply, LastPricesReply)
        return Failed(reply.error) if reply.error else Ready(reply.prices)

    def submit(self, request: LastPricesRequest | WindowsRequest, peer: bytes = b"peer") -> None:
        self._collect(self.waiters.add(peer, request))

    def _collect(self, out: list[tuple[bytes, LastPricesReply | WindowsReply]]) -> None:
        for _, reply in out:
            self.replies[reply.request_id] = reply

    def pump(self) -> None:
        for _ in range(100 * len(self.rows) + 1000):
            cursor = self.store.cursors.next_busy()
            if cursor is None:
                return
            self._step(cursor)
            self.check_bound()
        raise AssertionError("the reader made no progress")

    def _step(self, cursor: Cursor) -> None:
        store, cursors = self.store, self.store.cursors
        assert cursor is cursors.frontier or cursor in cursors._busy
        frontier = cursors.frontier
        start = cursor.position
        end_of_file = self.offsets[-1]
        if cursor is frontier and start >= end_of_file:
            self.file.at_eof = True
            self.file.eof_gen += 1
            self.waiters.revisit_at_end()
            self._collect(self.waiters.revisit(10**9))
            return
        if cursor is not frontier and start >= frontier.position:
            cursors.merge(cursor, frontier)
            return
        self.file.at_eof = self.file.at_eof and cursor is not frontier
        i = bisect_left(self.offsets, start)
        assert self.offsets[i] == start, "a cursor is always at the start of a line"
        pos = start
        limit = end_of_file if cursor is frontier else frontier.position
        for _ in range(self.block):
            if pos >= limit:
                break
            fed = False
            book, price = self.rows[i]
            offset, pos = pos, self.offsets[i + 1]
            i += 1
            self.scanned += 1
            if cursor is frontier:
                store.frontier_row(book, price, offset)
            else:
                claimed = store.claim(cursor, book, offset)
                fed = claimed is not None and store.feed(claimed, price, offset)
            if cursors.stop_after(cursor, pos, pos - start, cursor is not frontier and fed):
                break
        cursor.run_bytes += pos - start
        cursors.move(cursor, pos)
        self._collect(self.waiters.serve(store.take_ready()))

    def check_bound(self) -> None:
        assert max((len(b.points) for b in self.store.books.values()), default=0) <= self.capacity


def naive(rows: Rows, book: str, tick: int, count: int, mode: Mode) -> Ready | Failed:
    points = [p for b, p in rows if b == book]
    if not points:
        return Failed(f"unknown book {book}")
    if len(points) < count:
        return Failed(f"only {len(points)} prices for book {book}")
    if mode == "replay" and len(points) >= tick + count:
        return Ready(tuple(points[tick:tick + count]))
    return Ready(tuple(points[-count:]))


def interleaved(books: list[str], per_book: int) -> Rows:
    return [(b, d(1000 * (k + 1) + i)) for i in range(per_book) for k, b in enumerate(books)]


def by_book(books: list[str], per_book: int) -> Rows:
    return [(b, d(1000 * (k + 1) + i)) for k, b in enumerate(books) for i in range(per_book)]


def mixed(books: list[str], per_book: int) -> Rows:
    half = len(books) // 2
    return interleaved(books[:half], per_book) + by_book(books[half:], per_book)


# --- semantics -------------------------------------------------------------------------------------


def test_replay_tick_k_sees_points_k_to_k_plus_n() -> None:
    sim = Sim(interleaved(["A", "B"], 20), capacity=8)
    assert sim.request("A", 0, 5) == Ready(tuple(d(1000 + i) for i in range(5)))
    assert sim.request("B", 3, 5) == Ready(tuple(d(2003 + i) for i in range(5)))
    assert sim.request("A", 10, 5) == Ready(tuple(d(1010 + i) for i in range(5)))


def test_replay_past_the_end_answers_the_last_n() -> None:
    sim = Sim(interleaved(["A"], 12), capacity=8)
    assert sim.request("A", 10, 5) == Ready(tuple(d(1007 + i) for i in range(5)))
    assert sim.request("A", 1000, 5) == Ready(tuple(d(1007 + i) for i in range(5)))


def test_unknown_book_only_after_the_whole_file_and_nothing_left_behind() -> None:
    sim = Sim(interleaved(["A"], 12), capacity=8)
    assert sim.request("Z", 0, 5) == Failed("unknown book Z")
    assert sim.store.frontier.position == sim.offsets[-1]
    assert "Z" not in sim.store.books
    assert sim.store.frontier.demand == 0 and sim.waiters.waiting == 0


def test_fewer_than_n_points() -> None:
    sim = Sim(interleaved(["A", "B"], 3), capacity=8)
    assert sim.request("A", 0, 5) == Failed("only 3 prices for book A")


def test_count_above_capacity_is_refused() -> None:
    sim = Sim(interleaved(["A"], 30), capacity=4)
    answer = sim.request("A", 0, 5)
    assert isinstance(answer, Failed) and "window capacity" in answer.error


def test_follow_answers_the_newest_n_whatever_the_tick() -> None:
    sim = Sim(interleaved(["A", "B"], 20), capacity=6, mode="follow")
    newest = Ready(tuple(d(1015 + i) for i in range(5)))
    assert sim.request("A", 0, 5) == newest
    assert sim.request("A", 3, 5) == newest
    sim.rows.append(("A", d(7777)))  # appended row: the next request looks at the end again
    sim.offsets.append(sim.offsets[-1] + len("A,77.77\n"))
    assert sim.request("A", 3, 5) == Ready((*newest.prices[1:], d(7777)))
    assert sim.store.parks == 0


def test_the_frontier_stops_where_the_requests_are_satisfied() -> None:
    """Read only as far ahead as requests need: in an interleaved file no window ever overflows."""
    books = [f"B{i}" for i in range(50)]
    sim = Sim(interleaved(books, 200), capacity=8, block=1000)
    for tick in range(100):
        for book in books:
            assert sim.request(book, tick, 5) == naive(sim.rows, book, tick, 5, "replay")
    assert sim.store.parks == 0
    assert sim.scanned <= (100 + 5) * len(books)  # the rows up to the last point asked, once


def test_a_sorted_file_parks_books_and_catches_them_up_alone() -> None:
    rows = by_book(["A", "B", "C"], 500)
    sim = Sim(rows, capacity=8)
    assert sim.request("C", 100, 5) == Ready(tuple(d(3100 + i) for i in range(5)))
    assert sim.store.books["A"].cursor is None  # parked: its first 8 points kept, the rest skipped
    for tick in range(0, 496, 3):
        assert sim.request("A", tick, 5) == Ready(tuple(d(1000 + tick + i) for i in range(5)))
    assert sim.request("B", 0, 5) == Ready(tuple(d(2000 + i) for i in range(5)))
    # A's catch-up read A's rows and few others: not the file again
    assert sim.scanned < len(rows) + 500 + 100


def test_an_older_tick_than_the_window_is_served_by_a_seek() -> None:
    sim = Sim(interleaved(["A", "B"], 300), capacity=8)
    assert sim.request("A", 250, 5) == Ready(tuple(d(1250 + i) for i in range(5)))
    before = sim.scanned
    assert sim.request("A", 2, 5) == Ready(tuple(d(1002 + i) for i in range(5)))
    assert sim.store.seeks == 1
    assert sim.scanned - before <= 2 * (sim.store.index.stride + 5)  # from the indexed point, not the start
    assert sim.request("A", 251, 5) == Ready(tuple(d(1251 + i) for i in range(5)))  # and back


def test_one_request_for_a_huge_tick_cannot_make_a_book_unpriceable() -> None:
    sim = Sim(interleaved(["A", "B"], 300), capacity=8)
    assert sim.request("A", 10, 5) == Ready(tuple(d(1010 + i) for i in range(5)))
    assert sim.request("A", 10**12, 5) == Ready(tuple(d(1295 + i) for i in range(5)))  # the last 5
    for tick in range(11, 80):  # the ticks the Algorithm really asks go on being answered
        assert sim.request("A", tick, 5) == Ready(tuple(d(1000 + tick + i) for i in range(5)))
        assert sim.request("B", tick, 5) == Ready(tuple(d(2000 + tick + i) for i in range(5)))


def test_a_waiting_tick_is_not_evicted_by_a_newer_request() -> None:
    sim = Sim(interleaved(["A"], 40), capacity=4)
    sim.submit(LastPricesRequest(1, "A", 2, 4))  # waits: nothing is read yet
    sim.submit(LastPricesRequest(2, "A", 20, 4))
    sim.pump()
    assert sim.replies[1] == LastPricesReply(1, "A", 2, tuple(d(1002 + i) for i in range(4)))
    assert sim.replies[2] == LastPricesReply(2, "A", 20, tuple(d(1020 + i) for i in range(4)))


def test_a_request_far_ahead_does_not_strand_one_waiting_behind_the_window() -> None:
    """Two clients wait on one book's window: one behind it, one far ahead. The window serves the
    longest-waiting first; neither is left for the other to undo."""
    sim = Sim(by_book(["A", "B"], 300), capacity=8)
    assert sim.request("B", 0, 5) == Ready(tuple(d(2000 + i) for i in range(5)))  # A parked, B read
    assert sim.request("A", 40, 5) == Ready(tuple(d(1040 + i) for i in range(5)))  # A's window at 40
    sim.submit(LastPricesRequest(1, "A", 2, 5), b"algorithm")  # behind the window: a seek back
    sim.submit(LastPricesRequest(2, "A", 200, 5), b"other")  # far ahead: a seek forward
    sim.pump()
    assert sim.replies.pop(1) == LastPricesReply(1, "A", 2, tuple(d(1002 + i) for i in range(5)))
    assert sim.replies.pop(2) == LastPricesReply(2, "A", 200, tuple(d(1200 + i) for i in range(5)))
    assert sim.store.seeks == 3  # to 40, back to 2, on to 200


def test_the_client_stepping_through_the_ticks_goes_before_a_far_request() -> None:
    """A book has one window: a request far from where the Algorithm steps through the ticks waits for
    the Algorithm's (a flood of random ticks costs it no seeks away and back)."""
    sim = Sim(interleaved(["A", "B"], 400), capacity=8)
    for tick in range(30):
        assert sim.request("A", tick, 5) == Ready(tuple(d(1000 + tick + i) for i in range(5)))
    sim.submit(LastPricesRequest(1, "A", 300, 5), b"flood")  # arrives first, far ahead
    sim.submit(LastPricesRequest(2, "A", 30, 5), b"algorithm")
    sim.pump()
    assert list(sim.replies) == [2, 1]  # the Algorithm's answered first, then the window moved to 300
    sim.replies.clear()
    seeks = sim.store.seeks
    sim.submit(LastPricesRequest(3, "A", 310, 5), b"flood")  # near where the window is now
    sim.submit(LastPricesRequest(4, "A", 31, 5), b"algorithm")
    sim.pump()
    assert list(sim.replies) == [4, 3]  # the Algorithm's still first: the window seeks back home for it
    assert sim.replies[4] == LastPricesReply(4, "A", 31, tuple(d(1031 + i) for i in range(5)))
    assert sim.store.seeks == seeks + 1  # back home (310 is then reached by reading forward)


def test_a_client_taking_windows_away_from_the_stepping_client_is_budgeted() -> None:
    """A client asking an old tick of every book, over and over, would make the DataManager move each
    window away and back for every request (issue 9: the Algorithm lost 97% of its decisions to
    such a flood). Each such move is charged to its client: past its budget it gets "busy"."""
    books = [f"B{i}" for i in range(10)]
    sim = Sim(interleaved(books, 400), capacity=8)
    for tick in range(100):  # the Algorithm steps through the ticks: every window's home
        for k, book in enumerate(books):
            assert sim.request(book, tick, 5, b"algorithm") == Ready(tuple(d(1000 * (k + 1) + tick + i)
                                                                           for i in range(5)))
    answered = refused = 0
    for round_ in range(30):
        for k, book in enumerate(books):
            old = sim.request(book, 3, 5, b"flood")
            if isinstance(old, Failed):
                assert old.error.startswith("busy: requests took windows away")
                refused += 1
            else:
                answered += 1
            tick = 100 + round_  # the Algorithm's next tick is answered, whatever the flood did
            assert sim.request(book, tick, 5, b"algorithm") == Ready(tuple(d(1000 * (k + 1) + tick + i)
                                                                           for i in range(5)))
    assert answered <= 60 and refused >= 240 and sim.store.moves_refused == refused  # 40 + 20/s, no more


def _stepped_to_tick_100() -> tuple[list[str], Sim, Iterator[bytes]]:
    """10 books the Algorithm has stepped through up to tick 99, and a new flooder identity per call."""
    books = [f"B{i}" for i in range(10)]
    sim = Sim(interleaved(books, 400), capacity=8)
    for tick in range(100):
        for book in books:
            sim.request(book, tick, 5, b"algorithm")
    return books, sim, (b"flood-%d" % i for i in itertools.count())


def test_a_client_cycling_through_identities_shares_one_budget() -> None:
    """Issue 20: a new ROUTING_ID every few requests started each with a full burst; the budget shared
    by all clients caps them together, and the stepping client is still answered every time."""
    books, sim, identities = _stepped_to_tick_100()
    refused = 0
    for round_ in range(30):
        for k, book in enumerate(books):
            refused += isinstance(sim.request(book, 3, 5, next(identities)), Failed)  # a fresh identity each
            tick = 100 + round_
            assert sim.request(book, tick, 5, b"algorithm") == Ready(tuple(d(1000 * (k + 1) + tick + i)
                                                                           for i in range(5)))
    assert refused >= 240 and sim.store.moves.refused_all == refused  # the shared bucket: 40 + 20/s


def test_requests_near_a_steppers_home_that_need_reading_share_the_budget_too() -> None:
    """Issue 20: ticks just behind the Algorithm's window (a seek back), or just ahead of it (reading
    forward evicts its ticks), cost it as much as far ones; from a new identity each, they share the
    budget of all clients together, and the Algorithm's next tick is answered every time."""
    books, sim, identities = _stepped_to_tick_100()
    refused = 0
    for round_ in range(30):
        for k, book in enumerate(books):
            near = 95 + round_ + (12 if k % 2 else 0)  # behind the window, or ahead of it
            refused += isinstance(sim.request(book, near, 5, next(identities)), Failed)
            tick = 100 + round_
            assert sim.request(book, tick, 5, b"algorithm") == Ready(tuple(d(1000 * (k + 1) + tick + i)
                                                                           for i in range(5)))
    assert refused >= 240 and sim.store.moves_refused == refused  # the shared bucket: 40 + 20/s


def test_a_client_taking_a_steppers_home_opens_its_window_to_no_one() -> None:
    """One identity asks one of the home's next ticks (it takes the home), the next ones ask other
    ticks: the window stays guarded for the stepper, whose requests are never charged."""
    books, sim, identities = _stepped_to_tick_100()
    refused = 0
    for round_ in range(30):
        for k, book in enumerate(books):
            home = 99 + round_
            assert isinstance(sim.request(book, home + 2, 3, next(identities)), Ready)  # in memory: takes the home
            refused += isinstance(sim.request(book, 3 + round_, 5, next(identities)), Failed)
            tick = 100 + round_
            assert sim.request(book, tick, 5, b"algorithm") == Ready(tuple(d(1000 * (k + 1) + tick + i)
                                                                           for i in range(5)))
    assert refused >= 240 and sim.store.moves_refused == refused


def test_an_identity_that_took_a_steppers_home_is_charged_for_its_other_ticks_all_the_same() -> None:
    """Issue 20, the windows flood: a 50-book request of one identity asks some book's next tick (it
    takes the home), the next requests of the same identity ask old ticks of that book. Holding the
    home used to make them free (0 refused: a seek each); a client that is no stepper gets none of a
    home's rights on a stepper's book, and cannot hand the home on by jumping away."""
    books, sim, identities = _stepped_to_tick_100()
    refused = 0
    for round_ in range(30):
        for k, book in enumerate(books):
            flooder = next(identities)
            home = 99 + round_
            assert isinstance(sim.request(book, home + 2, 3, flooder), Ready)  # in memory: takes the home
            assert sim.store.books[book].home_client == flooder
            refused += isinstance(sim.request(book, 3 + round_, 5, flooder), Failed)
            assert sim.store.books[book].home == home + 2  # its jump did not release the home
            tick = 100 + round_
            assert sim.request(book, tick, 5, b"algorithm") == Ready(tuple(d(1000 * (k + 1) + tick + i)
                                                                           for i in range(5)))
    assert refused >= 240 and sim.store.moves_refused == refused  # the shared bucket: 40 + 20/s


def test_a_stranger_answered_ahead_of_a_steppers_home_does_not_raise_its_windows_floor() -> None:
    """Issue 20, the windows flood: each book of a 50-book request answered from memory at a tick
    ahead of the Algorithm's home became the window's floor (``served``), so rows the frontier read
    for any other book evicted the points the Algorithm needed next (a seek back for its next tick).
    A stranger's answer leaves the floor at the stepper's tick."""
    books, sim, identities = _stepped_to_tick_100()
    for round_ in range(30):
        for k, book in enumerate(books):
            window = sim.store.books[book]
            assert isinstance(sim.request(book, window.next_index - 3, 3, next(identities)), Ready)  # from memory
            assert window.served == window.floor() == 99 + round_  # the Algorithm's last tick
            tick = 100 + round_
            assert sim.request(book, tick, 5, b"algorithm") == Ready(tuple(d(1000 * (k + 1) + tick + i)
                                                                           for i in range(5)))


def test_a_restarted_algorithm_is_not_charged_while_its_predecessor_is_still_a_stepper() -> None:
    """A new identity (the Algorithm restarted, ticks missed meanwhile) asks each book's next ticks
    while the old one is still a stepper: reading forward that keeps the home in the window is never
    refused."""
    books = [f"B{i}" for i in range(50)]
    sim = Sim(interleaved(books, 400), capacity=64)
    for tick in range(100):
        for book in books:
            sim.request(book, tick, 5, b"algorithm")
    for tick in range(110, 120):  # 10 ticks missed while it restarted
        for k, book in enumerate(books):
            assert sim.request(book, tick, 5, b"algorithm-restarted") == Ready(tuple(d(1000 * (k + 1) + tick + i)
                                                                                     for i in range(5)))
    assert sim.store.moves_refused == 0
    # Within the window's reach of the old home (99), but while a flood is being shed: charged (the
    # shared budget's burst of 40, then refused); with nothing shed, free again.
    sim.store.overloaded_until = time.monotonic() + 60.0
    flooded = [sim.request(book, 150, 5, b"flood-%d" % k) for k, book in enumerate(books)]
    assert sum(isinstance(answer, Failed) for answer in flooded) >= 10
    sim.store.overloaded_until = 0.0
    assert all(isinstance(sim.request(book, 140, 5, b"flood-%d" % k), Ready) for k, book in enumerate(books))
    sim.store.moves_refused = 0
    # Further than the window keeps the home, or behind it: charged as before.
    identities = (b"flood-%d" % i for i in itertools.count())
    refused = sum(isinstance(sim.request(book, tick, 5, next(identities)), Failed)
                  for book in books for tick in (119 + 60, 50))
    assert refused >= 50 and sim.store.moves_refused == refused


def test_the_stepping_client_is_never_charged_for_its_own_jumps() -> None:
    """A new Scheduler run makes the Algorithm ask tick 0 of every book again: a jump of its own, not
    one taken from another client."""
    books = [f"B{i}" for i in range(60)]
    sim = Sim(interleaved(books, 200), capacity=8)
    for tick in (*range(100, 110), *range(0, 5)):
        for k, book in enumerate(books):
            assert sim.request(book, tick, 5, b"algorithm") == Ready(tuple(d(1000 * (k + 1) + tick + i)
                                                                           for i in range(5)))
    assert sim.store.moves_refused == 0


def test_a_client_asking_ticks_at_random_cannot_hold_a_home() -> None:
    """It arrives first and takes the home, but its first jump releases it; the stepping client then
    takes the home and is never refused."""
    sim = Sim(interleaved(["A"], 3000), capacity=8)
    rng = random.Random(3)
    for tick in range(60):
        sim.request("A", rng.randrange(2000), 5, b"flood")
        assert sim.request("A", tick, 5, b"algorithm") == Ready(tuple(d(1000 + tick + i) for i in range(5)))


def test_a_batch_answers_every_book_in_order() -> None:
    sim = Sim(mixed([f"B{i}" for i in range(6)], 40), capacity=8)
    sim.submit(WindowsRequest(7, 30, 5, ("B5", "B0", "nope", "B3")))
    sim.pump()
    reply = sim.replies[7]
    assert isinstance(reply, WindowsReply)
    assert reply.errors == ("", "", "unknown book nope", "")
    assert reply.windows == tuple(naive(sim.rows, b, 30, 5, "replay").prices if b != "nope" else ()  # type: ignore[union-attr]
                                  for b in ("B5", "B0", "nope", "B3"))


def test_clear_forgets_the_file_and_waiting_requests_register_again() -> None:
    sim = Sim(interleaved(["A"], 40), capacity=8)
    assert sim.request("A", 3, 5) == Ready(tuple(d(1003 + i) for i in range(5)))
    sim.submit(LastPricesRequest(9, "A", 38, 5))  # waits for rows
    sim.store.clear()  # the file was truncated
    sim.waiters.forget_all()
    sim._collect(sim.waiters.revisit(10**9))
    assert sim.waiters.waiting == 1 and not sim.store.books["A"].total
    sim.pump()
    assert sim.replies[9].prices == tuple(d(1035 + i) for i in range(5))  # type: ignore[union-attr]


def test_invalid_construction() -> None:
    with pytest.raises(ValueError):
        BookStore(0)
    with pytest.raises(ValueError):
        BookStore(4, "tail")  # type: ignore[arg-type]


def test_the_number_of_books_is_bounded() -> None:
    store = BookStore(capacity=8, mode="follow", max_books=2)
    assert store.frontier_row("a", Decimal("1.00"), 0) and store.frontier_row("b", Decimal("2.00"), 10)
    assert not store.frontier_row("c", Decimal("3.00"), 20)  # a third book is refused...
    assert store.frontier_row("a", Decimal("1.50"), 30)  # ...while the known ones still take rows
    assert sorted(store.books) == ["a", "b"]


def test_in_follow_mode_the_client_stepping_through_the_ticks_is_a_stepper_and_a_random_one_is_not() -> None:
    store = BookStore(capacity=8, mode="follow")
    for offset in range(5):
        assert store.frontier_row("a", Decimal("1.00") + offset, offset * 10)
    algorithm, flood = b"algo", b"flood"
    for tick in range(10, 14):  # tick after tick, whatever rows the followed file has
        assert store.answer("a", tick, 5, True, "a", algorithm, now=float(tick)) == Ready(
            tuple(Decimal("1.00") + i for i in range(5)))
        store.answer("a", (tick * 7) % 5, 5, True, "a", flood, now=float(tick))  # old ticks at random
    assert store.steppers.stepping(algorithm, 13.0) and not store.steppers.stepping(flood, 13.0)


# --- properties ------------------------------------------------------------------------------------

BOOKS = ["A", "B", "C", "D"]


@settings(max_examples=300, deadline=None)
@given(
    order=st.lists(st.sampled_from(BOOKS), max_size=150),
    capacity=st.integers(1, 8),
    requests=st.lists(st.tuples(st.sampled_from([*BOOKS, "Z"]), st.integers(0, 60), st.integers(1, 8)),
                      max_size=30),
    monotonic=st.booleans(),
    mode=st.sampled_from(["replay", "follow"]),
    block=st.integers(1, 40),
    stride=st.integers(1, 8),
)
def test_matches_a_naive_model(order: list[str], capacity: int, requests: list[tuple[str, int, int]],
                               monotonic: bool, mode: Mode, block: int, stride: int) -> None:
    rows = [(b, d(i + 1)) for i, b in enumerate(order)]
    sim = Sim(rows, capacity, mode, block=block, stride=stride)
    last_tick: dict[str, int] = {}
    for book, tick, count in requests:
        if monotonic:  # as the Scheduler drives it: a book's ticks never go back
            tick = max(tick, last_tick.get(book, 0))
            last_tick[book] = tick
        answer = sim.request(book, tick, count)
        if count > capacity:
            assert isinstance(answer, Failed) and "window capacity" in answer.error
            continue
        assert answer == naive(rows, book, tick, count, mode), (book, tick, count)
    assert sim.waiters.waiting == 0 and sim.store.frontier.demand == 0


@settings(max_examples=300, deadline=None)
@given(
    order=st.lists(st.sampled_from(BOOKS), min_size=1, max_size=400),
    capacity=st.integers(5, 10),
    rounds=st.lists(st.lists(st.tuples(st.sampled_from([b"p1", b"p2", b"p3"]), st.sampled_from([*BOOKS, "Z"]),
                                       st.integers(0, 110), st.integers(1, 5)), max_size=12), max_size=6),
    block=st.integers(1, 40),
    stride=st.integers(1, 8),
)
def test_concurrent_requests_at_any_ticks_are_all_answered_exactly(
        order: list[str], capacity: int, rounds: list[list[tuple[bytes, str, int, int]]], block: int,
        stride: int) -> None:
    """Requests waiting together for the same books at different ticks (several clients, one window
    per book) are each answered as the naive model says: no request strands another."""
    rows = [(b, d(i + 1)) for i, b in enumerate(order)]
    sim = Sim(rows, capacity, block=block, stride=stride)
    ids = itertools.count(1)
    for requests in rounds:
        sent = {}
        for peer, book, tick, count in requests:
            request_id = next(ids)
            sent[request_id] = (book, tick, count)
            sim.submit(LastPricesRequest(request_id, book, tick, count), peer)
        sim.pump()
        for request_id, (book, tick, count) in sent.items():
            reply = sim.replies.pop(request_id)
            assert isinstance(reply, LastPricesReply)
            got = Failed(reply.error) if reply.error else Ready(reply.prices)
            if reply.error.startswith("busy: "):
                continue  # more distinct ticks of one book from one client than allowed
            assert got == naive(rows, book, tick, count, "replay"), (book, tick, count)
    assert sim.waiters.waiting == 0 and sim.store.frontier.demand == 0


def layouts(books: list[str], per_book: int, seed: int) -> dict[str, Rows]:
    shuffled = interleaved(books, per_book)
    random.Random(seed).shuffle(shuffled)  # a book's points are in file order, whatever the order
    return {"interleaved": interleaved(books, per_book), "sorted": by_book(books, per_book),
            "mixed": mixed(books, per_book), "random": shuffled,
            "runs": [(b, d(1000 * (k + 1) + i)) for start in range(0, per_book, 13) for k, b in enumerate(books)
                     for i in range(start, min(per_book, start + 13))]}


@settings(max_examples=25, deadline=None)
@given(books=st.integers(1, 30), per_book=st.integers(10, 100), capacity=st.integers(6, 16),
       block=st.sampled_from([3, 50, 400]), seed=st.integers(0, 1000))
def test_replay_reads_each_row_at_most_three_times_whatever_the_layout(books: int, per_book: int, capacity: int,
                                                                 block: int, seed: int) -> None:
    """The Algorithm's pattern (every book at every tick) costs O(rows): the frontier reads each row
    once; catch-ups re-read the rows their books need after a first window, and at most as many again
    to merge with a cursor just ahead."""
    names = [f"B{i}" for i in range(books)]
    for layout, rows in layouts(names, per_book, seed).items():
        capacity_used = capacity if layout != "random" else 64  # see the next test
        sim = Sim(rows, capacity_used, block=block, reach=2048)
        for tick in range(per_book):
            for book in names:
                assert sim.request(book, tick, 5) == naive(rows, book, tick, 5, "replay"), (layout, book, tick)
        assert sim.scanned <= 3 * len(rows) + books * block, (layout, sim.scanned, len(rows))


def test_a_disordered_file_costs_rereading_only_when_the_windows_are_small() -> None:
    """Books whose rows run ahead of the others by more than a window are re-read (the memory bound);
    with the default window a random order of 100 books reads each row once."""
    names = [f"B{i}" for i in range(100)]
    rows = layouts(names, 150, 3)["random"]
    small, default = Sim(rows, 8, block=400), Sim(rows, 64, block=400)
    for tick in range(150):
        for book in names:
            assert small.request(book, tick, 5) == default.request(book, tick, 5)
    assert default.scanned == len(rows)
    assert small.scanned > 2 * len(rows)  # the trade-off, documented in the README
