"""The pricing rule, pure: no I/O, no clock, no floats.

The task's rule: after a sale price the book at ``avg_comp_price * 1.1``, after none at
``avg_comp_price * 0.9``, where ``avg_comp_price`` is the exact mean of the competitor's last 5 prices.
The window and both factors are parameters so a strategy can override them.
"""

from __future__ import annotations

import decimal
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Final

from transport import limits

CENT: Final = Decimal("0.01")
# The mean's precision is a system-wide fact (limits.MEAN_DIGITS): the codec and the Ledger bound its
# text by it. A terminating mean of any window we accept is exact at that precision (a window of 64
# prices of 6 decimals adds 6 more); a repeating one (3, 6, 7, 9 prices) is rounded to it (see
# docs/limits.md on a price exactly on a half cent).
_EXACT: Final = decimal.Context(prec=limits.MEAN_DIGITS, rounding=ROUND_HALF_UP)


@dataclass(frozen=True, slots=True)
class PricingRule:
    window: int = limits.WINDOW_DEFAULT
    sold_factor: Decimal = Decimal("1.1")
    unsold_factor: Decimal = Decimal("0.9")

    def __post_init__(self) -> None:
        if not 1 <= self.window <= limits.WINDOW_MAX:
            raise ValueError(f"window must be 1..{limits.WINDOW_MAX}, got {self.window}")
        for name in ("sold_factor", "unsold_factor"):
            factor = getattr(self, name)
            if (not isinstance(factor, Decimal) or not factor.is_finite()
                    or not limits.FACTOR_MIN <= factor <= limits.FACTOR_MAX
                    or -int(factor.as_tuple().exponent) > limits.FACTOR_DECIMALS):
                raise ValueError(f"{name} must be a decimal within {limits.FACTOR_MIN}..{limits.FACTOR_MAX} with at "
                                 f"most {limits.FACTOR_DECIMALS} decimals (every decision carries it), got {factor!r}")

    def factor(self, sold: bool) -> Decimal:
        return self.sold_factor if sold else self.unsold_factor


def window_total(prices: Sequence[Decimal]) -> Decimal:
    """The exact sum of the competitor's prices (a window's prices have at most 6 decimals): a decision
    sums its window once, for its mean (:func:`mean_of_total`) and its price (:func:`reprice_total`)."""
    if not prices:
        raise ValueError("no competitor prices to average")
    total = _EXACT.create_decimal(0)
    for price in prices:
        total = _EXACT.add(total, price)
    return total


def avg_comp_price(prices: Sequence[Decimal]) -> Decimal:
    """The exact mean of the competitor's prices (not rounded: rounding happens once, on the price)."""
    return mean_of_total(window_total(prices), len(prices))


def mean_of_total(total: Decimal, count: int) -> Decimal:
    """:func:`avg_comp_price` of a window of ``count`` prices whose :func:`window_total` is ``total``."""
    return _EXACT.divide(total, Decimal(count))


def to_cents(amount: Decimal) -> Decimal:
    """Money as sent to Amazon: rounded half-up to cents."""
    return amount.quantize(CENT, rounding=ROUND_HALF_UP)


def reprice(avg: Decimal, sold: bool, rule: PricingRule = PricingRule()) -> Decimal:
    """The new price from a mean: ``avg * factor``, rounded half-up to cents. Exact for a mean that
    terminates; a decision is priced from its window (:func:`reprice_window`)."""
    return _EXACT.multiply(avg, rule.factor(sold)).quantize(CENT, rounding=ROUND_HALF_UP)


def reprice_window(prices: Sequence[Decimal], sold: bool, rule: PricingRule = PricingRule()) -> Decimal:
    """The new price: the window's mean times the factor, rounded half-up to cents, computed as
    ``sum * factor / N`` so that it is exact: the mean of 3, 6, 7 or 9 prices does not terminate, and
    its 60 digits times 0.9 can land just below a half cent the exact price is on (3145351.13, 0.01,
    0.01 after no sale: exactly 943605.345, so 943605.35; from the rounded mean, 943605.34). A price on
    a half cent terminates, so the division at 60 digits is exact there."""
    return reprice_total(window_total(prices), len(prices), sold, rule)


def reprice_total(total: Decimal, count: int, sold: bool, rule: PricingRule = PricingRule()) -> Decimal:
    """:func:`reprice_window` of a window of ``count`` prices whose :func:`window_total` is ``total`` (the
    Algorithm sums a window once for its mean and its price: 0.69x the pricing of a decision, in one
    process, docs/performance.md)."""
    scaled = _EXACT.multiply(total, rule.factor(sold))
    return _EXACT.divide(scaled, Decimal(count)).quantize(CENT, rounding=ROUND_HALF_UP)


def refusal(price: Decimal) -> str | None:
    """Why ``price`` may not be set or sent (a counter-friendly reason), or None when the API takes it:
    within [PRICE_MIN, PRICE_MAX], in cents."""
    if not price.is_finite():
        return "price_not_finite"
    if price < limits.PRICE_MIN:
        return "price_below_min"
    if price > limits.PRICE_MAX:
        return "price_above_max"
    if price != price.quantize(CENT):
        return "price_not_cents"
    return None
