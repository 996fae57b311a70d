"""The output lines: unchanged without guardrails, and the JSON line byte for byte what the standard
library would print."""

from __future__ import annotations

import json
from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from actors.algorithm.output import format_human, format_json, format_json_bytes
from transport import limits
from transport.protocol import Decision

PLAIN = Decision(1764088783.968, 1, "B001", "default", tuple(Decimal(p) for p in ("18.02", "17.98", "17.99", "17.94",
                                                                                "17.95")),
                 Decimal("17.976"), 1795624778487461, False, Decimal("16.18"))
HUMAN = ("2025-11-25T16:39:43.968Z tick=1 book=B001 strategy=default avg_comp_price=17.976 sold=no price=16.18 "
         "request_id=1795624778487461 prices=[18.02 17.98 17.99 17.94 17.95]")
JSON = ('{"ts":"2025-11-25T16:39:43.968Z","tick":1,"book":"B001","strategy":"default","prices":["18.02","17.98",'
        '"17.99","17.94","17.95"],"avg_comp_price":"17.976","request_id":1795624778487461,"sold":false,'
        '"price":"16.18"}')


def test_without_guardrails_the_output_is_unchanged() -> None:
    assert format_human(PLAIN) == HUMAN
    assert format_json(PLAIN) == JSON


def test_with_guardrails_json_always_says_rule_price_and_guardrail() -> None:
    unmoved = Decision(**{**{f: getattr(PLAIN, f) for f in PLAIN.__dataclass_fields__}, "rule_price": Decimal("16.18")})
    assert json.loads(format_json(unmoved)) == {**json.loads(JSON), "rule_price": "16.18", "guardrail": None,
                                                "previous_price": None, "floor": None, "ceiling": None}
    assert format_human(unmoved) == HUMAN  # the human line adds them only when a guardrail moved the price
    moved = Decision(**{**{f: getattr(PLAIN, f) for f in PLAIN.__dataclass_fields__}, "price": Decimal("20.00"),
                        "rule_price": Decimal("16.18"), "guardrail": ("step", "floor")})
    record = json.loads(format_json(moved))
    assert record["price"] == "20.00" and record["rule_price"] == "16.18" and record["guardrail"] == ["step", "floor"]
    assert format_human(moved) == (HUMAN.replace("price=16.18", "price=20.00")
                                   + " rule_price=16.18 guardrail=step,floor previous_price=- floor=- ceiling=-")


def test_a_line_explains_its_price_factor_previous_price_and_bounds() -> None:
    """Issue 21: the factor applied, the price the step was measured from and the bounds are on the line,
    so a step-limited price can be checked from the line alone."""
    fields = {f: getattr(PLAIN, f) for f in PLAIN.__dataclass_fields__}
    stepped = Decision(**{**fields, "price": Decimal("16.99"), "rule_price": Decimal("16.18"), "guardrail": ("step",),
                          "factor": Decimal("0.9"), "previous_price": Decimal("17.99"), "floor": Decimal("12.50"),
                          "ceiling": None})
    record = json.loads(format_json(stepped))
    assert {k: record[k] for k in ("factor", "rule_price", "previous_price", "floor", "ceiling")} == {
        "factor": "0.9", "rule_price": "16.18", "previous_price": "17.99", "floor": "12.50", "ceiling": None}
    assert format_human(stepped).endswith(" factor=0.9 rule_price=16.18 guardrail=step previous_price=17.99 "
                                          "floor=12.50 ceiling=-")
    assert json.loads(format_json(Decision(**{**fields, "factor": Decimal("1.1")})))["factor"] == "1.1"


ids = st.text(min_size=1, max_size=limits.BOOK_ID_MAX_LEN).filter(limits.is_valid_book_id)
money = st.decimals(min_value=Decimal("0.01"), max_value=Decimal("10000000"), places=2)


@given(book=ids, strategy=st.text(alphabet="abc_.-é", min_size=1, max_size=10), prices=st.lists(money, min_size=1,
       max_size=5), price=money, sold=st.booleans(), rid=st.integers(0, 2**53), tick=st.integers(0, 2**40),
       ts=st.floats(0, 4e9), rule=st.none() | money, moved=st.lists(st.sampled_from(["step", "ending", "floor"]),
                                                                    max_size=3))
def test_json_line_is_exactly_the_standard_librarys(book: str, strategy: str, prices: list[Decimal], price: Decimal,
                                                     sold: bool, rid: int, tick: int, ts: float,
                                                     rule: Decimal | None, moved: list[str]) -> None:
    d = Decision(ts, tick, book, strategy, tuple(prices), price, rid, sold, price, rule,
                 tuple(moved) if rule is not None else ())
    line = format_json(d)
    assert line == json.dumps(json.loads(line), separators=(",", ":"))
    assert format_json_bytes(d) == line.encode()
    assert "\n" not in line and "\n" not in format_human(d)
