from decimal import ROUND_DOWN, Decimal

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from actors.algorithm.guardrails import NONE, Guardrails, parse_ending, parse_money, parse_step_pct
from transport import limits

CENT = Decimal("0.01")
prices = st.decimals(min_value=limits.PRICE_MIN, max_value=limits.PRICE_MAX, places=2)
small_prices = st.decimals(min_value=limits.PRICE_MIN, max_value=Decimal(1000), places=2)
steps = st.decimals(min_value=Decimal("0.000001"), max_value=Decimal(100), places=6).filter(lambda d: d > 0)
endings = st.decimals(min_value=Decimal(0), max_value=Decimal("0.99"), places=2)


@st.composite
def guardrails(draw: st.DrawFn, price: st.SearchStrategy[Decimal] = prices) -> Guardrails:
    floor = draw(st.none() | price)
    ceiling = draw(st.none() | price)
    if floor is not None and ceiling is not None and floor > ceiling:
        floor, ceiling = ceiling, floor
    return Guardrails(floor, ceiling, draw(st.none() | steps), draw(st.none() | endings))


def allowed_step(last: Decimal, pct: Decimal) -> Decimal:
    return max((last * pct / 100).quantize(CENT, rounding=ROUND_DOWN), CENT)


@given(prices, st.none() | prices)
def test_no_guardrail_gives_the_rules_price(rule: Decimal, last: Decimal | None) -> None:
    assert NONE.apply(rule, last) == (rule, ())


@given(guardrails(), prices, st.none() | prices)
def test_the_result_lies_within_floor_ceiling_and_the_price_limits(g: Guardrails, rule: Decimal,
                                                                   last: Decimal | None) -> None:
    assume(g.configured)
    price, moved = g.apply(rule, last)
    assert limits.PRICE_MIN <= price <= limits.PRICE_MAX
    assert g.floor is None or price >= g.floor
    assert g.ceiling is None or price <= g.ceiling
    assert price.as_tuple().exponent == -2  # cents, printable as a price
    assert (price != rule) == bool(moved)  # a guardrail is named exactly when the price is not the rule's


@given(guardrails(small_prices), small_prices, small_prices)
def test_the_step_limit_holds_against_the_last_price(g: Guardrails, rule: Decimal, last: Decimal) -> None:
    # Whenever the last price lies within the floor and ceiling, the floor/ceiling never break the step.
    assume(g.max_step_pct is not None)
    assume((g.floor is None or g.floor <= last) and (g.ceiling is None or last <= g.ceiling))
    assert g.max_step_pct is not None
    price, _ = g.apply(rule, last)
    assert abs(price - last) <= allowed_step(last, g.max_step_pct)


@given(guardrails(small_prices), small_prices, st.none() | small_prices)
def test_idempotent(g: Guardrails, rule: Decimal, last: Decimal | None) -> None:
    price, _ = g.apply(rule, last)
    assert g.apply(price, last) == (price, ())


@given(guardrails(), prices, st.none() | prices)
def test_moved_by_names_known_guardrails_in_order(g: Guardrails, rule: Decimal, last: Decimal | None) -> None:
    _, moved = g.apply(rule, last)
    order = ("step", "ending", "floor", "ceiling", "price_min", "price_max")
    assert list(moved) == sorted(moved, key=order.index)
    assert not ({"floor", "ceiling"} <= set(moved))


@given(endings, st.decimals(min_value=Decimal(2), max_value=Decimal(100000), places=2))
def test_an_ending_alone_rounds_to_the_nearest_such_price(ending: Decimal, rule: Decimal) -> None:
    price, moved = Guardrails(ending=ending).apply(rule, None)
    assert price - int(price) == ending
    assert abs(price - rule) <= Decimal("0.5")
    assert moved == (() if price == rule else ("ending",))


