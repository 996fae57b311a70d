from __future__ import annotations

from decimal import Decimal

from actors.data_manager.price_window import PriceWindow


def d(value: int) -> Decimal:
    return Decimal(value) / 100


def test_a_window_keeps_capacity_points_and_knows_their_indexes() -> None:
    book = PriceWindow()
    for i in range(10):
        book.push(d(i), capacity=4)
    assert (book.base, book.next_index, list(book.points)) == (6, 10, [d(6), d(7), d(8), d(9)])
    assert book.window(7, 3) == (d(7), d(8), d(9))
    assert book.window(5, 2) is None  # evicted
    assert book.window(8, 3) is None  # not read yet
    assert book.newest(2) == (d(8), d(9))
    book.reset(32)
    assert (book.base, book.next_index) == (32, 32)


def test_the_floor_is_the_lowest_waiting_tick_else_the_tick_last_answered() -> None:
    book = PriceWindow()
    book.served = 7
    assert book.floor() == 7
    book.pin(3, 8)
    book.pin(9, 14)
    assert book.floor() == 3 and sorted(book.wants or ()) == [8, 14]
    book.unpin(3, 8)
    assert book.floor() == 9
    book.unpin(9, 14)
    assert book.floor() == 7 and book.pins is None and book.wants is None


def test_next_want_is_the_nearest_end_beyond_the_window() -> None:
    book = PriceWindow()
    for i in range(5):
        book.push(d(i), capacity=8)
    book.pin(0, 5)
    book.pin(2, 7)
    book.pin(4, 9)
    assert book.next_want() == 7  # 5 is in the window already
    book.push(d(5), 8)
    book.push(d(6), 8)
    assert book.next_want() == 9


def test_full_of_needed_points() -> None:
    book = PriceWindow()
    for i in range(4):
        book.push(d(i), capacity=4)
    assert book.full_of_needed(4)  # nothing answered yet: every point may be asked
    book.served = 1
    assert not book.full_of_needed(4)  # point 0 is below the floor: it may go
    book.pin(0, 4)
    assert book.full_of_needed(4)  # a waiting request still needs it
