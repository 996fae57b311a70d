"""The waiter queue, pure: answers, retries that add no work, bounds per client and in all, expiry."""

from __future__ import annotations

from collections import Counter
from decimal import Decimal

from actors.data_manager.book_store import BookStore
from actors.data_manager.waiters import Waiters, WaitLimits
from tests.actors.data_manager.test_book_store import FileState
from tests.helpers import FakeClock
from transport.protocol import LastPricesReply, LastPricesRequest, WindowsReply, WindowsRequest


def p(value: int) -> Decimal:
    return Decimal(value) / 100


def setup(waiting_max: int = 100, peer_max: int = 100) -> tuple[BookStore, FileState, Waiters, Counter[str],
                                                                  FakeClock]:
    store = BookStore(8)
    file = FileState()
    counters: Counter[str] = Counter()
    clock = FakeClock()
    waiters = Waiters(store, file, counters, WaitLimits(waiting_max=waiting_max, peer_max=peer_max, wait_limit=10.0),
                      clock=clock)
    return store, file, waiters, counters, clock


def feed(store: BookStore, book: str, prices: range, offset: int = 0) -> int:
    for i, price in enumerate(prices):
        store.frontier_row(book, p(price), offset + 10 * i)
    return offset + 10 * len(prices)


def test_an_answer_in_memory_goes_at_once() -> None:
    store, _, waiters, _, _ = setup()
    feed(store, "A", range(100, 110))
    assert waiters.add(b"c", LastPricesRequest(1, "A", 2, 3)) == [
        (b"c", LastPricesReply(1, "A", 2, (p(102), p(103), p(104))))]
    assert waiters.waiting == 0


def test_a_waiting_request_is_answered_when_its_book_is_ready() -> None:
    store, _, waiters, _, _ = setup()
    assert waiters.add(b"c", LastPricesRequest(1, "A", 2, 3)) == []
    assert waiters.waiting == 1 and store.frontier.demand == 1  # the frontier knows it must read on
    feed(store, "A", range(100, 105))
    assert waiters.serve(store.take_ready()) == [(b"c", LastPricesReply(1, "A", 2, (p(102), p(103), p(104))))]
    assert waiters.waiting == 0 and store.frontier.demand == 0


def test_a_request_equal_to_a_waiting_one_adds_no_work_and_every_id_is_answered() -> None:
    """A Lazy Pirate retry, or two strategies with the same window asking for the same book: one wait,
    one reply per request id (the client matches replies by id; a retry's old id is a stale reply)."""
    store, _, waiters, counters, _ = setup()
    assert waiters.add(b"c", LastPricesRequest(1, "A", 2, 3)) == []
    assert waiters.add(b"c", LastPricesRequest(2, "A", 2, 3)) == []
    assert waiters.add(b"c", LastPricesRequest(3, "A", 2, 3)) == []
    assert waiters.waiting == 1 and counters["deduped"] == 2 and store.books["A"].pins == {2: 1}
    assert waiters.add(b"other", LastPricesRequest(1, "A", 2, 3)) == []  # another client waits on its own
    assert waiters.waiting == 2
    feed(store, "A", range(100, 105))
    replies = waiters.serve(store.take_ready())
    assert sorted((identity, reply.request_id) for identity, reply in replies) == [
        (b"c", 1), (b"c", 2), (b"c", 3), (b"other", 1)]
    assert all(reply.prices == (p(102), p(103), p(104)) for _, reply in replies)  # type: ignore[union-attr]


def test_one_client_cannot_hold_a_books_window_with_many_ticks() -> None:
    _, _, waiters, counters, _ = setup()
    for tick in range(2):
        assert waiters.add(b"flood", LastPricesRequest(tick, "A", 100 * tick, 5)) == []
    assert waiters.add(b"flood", LastPricesRequest(9, "A", 100, 3)) == []  # a tick it has waiting already
    (_, refused), = waiters.add(b"flood", LastPricesRequest(10, "A", 999, 5))
    assert refused.error == "busy: 2 of your requests for book A wait for other ticks; retry later"  # type: ignore[union-attr]
    assert waiters.add(b"algorithm", LastPricesRequest(1, "A", 7, 5)) == []  # another client is not held back
    assert counters["busy"] == 1


