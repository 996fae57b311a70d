from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from actors.pricing.rule import (
    CENT,
    PricingRule,
    avg_comp_price,
    mean_of_total,
    reprice,
    reprice_total,
    reprice_window,
    to_cents,
    window_total,
)

money = st.decimals(min_value=Decimal("0.01"), max_value=Decimal("100000"), places=2)
windows = st.lists(money, min_size=5, max_size=5)


def test_the_task_example() -> None:
    prices = [Decimal(p) for p in ("10.00", "11.00", "12.10", "13.00", "14.00")]
    avg = avg_comp_price(prices)
    assert avg == Decimal("12.02")
    assert reprice(avg, sold=True) == Decimal("13.22")  # 13.222 -> 13.22
    assert reprice(avg, sold=False) == Decimal("10.82")  # 10.818 -> 10.82


def test_rounds_half_up_not_to_even() -> None:
    assert reprice(Decimal("10.05"), sold=False) == Decimal("9.05")  # 9.045 -> 9.05
    assert reprice(Decimal("0.05"), sold=True) == Decimal("0.06")  # 0.055 -> 0.06


@given(windows)
def test_average_is_the_exact_mean(prices: list[Decimal]) -> None:
    avg = avg_comp_price(prices)
    assert avg * 5 == sum(prices)
    assert min(prices) <= avg <= max(prices)


@given(windows, st.booleans())
def test_price_is_avg_times_factor_rounded_half_up_to_cents(prices: list[Decimal], sold: bool) -> None:
    avg = avg_comp_price(prices)
    price = reprice(avg, sold)
    factor = Decimal("1.1") if sold else Decimal("0.9")
    assert price == (avg * factor).quantize(CENT, rounding=ROUND_HALF_UP)
    assert price.as_tuple().exponent == -2
    assert abs(price - avg * factor) <= Decimal("0.005")
    # Rounding is monotonic, so a sale never prices below the average in cents, nor no sale above it
    # (the price itself may pass the exact average: 0.9 x 0.018 rounds up to 0.02).
    assert (price >= to_cents(avg)) if sold else (price <= to_cents(avg))


@given(windows)
def test_a_sale_never_prices_below_no_sale(prices: list[Decimal]) -> None:
    avg = avg_comp_price(prices)
    assert reprice(avg, True) >= reprice(avg, False)


def test_custom_rule() -> None:
    rule = PricingRule(window=3, sold_factor=Decimal("1.5"), unsold_factor=Decimal("0.5"))
    assert reprice(Decimal("10"), True, rule) == Decimal("15.00")
    assert reprice(Decimal("10"), False, rule) == Decimal("5.00")


@pytest.mark.parametrize("kwargs", [{"window": 0}, {"window": 65}, {"sold_factor": Decimal("0")},
                                    {"unsold_factor": Decimal("-1")}, {"sold_factor": Decimal("NaN")}])
def test_bad_rules_are_rejected(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        PricingRule(**kwargs)  # type: ignore[arg-type]


def test_average_of_nothing_is_an_error() -> None:
    with pytest.raises(ValueError):
        avg_comp_price([])


def exact_price(prices: list[Decimal], factor: Decimal) -> Decimal:
    """The rule in fractions: no precision at all to lose. Half-up to cents."""
    cents = Fraction(sum(prices, Decimal(0))) * Fraction(factor) * 100 / len(prices)
    whole = cents.numerator // cents.denominator
    return Decimal(whole + (cents - whole >= Fraction(1, 2))) / 100


def test_a_price_on_a_half_cent_from_a_mean_that_does_not_terminate_rounds_up() -> None:
    # Exactly 943605.345: the 60-digit mean (1048450.38333...) times 0.9 lands just below it.
    prices = [Decimal("3145351.13"), Decimal("0.01"), Decimal("0.01")]
    assert reprice_window(prices, False, PricingRule(window=3)) == Decimal("943605.35")
    assert reprice(avg_comp_price(prices), False) == Decimal("943605.34")  # why the window is used


half_cent_windows = st.integers(1, 10).flatmap(lambda n: st.lists(money, min_size=n, max_size=n))


@example([Decimal("3145351.13"), Decimal("0.01"), Decimal("0.01")], False, "0.9")
@given(half_cent_windows, st.booleans(), st.sampled_from(["0.9", "1.1", "0.75", "1.333", "0.6"]))
def test_the_price_from_the_window_is_the_exact_rule_for_any_window_and_factor(
        prices: list[Decimal], sold: bool, factor: str) -> None:
    rule = PricingRule(window=len(prices), sold_factor=Decimal(factor), unsold_factor=Decimal(factor))
    assert reprice_window(prices, sold, rule) == exact_price(prices, Decimal(factor)).quantize(CENT)


@example([Decimal("3145351.13"), Decimal("0.01"), Decimal("0.01")], False, "0.9")
@given(half_cent_windows, st.booleans(), st.sampled_from(["0.9", "1.1", "0.75", "1.333", "0.6"]))
def test_a_window_summed_once_gives_the_same_mean_and_price(prices: list[Decimal], sold: bool, factor: str) -> None:
    """The Algorithm sums a window once, for its mean and its price: the same numbers, to the digit."""
    rule = PricingRule(window=len(prices), sold_factor=Decimal(factor), unsold_factor=Decimal(factor))
    total = window_total(prices)
    assert total == sum(prices, Decimal(0))
    mean, price = mean_of_total(total, len(prices)), reprice_total(total, len(prices), sold, rule)
    assert str(mean) == str(avg_comp_price(prices))  # the printed text, not only the value
    exact = exact_price(prices, Decimal(factor)).quantize(CENT)
    assert str(price) == str(reprice_window(prices, sold, rule)) == str(exact)
