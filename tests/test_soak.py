"""Soak: the launcher over many accelerated ticks. A short run in every test run; the six-hour
equivalent (4,320 ticks) with --run-slow."""

from __future__ import annotations

import pytest

from bench.soak import soak


def check(ticks: int, tick: float) -> None:
    result = soak(tick=tick, ticks=ticks, books=3, status_every=max(1.0, tick * ticks / 20))
    assert result.counters.get("exits") == 0 and result.counters.get("hangs") == 0  # no restart, no hang
    assert result.duplicates == 0
    assert result.algorithm_counters, "the Algorithm's final counters were not seen"
    assert result.unaccounted() == 0  # every (book, tick) decided, or its overrun/skip counted
    assert result.missing_decisions <= result.ticks * 3 // 10  # and those are rare (a loaded machine overruns)
    assert result.ticks >= ticks * 0.95
    # RSS, not PSS, for growth: PSS moves whenever other processes map or unmap the same libraries.
    warmup = max(1, len(result.total_rss_kib) // 4)
    assert abs(result.growth(result.total_rss_kib, warmup)) < 5.0


@pytest.mark.alone
def test_short_soak() -> None:
    check(ticks=200, tick=0.03)


@pytest.mark.slow
@pytest.mark.timeout(600)  # 4,320 ticks at 0.05 s take ~220 s
def test_six_hours_of_ticks_accelerated() -> None:
    check(ticks=4320, tick=0.05)
