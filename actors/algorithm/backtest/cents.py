"""The live rule and guardrails in integer arithmetic, on numpy arrays: exact, and identical to
:func:`actors.pricing.rule.reprice` and :meth:`actors.pricing.guardrails.Guardrails.apply`
(property-tested against them in ``tests/actors/algorithm/backtest/test_cents.py``). Pure.

Units: a competitor price is read in millionths (``micro``: the CSV allows 6 decimals), a window is
the sum of its micro prices, a price we set is in cents. Why exact: the live rule rounds
``mean * factor`` half-up to cents, computed to 60 significant digits. The mean is ``sum / N`` and a
factor with ``d`` decimals is ``num / den``, so the exact value is the fraction
``sum * num / (N * 10**4 * den)`` cents, and rounding it half-up is ``(2*sum*num + q) // (2*q)`` with
``q = N * 10**4 * den``. A value that is not exactly on a half cent is at least ``1 / (2q)`` away
from one, far more than the error of 60 digits as long as ``den <= 10**30``; a factor with more
decimals goes to the live ``Decimal`` rule instead (:data:`EXACT_DEN_MAX`). int64 holds ``2*sum*num``
for every realistic window; a batch that could overflow is computed on Python ints (object arrays):
slower, as exact.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import Decimal
from types import MappingProxyType
from typing import Final

import numpy as np
import numpy.typing as npt

from actors.pricing.guardrails import NAMES as GUARDRAIL_NAMES
from actors.pricing.guardrails import Guardrails
from actors.pricing.rule import PricingRule
from transport import limits

I64 = npt.NDArray[np.int64]
Bools = npt.NDArray[np.bool_]
MICRO: Final = 10**limits.PRICE_DECIMALS  # competitor prices are read in millionths
MICRO_PER_CENT: Final = MICRO // 100
CENTS_MIN: Final = int(limits.PRICE_MIN * 100)
CENTS_MAX: Final = int(limits.PRICE_MAX * 100)
INT64_MAX: Final = 2**63 - 1
EXACT_DEN_MAX: Final = 10**30  # beyond, 60 significant digits could round differently: use Decimal

# Which guardrails moved a price, as bits: bit i is guardrails.NAMES[i] (the order Guardrails.apply
# reports them in), so the names are written once.
BIT: Final = MappingProxyType({name: 1 << i for i, name in enumerate(GUARDRAIL_NAMES)})
BIT_NAMES: Final = tuple((bit, name) for name, bit in BIT.items())


def names(bits: int) -> tuple[str, ...]:
    """The guardrail names of a decision's bits, in the order applied (as ``Guarded.guardrail``)."""
    return tuple(name for bit, name in BIT_NAMES if bits & bit)


def micro(price: Decimal) -> int:
    """A competitor price (at most 6 decimals) in millionths."""
    return int(price * MICRO)


def cents(price: Decimal) -> int:
    """A price in cents (the guardrails' values and every price we set are whole cents)."""
    return int(price * 100)


def to_decimal(cents_value: int) -> Decimal:
    return Decimal(cents_value).scaleb(-2)


