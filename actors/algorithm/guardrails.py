"""Guardrails: what a seller allows whatever the rule says. Pure: no I/O, no clock, no floats.

The rule proposes, the guardrails dispose. Applied to the rule's price, always in this order:

1. ``step`` (``max_step_pct``): the price moves at most that percentage away from the pair's last
   decided price (rounded down to cents, but at least one cent, so a price can always move); no
   limit on a pair's first decision, which has no last price.
2. ``ending`` (e.g. ``0.99``): the nearest price ending in .99 that the step limit and the floor and
   ceiling allow (half-way rounds up); left alone when none lies within those bounds.
3. ``floor`` / ``ceiling`` last, so that they always hold, even against the step limit (a floor
   raised by a reload is reached at once). A result is never outside [PRICE_MIN, PRICE_MAX].

The value parsers (:func:`parse_money`, :func:`parse_step_pct`, :func:`parse_ending`) are the one
validation of these values, shared by the TOML config and the catalog CSV.
"""

from __future__ import annotations

import decimal
import re
from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_DOWN, ROUND_FLOOR, ROUND_HALF_UP, Decimal
from types import MappingProxyType
from typing import Final, NamedTuple

from transport import limits

CENT: Final = Decimal("0.01")
HUNDRED: Final = Decimal(100)
STEP_MAX: Final = HUNDRED
FIELDS: Final = ("floor", "ceiling", "max_step_pct", "ending")
# Guardrail names, as reported in a decision's ``guardrail`` list, in the order they are applied.
NAMES: Final = ("step", "ending", "floor", "ceiling", "price_min", "price_max")
# Enough digits for any product of a price (<= 10^7, cents) and a percentage (<= 100, 6 decimals).
_EXACT: Final = decimal.Context(prec=60, rounding=ROUND_HALF_UP)
# A plain decimal in ASCII digits (Decimal() also reads Arabic-Indic digits, '1_000', 'NaN', exponents).
_PLAIN: Final = re.compile(r"[0-9]{1,12}(?:\.[0-9]{1,12})?")
_STEP_DECIMALS: Final = 6
_CENTS: Final = re.compile(r"[0-9]{1,8}(?:\.[0-9]{1,2})?")


def _plain(text: str) -> Decimal | None:
    return Decimal(text) if _PLAIN.fullmatch(text) else None


def _decimals(value: Decimal) -> int:
    exponent = value.as_tuple().exponent
    return -exponent if isinstance(exponent, int) and exponent < 0 else 0


def parse_money(text: str) -> Decimal | str:
    """A floor or ceiling: a price the API accepts, in cents. Returns the value or why not."""
    if _CENTS.fullmatch(text):  # the common case, in one step
        cents = Decimal(text).quantize(CENT)
        if limits.PRICE_MIN <= cents <= limits.PRICE_MAX:
            return cents
    value = _plain(text.strip())
    if value is None:
        return "not a decimal number such as 12.99 (ASCII digits, no sign or exponent)"
    if _decimals(value) > 2:
        return "more than 2 decimals (a price is in cents)"
    if not limits.PRICE_MIN <= value <= limits.PRICE_MAX:
        return f"must be within {limits.PRICE_MIN}..{limits.PRICE_MAX}"
    return value.quantize(CENT)  # "12" is 12.00: printed as a price


def parse_step_pct(text: str) -> Decimal | str:
    """``max_step_pct``: a percentage in (0, 100]."""
    value = _plain(text.strip())
    if value is None:
        return "not a decimal number such as 5 or 2.5 (ASCII digits, no sign or exponent)"
    if _decimals(value) > _STEP_DECIMALS:
        return f"more than {_STEP_DECIMALS} decimals"
    if not 0 < value <= STEP_MAX:
        return f"must be a percentage in (0, {STEP_MAX}]"
    return value


def parse_ending(text: str) -> Decimal | str:
    """``ending``: the cents a price should end in, in [0, 1) (``0.99``, ``0.95``, ``0`` for whole units)."""
    value = _plain(text.strip())
    if value is None:
        return "not a decimal number such as 0.99 (ASCII digits, no sign or exponent)"
    if _decimals(value) > 2:
        return "more than 2 decimals (an ending is in cents)"
    if not 0 <= value < 1:
        return "must be within [0, 1), e.g. 0.99"
    return value


