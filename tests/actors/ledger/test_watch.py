"""The Ledger's watch (pure): tallies and alert detectors fed rows and a clock, staged decision by decision."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from decimal import Decimal

import pytest

from actors.alert_rules import Thresholds
from actors.ledger.watch import AlertChange, Watch
from transport.ledger_rows import DecisionRow

T = Thresholds(price_war_ticks=3, floor_pinned_seconds=60, stale_competitor_seconds=30, guardrail_share_pct=50,
               guardrail_share_decisions=4, ledger_lag_seconds=10)
ONE_PAIR = Thresholds(price_war_ticks=3, floor_pinned_seconds=60, stale_competitor_seconds=30, guardrail_share_pct=0,
                      ledger_lag_seconds=10)  # the strategy's share left out: one pair's alerts alone


def row(ts: float, price: str, avg: str, *, book: str = "B1", strategy: str = "s", window: Sequence[str] = (),
        guardrail: Iterable[str] = (), tick: int = 0) -> DecisionRow:
    names = list(guardrail)
    prices = json.dumps(list(window) or [avg, str(ts)])  # by default a window that changes every decision
    return DecisionRow(book, strategy, 1.0, tick or int(ts), ts, prices, avg, 1, 0, price, None,
                       json.dumps(names) if names else None, None, None, None, None)


def feed(watch: Watch, rows: Iterable[DecisionRow]) -> list[AlertChange]:
    changes: list[AlertChange] = []
    for r in rows:
        changes += watch.observe([r], r.ts)
    return changes


def names(changes: Iterable[AlertChange]) -> list[tuple[str, bool]]:
    return [(c.name, c.raised) for c in changes]


def test_prices_and_competitor_moves_are_tallied_per_pair_against_its_previous_decision() -> None:
    watch = Watch(T)
    feed(watch, [row(1, "10.00", "11"), row(2, "11.00", "10"), row(3, "11.00", "10"), row(4, "9.00", "12")])
    c = watch.counters
    assert (c["prices_up"], c["prices_down"], c["prices_same"]) == (1, 1, 1)
    assert (c["competitor_up"], c["competitor_down"], c["competitor_same"]) == (1, 1, 1)
    assert c["pairs_watched"] == 1


def test_a_resent_or_older_decision_is_not_counted_again() -> None:
    watch = Watch(T)
    first, second = row(1, "10.00", "10"), row(2, "12.00", "10")
    feed(watch, [first, second, second, first])  # a resend, then an older one crossing it
    assert watch.counters["prices_up"] == 1 and watch.counters["prices_down"] == 0


def test_guardrail_hits_are_counted_by_name_with_unknown_shapes_as_other() -> None:
    watch = Watch(T)
    feed(watch, [row(1, "10.00", "10", guardrail=["step", "ending"]), row(2, "10.00", "10", guardrail=["floor"]),
                 row(3, "10.00", "10", guardrail=["Weird Name"])])
    c = watch.counters
    assert (c["guardrail_step"], c["guardrail_ending"], c["guardrail_floor"], c["guardrail_other"]) == (1, 1, 1, 1)


def test_a_price_war_is_raised_after_the_configured_decisions_and_cleared_when_it_ends() -> None:
    watch = Watch(T)
    falling = [row(ts, f"{20 - ts}.00", f"{22 - ts}") for ts in range(1, 4)]  # two falls: not yet
    assert feed(watch, falling) == []
    raised = feed(watch, [row(4, "16.00", "18")])  # the third fall in a row
    assert names(raised) == [("price_war", True)] and "3 decisions" in raised[0].detail
    assert raised[0].since == 2 and raised[0].at == 4  # since the first of the falls
    assert watch.counters["alerts_active_price_war"] == 1
    assert feed(watch, [row(5, "15.00", "17")]) == []  # still on: raised once
    cleared = feed(watch, [row(6, "15.00", "16")])  # our price held
    assert names(cleared) == [("price_war", False)]
    assert watch.counters["alerts_active_price_war"] == 0
    assert (watch.counters["alerts_raised"], watch.counters["alerts_cleared"]) == (1, 1)


def test_only_both_falling_together_makes_a_war() -> None:
    watch = Watch(T)
    # Our price falls while the competitor rises, then the other way round: never both.
    rows = [row(ts, f"{20 - ts}.00", f"{10 + ts}") if ts % 2 else row(ts, f"{20 + ts}.00", f"{10 - ts}")
            for ts in range(1, 12)]
    assert feed(watch, rows) == []


def test_a_pair_pinned_at_its_floor_is_raised_after_the_configured_time_and_cleared_off_it() -> None:
    watch = Watch(ONE_PAIR)
    pinned = [row(ts, "12.00", "11", guardrail=["floor"]) for ts in (0, 20, 40, 59)]
    assert feed(watch, [row(-5, "13.00", "14"), *pinned]) == []
    raised = feed(watch, [row(60, "12.00", "11", guardrail=["floor"])])
    assert names(raised) == [("floor_pinned", True)] and raised[0].since == 0 and "60 s" in raised[0].detail
    cleared = feed(watch, [row(61, "12.50", "14")])
    assert names(cleared) == [("floor_pinned", False)] and cleared[0].at == 61


def test_leaving_the_floor_for_one_decision_starts_the_time_again() -> None:
    watch = Watch(ONE_PAIR)
    rows = [row(0, "12.00", "11", guardrail=["floor"]), row(50, "13.00", "14"),
            row(51, "12.00", "11", guardrail=["floor"]), row(100, "12.00", "11", guardrail=["floor"])]
    assert feed(watch, rows) == []  # 49 s since it came back: not yet
    assert names(feed(watch, [row(111, "12.00", "11", guardrail=["floor"])])) == [("floor_pinned", True)]


def test_stale_competitor_data_is_raised_after_the_configured_time_and_cleared_when_prices_change() -> None:
    watch = Watch(T)
    same = ["10.00", "10.50", "11.00"]
    assert feed(watch, [row(ts, "10.00", "10.5", window=same) for ts in (0, 10, 29)]) == []
    raised = feed(watch, [row(30, "11.00", "10.5", window=same)])
    assert names(raised) == [("stale_competitor", True)] and raised[0].since == 0
    cleared = feed(watch, [row(31, "11.00", "10.6", window=["10.50", "11.00", "10.30"])])
    assert names(cleared) == [("stale_competitor", False)]


def test_a_strategy_whose_guardrails_set_most_prices_is_raised_and_cleared_with_ending_not_counted() -> None:
    watch = Watch(T)
    base = [row(1, "10.00", "10", book="A", guardrail=["ending"]), row(1, "10.00", "10", book="B"),
            row(2, "10.00", "10", book="A", guardrail=["ending"])]
    assert feed(watch, base) == []  # cosmetic endings only
    raised = feed(watch, [row(3, "10.00", "10", book="A", guardrail=["step"])])
    assert raised == [] and watch.counters["alerts_active_guardrails_most"] == 0  # 1 of 4
    raised = feed(watch, [row(4, "10.00", "10", book="A", guardrail=["step", "ending"])])
    assert names(raised) == [("guardrails_most", True)] and raised[0].strategy == "s" and raised[0].book == ""
    # 2 of 4 is still not 10 points below 50%: a share hovering at the threshold is raised once.
    assert feed(watch, [row(5, "10.00", "10", book="A"), row(6, "10.00", "10", book="A")]) == []
    cleared = feed(watch, [row(7, "10.00", "10", book="A")])  # 1 of 4
    assert names(cleared) == [("guardrails_most", False)]


def test_ledger_lag_from_late_decisions_or_refused_batches_is_raised_and_cleared_by_the_clock() -> None:
    watch = Watch(T)
    watch.observe([row(100, "10.00", "10")], now=100.5)
    assert watch.sweep(101, refusals=0) == [] and watch.counters["lag_ms"] == 500
    watch.observe([row(101, "10.00", "10")], now=115)  # 14 s late
    assert names(watch.sweep(115, refusals=0)) == [("ledger_lag", True)]
    watch.observe([row(116, "10.00", "10")], now=116.2)
    assert names(watch.sweep(117, refusals=0)) == [("ledger_lag", False)]
    assert names(watch.sweep(118, refusals=3)) == [("ledger_lag", True)]  # refused: raised at once
    assert watch.sweep(127, refusals=3) == []  # within ledger_lag_seconds of the refusal
    assert names(watch.sweep(128.5, refusals=3)) == [("ledger_lag", False)]


def test_pairs_watched_are_bounded_the_oldest_forgotten_with_its_alerts() -> None:
    watch = Watch(T, pairs_max=2)
    feed(watch, [row(ts, f"{20 - ts}.00", f"{22 - ts}", book="A") for ts in range(1, 5)])  # A at war
    assert watch.counters["alerts_active_price_war"] == 1
    feed(watch, [row(5, "10.00", "10", book="B"), row(6, "10.00", "10", book="C")])
    assert watch.counters["pairs_watched"] == 2 and watch.counters["watch_evicted"] == 1
    assert watch.counters["alerts_active_price_war"] == 0


def test_open_alerts_restored_at_start_count_and_clear_on_the_condition_ending() -> None:
    watch = Watch(T)
    open_alerts = [AlertChange("price_war", "A", "s", True, 1, 5, ""),
                   AlertChange("floor_pinned", "B", "s", True, 1, 70, ""),
                   AlertChange("guardrails_most", "", "s", True, 1, 5, "")]
    watch.restore(open_alerts)
    c = watch.counters
    assert (c["alerts_active_price_war"], c["alerts_active_floor_pinned"], c["alerts_active_guardrails_most"]) == \
        (1, 1, 1)
    assert feed(watch, [row(100, "10.00", "10", book="A")]) == []  # a baseline: the war goes on
    assert names(feed(watch, [row(101, "11.00", "10", book="A")])) == [("price_war", False)]
    assert names(feed(watch, [row(100, "13.00", "12", book="B")])) == [("floor_pinned", False)]


def test_a_reload_that_turns_an_alert_off_clears_it() -> None:
    watch = Watch(T)
    feed(watch, [row(ts, f"{20 - ts}.00", f"{22 - ts}") for ts in range(1, 5)])
    changes = watch.retune(Thresholds(price_war_ticks=0), now=50)
    assert names(changes) == [("price_war", False)] and watch.counters["alerts_active_price_war"] == 0
    assert feed(watch, [row(ts, f"{20 - ts}.00", f"{22 - ts}") for ts in range(5, 12)]) == []


@pytest.mark.parametrize("price", ["10.00", "0.01", "9999999.99"])
def test_money_is_compared_exactly_enough_for_cents(price: str) -> None:
    watch = Watch(T)
    cent = Decimal("0.01")
    up = str(Decimal(price) + cent) if Decimal(price) < Decimal("9999999.99") else price
    feed(watch, [row(1, price, "10"), row(2, up, "10")])
    assert watch.counters["prices_up"] == (1 if up != price else 0)


def test_an_alert_raised_before_the_database_answered_is_not_counted_twice_by_the_restore() -> None:
    watch = Watch(T)
    raised = feed(watch, [row(ts, f"{20 - ts}.00", f"{22 - ts}", book="A") for ts in range(1, 5)])
    assert names(raised) == [("price_war", True)]
    watch.restore(raised)  # the database read back what this watch wrote a moment ago
    assert watch.counters["alerts_active_price_war"] == 1
    assert names(feed(watch, [row(5, "17.00", "18", book="A")])) == [("price_war", False)]
    assert watch.counters["alerts_active_price_war"] == 0
