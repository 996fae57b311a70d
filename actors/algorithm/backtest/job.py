"""What a backtest is asked (:class:`Job`) and what it gives back (:class:`Result`): shared by the fast
engine and the plain reference loop, whose results must be equal."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Final

import numpy as np
import numpy.typing as npt

from actors.algorithm.backtest.cents import I64, Bools
from actors.algorithm.backtest.plan import IdPlan
from actors.algorithm.backtest.stats import PairStats
from actors.pricing.config import Config
from actors.pricing.config.backtest import Logistic, Parity
from actors.pricing.strategies import Pair

CHART_PAIRS: Final = 24  # pairs whose price path the report draws
CHART_POINTS: Final = 1000  # points kept per path (every k-th decision, k doubling as the run goes on)


@dataclass(frozen=True, slots=True)
class Job:
    """Replay ``pairs`` (the config's, paused ones left out) over a file. ``ids``: decide exactly a
    live run's decisions with its request ids; ``ticks``: decide ticks 0..ticks-1 (default: every tick
    until each pair's book has shown its last price)."""

    config: Config
    pairs: tuple[Pair, ...]
    ids: IdPlan | None = None
    ticks: int | None = None
    costs: Mapping[str, int] = field(default_factory=dict)  # unit cost per book, cents
    chart_pairs: int = CHART_PAIRS
    chart_points: int = CHART_POINTS
    # Parity without --ids: each pair's place in the generated id sequence and the pairs per tick in it
    # (default: its index among ``pairs``; a sweep's variants keep the place of the pair they vary).
    id_ranks: tuple[int, ...] | None = None
    id_pairs: int | None = None
    # The run's last tick is each pair's last new window (count - window), the latest of all; a sweep
    # split over processes fixes the window used here so that every share runs the same ticks.
    horizon_window: int | None = None

    @property
    def demand(self) -> Parity | Logistic:
        return self.config.backtest.demand

    def ranks(self) -> tuple[int, ...]:
        return self.id_ranks if self.id_ranks is not None else tuple(range(len(self.pairs)))

    def ids_per_tick(self) -> int:
        return self.id_pairs if self.id_pairs is not None else len(self.pairs)


@dataclass(frozen=True, slots=True)
class Decisions:
    """A batch of decisions (for ``--decisions`` and the tests): one element per decision."""

    pair: I64  # index into Job.pairs
    tick: I64
    request_id: I64  # -1 without parity demand
    sold: Bools
    sent: I64  # the price registered (on sale) at that tick, cents
    price: I64  # the price decided, cents
    rule: I64  # the rule's price, cents
    bits: npt.NDArray[np.uint8]  # the guardrails that moved it (cents.BIT_NAMES)
    sums: I64  # the window's sum, millionths


Sink = Callable[[Decisions], None]


@dataclass(slots=True)
class Chart:
    """A pair's price path, bounded: the decisions whose number is a multiple of ``stride`` (doubled
    whenever the path would grow past its limit, so its shape stays and its length is bounded):
    tick, our price (cents), the competitor's window sum (millionths)."""

    number: list[int] = field(default_factory=list)
    tick: list[int] = field(default_factory=list)
    price: list[int] = field(default_factory=list)
    sums: list[int] = field(default_factory=list)
    stride: int = 1
    seen: int = 0  # decisions so far

    def add(self, ticks: I64, prices: I64, sums: I64, limit: int) -> None:
        numbers = np.arange(self.seen, self.seen + len(ticks))
        self.seen += len(ticks)
        stride = self.stride
        kept = len(self.number)  # every number kept is a multiple of the stride
        while kept + int((numbers % stride == 0).sum()) > limit:
            stride *= 2
            kept = sum(1 for n in self.number if n % stride == 0)
        if stride != self.stride:
            keep = [i for i, n in enumerate(self.number) if n % stride == 0]
            self.number, self.tick = [self.number[i] for i in keep], [self.tick[i] for i in keep]
            self.price, self.sums = [self.price[i] for i in keep], [self.sums[i] for i in keep]
            self.stride = stride
        take = numbers % stride == 0
        self.number += numbers[take].tolist()
        self.tick += ticks[take].tolist()
        self.price += prices[take].tolist()
        self.sums += sums[take].tolist()


@dataclass(slots=True)
class Result:
    pairs: list[PairStats]
    charts: dict[int, Chart]  # by index into Job.pairs
    counters: dict[str, int]  # the file's, as the DataManager counts them
    examples: list[str]  # the first bad rows
    last_tick: int  # the run's last tick (-1: no decision)
    seconds: float = 0.0

    @property
    def decisions(self) -> int:
        return sum(p.decisions for p in self.pairs)
