from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from actors.data_manager.price_window import Failed, Mode, NeedGlobal, NeedPrivate, Ready, WindowStore


def d(value: int) -> Decimal:
    return Decimal(value) / 100


class Sim:
    """Drives a WindowStore over an in-memory "file" the way the DataManager's reader does: row i
    starts at byte offset i; the global cursor and private scans read the list."""

    def __init__(self, rows: list[tuple[str, Decimal]], capacity: int, mode: Mode = "replay") -> None:
        self.rows = rows
        self.capacity = capacity
        self.store = WindowStore(capacity, mode)
        self.cursor = 0
        self.at_eof = False
        self.eof_gen = 0
        self.global_reads = 0

    def check_bound(self) -> None:
        assert self.store.max_len() <= self.capacity

    def request(self, book: str, tick: int, count: int) -> Ready | Failed:
        store = self.store
        store.note_request(book, tick)
        gen = self.eof_gen
        answer = store.lookup(book, tick, count, at_eof=False)
        if isinstance(answer, Ready | Failed):
            return answer
        store.pin(book, tick)
        for _ in range(10 * len(self.rows) + 100):
            answer = store.lookup(book, tick, count, self.at_eof and self.eof_gen > gen)
            if isinstance(answer, Ready | Failed):
                store.unpin(book, tick)
                return answer
            if isinstance(answer, NeedPrivate):
                self._private(answer.book, answer.offset)
            else:
                self._global()
            self.check_bound()
        raise AssertionError("the reader made no progress")

    def _global(self) -> None:
        if self.cursor >= len(self.rows):
            self.at_eof = True
            self.eof_gen += 1
            return
        self.at_eof = False
        book, price = self.rows[self.cursor]
        self.store.add(book, price, self.cursor)
        self.global_reads += 1
        self.cursor += 1

    def _private(self, book: str, offset: int) -> None:
        for i in range(offset, self.cursor):
            if self.rows[i][0] == book and not self.store.add_private(book, self.rows[i][1], i, i + 1):
                return
            self.store.advance_private(book, i + 1)
        self.store.reattach(book)


def naive(rows: list[tuple[str, Decimal]], book: str, tick: int, count: int, mode: Mode) -> Ready | Failed:
    points = [p for b, p in rows if b == book]
    if not points:
        return Failed(f"unknown book {book}")
    if len(points) < count and (mode == "follow" or len(points) < tick + count):
        return Failed(f"only {len(points)} prices for book {book}")
    if mode == "replay" and len(points) >= tick + count:
        return Ready(tuple(points[tick:tick + count]))
    return Ready(tuple(points[-count:]))


def interleaved(books: list[str], per_book: int) -> list[tuple[str, Decimal]]:
    return [(b, d(1000 * (k + 1) + i)) for i in range(per_book) for k, b in enumerate(books)]


def by_book(books: list[str], per_book: int) -> list[tuple[str, Decimal]]:
    return [(b, d(1000 * (k + 1) + i)) for k, b in enumerate(books) for i in range(per_book)]


def test_replay_tick_k_sees_points_k_to_k_plus_n() -> None:
    sim = Sim(interleaved(["A", "B"], 20), capacity=8)
    assert sim.request("A", 0, 5) == Ready(tuple(d(1000 + i) for i in range(5)))
    assert sim.request("B", 3, 5) == Ready(tuple(d(2003 + i) for i in range(5)))
    assert sim.request("A", 10, 5) == Ready(tuple(d(1010 + i) for i in range(5)))


def test_replay_past_the_end_answers_the_last_n() -> None:
    sim = Sim(interleaved(["A"], 12), capacity=8)
    assert sim.request("A", 10, 5) == Ready(tuple(d(1007 + i) for i in range(5)))
    assert sim.request("A", 1000, 5) == Ready(tuple(d(1007 + i) for i in range(5)))


def test_unknown_book_only_after_the_whole_file() -> None:
    sim = Sim(interleaved(["A"], 12), capacity=8)
    assert sim.request("Z", 0, 5) == Failed("unknown book Z")
    assert sim.cursor == 12
    assert "Z" not in sim.store.books  # nothing left behind by the request


def test_fewer_than_n_points() -> None:
    sim = Sim(interleaved(["A", "B"], 3), capacity=8)
    assert sim.request("A", 0, 5) == Failed("only 3 prices for book A")


def test_count_above_capacity_is_refused() -> None:
    sim = Sim(interleaved(["A"], 30), capacity=4)
    answer = sim.request("A", 0, 5)
    assert isinstance(answer, Failed)
    assert "window capacity" in answer.error


