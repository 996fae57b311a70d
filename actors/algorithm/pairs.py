"""One record per (book, strategy) pair this worker prices, and one per decision in flight. Pure.

A :class:`PairRecord` holds everything known about a pair: its strategy, the start of its registration
body, its last decided price, whether its first failure was logged, whether it is blocked, and its
dispatch state (the tick generation it was last started for, whether a newer tick wants it). Its
decision in flight, if any, is a :class:`Work`: the tick it serves and what the steps found so far,
with an explicit :class:`State`. A pair has at most one :class:`Work` at a time.

A decision's life (each arrow one step of :mod:`actors.algorithm.pipeline`)::

    FETCHING -> REGISTERING -> READING -> DECIDED
        \\            \\            \\-----> SKIPPED   (a step failed, a 429 too often, a price refused)
         \\            \\------------------^
          \\-------------------------------^

A 429 leaves a work where it is (REGISTERING or READING) to be tried again after the pause. When it
ends (DECIDED or SKIPPED; or DECIDED_BEFORE: a restarted worker learns from the Ledger, while the work
waited to register, that its pair was decided for that tick already) the dispatcher frees its pair:
the pair's state is IDLE again.

The :class:`PairTable` lists the records in a fixed order: a record's index never changes (a reload
replaces a pair's strategy in place, or appends a new record; a dropped pair stays, blocked).
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Iterator, Sequence
from decimal import Decimal
from typing import Final

from actors.algorithm.clients.api import registration_prefix
from actors.pricing.rule import refusal
from actors.pricing.strategies import Pair
from transport.protocol import Tick


class State(enum.Enum):
    IDLE = "idle"  # no decision in flight (a pair's state only)
    FETCHING = "fetching"  # its window asked of the DataManager
    REGISTERING = "registering"  # window averaged, price chosen: to register (again, after a 429)
    READING = "reading"  # registered: x runs out, then whether it sold is read (again, after a 429)
    DECIDED = "decided"  # priced and handed to the sink
    SKIPPED = "skipped"  # given up for this tick (counted by reason); tried again next tick
    DECIDED_BEFORE = "decided_before"  # the Ledger has its decision for this tick (before a restart)


class Block(enum.Enum):
    """Why a pair is not started: never started while blocked (one in flight finishes)."""

    NONE = "none"
    PAUSED = "paused"  # paused in the config: counted as pair-ticks not decided
    HELD = "held"  # held back a moment: dropped by a reload, or waiting for its last price


# The members under plain names, for the hot path: looking a member up on its enum class costs ten
# times a global's (CPython 3.11), and states are checked several times per decision.
IDLE: Final = State.IDLE
FETCHING: Final = State.FETCHING
REGISTERING: Final = State.REGISTERING
READING: Final = State.READING
DECIDED: Final = State.DECIDED
SKIPPED: Final = State.SKIPPED
DECIDED_BEFORE: Final = State.DECIDED_BEFORE
NOT_BLOCKED: Final = Block.NONE
PAUSED: Final = Block.PAUSED
HELD: Final = Block.HELD


class PairRecord:
    """Everything about one pair (see the module docstring)."""

    __slots__ = ("block", "decided_for", "failure_logged", "index", "last", "pair", "prefix", "started", "wanted",
                 "work")

    def __init__(self, index: int, pair: Pair) -> None:
        self.index = index  # its place in the table: never changes
        self.pair = pair  # a reload may swap its strategy's parameters (same name)
        self.prefix = registration_prefix(pair.book, pair.strategy.name)  # made once: only the price varies
        self.last: Decimal | None = None  # last decided price (None: the next decision registers the average)
        # The (run, tick) of its last decision as the Ledger told a restarted worker: that tick is not
        # decided again. Looked at once, by the first tick dispatched after it was told, then cleared.
        self.decided_for: tuple[float, int] | None = None
        self.failure_logged = False  # its first book-specific failure was logged (later ones only counted)
        self.block = NOT_BLOCKED
        self.started = 0  # the tick generation it was last started for (0: never)
        self.wanted = False  # busy while a newer tick wants it: it goes first once free
        self.work: Work | None = None  # its decision in flight

    @property
    def key(self) -> tuple[str, str]:
        return self.pair.key

    @property
    def state(self) -> State:
        return IDLE if self.work is None else self.work.state

    def __repr__(self) -> str:
        return f"PairRecord({self.index}, {self.pair.key}, {self.state.name}, block={self.block.name})"


class Work:
    """One decision in flight: its pair's record, the tick it serves, and what is known so far."""

    __slots__ = ("attempts", "avg", "pair", "prices", "record", "request_id", "retry", "sent", "state", "tick", "total")

    def __init__(self, record: PairRecord, tick: Tick) -> None:
        self.record = record
        self.pair = record.pair  # the strategy it started with, even if a reload swaps it meanwhile
        self.tick = tick
        self.state = FETCHING
        self.prices: tuple[Decimal, ...] = ()
        self.total = Decimal(0)  # the window's exact sum: its mean and its price are both made from it
        self.avg = Decimal(0)
        self.sent = Decimal(0)  # the price registered with the API
        self.request_id = 0  # the API's id, from REGISTERING on
        self.attempts = 0  # calls answered 429 so far
        self.retry = False  # SKIPPED for a peer that did not answer: tried again when its tick is repeated

    def __repr__(self) -> str:
        return f"Work({self.pair.key}, tick={self.tick.seq}, {self.state.name})"