PARSERS: Final = MappingProxyType({"floor": parse_money, "ceiling": parse_money, "max_step_pct": parse_step_pct,
                                   "ending": parse_ending})


@dataclass(frozen=True, slots=True)
class Guardrails:
    """One book's guardrails; ``None`` means not set. Build with :meth:`checked` to validate."""

    floor: Decimal | None = None
    ceiling: Decimal | None = None
    max_step_pct: Decimal | None = None
    ending: Decimal | None = None

    @property
    def configured(self) -> bool:
        return not (self.floor is None and self.ceiling is None and self.max_step_pct is None
                    and self.ending is None)

    def problem(self) -> tuple[str, str] | None:
        """The first (field, reason) that makes these guardrails invalid, or None."""
        for name in FIELDS:
            value = getattr(self, name)
            if value is not None:
                if not isinstance(value, Decimal) or not value.is_finite():
                    return name, "must be a finite decimal"
                reason = PARSERS[name](str(value))
                if isinstance(reason, str):
                    return name, reason
        if self.floor is not None and self.ceiling is not None and self.floor > self.ceiling:
            return "floor", f"floor {self.floor} is above the ceiling {self.ceiling}"
        return None

    def override(self, other: Guardrails) -> Guardrails:
        """These guardrails with every field ``other`` sets replaced (a per-book row over the defaults)."""
        if not other.configured:
            return self
        return Guardrails(self.floor if other.floor is None else other.floor,
                          self.ceiling if other.ceiling is None else other.ceiling,
                          self.max_step_pct if other.max_step_pct is None else other.max_step_pct,
                          self.ending if other.ending is None else other.ending)

    def apply(self, rule_price: Decimal, last_price: Decimal | None) -> tuple[Decimal, tuple[str, ...]]:
        """The price to set and the names of the guardrails that moved it, in the order applied; empty
        exactly when the price is the rule's."""
        if not self.configured:
            return rule_price, ()
        moved: list[str] = []
        low = self.floor if self.floor is not None else limits.PRICE_MIN
        high = self.ceiling if self.ceiling is not None else limits.PRICE_MAX
        price = rule_price
        band_low, band_high = low, high
        if self.max_step_pct is not None and last_price is not None:
            step = _EXACT.divide(_EXACT.multiply(last_price, self.max_step_pct), HUNDRED)
            step = max(step.quantize(CENT, rounding=ROUND_DOWN), CENT)
            step_low, step_high = last_price - step, last_price + step
            stepped = min(max(price, step_low), step_high)
            if stepped != price:
                moved.append("step")
                price = stepped
            band_low, band_high = max(band_low, step_low), min(band_high, step_high)
        if self.ending is not None:
            ended = _nearest_ending(price, self.ending, max(band_low, limits.PRICE_MIN),
                                    min(band_high, limits.PRICE_MAX))
            if ended is not None and ended != price:
                moved.append("ending")
                price = ended
        if price < low:
            moved.append("floor" if self.floor is not None else "price_min")
            price = low.quantize(CENT)
        elif price > high:
            moved.append("ceiling" if self.ceiling is not None else "price_max")
            price = high.quantize(CENT)
        if price == rule_price:
            return rule_price, ()  # moved and moved back (a step, then the floor): nothing to explain
        return price, tuple(moved)


NONE: Final = Guardrails()


def _nearest_ending(price: Decimal, ending: Decimal, low: Decimal, high: Decimal) -> Decimal | None:
    """The price ``n + ending`` (n a whole number) nearest to ``price`` within [low, high], or None."""
    if low > high:
        return None
    first = (low - ending).to_integral_value(rounding=ROUND_CEILING)
    last = (high - ending).to_integral_value(rounding=ROUND_FLOOR)
    if first > last:
        return None
    nearest = (price - ending).to_integral_value(rounding=ROUND_HALF_UP)
    return (min(max(nearest, first), last) + ending).quantize(CENT)


class Guarded(NamedTuple):
    """A guarded decision's fields: ``Decision(..., price=g.price, rule_price=g.rule_price,
    guardrail=g.guardrail)``. ``rule_price`` is None when no guardrail is configured at all, so the
    output stays exactly what it was without guardrails."""

    price: Decimal
    rule_price: Decimal | None
    guardrail: tuple[str, ...]
