"""The token bucket, pure (a fake clock); and the GC watch."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from actors.algorithm.clients.pacing import TokenBucket
from tests.helpers import FakeClock


def test_burst_then_the_rate() -> None:
    clock = FakeClock()
    bucket = TokenBucket(rate=10, burst=3, clock=clock)
    for _ in range(3):
        assert bucket.delay() == 0
        bucket.take()
    assert bucket.delay() == 0.1 - 0 or abs(bucket.delay() - 0.1) < 1e-9
    clock.now += 0.1
    assert bucket.delay() == 0


def test_unpaced_unless_paused() -> None:
    clock = FakeClock()
    bucket = TokenBucket(clock=clock)
    for _ in range(1000):
        bucket.take()
    assert bucket.delay() == 0
    bucket.pause(0.25)
    assert abs(bucket.delay() - 0.25) < 1e-9
    clock.now += 0.25
    assert bucket.delay() == 0


def test_a_pause_spends_the_burst() -> None:
    clock = FakeClock()
    bucket = TokenBucket(rate=100, burst=50, clock=clock)
    bucket.pause(0.1)
    clock.now += 0.1
    sent = 0
    while bucket.delay() == 0 and sent < 100:
        bucket.take()
        sent += 1
    assert sent <= 11  # what 0.1 s at 100/s refills, not the burst of 50
    clock.now += 10
    sent = 0
    while bucket.delay() == 0 and sent < 100:
        bucket.take()
        sent += 1
    assert sent == 2  # after a 429 the burst is cut to 2


@settings(max_examples=200)
@given(rate=st.floats(1, 1000), burst=st.integers(1, 100), steps=st.lists(st.floats(0, 0.5), max_size=200))
def test_never_more_than_burst_plus_rate_times_elapsed(rate: float, burst: int, steps: list[float]) -> None:
    clock = FakeClock(0.0)
    bucket = TokenBucket(rate=rate, burst=burst, clock=clock)
    sent = 0
    for step in steps:
        clock.now += step
        while bucket.delay() == 0:
            bucket.take()
            sent += 1
    assert sent <= burst + rate * clock.now + 1e-6


def test_gc_watch_times_collections() -> None:
    import gc

    from actors.algorithm.gc_watch import GcWatch

    with GcWatch() as watch:
        gc.collect()
    assert watch.counters["gc_collections"] >= 1 and watch.counters["gc_collections_full"] >= 1
    assert watch.counters["gc_pause_max_generation"] == 2
    assert watch._callback not in gc.callbacks