@dataclass(frozen=True, slots=True)
class RuleArith:
    """A strategy's rule as integers: prices = ``(2*sum*num + q) // (2*q)`` with ``num`` the sold or
    unsold factor's numerator over a common denominator."""

    window: int
    sold_num: int
    unsold_num: int
    q: int  # window * 10**4 * den

    @classmethod
    def of(cls, rule: PricingRule) -> RuleArith:
        sold, unsold = rule.sold_factor.as_integer_ratio(), rule.unsold_factor.as_integer_ratio()
        den = math.lcm(sold[1], unsold[1])
        return cls(rule.window, sold[0] * (den // sold[1]), unsold[0] * (den // unsold[1]),
                   rule.window * 10**4 * den)

    @property
    def exact(self) -> bool:
        """Whether integer rounding is the Decimal rule's (see the module's docstring)."""
        return self.q // (self.window * 10**4) <= EXACT_DEN_MAX


def rule_cents(sums: I64, sold: Bools, sold_num: npt.ArrayLike, unsold_num: npt.ArrayLike,
               q: npt.ArrayLike) -> I64:
    """The rule's price in cents for each window sum (micro) and sale; ``num``/``q`` per element or
    one for all (ints, int64 or object arrays). Exact for every :attr:`RuleArith.exact` rule: int64
    when nothing can overflow, else Python ints (object arrays)."""
    num_max = max(int(np.max(sold_num)), int(np.max(unsold_num)))
    q_max = int(np.max(q))
    if 2 * int(sums.max(initial=0)) * num_max + q_max <= INT64_MAX and 2 * q_max <= INT64_MAX:
        num = np.where(sold, np.asarray(sold_num, dtype=np.int64), np.asarray(unsold_num, dtype=np.int64))
        q64 = np.asarray(q, dtype=np.int64)
        result: I64 = (2 * sums * num + q64) // (2 * q64)
        return result
    num_o = np.where(sold, np.asarray(sold_num, dtype=object), np.asarray(unsold_num, dtype=object))
    q_o = np.asarray(q, dtype=object)
    exact = (2 * sums.astype(object) * num_o + q_o) // (2 * q_o)
    return np.asarray(exact, dtype=np.int64)


def mean_cents(sums: I64, window: I64 | int) -> I64:
    """``to_cents(avg_comp_price)``: the window's mean rounded half-up to cents (what a pair's first
    decision registers before the guardrails)."""
    q = np.asarray(window, dtype=np.int64) * MICRO_PER_CENT
    return (2 * sums + q) // (2 * q)


@dataclass(frozen=True, slots=True)
class GuardArrays:
    """One book's guardrails (or one per element) in cents; an unset floor/ceiling holds the API's
    limit, an unset step or ending its flag False."""

    configured: Bools
    floor: I64
    floor_set: Bools
    ceiling: I64
    ceiling_set: Bools
    step_num: I64  # max_step_pct as an integer over step_den (6 decimals at most)
    step_den: I64  # 100 * 10**decimals
    step_set: Bools
    ending: I64  # cents 0..99
    ending_set: Bools

    @classmethod
    def of(cls, rows: list[Guardrails]) -> GuardArrays:
        def column(values: list[int]) -> I64:
            return np.array(values, dtype=np.int64)

        def flags(values: list[bool]) -> Bools:
            return np.array(values, dtype=np.bool_)

        steps = [g.max_step_pct.as_integer_ratio() if g.max_step_pct is not None else (0, 1) for g in rows]
        return cls(
            flags([g.configured for g in rows]),
            column([cents(g.floor) if g.floor is not None else CENTS_MIN for g in rows]),
            flags([g.floor is not None for g in rows]),
            column([cents(g.ceiling) if g.ceiling is not None else CENTS_MAX for g in rows]),
            flags([g.ceiling is not None for g in rows]),
            column([num for num, _ in steps]), column([100 * den for _, den in steps]),
            flags([g.max_step_pct is not None for g in rows]),
            column([cents(g.ending) if g.ending is not None else 0 for g in rows]),
            flags([g.ending is not None for g in rows]))

    def take(self, index: npt.NDArray[np.intp] | npt.NDArray[np.int64]) -> GuardArrays:
        """The rows ``index`` (one per element of a batch)."""
        return GuardArrays(*(getattr(self, name)[index] for name in self.__slots__))

    def head(self, count: int) -> GuardArrays:
        """The first ``count`` rows (views)."""
        return GuardArrays(*(getattr(self, name)[:count] for name in self.__slots__))


def _half_up(x: I64) -> I64:
    """``x / 100`` rounded half away from zero (Decimal's ROUND_HALF_UP), for any sign."""
    return np.where(x >= 0, (x + 50) // 100, -((-x + 50) // 100))


def guard_cents(rule: I64, last: I64, has_last: Bools, g: GuardArrays) -> tuple[I64, npt.NDArray[np.uint8]]:
    """``Guardrails.apply`` on cents: the price and the bits of the guardrails that moved it (0 when
    the price is the rule's). ``last``/``has_last``: the pair's last decided price, if any. Step by
    step as the Decimal code: the target (the rule within floor and ceiling, on its nearest ending),
    then a step toward it that lands on the farthest ending within it, or goes its whole length."""
    low, high, end = g.floor, g.ceiling, g.ending
    bounded = np.minimum(np.maximum(rule, low), high)
    # The target: the nearest n + ending (n whole) to the bounded rule within [low, high], as _nearest_ending.
    first, last_n = -((end - low) // 100), (high - end) // 100
    has_ending = g.ending_set & (first <= last_n)
    target = np.where(has_ending, np.minimum(np.maximum(_half_up(bounded - end), first), last_n) * 100 + end, bounded)
    step = np.maximum(last * g.step_num // g.step_den, 1)
    stepped = has_last & g.step_set & (np.abs(target - last) > step)
    up = target > last
    edge = np.where(up, last + step, last - step)
    at_edge = np.minimum(np.maximum(edge, low), high)  # moves only when the floor/ceiling overrides the step
    forced = stepped & (at_edge != edge)
    # The ending farthest toward the target within the step, as _ending_toward.
    found = np.where(up, (at_edge - end) // 100 * 100 + end, -((end - at_edge) // 100) * 100 + end)
    fits = np.where(up, last < found, found < last) & (low <= found) & (found <= high)
    toward = stepped & g.ending_set & fits
    deferred = stepped & g.ending_set & ~fits
    price = np.where(stepped, np.where(toward, found, at_edge), target)
    ended = np.where(stepped, toward & (found != at_edge), target != bounded)
    beyond = forced | ~stepped  # the floor/ceiling made this price, not the step
    below = beyond & ((rule < low) | (forced & (price == low)))
    above = beyond & ~below & ((rule > high) | (forced & (price == high)))
    bits = np.where(stepped, BIT["step"], 0) | np.where(ended, BIT["ending"], 0)
    bits |= np.where(deferred, BIT["ending_deferred"], 0)
    bits |= np.where(below, np.where(g.floor_set, BIT["floor"], BIT["price_min"]), 0)
    bits |= np.where(above, np.where(g.ceiling_set, BIT["ceiling"], BIT["price_max"]), 0)
    unchanged = (price == rule) | ~g.configured
    return np.where(g.configured, price, rule), np.where(unchanged, 0, bits).astype(np.uint8)


def exact_sum(values: I64) -> int:
    """The sum of at most 2**23 int64 values as a Python int, without overflow (a million sums of 64
    prices of 5,000,000 overflow int64): high and low halves summed apart."""
    if not len(values):
        return 0
    high = values >> 24
    return (int(high.sum()) << 24) + int((values - (high << 24)).sum())
