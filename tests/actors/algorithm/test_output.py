"""The output lines: the JSON line is byte for byte what the standard library would print."""

from __future__ import annotations

import json
from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from actors.algorithm.output import format_human, format_json, format_json_bytes
from transport import limits
from transport.protocol import Decision

ids = st.text(min_size=1, max_size=limits.BOOK_ID_MAX_LEN).filter(limits.is_valid_book_id)
money = st.decimals(min_value=Decimal("0.01"), max_value=Decimal("10000000"), places=2)


@given(book=ids, strategy=st.text(alphabet="abc_.-é", min_size=1, max_size=10), prices=st.lists(money, min_size=1,
       max_size=5), price=money, sold=st.booleans(), rid=st.integers(0, 2**53), tick=st.integers(0, 2**40),
       ts=st.floats(0, 4e9))
def test_json_line_is_exactly_the_standard_librarys(book: str, strategy: str, prices: list[Decimal], price: Decimal,
                                                     sold: bool, rid: int, tick: int, ts: float) -> None:
    d = Decision(ts, tick, book, strategy, tuple(prices), price, rid, sold, price)
    line = format_json(d)
    expected = json.dumps(json.loads(line), separators=(",", ":"))
    assert line == expected
    assert format_json_bytes(d) == line.encode()
    assert "\n" not in line and "\n" not in format_human(d)
    assert list(json.loads(line)) == ["ts", "tick", "book", "strategy", "prices", "avg_comp_price", "request_id",
                                      "sold", "price"]


def test_the_documented_example() -> None:
    d = Decision(1795624783.968, 1, "B001", "default", tuple(Decimal(p) for p in ("18.02", "17.98", "17.99", "17.94",
                 "17.95")), Decimal("17.976"), 1795624778487461, False, Decimal("16.18"))
    assert format_json(d) == ('{"ts":"2026-11-25T16:39:43.968Z","tick":1,"book":"B001","strategy":"default","prices":'
                              '["18.02","17.98","17.99","17.94","17.95"],"avg_comp_price":"17.976",'
                              '"request_id":1795624778487461,"sold":false,"price":"16.18"}')
    assert format_human(d) == ("2026-11-25T16:39:43.968Z tick=1 book=B001 strategy=default avg_comp_price=17.976 "
                               "sold=no price=16.18 request_id=1795624778487461 prices=[18.02 17.98 17.99 17.94 17.95]")
