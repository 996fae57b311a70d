"""Which pairs this worker prices now: the config's pairs it owns (crc32 ownership), minus those
paused, dropped by a reload, or still waiting for their last price from the Ledger. Pure: no I/O.

A reload (:meth:`Roster.apply`) swaps the config whole, between two ticks (it runs on the event loop,
and a tick's pairs are dispatched against one config). What it keeps, so that no pair is decided twice
in a tick and none loses its last price: a pair's index, its last decided price and its in-flight
state (all held by the pipeline and the dispatcher by index, never by config); a pair deciding under
the old config finishes with it. New pairs are appended (and held back until resumed from the Ledger,
if there is one); dropped pairs are blocked and forget their last price.
"""

from __future__ import annotations

from collections.abc import Iterable

from actors.algorithm.config import Config
from actors.algorithm.dispatch import HELD, PAUSED, Dispatcher
from actors.algorithm.pipeline import Pipeline
from actors.algorithm.strategies import Pair, Share
from transport import limits


class Roster:
    def __init__(self, config: Config, share: Share, pipeline: Pipeline, dispatcher: Dispatcher) -> None:
        self.config = config
        self._share = share
        self._pipeline = pipeline
        self._dispatcher = dispatcher
        self._dropped: set[int] = set()
        self._resuming: set[int] = set()  # new pairs held back until the Ledger says their last price

    def hold(self, pairs: Iterable[Pair]) -> None:
        """Hold these pairs back until :meth:`release` (their last price is being asked for)."""
        index = {pair.key: i for i, pair in enumerate(self._pipeline.pairs)}
        self._resuming.update(index[pair.key] for pair in pairs if pair.key in index)
        self._block()

    def release(self) -> None:
        self._resuming.clear()
        self._block()

    def apply(self, config: Config) -> list[Pair] | str:
        """Take a reloaded config; return the pairs it adds (to resume), or why it cannot be taken."""
        owned = self._share.owned(config.pairs)
        known = {pair.key for pair in self._pipeline.pairs}
        fresh = sum(1 for pair in owned if pair.key not in known)
        if len(self._pipeline.pairs) + fresh > limits.BOOKS_MAX:
            return (f"the reload would make this worker track more than {limits.BOOKS_MAX} pairs in all "
                    "(pairs dropped by earlier reloads included): restart the worker to take it")
        added, dropped = self._pipeline.update_pairs(owned)
        self._dispatcher.grow(len(self._pipeline.pairs))
        self._pipeline.config = self.config = config
        self._dropped = set(dropped)
        pairs = self._pipeline.pairs
        self._block()
        return [pairs[i] for i in added]

    def _block(self) -> None:
        config, pairs = self.config, self._pipeline.pairs
        flags = bytearray(len(pairs))
        if config.paused_books or config.paused_strategies or self._dropped or self._resuming:
            for i, pair in enumerate(pairs):
                if i in self._dropped or i in self._resuming:
                    flags[i] = HELD
                elif config.is_paused(pair.book, pair.strategy.name):
                    flags[i] = PAUSED
        self._dispatcher.block(bytes(flags))

    @property
    def active(self) -> int:
        """Pairs that may be decided now."""
        return len(self._pipeline.pairs) - self._dispatcher.blocked
