"""The pure part of the Ledger: which decisions may be kept, their rows, a batch folded into pairs, the
retention rule and the error kinds."""

from __future__ import annotations

import dataclasses
import errno
import json
import sqlite3
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from actors.ledger.errors import SchemaError, error_kind
from actors.ledger.records import PairRow, Retention, merge_pairs, pair_rows, stored_price, to_row
from tests.actors.ledger.helpers import T0, decision
from transport import limits
from transport.ledger_rows import DecisionRow
from transport.protocol import Decision


def row_of(d: Decision) -> DecisionRow:
    row = to_row(d)
    assert not isinstance(row, str), row
    return row


def test_a_good_decision_becomes_its_row() -> None:
    row = row_of(decision(7, "B003", "fast", price="16.1", sold=True, rule_price="15", guardrail=("floor",),
                          run=T0 - 0.5))
    assert row == ("B003", "fast", T0 - 0.5, 7, T0 + 7, '["18.02","17.98","17.99","17.94","17.95"]', "17.976", 1007, 1,
                   "16.10", "15.00", '["floor"]', None, None, None, None)
    assert row_of(decision()).rule_price is None and row_of(decision()).guardrail is None
    quoted = row_of(decision(guardrail=('a"b', "c\\d")))
    assert json.loads(quoted.guardrail or "") == ['a"b', "c\\d"]


def test_money_is_written_in_fixed_point_never_exponents() -> None:
    d = dataclasses.replace(decision(), price=Decimal("1E+1"), avg_comp_price=Decimal("2.5E+1"),
                            prices=(Decimal("1E+2"),))
    row = row_of(d)
    assert (row.price, row.avg_comp_price, json.loads(row.prices)) == ("10.00", "25", ["100"])


@pytest.mark.parametrize(("change", "field"), [
    ({"book": " B1"}, "book"), ({"book": "B\n1"}, "book"), ({"strategy": ""}, "strategy"),
    ({"strategy": "x" * 65}, "strategy"), ({"ts": 0.0}, "ts"), ({"ts": float("inf")}, "ts"),
    ({"run": -1.0}, "run"), ({"run": float("nan")}, "run"), ({"run": float("inf")}, "run"),
    ({"prices": ()}, "prices"), ({"prices": (Decimal("-1"),)}, "prices"),
    ({"prices": (Decimal("1.0000001"),)}, "prices"),
    ({"prices": (Decimal(1),) * (limits.WINDOW_MAX + 1)}, "prices"),
    ({"avg_comp_price": Decimal(0)}, "avg_comp_price"), ({"price": Decimal("1.234")}, "price"),
    ({"price": Decimal(0)}, "price"), ({"price": limits.PRICE_MAX + 1}, "price"),
    ({"rule_price": Decimal("-5")}, "rule_price"), ({"guardrail": ("",)}, "guardrail"),
    ({"guardrail": ("a\x00",)}, "guardrail"),
])
def test_a_decision_outside_the_limits_is_refused_with_the_field_named(change: dict[str, object], field: str) -> None:
    reason = to_row(dataclasses.replace(decision(), **change))  # type: ignore[arg-type]
    assert isinstance(reason, str) and reason.startswith(field)


def test_pairs_keep_the_newest_decision_by_time_not_by_tick() -> None:
    # A later launcher run starts again at tick 0: its decisions are newer despite smaller ticks.
    old = row_of(decision(500, ts=T0, price="10.00"))
    new = row_of(decision(2, ts=T0 + 60, price="12.00", guardrail=("floor",)))
    for order in ([old, new], [new, old]):
        (pair,) = pair_rows(order)
        assert (pair.tick, pair.price, pair.price_cents) == (2, "12.00", 1200)
        assert (pair.decisions, pair.guardrail_hits) == (2, 1)


