"""What the launcher tests feed the system and check its decisions against: a CSV with awkward
rows, and an independent model of what must be printed, computed from the CSV without the project's
code. (The launcher itself is driven by :mod:`bench.driver`, shared with the benchmarks.)"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

from actors.pricing.rule import PricingRule, avg_comp_price, reprice_window

CSV = """\ufefftimestamp,book_id,price\r
2026-01-01T00:00:00Z,A,10.00\r
2026-01-01T00:00:00Z,B,20.00\r
2026-01-01T00:00:01Z,A,10.50\r
2026-01-01T00:00:01Z,B,not-a-price\r
\r
2026-01-01T00:00:02Z,A,11.25\r
2026-01-01T00:00:02Z,B,21.00\r
"""


def write_csv(path: Path, rows_per_book: int = 40) -> Path:
    lines = [CSV.rstrip("\r\n")]
    for i in range(rows_per_book):
        lines.append(f"2026-01-02T00:00:{i:02}Z,A,{12 + (i * 37 % 11) / 4:.2f}")
        lines.append(f"2026-01-02T00:00:{i:02}Z,B,{22 + (i * 13 % 7) / 4:.2f}")
        lines.append(f"2026-01-02T00:00:{i:02}Z,C,{5 + (i * 7 % 5) / 4:.2f}")
        if i % 10 == 3:
            lines.append(f"2026-01-02T00:00:{i:02}Z,C,-1.00")
    path.write_text("\r\n".join(lines) + "\r\n", encoding="utf-8")
    return path


def read_points(csv_path: Path) -> dict[str, list[Decimal]]:
    """Each book's valid prices in file order, parsed without the project's CSV code."""
    import csv  # the stdlib parser: independent of actors.csv_rows

    points: dict[str, list[Decimal]] = {}
    with open(csv_path, newline="", encoding="utf-8-sig") as f:
        rows = csv.reader(f)
        header = [h.strip().lower() for h in next(rows)]
        for row in rows:
            if not row or len(row) != len(header):
                continue
            record = dict(zip(header, (v.strip() for v in row), strict=True))
            try:
                price = Decimal(record["price"])
            except ArithmeticError:
                continue
            if price.is_finite() and price > 0 and record.get("book_id"):
                points.setdefault(record["book_id"], []).append(price)
    return points


def expected_window(points: list[Decimal], tick: int, size: int = 5) -> list[Decimal]:
    """Replay: tick k sees points k..k+size-1; past the end, the last ``size``."""
    start = min(tick, len(points) - size)
    return points[start:start + size]


def check_decision(decision: dict[str, Any], points: dict[str, list[Decimal]],
                   rule: PricingRule | None = None) -> None:
    rule = rule or PricingRule()
    window = expected_window(points[decision["book"]], decision["tick"], rule.window)
    assert [Decimal(p) for p in decision["prices"]] == window, decision
    avg = avg_comp_price(window)
    assert Decimal(decision["avg_comp_price"]) == avg, decision
    assert decision["sold"] == (decision["request_id"] % 2 == 0), decision
    assert decision["price"] == str(reprice_window(window, decision["sold"], rule)), decision
