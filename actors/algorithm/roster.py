"""Which pairs this worker prices now: the config's pairs it owns (crc32 ownership), minus those
paused, dropped by a reload, or still waiting for their last price from the Ledger. Pure: no I/O.

A reload (:meth:`Roster.apply`) swaps the config whole, between two ticks (it runs on the event loop,
and a tick's pairs are dispatched against one config). What it keeps, so that no pair is decided twice
in a tick and none loses its last price: a pair's index, its last decided price and its in-flight
state (all held in its :class:`PairRecord`, never by config); a pair deciding under the old config
finishes with it. New pairs are appended (and held back until resumed from the Ledger,
if there is one); dropped pairs are blocked and forget their last price.
"""

from __future__ import annotations

from collections.abc import Iterable

from actors.algorithm.pairs import HELD, NOT_BLOCKED, PAUSED, Block, PairRecord, PairTable
from actors.algorithm.pipeline import Pipeline
from actors.pricing.config import Config
from actors.pricing.strategies import Pair, Share
from transport import limits


class Roster:
    def __init__(self, config: Config, share: Share, table: PairTable, pipeline: Pipeline) -> None:
        self.config = config
        self._share = share
        self._table = table
        self._pipeline = pipeline  # its guardrails are the config's: swapped together
        self._dropped: set[int] = set()  # record indexes
        self._resuming: set[int] = set()  # new pairs held back until the Ledger says their last price

    def hold(self, pairs: Iterable[Pair]) -> None:
        """Hold these pairs back until :meth:`release` (their last price is being asked for)."""
        records = (self._table.get(pair.key) for pair in pairs)
        self._resuming.update(record.index for record in records if record is not None)
        self._block()

    def release(self) -> None:
        self._resuming.clear()
        self._block()

    def apply(self, config: Config) -> list[Pair] | str:
        """Take a reloaded config; return the pairs it adds (to resume), or why it cannot be taken."""
        owned = self._share.owned(config.pairs)
        fresh = sum(1 for pair in owned if self._table.get(pair.key) is None)
        if len(self._table) + fresh > limits.BOOKS_MAX:
            return (f"the reload would make this worker track more than {limits.BOOKS_MAX} pairs in all "
                    "(pairs dropped by earlier reloads included): restart the worker to take it")
        added, dropped = self._table.update(owned)
        self._pipeline.config = self.config = config
        self._dropped = {record.index for record in dropped}
        self._block()
        return [record.pair for record in added]

    def _block(self) -> None:
        config = self.config
        blocks = [NOT_BLOCKED] * len(self._table)
        if config.paused_books or config.paused_strategies or self._dropped or self._resuming:
            for record in self._table:
                blocks[record.index] = self._block_of(record)
        self._table.set_blocks(blocks)

    def _block_of(self, record: PairRecord) -> Block:
        if record.index in self._dropped or record.index in self._resuming:
            return HELD
        if self.config.is_paused(record.pair.book, record.pair.strategy.name):
            return PAUSED
        return NOT_BLOCKED

    @property
    def active(self) -> int:
        """Pairs that may be decided now."""
        return len(self._table) - self._table.blocked
