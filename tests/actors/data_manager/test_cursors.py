from __future__ import annotations

from array import array

import pytest

from actors.data_manager.cursors import Book, Cursors
from actors.data_manager.sparse_index import SparseIndex


def test_a_catch_up_that_reaches_another_cursor_merges_into_it() -> None:
    cursors = Cursors(reach=1000)
    low, high = cursors.start(10), cursors.start(50)
    cursors.add(low, 2, 1)
    cursors.add(high, 1, 0)
    assert cursors.start(10) is low  # one cursor per position
    assert cursors.move(low, 50) is high
    assert (high.followers, high.demand, Cursors.root(low)) == (3, 1, high)
    assert cursors.next_busy() is high and len(cursors) == 1
    assert cursors.merges == 1


def test_nearest_cursors_around_an_offset() -> None:
    cursors = Cursors(reach=100_000)
    a, b = cursors.start(1_000), cursors.start(70_000)
    for cursor in (a, b):
        cursors.add(cursor, 1, 0)
    assert cursors.nearest_below(70_000) is b
    assert cursors.nearest_below(69_999) is a
    assert cursors.nearest_below(500) is None
    assert Cursors(reach=10).nearest_below(70_000) is None
    assert cursors.nearest_above(1_000, 100_000) is b
    assert cursors.nearest_above(1_000, 68_999) is None


def test_a_catch_up_left_with_no_follower_and_no_demand_is_dropped() -> None:
    cursors = Cursors(reach=1000)
    cursor = cursors.start(10)
    cursors.add(cursor, 1, 1)
    assert cursors.next_busy() is cursor
    cursors.add(cursor, -1, -1)
    assert cursors.at(10) is None and cursors.next_busy() is None


def test_a_book_is_one_follower_of_its_cursor_and_one_unit_of_demand_while_it_needs_rows() -> None:
    cursors = Cursors(reach=1000)
    frontier, book = cursors.frontier, Book("A")
    cursors.reassign(book, frontier, 0)
    assert (book.cursor, frontier.followers, frontier.demand) == (frontier, 1, 0)
    cursors.reassign(book, frontier, 8)  # a waiting request needs points up to 8
    assert (book.want_end, frontier.followers, frontier.demand) == (8, 1, 1)
    cursors.park(book, 500)
    assert (book.cursor, book.parked_at, frontier.followers, frontier.demand) == (None, 500, 0, 0)
    catch_up = cursors.start(400)
    cursors.reassign(book, catch_up, book.want_end)  # it takes the book when it reaches 500
    assert (catch_up.followers, catch_up.demand, cursors.next_busy()) == (1, 1, catch_up)
    cursors.reassign(book, catch_up, 0)  # the demand is met: the catch-up is no longer busy
    assert cursors.next_busy() is None and cursors.at(400) is catch_up
    cursors.reassign(book, frontier, 0)  # back to the frontier: the catch-up has no one left
    assert cursors.at(400) is None and frontier.followers == 1


def test_stop_rules() -> None:
    cursors = Cursors(reach=1000)
    frontier = cursors.frontier
    assert cursors.stop_after(frontier, 10, 10)  # no demand: the frontier stops at once
    cursors.add(frontier, 1, 1)
    assert not cursors.stop_after(frontier, 10, 10)
    catch_up, ahead = cursors.start(100), cursors.start(400)
    cursors.add(catch_up, 1, 1)
    cursors.add(ahead, 1, 0)
    assert not cursors.stop_after(catch_up, 150, 50)  # demand left
    assert cursors.stop_after(catch_up, 400, 300)  # reached another cursor: merge there
    cursors.add(catch_up, 0, -1)
    assert cursors.stop_after(catch_up, 150, 50)  # demand met, the next cursor farther than read so far
    catch_up.run_bytes = 300
    assert not cursors.stop_after(catch_up, 150, 50)  # close enough: read on to merge with it
    assert catch_up.target == 400 and cursors.next_busy() is catch_up


def test_the_sparse_index_is_bounded_by_thinning() -> None:
    index = SparseIndex(max_points=4, stride=2)
    a, b = Book("A"), Book("B")
    for point in range(10):
        index.note(a, point, 100 + point, [a, b])
    assert index.stride == 4 and a.index == array("q", [100, 104, 108])  # 0, 2, 4, 6, 8 > 4 points: halved
    assert index.seek(a, 7) == (4, 104)
    assert index.seek(a, 12) is None
    assert index.seek(b, 0) is None
    assert index.dense(a, 101, 105) and not index.dense(a, 101, 104)


def test_the_sparse_index_keeps_its_bound_with_many_books() -> None:
    index = SparseIndex(max_points=100, stride=1)
    books = [Book(str(i)) for i in range(30)]
    for point in range(50):
        for k, book in enumerate(books):
            index.note(book, point, 10_000 * k + point, books)
    assert index.points <= 100
    for k, book in enumerate(books):  # every entry is still the offset of the point it names
        for point in (0, 17, 49):
            found = index.seek(book, point)
            assert found is not None and found[1] == 10_000 * k + found[0] and found[0] <= point


def test_invalid_index() -> None:
    with pytest.raises(ValueError):
        SparseIndex(0, 1)