def test_follow_answers_the_newest_n_whatever_the_tick() -> None:
    sim = Sim(interleaved(["A", "B"], 20), capacity=6, mode="follow")
    newest = Ready(tuple(d(1015 + i) for i in range(5)))
    assert sim.request("A", 0, 5) == newest
    assert sim.request("A", 3, 5) == newest
    sim.rows.append(("A", d(7777)))  # appended row: the next request checks the file again
    assert sim.request("A", 3, 5) == Ready((*newest.prices[1:], d(7777)))
    assert sim.store.detaches == 0
    assert sim.store.max_len() <= 6


def test_book_sorted_file_detaches_instead_of_growing() -> None:
    rows = by_book(["A", "B", "C"], 500)
    sim = Sim(rows, capacity=8)
    assert sim.request("C", 100, 5) == Ready(tuple(d(3100 + i) for i in range(5)))
    assert sim.store.books["A"].detached_at is not None  # A's first 8 points kept, the rest skipped
    # A's rows are far behind the global cursor: a private scan serves them, in bounded memory.
    assert sim.request("A", 300, 5) == Ready(tuple(d(1300 + i) for i in range(5)))
    assert sim.request("A", 495, 5) == Ready(tuple(d(1495 + i) for i in range(5)))
    assert sim.request("B", 0, 5) == Ready(tuple(d(2000 + i) for i in range(5)))
    assert sim.store.max_len() <= 8


def test_older_tick_than_the_window_is_a_clear_error() -> None:
    sim = Sim(interleaved(["A"], 100), capacity=8)
    assert isinstance(sim.request("A", 50, 5), Ready)
    answer = sim.request("A", 2, 5)
    assert isinstance(answer, Failed)
    assert "window evicted" in answer.error


def test_pinned_tick_is_not_evicted_by_a_newer_request() -> None:
    store = WindowStore(4, "replay")
    store.pin("A", 2)  # a request for tick 2 waits ...
    store.note_request("A", 10)  # ... while one for tick 10 arrives
    for i in range(8):
        store.add("A", d(i + 1), i)
    assert store.lookup("A", 2, 4, at_eof=False) == Ready(tuple(d(i + 3) for i in range(4)))
    assert store.books["A"].detached_at == 6


def test_clear_forgets_points_but_keeps_pins() -> None:
    store = WindowStore(4, "replay")
    store.add("A", d(1), 0)
    store.add("B", d(1), 10)
    store.pin("B", 0)
    store.clear()
    assert "A" not in store.books
    assert store.lookup("B", 0, 1, at_eof=False) == NeedGlobal()


def test_invalid_construction() -> None:
    with pytest.raises(ValueError):
        WindowStore(0)
    with pytest.raises(ValueError):
        WindowStore(4, "tail")  # type: ignore[arg-type]


BOOKS = ["A", "B", "C", "D"]


@settings(max_examples=300, deadline=None)
@given(
    order=st.lists(st.sampled_from(BOOKS), max_size=120),
    capacity=st.integers(1, 8),
    requests=st.lists(st.tuples(st.sampled_from([*BOOKS, "Z"]), st.integers(0, 40), st.integers(1, 8)),
                      max_size=25),
    monotonic=st.booleans(),
    mode=st.sampled_from(["replay", "follow"]),
)
def test_matches_a_naive_model(order: list[str], capacity: int, requests: list[tuple[str, int, int]],
                               monotonic: bool, mode: Mode) -> None:
    rows = [(b, d(i + 1)) for i, b in enumerate(order)]
    sim = Sim(rows, capacity, mode)
    last_tick: dict[str, int] = {}
    for book, tick, count in requests:
        if monotonic:  # as the Scheduler drives it: a book's ticks never go back
            tick = max(tick, last_tick.get(book, 0))
            last_tick[book] = tick
        answer = sim.request(book, tick, count)
        sim.check_bound()
        if count > capacity:
            assert isinstance(answer, Failed) and "window capacity" in answer.error
            continue
        expected = naive(rows, book, tick, count, mode)
        if isinstance(answer, Failed) and "window evicted" in answer.error:
            assert not monotonic and mode == "replay"
            continue
        assert answer == expected


def test_the_number_of_books_is_bounded() -> None:
    store = WindowStore(capacity=8, mode="follow", max_books=2)
    assert store.add("a", Decimal("1.00"), 0) and store.add("b", Decimal("2.00"), 10)
    assert not store.add("c", Decimal("3.00"), 20)  # a third book is refused...
    assert store.add("a", Decimal("1.50"), 30)  # ...while the known ones still take rows
    assert sorted(store.books) == ["a", "b"]
