"""Decisions per tick: which ticks are judged, and which of them fell short of every pair. Pure.

The judged ticks run from the first complete one -- or, if the start takes longer than its grace, from
the end of the grace -- to the last tick due a whole interval before the soak asked the launcher to
stop. Every judged tick must hold exactly one decision per pair, on stdout and in the Ledger alike.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Final

SHOWN: Final = 10  # short ticks listed in a report, at most


@dataclass(frozen=True, slots=True)
class Span:
    first: int  # first tick judged
    last: int  # last tick judged (< first: none)
    start_ticks: int  # ticks printed before ``first`` (a start's partial ticks, within the grace)

    @property
    def ticks(self) -> int:
        return max(0, self.last - self.first + 1)


def last_judged(t0: float, interval: float, stop_at: float) -> int:
    """The last tick due at least a whole interval before ``stop_at``."""
    return math.floor((stop_at - interval - t0) / interval + 1e-9)


def span(counts: Mapping[int, int], expected: int, grace_ticks: int, last: int) -> Span:
    """The ticks to judge, given the decisions printed per tick."""
    if not counts:
        return Span(0, -1, 0)
    seen = min(counts)
    first = seen + grace_ticks
    for tick in range(seen, min(first, last + 1)):
        if counts.get(tick, 0) >= expected:
            first = tick
            break
    return Span(first, last, sum(1 for tick in counts if tick < first))


@dataclass(frozen=True, slots=True)
class Shortfall:
    """The judged ticks whose count is not ``expected``: how many, and the first few (tick: count)."""

    ticks: int
    decisions: int  # decisions missing, summed over those ticks (surplus ones are counted in ``extra``)
    extra: int
    shown: dict[int, int] = field(default_factory=dict)

    def report(self) -> dict[str, object]:
        return {"ticks": self.ticks, "missing_decisions": self.decisions, "extra_decisions": self.extra,
                "first": {str(tick): count for tick, count in self.shown.items()}}


def shortfall(counts: Mapping[int, int], expected: int, judged: Span, excused: Collection[int] = ()) -> Shortfall:
    """The judged ticks short of ``expected``; those in ``excused`` (a stall of the machine) are not judged."""
    ticks = missing = extra = 0
    shown: dict[int, int] = {}
    for tick in range(judged.first, judged.last + 1):
        if tick in excused:
            continue
        count = counts.get(tick, 0)
        if count == expected:
            continue
        ticks += 1
        missing += max(0, expected - count)
        extra += max(0, count - expected)
        if len(shown) < SHOWN:
            shown[tick] = count
    return Shortfall(ticks, missing, extra, shown)
