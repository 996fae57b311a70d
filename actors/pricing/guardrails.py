"""Guardrails: what a seller allows whatever the rule says. Pure: no I/O, no clock, no floats.

The rule proposes, the guardrails dispose. A decision goes toward a **target** and moves there within
the step limit, so that a price always makes progress toward what the rule says:

1. the target is the rule's price held within ``floor`` and ``ceiling`` (and the API's price
   limits), then moved to the nearest price ending in ``ending`` (e.g. ``0.99``; half-way rounds up)
   that the floor and ceiling allow (left alone when no such price lies within them);
2. ``step`` (``max_step_pct``): the price moves at most that percentage of the pair's last decided
   price (rounded down to cents, but at least one cent) toward the target; no limit on a pair's
   first decision, which has no last price. A step that falls short of the target lands on the
   price with the ending farthest toward the target within the step; when none lies within the step
   (a 5% step of a price under 20.00 is under the 1.00 between two .99 prices) the step goes its
   whole length and the ending waits (``ending_deferred``) until the target is within one step.
   The price never goes back, never passes the target, and reaches it in a bounded number of ticks.
3. ``floor`` and ``ceiling`` always hold, even against the step limit: a floor raised by a reload
   is reached at once. A result is never outside [PRICE_MIN, PRICE_MAX].

A decision names the guardrails that moved its price, always in the order of :data:`NAMES`: ``step``
(the step limit held it short of the target), ``ending`` (it was moved onto a price with the ending),
``ending_deferred`` (held short by the step, with no price with the ending within it), ``floor`` or
``ceiling`` (the rule's price was beyond it and the price is not held short of the target by the
step, or it overrode the step limit); ``price_min``/``price_max`` likewise for the API's limits when
no floor/ceiling is set.

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
# Guardrail names, as reported in a decision's ``guardrail`` list, always in this order.
NAMES: Final = ("step", "ending", "ending_deferred", "floor", "ceiling", "price_min", "price_max")
ENDING_SPACING: Final = Decimal(1)  # between two prices with the same ending
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
        """The price to set and the names of the guardrails that moved it (in the order of
        :data:`NAMES`); empty exactly when the price is the rule's. See the module's docstring."""
        if not self.configured:
            return rule_price, ()
        low = self.floor if self.floor is not None else limits.PRICE_MIN
        high = self.ceiling if self.ceiling is not None else limits.PRICE_MAX
        bounded = min(max(rule_price, low), high)
        target = bounded
        if self.ending is not None:
            ending_price = _nearest_ending(bounded, self.ending, low, high)
            target = bounded if ending_price is None else ending_price
        price = target
        stepped = deferred = forced = ended = False
        if self.max_step_pct is not None and last_price is not None:
            step = self.step_at(last_price)
            if abs(target - last_price) > step:
                stepped = True
                edge = last_price + step if target > last_price else last_price - step
                price = min(max(edge, low), high)  # moves only when the floor/ceiling overrides the step
                forced = price != edge
                if self.ending is not None:
                    toward = _ending_toward(last_price, price, self.ending, low, high)
                    deferred = toward is None
                    ended = toward is not None and toward != price
                    price = toward if toward is not None else price
        if price == rule_price:
            return rule_price, ()  # e.g. a step back onto the rule's own price: nothing to explain
        if not stepped:
            ended = target != bounded
        beyond = forced or not stepped  # the floor/ceiling made this price, not the step
        moved: tuple[str, ...] = ("step",) if stepped else ()
        if ended:
            moved += ("ending",)
        if deferred:
            moved += ("ending_deferred",)
        if beyond and (rule_price < low or (forced and price == low)):
            moved += ("floor",) if self.floor is not None else ("price_min",)
        elif beyond and (rule_price > high or (forced and price == high)):
            moved += ("ceiling",) if self.ceiling is not None else ("price_max",)
        return price.quantize(CENT), moved  # built in the order of NAMES

    def step_at(self, last_price: Decimal) -> Decimal:
        """The largest move allowed from ``last_price`` (``max_step_pct`` must be set): rounded down
        to cents, at least one cent, so a price can always move."""
        assert self.max_step_pct is not None
        step = _EXACT.divide(_EXACT.multiply(last_price, self.max_step_pct), HUNDRED)
        return max(step.quantize(CENT, rounding=ROUND_DOWN), CENT)

    def narrow_below(self) -> Decimal | None:
        """The price below which one step is narrower than the 1.00 between two prices with this
        ending (so a price there steps off its ending while it moves: ``ending_deferred``); None
        without both a step limit and an ending, or when no price in [floor, ceiling] is that low."""
        if self.max_step_pct is None or self.ending is None:
            return None
        below = _EXACT.divide(_EXACT.multiply(ENDING_SPACING, HUNDRED), self.max_step_pct)
        low = self.floor if self.floor is not None else limits.PRICE_MIN
        return below.quantize(CENT, rounding=ROUND_CEILING) if low < below else None


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


def _ending_toward(last: Decimal, edge: Decimal, ending: Decimal, low: Decimal, high: Decimal) -> Decimal | None:
    """The price ``n + ending`` farthest from ``last`` toward ``edge``, beyond ``last`` and no farther
    than ``edge``, within [low, high]; None when there is none."""
    if edge > last:
        found = (edge - ending).to_integral_value(rounding=ROUND_FLOOR) + ending
        return found.quantize(CENT) if last < found and low <= found <= high else None
    found = (edge - ending).to_integral_value(rounding=ROUND_CEILING) + ending
    return found.quantize(CENT) if found < last and low <= found <= high else None


class Guarded(NamedTuple):
    """A guarded decision's fields: ``Decision(..., price=g.price, rule_price=g.rule_price,
    guardrail=g.guardrail, previous_price=..., floor=..., ceiling=...)``. ``rule_price`` is None when no
    guardrail is configured at all, so the output stays exactly what it was without guardrails; then
    the other three are None too."""

    price: Decimal
    rule_price: Decimal | None
    guardrail: tuple[str, ...]
    previous_price: Decimal | None = None  # the price the step was measured from
    floor: Decimal | None = None
    ceiling: Decimal | None = None
