"""Which (book, strategy) pairs exist and which Algorithm worker owns each one. Pure.

Ownership is a stable hash of the pair, so every worker computes the same split on its own: no
coordinator, no pair decided by two workers, and a restarted worker takes back exactly its share.
"""

from __future__ import annotations

import itertools
import operator
import zlib
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from decimal import Decimal

from actors.pricing.rule import PricingRule

DEFAULT_DELAY = Decimal("1")


@dataclass(frozen=True, slots=True)
class Strategy:
    """A named way to price: the rule and the delay x between registering a request and reading it."""

    name: str = "default"
    rule: PricingRule = field(default_factory=PricingRule)
    delay: Decimal = DEFAULT_DELAY


@dataclass(frozen=True, slots=True)
class Pair:
    book: str
    strategy: Strategy

    @property
    def key(self) -> tuple[str, str]:
        return (self.book, self.strategy.name)


def owner(pair: Pair, workers: int) -> int:
    """The index of the worker that owns ``pair`` among ``workers`` (crc32: stable across processes,
    unlike ``hash``, which is salted per process)."""
    digest = zlib.crc32(f"{pair.book}\x00{pair.strategy.name}".encode())
    return digest % workers


def owned_pairs(pairs: Iterable[Pair], worker: int, workers: int) -> Iterator[Pair]:
    if not 0 <= worker < workers:
        raise ValueError(f"worker {worker} is not in 0..{workers - 1}")
    return (pair for pair in pairs if owner(pair, workers) == worker)


@dataclass(frozen=True, slots=True)
class Share:
    """Worker ``index`` of ``count``: which pairs it owns (see :func:`owner`)."""

    index: int = 0
    count: int = 1

    def owned(self, pairs: Iterable[Pair]) -> list[Pair]:
        """This worker's pairs in key order (book, strategy), whatever the books file's order: a worker
        decides its pairs in this order, and the Ledger's B-trees are keyed by pair, so a tick's
        decisions arrive in runs of neighbouring keys that share pages (at 100,000 books a row in random
        order cost the Ledger 5-6x one in key order, 2026-12-05)."""
        return sorted(owned_pairs(pairs, self.index, self.count), key=operator.attrgetter("key"))


def pairs_for(books: Iterable[str], strategies: Iterable[Strategy]) -> list[Pair]:
    """Every book priced by every strategy (the simple, CLI case)."""
    strategies = tuple(strategies)
    return [Pair(book, strategy) for book in books for strategy in strategies]


_ROTATION_STEP = 7919  # a prime: successive ticks start far apart in the pair list


def dispatch_order(pairs: Sequence[Pair], seq: int) -> Iterator[Pair]:
    """The order in which tick ``seq`` starts its pairs: the list rotated by a step per tick.

    Under overload the pairs started last are the ones still busy at the next tick (and skipped); a
    fixed order would starve the same books every time. With a prime step every pair comes first
    once in ``len(pairs)`` ticks (unless the count is a multiple of the step)."""
    if not pairs:
        return iter(())
    start = (seq * _ROTATION_STEP) % len(pairs)
    return itertools.chain(pairs[start:], pairs[:start])
