"""A pair's decisions as a chart's series (pure): time, the competitor's average, our price, sold, the
guardrails and the bounds of each decision, with a gap wherever nothing was decided.

A gap is a point with no values (``null`` for the chart, which then breaks its lines there instead of
bridging a stop with a straight line): put between two decisions further apart than
:func:`gap_after` -- several times the pair's usual spacing (its median), so a run stopped for
a while, or a pair paused, shows as a break, while a late tick does not.

Money stays a decimal string (the chart alone turns it into a number to draw).
"""

from __future__ import annotations

import itertools
import statistics
from collections.abc import Sequence
from typing import Any, Final

from actors.dashboard.rows import DecisionRow

GAP_FACTOR: Final = 3.0  # a spacing this many times the median is a gap
GAP_MIN: Final = 2.0  # seconds: never a gap below this (ticks of 0.1 s jitter)


def gap_after(ts: Sequence[float]) -> float:
    """The spacing past which two decisions have a gap between them (infinite for fewer than 3)."""
    steps = [b - a for a, b in itertools.pairwise(ts) if b > a]
    if len(steps) < 2:
        return float("inf")
    return max(GAP_MIN, GAP_FACTOR * statistics.median(steps))


def build(decisions: Sequence[DecisionRow]) -> dict[str, Any]:
    """The series of ``decisions`` (oldest first), gaps included: every list has one entry per point,
    ``gaps`` counts the breaks."""
    ts_all = [d.ts for d in decisions]
    limit = gap_after(ts_all)
    out: dict[str, list[Any]] = {key: [] for key in ("ts", "tick", "avg_comp_price", "price", "sold", "guardrail",
                                                      "floor", "ceiling")}
    gaps = 0
    previous: float | None = None
    for d in decisions:
        if previous is not None and d.ts - previous > limit:
            gaps += 1
            middle = previous + (d.ts - previous) / 2
            for key, value in (("ts", middle), ("tick", None), ("avg_comp_price", None), ("price", None),
                               ("sold", None), ("guardrail", None), ("floor", None), ("ceiling", None)):
                out[key].append(value)
        previous = d.ts
        out["ts"].append(d.ts)
        out["tick"].append(d.tick)
        out["avg_comp_price"].append(d.avg_comp_price)
        out["price"].append(d.price)
        out["sold"].append(d.sold)
        out["guardrail"].append(list(d.guardrail) or None)
        out["floor"].append(d.floor)
        out["ceiling"].append(d.ceiling)
    return {**out, "gaps": gaps, "decisions": len(decisions)}
