"""The token bucket, pure, with the clock passed in: it never grants more than ``burst + rate * t``, a
client that comes back when told is served then, and one that honours every wait gets the rate."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from actors.api_server.rate_limit import RateLimiter, TokenBucket, retry_after_body, retry_after_header

rates = st.floats(min_value=0.5, max_value=10_000, allow_nan=False)
bursts = st.integers(min_value=1, max_value=50)


def test_a_fresh_bucket_grants_its_burst_then_says_when_the_next_token_is_due() -> None:
    bucket = TokenBucket(rate=4, burst=3, now=0.0)
    assert [bucket.take(0.0) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert bucket.take(0.0) == pytest.approx(0.25)
    assert bucket.take(0.1) == pytest.approx(0.15)  # a refusal takes nothing: the due time stands
    assert bucket.take(0.25) == 0.0
    assert bucket.take(0.25) == pytest.approx(0.25)


def test_tokens_never_exceed_the_burst() -> None:
    bucket = TokenBucket(rate=100, burst=2, now=0.0)
    assert bucket.take(1000.0) == 0.0 and bucket.take(1000.0) == 0.0
    assert bucket.take(1000.0) > 0


def test_a_clock_that_steps_back_adds_nothing() -> None:
    bucket = TokenBucket(rate=1, burst=1, now=100.0)
    assert bucket.take(100.0) == 0.0
    assert bucket.take(50.0) == pytest.approx(1.0)
    assert bucket.take(100.5) == pytest.approx(0.5)


@pytest.mark.parametrize(("rate", "burst"), [(0, 1), (-1, 1), (float("nan"), 1), (float("inf"), 1), (1, 0)])
def test_bad_parameters_are_refused(rate: float, burst: int) -> None:
    with pytest.raises(ValueError):
        TokenBucket(rate, burst, 0.0)


@given(rates, bursts, st.lists(st.floats(min_value=0, max_value=0.5, allow_nan=False), max_size=300))
def test_never_more_than_burst_plus_rate_times_elapsed(rate: float, burst: int, gaps: list[float]) -> None:
    bucket = TokenBucket(rate, burst, now=0.0)
    now = 0.0
    granted: list[float] = []
    for gap in gaps:
        now += gap
        if bucket.take(now) == 0.0:
            granted.append(now)
    # In every window [granted[i], granted[j]] at most burst + rate * length grants.
    for i in range(0, len(granted), 7):
        for j in range(i, len(granted)):
            assert j - i + 1 <= burst + rate * (granted[j] - granted[i]) + 1e-6


@given(rates, bursts, st.floats(min_value=0, max_value=10, allow_nan=False))
def test_coming_back_when_told_is_served(rate: float, burst: int, start: float) -> None:
    bucket = TokenBucket(rate, burst, now=start)
    now = start
    for _ in range(burst):
        assert bucket.take(now) == 0.0
    wait = bucket.take(now)
    assert wait > 0
    assert bucket.take(now + wait) == 0.0  # exactly the wait it was given
    wait = bucket.take(now + wait)
    assert bucket.take(now + 2 * wait + retry_after_body(wait)) == 0.0  # the rounded-up body value too


@given(rates, bursts, st.integers(min_value=1, max_value=400))
def test_a_client_honouring_every_wait_gets_the_rate(rate: float, burst: int, extra: int) -> None:
    bucket = TokenBucket(rate, burst, now=0.0)
    now = 0.0
    served = refused = 0
    while served < burst + extra:
        wait = bucket.take(now)
        if wait == 0.0:
            served += 1
        else:
            refused += 1
            now += wait
    assert now == pytest.approx(extra / rate, rel=1e-6)  # the burst at once, then exactly the rate
    assert refused <= extra  # at most one refusal per token it had to wait for


def test_the_limiter_has_one_bucket_per_endpoint_and_is_off_without_a_rate() -> None:
    limiter = RateLimiter(["a", "b"], rate=1, burst=1, now=0.0)
    assert limiter.take("a", 0.0) == 0.0 and limiter.take("a", 0.0) > 0
    assert limiter.take("b", 0.0) == 0.0  # a's calls did not drain b's bucket
    assert limiter.take("unknown", 0.0) == 0.0
    off = RateLimiter(["a"], rate=None, burst=1, now=0.0)
    assert all(off.take("a", 0.0) == 0.0 for _ in range(1000))


@pytest.mark.parametrize(("wait", "body", "header"), [(0.25, 0.25, "1"), (0.0001, 0.001, "1"), (1.0, 1.0, "1"),
                                                      (1.0001, 1.001, "2"), (2.5, 2.5, "3"), (0.0050001, 0.006, "1")])
def test_retry_after_rounds_up(wait: float, body: float, header: str) -> None:
    assert retry_after_body(wait) == body
    assert retry_after_header(wait) == header


@given(st.floats(min_value=1e-6, max_value=1e5, allow_nan=False))
def test_retry_after_is_never_early(wait: float) -> None:
    assert retry_after_body(wait) >= wait - 1e-9
    assert int(retry_after_header(wait)) >= max(1.0, wait - 1e-9)
