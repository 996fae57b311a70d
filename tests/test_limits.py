"""The limits agree: whatever the CSV accepts, the rule turns into a price the APIServer accepts, and
a strategy's factors cannot take it outside. One set of limits (``transport.limits``) for all parts."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from actors.api_server.requests import parse_price as api_price
from actors.csv_rows import parse_price as csv_price
from actors.pricing.rule import PricingRule, avg_comp_price, reprice, to_cents
from transport import limits

competitor_prices = st.decimals(min_value=limits.COMPETITOR_PRICE_MIN, max_value=limits.COMPETITOR_PRICE_MAX,
                                places=limits.PRICE_DECIMALS, allow_nan=False, allow_infinity=False)
factors = st.decimals(min_value=limits.FACTOR_MIN, max_value=limits.FACTOR_MAX, places=3, allow_nan=False,
                      allow_infinity=False)


def sent_prices(window: list[Decimal], factor: Decimal) -> list[Decimal]:
    """Every price the Algorithm may send for this window: the average (first tick) and both rules."""
    rule = PricingRule(len(window), sold_factor=factor, unsold_factor=factor)
    avg = avg_comp_price(window)
    return [to_cents(avg), reprice(avg, True, rule), reprice(avg, False, rule)]


@given(st.lists(competitor_prices, min_size=1, max_size=limits.WINDOW_MAX), factors)
def test_every_price_the_csv_accepts_becomes_a_price_the_api_accepts(window: list[Decimal],
                                                                      factor: Decimal) -> None:
    parsed = [csv_price(str(price)) for price in window]
    assert all(isinstance(price, Decimal) for price in parsed), parsed
    for price in sent_prices([p for p in parsed if isinstance(p, Decimal)], factor):
        assert api_price(str(price)) == price


def test_the_extremes_agree() -> None:
    largest = csv_price("4999999.999999")  # the largest, most precise price the CSV takes
    smallest = csv_price("0.01")
    assert largest == Decimal("4999999.999999") and smallest == Decimal("0.01")
    assert csv_price("5000000.01") == "price_too_large" and csv_price("0.0099") == "price_too_small"
    assert csv_price("1.0000001") == "too_many_decimals"
    assert isinstance(largest, Decimal) and isinstance(smallest, Decimal)
    for window, factor in (([largest] * 5, limits.FACTOR_MAX), ([smallest] * 5, limits.FACTOR_MIN),
                           ([Decimal("5000000")] * 64, Decimal("1.1"))):
        for price in sent_prices(window, factor):
            assert limits.PRICE_MIN <= api_price(str(price)) <= limits.PRICE_MAX


def test_default_rule_after_a_sale_at_the_largest_competitor_price() -> None:
    """The seed's x1.1 on the largest price the CSV accepts: within the API's range (the old limits let
    a 950,000 book that sold fail with a 400 on every tick)."""
    price = reprice(avg_comp_price([limits.COMPETITOR_PRICE_MAX] * 5), True)
    assert price == Decimal("5500000.00")
    assert api_price(str(price)) == price


def test_a_factor_outside_the_limits_is_refused() -> None:
    for factor in (limits.FACTOR_MIN - Decimal("0.001"), limits.FACTOR_MAX + Decimal("0.001")):
        try:
            PricingRule(sold_factor=factor)
        except ValueError:
            continue
        raise AssertionError(f"factor {factor} accepted")