def test_examples() -> None:
    g = Guardrails(floor=Decimal("10.00"), ceiling=Decimal("50.00"))
    assert g.apply(Decimal("0.01"), None) == (Decimal("10.00"), ("floor",))
    assert g.apply(Decimal("99.00"), None) == (Decimal("50.00"), ("ceiling",))
    assert g.apply(Decimal("20.00"), None) == (Decimal("20.00"), ())
    ninety_nine = Guardrails(ending=Decimal("0.99"))
    assert ninety_nine.apply(Decimal("12.40"), None) == (Decimal("11.99"), ("ending",))
    assert ninety_nine.apply(Decimal("12.49"), None) == (Decimal("12.99"), ("ending",))  # half-way goes up
    assert ninety_nine.apply(Decimal("12.99"), None) == (Decimal("12.99"), ())
    # The ending stays within the floor: 10.99 rather than 9.99 under a floor of 10.
    both = Guardrails(floor=Decimal("10.00"), ending=Decimal("0.99"))
    assert both.apply(Decimal("10.20"), None) == (Decimal("10.99"), ("ending",))
    whole = Guardrails(ending=Decimal("0"))
    assert whole.apply(Decimal("12.50"), None) == (Decimal("13.00"), ("ending",))


def test_a_step_limit_turns_a_jump_into_steps_that_converge() -> None:
    g = Guardrails(max_step_pct=Decimal(5))
    last, target, ticks = Decimal("100.00"), Decimal("130.00"), 0
    while last != target:
        price, moved = g.apply(target, last)
        assert price - last <= last * Decimal("0.05") and moved in (("step",), ())
        last, ticks = price, ticks + 1
        assert ticks < 10
    assert ticks == 6  # 105, 110.25, 115.76, 121.54, 127.61, 130


def test_the_step_always_allows_a_cent() -> None:
    assert Guardrails(max_step_pct=Decimal(1)).apply(Decimal("0.50"), Decimal("0.10")) == (Decimal("0.11"), ("step",))


def test_the_floor_wins_over_the_step() -> None:
    g = Guardrails(floor=Decimal("20.00"), max_step_pct=Decimal(5))
    assert g.apply(Decimal("15.00"), Decimal("10.00")) == (Decimal("20.00"), ("step", "floor"))


@pytest.mark.parametrize(("parse", "text", "expected"), [
    (parse_money, "12.5", Decimal("12.50")), (parse_money, "12", Decimal("12.00")),
    (parse_money, "0.001", "more than 2 decimals"), (parse_money, "0", "must be within"),
    (parse_money, "10000000.01", "must be within"), (parse_money, "-1", "not a decimal"),
    (parse_money, "1e3", "not a decimal"), (parse_money, "١٢", "not a decimal"), (parse_money, "NaN", "not a decimal"),
    (parse_step_pct, "5", Decimal(5)), (parse_step_pct, "100", Decimal(100)), (parse_step_pct, "0", "percentage"),
    (parse_step_pct, "100.5", "percentage"), (parse_ending, "0.99", Decimal("0.99")), (parse_ending, "0", Decimal(0)),
    (parse_ending, "1", "within [0, 1)"), (parse_ending, "0.999", "more than 2 decimals"),
])
def test_value_parsers(parse: object, text: str, expected: Decimal | str) -> None:
    assert callable(parse)
    result = parse(text)
    if isinstance(expected, str):
        assert isinstance(result, str) and expected in result
    else:
        assert result == expected and str(result) == str(expected)


def test_validation() -> None:
    assert Guardrails(Decimal(10), Decimal(5)).problem() == ("floor", "floor 10 is above the ceiling 5")
    assert Guardrails(max_step_pct=Decimal(0)).problem() is not None
    assert Guardrails(ending=Decimal("1.5")).problem() is not None
    assert Guardrails(floor=Decimal("NaN")).problem() is not None
    assert Guardrails(Decimal("1.00"), Decimal("2.00"), Decimal(5), Decimal("0.99")).problem() is None
    base = Guardrails(floor=Decimal(1), ending=Decimal("0.99"))
    assert base.override(Guardrails(floor=Decimal(2))) == Guardrails(floor=Decimal(2), ending=Decimal("0.99"))
