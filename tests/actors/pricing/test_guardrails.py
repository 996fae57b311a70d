from decimal import ROUND_CEILING, ROUND_DOWN, Decimal

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from actors.pricing.guardrails import NAMES, NONE, Guardrails, parse_ending, parse_money, parse_step_pct
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
def test_a_price_the_guardrails_allow_is_left_alone(g: Guardrails, rule: Decimal, last: Decimal | None) -> None:
    # A price the guardrails made without the step holding it short (within floor and ceiling, on its
    # ending, within a step of the last price) is left as it is when the rule says it.
    price, moved = g.apply(rule, last)
    assume("step" not in moved)
    assert g.apply(price, last) == (price, ())


@given(guardrails(), prices, st.none() | prices)
def test_moved_by_names_known_guardrails_in_order(g: Guardrails, rule: Decimal, last: Decimal | None) -> None:
    _, moved = g.apply(rule, last)
    assert list(moved) == sorted(moved, key=NAMES.index)
    assert len(set(moved)) == len(moved)
    assert not ({"floor", "ceiling"} <= set(moved))
    assert not ({"ending", "ending_deferred"} <= set(moved))
    assert "ending_deferred" not in moved or "step" in moved


@given(guardrails(small_prices), small_prices, st.none() | small_prices)
def test_labels_say_which_guardrail_made_the_price(g: Guardrails, rule: Decimal, last: Decimal | None) -> None:
    price, moved = g.apply(rule, last)
    low = g.floor if g.floor is not None else limits.PRICE_MIN
    if "step" in moved:  # held short of where it goes, by at most a step (unless the floor/ceiling overrode it)
        assert last is not None and g.max_step_pct is not None
        assert abs(price - last) <= g.step_at(last) or moved[-1] in ("floor", "ceiling", "price_min", "price_max")
    if "ending" in moved:
        assert g.ending is not None and price - int(price) == g.ending
    if "ending_deferred" in moved:
        assert g.ending is not None and price - int(price) != g.ending
    if "floor" in moved or "price_min" in moved:
        assert rule < low or price == low
    if g.floor is not None and g.ending is None and g.max_step_pct is None and rule < g.floor:
        assert moved == ("floor",) and price == g.floor  # the floor alone is always named


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


def test_issue_21_a_step_narrower_than_the_ending_no_longer_freezes_the_price() -> None:
    # 5% of 17.99 is 0.89: no .99 price lies within a step. It used to stay at 17.99 for ever (the
    # ending pulled the stepped 18.88 back to 17.99); now it steps the whole way, the ending waiting.
    g = Guardrails(floor=Decimal("13.50"), max_step_pct=Decimal(5), ending=Decimal("0.99"))
    last, seen = Decimal("17.99"), []
    for _ in range(8):
        last, moved = g.apply(Decimal("21.68"), last)
        seen.append((str(last), moved))
    assert seen[:6] == [("18.88", ("step", "ending_deferred")), ("18.99", ("step", "ending")),
                        ("19.93", ("step", "ending_deferred")), ("19.99", ("step", "ending")),
                        ("20.98", ("step", "ending_deferred")), ("21.99", ("ending",))]
    assert seen[6:] == [("21.99", ("ending",))] * 2  # there it stays
    # Down as well: from 16.49 toward a rule of 12.52 under a floor of 13.50 (ending .49): the target is
    # 14.49, the lowest .49 price the floor allows.
    down = Guardrails(floor=Decimal("13.50"), max_step_pct=Decimal(5), ending=Decimal("0.49"))
    last, seen = Decimal("16.49"), []
    for _ in range(5):
        last, moved = down.apply(Decimal("12.52"), last)
        seen.append((str(last), moved))
    assert seen == [("15.67", ("step", "ending_deferred")), ("15.49", ("step", "ending")),
                    ("14.72", ("step", "ending_deferred")), ("14.49", ("ending", "floor")),
                    ("14.49", ("ending", "floor"))]


