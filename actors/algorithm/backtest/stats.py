"""What a backtest found: one record per (book, strategy) pair, the totals per strategy and their
ranking. Pure; money is integer cents here and ``Decimal`` when shown."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from typing import Final

from actors.algorithm.backtest.cents import BIT_NAMES, MICRO, to_decimal

GUARDRAILS: Final = tuple(name for _, name in BIT_NAMES)
OBJECTIVES: Final = ("revenue", "margin", "units")
_CENT: Final = Decimal("0.01")
_RATIO: Final = Decimal("0.0001")


@dataclass(slots=True)
class PairStats:
    """One pair's decisions, summed. ``comp_sum``: the windows' sums in millionths (the competitor's
    mean is ``comp_sum / window / decisions``)."""

    book: str
    strategy: str
    window: int
    cost: int | None = None  # unit cost in cents, when known
    decisions: int = 0
    skipped: int = 0  # ticks of the run this pair could not decide (its book has fewer prices than its window)
    units: int = 0
    revenue: int = 0
    price_sum: int = 0
    comp_sum: int = 0
    at_floor: int = 0
    at_ceiling: int = 0
    hits: int = 0  # decisions a guardrail moved
    by_guardrail: dict[str, int] = field(default_factory=lambda: dict.fromkeys(GUARDRAILS, 0))
    changes: int = 0  # decisions whose price differs from the pair's previous one
    first_price: int | None = None
    last_price: int | None = None

    @property
    def margin(self) -> int | None:
        return None if self.cost is None else self.revenue - self.units * self.cost

    @property
    def mean_price(self) -> Decimal | None:
        return _mean(self.price_sum, self.decisions * 100)

    @property
    def mean_competitor(self) -> Decimal | None:
        return _mean(self.comp_sum, self.decisions * self.window * MICRO)

    @property
    def vs_competitor(self) -> Decimal | None:
        """Our mean price over the competitor's mean, minus one (``-0.0512``: 5.12% below)."""
        if not self.decisions or not self.comp_sum:
            return None
        ratio = Decimal(self.price_sum * self.window * (MICRO // 100)) / Decimal(self.comp_sum)
        return _ratio(ratio)


def _ratio(ratio: Decimal) -> Decimal:
    """``ratio - 1`` to 4 places (no "-0.0000")."""
    return (ratio - 1).quantize(_RATIO, rounding=ROUND_HALF_UP) + 0


def _mean(total: int, count: int) -> Decimal | None:
    return (Decimal(total) / Decimal(count)).quantize(_CENT, rounding=ROUND_HALF_UP) if count else None


@dataclass(slots=True)
class StrategyTotals:
    strategy: str
    pairs: int = 0
    decisions: int = 0
    skipped: int = 0
    units: int = 0
    revenue: int = 0
    margin: int | None = 0  # None as soon as one pair's cost is unknown
    price_sum: int = 0
    comp_sum_cents: Decimal = Decimal(0)  # the competitor's means, summed per decision, in cents
    hits: int = 0
    changes: int = 0
    at_floor: int = 0
    at_ceiling: int = 0
    rank: int = 0

    def add(self, pair: PairStats) -> None:
        self.pairs += 1
        self.decisions += pair.decisions
        self.skipped += pair.skipped
        self.units += pair.units
        self.revenue += pair.revenue
        margin = pair.margin
        self.margin = None if self.margin is None or margin is None else self.margin + margin
        self.price_sum += pair.price_sum
        self.comp_sum_cents += Decimal(pair.comp_sum) / Decimal(pair.window * (MICRO // 100))
        self.hits += pair.hits
        self.changes += pair.changes
        self.at_floor += pair.at_floor
        self.at_ceiling += pair.at_ceiling

    @property
    def mean_price(self) -> Decimal | None:
        return _mean(self.price_sum, self.decisions * 100)

    @property
    def vs_competitor(self) -> Decimal | None:
        if not self.decisions or not self.comp_sum_cents:
            return None
        return _ratio(Decimal(self.price_sum) / self.comp_sum_cents)

    def objective(self, name: str) -> int:
        if name == "units":
            return self.units
        if name == "margin" and self.margin is not None:
            return self.margin
        return self.revenue


def totals(pairs: list[PairStats], objective: str = "revenue") -> list[StrategyTotals]:
    """Per strategy, in the order first seen, each with its rank by ``objective`` (margin where every
    pair's cost is known, else revenue), 1 the best; ties share a rank."""
    by_name: dict[str, StrategyTotals] = {}
    for pair in pairs:
        by_name.setdefault(pair.strategy, StrategyTotals(pair.strategy)).add(pair)
    result = list(by_name.values())
    scores = sorted({t.objective(objective) for t in result}, reverse=True)
    for t in result:
        t.rank = scores.index(t.objective(objective)) + 1
    return result


def money(cents_value: int | None) -> str:
    return "" if cents_value is None else str(to_decimal(cents_value))


def share(count: int, total: int) -> str:
    return f"{count / total:.4f}" if total else ""
