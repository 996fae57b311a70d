"""The bare batched script (``bench/bare_batched.py``, the floor of ``python -m bench.run --only batched``)
does the work it stands for: every book decided on every tick from its replay window, each line byte
for byte the Algorithm's JSON line for that decision, about one row parsed per decision."""

from __future__ import annotations

import io
import json
from datetime import datetime
from decimal import Decimal

from actors.algorithm.output import format_json_bytes
from actors.pricing.rule import avg_comp_price, reprice_window
from bench import bare_batched
from transport.protocol import Decision

BOOKS = ("B001", "B002", "B003")


def _csv(steps: int) -> list[str]:
    lines = ["timestamp,book_id,price"]
    for step in range(steps):
        for n, book in enumerate(BOOKS):
            lines.append(f"2024-01-01T00:00:{step:02d}Z,{book},{10 + n}.{step:02d}")
    return lines


def test_every_book_every_tick_with_the_algorithms_line() -> None:
    out = io.BytesIO()
    result = bare_batched.run(iter(_csv(9)), BOOKS, ticks=4, warmup=1, out=out)
    lines = out.getvalue().splitlines(keepends=True)
    assert len(lines) == 4 * len(BOOKS)
    assert result["decisions"] == 3 * len(BOOKS) and result["rows"] == 3 * len(BOOKS)
    for raw in lines:
        d = json.loads(raw)
        prices = tuple(Decimal(p) for p in d["prices"])
        n = BOOKS.index(d["book"])
        # replay: tick k sees the book's points k .. k+4
        assert prices == tuple(Decimal(f"{10 + n}.{step:02d}") for step in range(d["tick"], d["tick"] + 5))
        assert d["sold"] == (d["request_id"] % 2 == 0)
        ts = datetime.fromisoformat(d["ts"].replace("Z", "+00:00")).timestamp()
        decision = Decision(ts, d["tick"], d["book"], "default", prices, avg_comp_price(prices), d["request_id"],
                            d["sold"], reprice_window(prices, d["sold"]), factor=Decimal(d["factor"]))
        assert format_json_bytes(decision) + b"\n" == raw


def test_past_the_end_of_the_file_the_last_five() -> None:
    out = io.BytesIO()
    bare_batched.run(iter(_csv(6)), BOOKS, ticks=4, warmup=0, out=out)
    last = json.loads(out.getvalue().splitlines()[-1])
    assert last["tick"] == 3 and last["prices"] == ["12.01", "12.02", "12.03", "12.04", "12.05"]