def test_issue_21_the_floor_that_made_the_price_is_named() -> None:
    # The rule's 12.52 is under the floor 13.50: the nearest .49 price the floor allows is 14.49, and
    # both the ending and the floor are named (it used to say only "ending").
    g = Guardrails(floor=Decimal("13.50"), ending=Decimal("0.49"))
    assert g.apply(Decimal("12.52"), None) == (Decimal("14.49"), ("ending", "floor"))
    assert Guardrails(ceiling=Decimal("30.00"), ending=Decimal("0.99")).apply(Decimal("45.00"), None) == \
        (Decimal("29.99"), ("ending", "ceiling"))
    # A step that falls short of a target under the floor does not name the floor: the step made it.
    stepped = Guardrails(floor=Decimal("20.00"), max_step_pct=Decimal(5))
    assert stepped.apply(Decimal("15.00"), Decimal("30.00")) == (Decimal("28.50"), ("step",))


def test_narrow_below_is_where_a_step_is_shorter_than_the_ending_spacing() -> None:
    g = Guardrails(max_step_pct=Decimal(5), ending=Decimal("0.99"))
    assert g.narrow_below() == Decimal("20.00")
    assert g.step_at(Decimal("19.99")) < 1 <= g.step_at(Decimal("20.00"))
    assert Guardrails(max_step_pct=Decimal(3), ending=Decimal("0.99")).narrow_below() == Decimal("33.34")
    assert Guardrails(floor=Decimal("20.00"), max_step_pct=Decimal(5), ending=Decimal("0.99")).narrow_below() is None
    assert Guardrails(max_step_pct=Decimal(5)).narrow_below() is None
    assert Guardrails(ending=Decimal("0.99")).narrow_below() is None


@st.composite
def progress_cases(draw: st.DrawFn) -> tuple[Guardrails, list[Decimal], Decimal]:
    """Any valid guardrails with a step limit, any rule prices before, then one rule price held."""
    g = draw(guardrails(small_prices))
    pct = draw(st.decimals(min_value=Decimal("0.5"), max_value=Decimal(100), places=2))
    g = Guardrails(g.floor, g.ceiling, pct, g.ending)
    return g, draw(st.lists(small_prices, max_size=6)), draw(small_prices)


def target_of(g: Guardrails, rule: Decimal) -> Decimal:
    """The ending price nearest the rule's within floor and ceiling (the rule's own when none fits)."""
    price, _ = g.apply(rule, None)
    return price


@given(progress_cases(), small_prices)
def test_a_price_always_reaches_the_ending_nearest_the_rules_price(case: tuple[Guardrails, list[Decimal], Decimal],
                                                                   start: Decimal) -> None:
    """Issue 21: for any sequence of rule prices and any valid guardrails, once the rule's price holds
    still, the decided price moves toward the target at every tick -- never back, never past it -- and
    reaches it within a bounded number of ticks (the floor and ceiling are part of the target)."""
    g, before, rule = case
    assert g.max_step_pct is not None
    last = start
    for earlier in before:
        last, _ = g.apply(earlier, last)
    target = target_of(g, rule)
    low = g.floor if g.floor is not None else limits.PRICE_MIN
    high = g.ceiling if g.ceiling is not None else limits.PRICE_MAX
    assert low <= target <= high
    # Each step is at least the one allowed at the lower end of the way (a cent at least); landing on an
    # ending may take a shorter step, then the next is whole: so two ticks move at least that far.
    slowest = min(g.step_at(min(last, target)), Decimal(1))
    bound = 2 + 2 * int((abs(target - last) / slowest).to_integral_value(rounding=ROUND_CEILING))
    assume(bound <= 5000)
    for _ in range(bound):
        price, moved = g.apply(rule, last)
        if price == target:
            break
        assert "step" in moved or price == rule  # held short of the target by the step (or, by chance, on the rule)
        assert abs(target - price) < abs(target - last)  # progress, every tick
        assert (price - target) * (last - target) >= 0  # never past the target
        last = price
    else:
        raise AssertionError(f"{g} from {start} after {before}: not at {target} within {bound} ticks of {rule}")
    assert g.apply(rule, price) == (price, () if price == rule else g.apply(rule, None)[1])  # and there it stays


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
