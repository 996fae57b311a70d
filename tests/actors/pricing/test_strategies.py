from decimal import Decimal
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from actors.pricing.rule import PricingRule
from actors.pricing.strategies import Pair, Share, Strategy, dispatch_order, owned_pairs, owner, pairs_for

book_ids = st.lists(st.text(min_size=1, max_size=12), min_size=1, max_size=200, unique=True)
strategy_names = st.lists(st.text(min_size=1, max_size=8), min_size=1, max_size=4, unique=True)


@given(book_ids, strategy_names, st.integers(min_value=1, max_value=16))
def test_every_pair_has_exactly_one_owner(books: list[str], names: list[str], workers: int) -> None:
    pairs = pairs_for(books, [Strategy(name) for name in names])
    shares = [list(owned_pairs(pairs, worker, workers)) for worker in range(workers)]
    keys = [pair.key for share in shares for pair in share]
    assert sorted(keys) == sorted(pair.key for pair in pairs)  # complete and non-overlapping
    assert len(set(keys)) == len(keys) == len(books) * len(names)


@given(book_ids, strategy_names, st.integers(min_value=1, max_value=4), st.randoms())
def test_a_share_is_its_pairs_in_key_order_whatever_the_books_order(books: list[str], names: list[str],
                                                                     workers: int, random: Any) -> None:
    # The order a worker decides its pairs in: the Ledger's B-trees are keyed by pair (issue 19).
    random.shuffle(books)
    pairs = pairs_for(books, [Strategy(name) for name in names])
    for index in range(workers):
        owned = Share(index, workers).owned(pairs)
        assert [pair.key for pair in owned] == sorted(pair.key for pair in owned_pairs(pairs, index, workers))


@given(st.text(min_size=1), st.text(min_size=1), st.integers(min_value=1, max_value=64))
def test_the_owner_is_a_worker_and_ignores_the_rule(book: str, name: str, workers: int) -> None:
    # Ownership depends on (book, strategy name) only: retuning a strategy must not move its pairs.
    pair = Pair(book, Strategy(name))
    retuned = Pair(book, Strategy(name, PricingRule(window=3), Decimal("0.5")))
    assert 0 <= owner(pair, workers) < workers
    assert owner(pair, workers) == owner(retuned, workers)


def test_ownership_does_not_depend_on_the_process() -> None:
    # crc32, not the per-process salted hash(): pinned values catch a change of hash.
    assert [owner(Pair(f"B{i:03}", Strategy("default")), 4) for i in range(1, 6)] == [0, 1, 2, 3, 0]


def test_load_is_spread_over_workers() -> None:
    pairs = pairs_for([f"book-{i}" for i in range(10_000)], [Strategy("default")])
    counts = [len(list(owned_pairs(pairs, w, 4))) for w in range(4)]
    assert min(counts) > 2_300 and max(counts) < 2_700


@given(st.integers(min_value=1, max_value=500), st.integers(min_value=0, max_value=10**9))
def test_every_pair_is_dispatched_first_within_n_ticks(n: int, first_seq: int) -> None:
    pairs = pairs_for([f"b{i}" for i in range(n)], [Strategy()])
    firsts = {next(dispatch_order(pairs, seq)).book for seq in range(first_seq, first_seq + n)}
    assert len(firsts) == n  # no book is always at the back of the queue
    assert sorted(p.book for p in dispatch_order(pairs, first_seq)) == sorted(p.book for p in pairs)