def test_pairs_break_a_tie_in_time_by_run_then_tick() -> None:
    # Same decision time (a clock step, or hand-made rows): the later run wins, whatever the ticks.
    first = row_of(decision(9, ts=T0, run=T0 - 100, price="10.00"))
    second = row_of(decision(1, ts=T0, run=T0 - 50, price="12.00"))
    for order in ([first, second], [second, first]):
        (pair,) = pair_rows(order)
        assert (pair.run, pair.tick, pair.price) == (T0 - 50, 1, "12.00")


money = st.decimals(min_value=limits.PRICE_MIN, max_value=limits.PRICE_MAX, places=2)


@settings(deadline=None)  # a loaded machine: a slow example is no failure
@given(st.lists(st.tuples(st.sampled_from(["A", "B", "C"]), st.sampled_from(["s", "t"]),
                          st.integers(0, 10**6), st.sampled_from([0.0, T0, T0 + 1]), money, st.booleans()),
                max_size=40))
def test_pair_rows_count_every_decision_once_and_keep_the_newest(
        items: list[tuple[str, str, int, float, Decimal, bool]]) -> None:
    decisions = [decision(i, book, strategy, ts=T0 + ts, run=run, price=str(price),
                          guardrail=("step",) if hit else ())
                 for i, (book, strategy, ts, run, price, hit) in enumerate(items)]
    rows = [row_of(d) for d in decisions]
    pairs = pair_rows(rows)
    assert sum(p.decisions for p in pairs) == len(rows)
    assert sum(p.guardrail_hits for p in pairs) == sum(r.guardrail is not None for r in rows)
    for pair in pairs:
        mine = [r for r in rows if (r.book, r.strategy) == (pair.book, pair.strategy)]
        newest = max(mine, key=lambda r: (r.ts, r.run, r.tick))
        assert (pair.ts, pair.run, pair.tick, pair.price) == (newest.ts, newest.run, newest.tick, newest.price)
        assert Decimal(pair.price_cents) / 100 == Decimal(pair.price)

    # Folded in parts and merged (the Ledger's writes, then its pending pairs), they give the same rows,
    # of the PairRow type the pairs upsert and the journal expect.
    merged: dict[tuple[str, str], PairRow] = {}
    for start in range(0, len(rows), 7):
        merge_pairs(merged, pair_rows(rows[start:start + 7]))
    assert sorted(merged.values()) == sorted(pairs) and all(type(p) is PairRow for p in merged.values())


def test_retention() -> None:
    assert not Retention().enabled and Retention().cutoff(T0) is None and Retention().excess(10**9) == 0
    keep = Retention(max_age_days=2, max_rows=100)
    assert keep.enabled and keep.cutoff(T0) == T0 - 2 * 86_400
    assert (keep.excess(99), keep.excess(100), keep.excess(250)) == (0, 0, 150)


def sqlite_error(code: int) -> sqlite3.Error:
    error = sqlite3.OperationalError("x")
    error.sqlite_errorcode = code
    return error


@pytest.mark.parametrize(("error", "kind"), [
    (sqlite_error(26), "corrupt"), (sqlite_error(11), "corrupt"), (sqlite_error(13), "full"),
    (sqlite_error(5), "locked"), (sqlite_error(8), "readonly"), (sqlite_error(14), "cantopen"),
    (sqlite_error(13 | (1 << 8)), "full"),  # an extended code keeps its primary code in the low byte
    (sqlite3.OperationalError("no code"), "other"), (SchemaError("x"), "schema"),
    (OSError(errno.EROFS, "x"), "readonly"), (OSError(errno.ENOSPC, "x"), "full"), (OSError(errno.EIO, "x"), "io"),
    (ValueError("x"), "other"),
])
def test_error_kinds(error: Exception, kind: str) -> None:
    assert error_kind(error) == kind


@pytest.mark.parametrize(("text", "price"), [
    ("16.18", Decimal("16.18")), ("0.00", None), ("-1.00", None), ("1.001", None), ("NaN", None), ("x", None),
    ("1" * 41, None), (16.18, None), (None, None),
])
def test_a_price_read_back_is_checked_like_one_received(text: object, price: Decimal | None) -> None:
    assert stored_price(text) == price