def test_a_batch_replies_once_every_book_is_answered_in_order() -> None:
    store, file, waiters, _, _ = setup()
    feed(store, "B", range(200, 210))
    assert waiters.add(b"c", WindowsRequest(5, 1, 2, ("A", "B", "Z"))) == []  # A and Z wait, B is ready
    feed(store, "A", range(100, 105), offset=1000)
    assert waiters.serve(store.take_ready()) == []  # Z is still unknown
    file.at_eof, file.eof_gen = True, 1  # the frontier passed the end of the file
    waiters.revisit_at_end()
    assert waiters.revisit() == [(b"c", WindowsReply(5, 1, ((p(101), p(102)), (p(201), p(202)), ()),
                                                        ("", "", "unknown book Z")))]
    assert waiters.waiting == 0 and "Z" not in store.books


def test_one_client_cannot_take_every_waiting_place() -> None:
    _, _, waiters, counters, _ = setup(waiting_max=10, peer_max=3)
    flood = waiters.add(b"flood", WindowsRequest(1, 0, 5, ("A", "B", "C", "D")))
    assert len(flood) == 1 and all(e.startswith("busy: ") for e in flood[0][1].errors)  # type: ignore[union-attr]
    assert waiters.add(b"flood", WindowsRequest(2, 0, 5, ("A", "B", "C"))) == []  # within its share
    assert "busy" in waiters.add(b"flood", LastPricesRequest(3, "E", 0, 5))[0][1].error  # type: ignore[union-attr]
    assert waiters.add(b"algorithm", LastPricesRequest(1, "A", 0, 5)) == []  # the others keep theirs
    assert counters["busy"] == 2 and waiters.waiting == 4


def test_the_waiting_requests_are_bounded_in_all() -> None:
    _, _, waiters, counters, _ = setup(waiting_max=2, peer_max=2)
    assert waiters.add(b"a", LastPricesRequest(1, "A", 0, 5)) == []
    assert waiters.add(b"b", LastPricesRequest(1, "B", 0, 5)) == []
    refused = waiters.add(b"c", LastPricesRequest(1, "C", 0, 5))
    assert "busy" in refused[0][1].error and counters["busy"] == 1  # type: ignore[union-attr]


def test_a_request_waiting_too_long_gets_an_error_and_leaves_nothing_behind() -> None:
    store, _, waiters, counters, clock = setup()
    assert waiters.add(b"c", LastPricesRequest(1, "A", 0, 5)) == []
    clock.now += 5
    assert waiters.add(b"c", LastPricesRequest(2, "B", 0, 5)) == []
    assert waiters.expire() == []
    clock.now += 6
    (_, reply), = waiters.expire()
    assert reply.request_id == 1 and "no answer within 10s" in reply.error  # type: ignore[union-attr]
    assert counters["expired"] == 1 and waiters.waiting == 1 and "A" not in store.books


def test_an_unavailable_file_fails_every_request() -> None:
    _, file, waiters, _, _ = setup()
    assert waiters.add(b"c", LastPricesRequest(1, "A", 0, 5)) == []
    file.unavailable = "No such file: x.csv"
    waiters.forget_all()  # what the actor does when the file fails
    assert waiters.revisit()[0][1].error.startswith("data file unavailable")  # type: ignore[union-attr]
    assert "unavailable" in waiters.add(b"c", LastPricesRequest(2, "A", 0, 5))[0][1].error  # type: ignore[union-attr]
    assert waiters.waiting == 0


def test_before_the_header_requests_wait_and_an_empty_file_answers_unknown() -> None:
    store, file, waiters, _, _ = setup()
    file.columns = None
    assert waiters.add(b"c", LastPricesRequest(1, "A", 0, 5)) == []
    assert store.frontier.demand == 1  # the frontier reads the header first
    file.at_eof, file.eof_gen = True, 1
    waiters.revisit_at_end()
    (_, reply), = waiters.revisit()
    assert reply.error == "unknown book A: the data file has no rows yet"  # type: ignore[union-attr]
    assert store.frontier.demand == 0
