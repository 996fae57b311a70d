"""The backtest's integer arithmetic is the live rule and guardrails, to the cent: property tests against
``pricing.reprice``/``to_cents`` and ``Guardrails.apply`` (the Decimal code the Algorithm runs)."""

from __future__ import annotations

from decimal import Decimal

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from actors.algorithm.backtest import cents
from actors.algorithm.backtest.cents import GuardArrays, RuleArith
from actors.pricing.guardrails import Guardrails
from actors.pricing.rule import PricingRule, avg_comp_price, reprice, to_cents
from tests.actors.pricing.test_guardrails import guardrails, prices, small_prices
from transport import limits

competitor = st.decimals(min_value=limits.COMPETITOR_PRICE_MIN, max_value=limits.COMPETITOR_PRICE_MAX, places=6)
cheap = st.decimals(min_value=limits.COMPETITOR_PRICE_MIN, max_value=Decimal(100), places=6)
# Factors with few decimals (the usual), and with up to 30 (exact in integers, via Python ints).
factors = (st.decimals(min_value=limits.FACTOR_MIN, max_value=limits.FACTOR_MAX, places=3)
           | st.decimals(min_value=limits.FACTOR_MIN, max_value=limits.FACTOR_MAX, places=30))


def window_sum(window: list[Decimal]) -> int:
    return sum(cents.micro(p) for p in window)


@settings(max_examples=500, deadline=None)
@given(st.lists(competitor | cheap, min_size=1, max_size=limits.WINDOW_MAX), factors, factors, st.booleans())
def test_the_rule_in_cents_is_the_decimal_rule(window: list[Decimal], sold_factor: Decimal, unsold_factor: Decimal,
                                               sold: bool) -> None:
    rule = PricingRule(len(window), sold_factor, unsold_factor)
    arith = RuleArith.of(rule)
    assert arith.exact
    got = cents.rule_cents(np.array([window_sum(window)], dtype=np.int64), np.array([sold]), arith.sold_num,
                           arith.unsold_num, arith.q)
    assert cents.to_decimal(int(got[0])) == reprice(avg_comp_price(window), sold, rule)


@settings(max_examples=300, deadline=None)
@given(st.lists(competitor | cheap, min_size=1, max_size=limits.WINDOW_MAX))
def test_the_first_registered_price_is_the_mean_in_cents(window: list[Decimal]) -> None:
    got = cents.mean_cents(np.array([window_sum(window)], dtype=np.int64), len(window))
    assert cents.to_decimal(int(got[0])) == to_cents(avg_comp_price(window))


def test_many_rows_of_mixed_rules_at_once() -> None:
    # Per element factors and windows, int64 and object paths, against the Decimal rule one by one.
    rng = np.random.default_rng(7)
    rules = [PricingRule(5), PricingRule(3, Decimal("1.07"), Decimal("0.93")),
             PricingRule(64, Decimal("1.999999999999"), Decimal("0.500000000001"))]
    for huge in (False, True):
        windows = [[Decimal(int(x)).scaleb(-6) for x in rng.integers(10_000, 5 * 10**12 if huge else 10**8, r.window)]
                   for r in rules for _ in range(20)]
        chosen = [r for r in rules for _ in range(20)]
        arith = [RuleArith.of(r) for r in chosen]
        sold = rng.integers(0, 2, len(chosen)).astype(bool)
        got = cents.rule_cents(np.array([window_sum(w) for w in windows], dtype=np.int64), sold,
                               np.array([a.sold_num for a in arith], dtype=object),
                               np.array([a.unsold_num for a in arith], dtype=object),
                               np.array([a.q for a in arith], dtype=object))
        want = [reprice(avg_comp_price(w), bool(s), r) for w, s, r in zip(windows, sold, chosen, strict=True)]
        assert [cents.to_decimal(int(c)) for c in got] == want


def guarded(g: Guardrails, rule: Decimal, last: Decimal | None) -> tuple[Decimal, tuple[str, ...]]:
    arrays = GuardArrays.of([g])
    price, bits = cents.guard_cents(np.array([cents.cents(rule)], dtype=np.int64),
                                    np.array([cents.cents(last) if last is not None else 0], dtype=np.int64),
                                    np.array([last is not None]), arrays)
    return cents.to_decimal(int(price[0])), cents.names(int(bits[0]))


@settings(max_examples=1000, deadline=None)
@given(guardrails(), prices, st.none() | prices)
def test_the_guardrails_in_cents_are_the_decimal_guardrails(g: Guardrails, rule: Decimal,
                                                            last: Decimal | None) -> None:
    assert guarded(g, rule, last) == g.apply(rule, last)


@settings(max_examples=1000, deadline=None)
@given(guardrails(small_prices), small_prices, st.none() | small_prices)
def test_the_guardrails_in_cents_near_their_edges(g: Guardrails, rule: Decimal, last: Decimal | None) -> None:
    # Small prices: the step, the ending and the floor/ceiling all bind often, alone and together.
    assert guarded(g, rule, last) == g.apply(rule, last)


def test_a_batch_of_books_with_their_own_guardrails() -> None:
    rows = [Guardrails(), Guardrails(Decimal("17.50"), None, None, Decimal("0.49")),
            Guardrails(Decimal("5.00"), Decimal("20.00"), Decimal("2.5"), Decimal("0.99")),
            Guardrails(None, Decimal("0.05"), Decimal("100"), Decimal("0.99"))]
    rng = np.random.default_rng(3)
    index = rng.integers(0, len(rows), 500)
    rule = rng.integers(1, 4000, 500)
    last = rng.integers(1, 4000, 500)
    has_last = rng.integers(0, 2, 500).astype(bool)
    price, bits = cents.guard_cents(rule, last, has_last, GuardArrays.of(rows).take(index))
    for i in range(500):
        want = rows[index[i]].apply(cents.to_decimal(int(rule[i])),
                                    cents.to_decimal(int(last[i])) if has_last[i] else None)
        assert (cents.to_decimal(int(price[i])), cents.names(int(bits[i]))) == want


def test_exact_sum_does_not_overflow() -> None:
    values = np.full(1_000_000, 64 * 5 * 10**12, dtype=np.int64)
    assert cents.exact_sum(values) == 1_000_000 * 64 * 5 * 10**12
    assert cents.exact_sum(np.array([-5, 7, 2**62], dtype=np.int64)) == 2 + 2**62