class PairTable:
    """The records of the pairs this worker knows, in a fixed order, found by index or by key."""

    def __init__(self, pairs: Iterable[Pair] = ()) -> None:
        self._records: list[PairRecord] = []
        self._by_key: dict[tuple[str, str], PairRecord] = {}
        self.blocked = 0  # records whose block is not NONE (kept by :meth:`set_blocks`)
        for pair in pairs:
            self._append(pair)

    def _append(self, pair: Pair) -> PairRecord:
        record = PairRecord(len(self._records), pair)
        self._records.append(record)
        self._by_key[pair.key] = record
        return record

    def __len__(self) -> int:
        return len(self._records)

    def __iter__(self) -> Iterator[PairRecord]:
        return iter(self._records)

    def __getitem__(self, index: int) -> PairRecord:
        return self._records[index]

    @property
    def records(self) -> Sequence[PairRecord]:
        return self._records

    @property
    def pairs(self) -> list[Pair]:
        return [record.pair for record in self._records]

    def get(self, key: tuple[str, str]) -> PairRecord | None:
        return self._by_key.get(key)

    def update(self, pairs: Iterable[Pair]) -> tuple[list[PairRecord], list[PairRecord]]:
        """A reload's pairs: a known pair keeps its record (its last price; the new strategy parameters
        apply from its next decision), a new one is appended. Returns (the new records, the known
        records the reload dropped); a dropped pair forgets its last price."""
        added: list[PairRecord] = []
        kept: set[tuple[str, str]] = set()
        for pair in pairs:
            kept.add(pair.key)
            record = self._by_key.get(pair.key)
            if record is None:
                added.append(self._append(pair))
            else:
                record.pair = pair
        dropped = [record for record in self._records if record.key not in kept]
        for record in dropped:
            record.last = None
        return added, dropped

    def remember(self, key: tuple[str, str], price: Decimal, decided_for: tuple[float, int] | None = None) -> bool:
        """Take ``price`` as the last decided price of pair ``key`` (restored from the Ledger at start):
        its next decision registers it instead of the average; ``decided_for``, the (run, tick) it was
        decided for, is not decided again. False for a pair not ours, or a price the API would refuse."""
        record = self._by_key.get(key)
        if record is None or refusal(price) is not None:
            return False
        record.last = price
        record.decided_for = decided_for
        return True

    def set_blocks(self, blocks: Sequence[Block]) -> None:
        """Which pairs are blocked from now on (one per record, in order); a pair in flight finishes."""
        if len(blocks) != len(self._records):
            raise ValueError(f"{len(blocks)} blocks for {len(self._records)} pairs")
        count = 0
        for record, block in zip(self._records, blocks, strict=True):
            record.block = block
            count += block is not NOT_BLOCKED
        self.blocked = count
