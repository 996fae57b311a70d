import random
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from repricer_supervisor.policy import CONFIGURATION_ERROR, ChildHealth, RestartPolicy

POLICY = RestartPolicy(initial_backoff=0.5, max_backoff=8.0, multiplier=2.0, jitter=0.0, stable_start_time=10.0,
                       time_to_dead=3.0, startup_timeout=15.0)


def crash_loop(health: ChildHealth, runs: int, ran_for: float) -> list[float]:
    clock, delays = 0.0, []
    for _ in range(runs):
        health.on_start(clock)
        clock += ran_for
        delay = health.on_exit(clock)
        assert delay is not None
        delays.append(delay)
        clock += delay
    return delays


def test_backoff_grows_exponentially_up_to_the_cap() -> None:
    assert crash_loop(ChildHealth(POLICY), 7, ran_for=0.1) == [0.5, 1.0, 2.0, 4.0, 8.0, 8.0, 8.0]


def test_a_stable_start_resets_the_backoff() -> None:
    health = ChildHealth(POLICY)
    crash_loop(health, 4, ran_for=0.1)
    health.on_start(100.0)
    assert health.on_exit(100.0 + POLICY.stable_start_time) == 0.5
    assert health.restarts == 5


def test_jitter_stays_within_bounds_and_varies() -> None:
    policy = RestartPolicy(initial_backoff=1.0, max_backoff=1.0, jitter=0.2)
    health = ChildHealth(policy, random.Random(7))
    delays = crash_loop(health, 50, ran_for=0.1)
    assert all(0.8 <= d <= 1.0 for d in delays)  # capped: never above max_backoff
    assert len(set(delays)) > 40


def test_hang_needs_missed_heartbeats() -> None:
    health = ChildHealth(POLICY)
    health.on_start(0.0)
    assert not health.is_hung(14.9)  # still starting up
    assert health.is_hung(15.1)  # never sent a heartbeat
    health.on_heartbeat(16.0)
    assert not health.is_hung(18.9)
    assert health.is_hung(19.1)
    health.on_exit(20.0)
    assert not health.is_hung(100.0)  # not running: not hung


@pytest.mark.parametrize("kwargs", [{"initial_backoff": 0}, {"max_backoff": 0.1}, {"multiplier": 0.5},
                                    {"jitter": 1.0}, {"time_to_dead": 0}, {"time_to_dead": -1},
                                    {"time_to_dead": float("nan")}, {"max_backoff": float("inf")},
                                    {"give_up_after": 0}])
def test_bad_policies_are_rejected(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        RestartPolicy(**kwargs)


@settings(max_examples=300, deadline=None)
@given(initial=st.floats(0.01, 10.0), extra=st.floats(0.0, 100.0), multiplier=st.floats(1.0, 10.0),
       jitter=st.floats(0.0, 0.99), seed=st.integers(0, 2**32),
       runs=st.lists(st.tuples(st.floats(0.0, 30.0), st.sampled_from([0, 1, -9, 3])), min_size=1, max_size=60))
def test_a_restart_never_waits_longer_than_max_backoff(initial: float, extra: float, multiplier: float,
                                                      jitter: float, seed: int,
                                                      runs: list[tuple[float, int]]) -> None:
    policy = RestartPolicy(initial_backoff=initial, max_backoff=initial + extra, multiplier=multiplier,
                           jitter=jitter)
    health = ChildHealth(policy, random.Random(seed))
    clock = 0.0
    for ran_for, exitcode in runs:
        health.on_start(clock)
        clock += ran_for
        delay = health.on_exit(clock, exitcode)
        assert delay is not None  # no configuration error: never given up
        assert 0.0 <= delay <= policy.max_backoff
        clock += delay


def test_a_crash_loop_of_days_neither_overflows_nor_exceeds_the_cap() -> None:
    health = ChildHealth(RestartPolicy(max_backoff=30.0, jitter=0.2), random.Random(1))
    delays = crash_loop(health, 20_000, ran_for=0.1)  # a week at one start per 30 s
    assert max(delays) <= 30.0
    assert min(delays[-100:]) >= 0.8 * 30.0  # settled at the cap, still spread by the jitter


def test_configuration_errors_in_a_row_give_up() -> None:
    health = ChildHealth(POLICY)  # give_up_after 3
    health.on_start(0.0)
    assert health.on_exit(0.1, CONFIGURATION_ERROR) is not None
    health.on_start(1.0)
    assert health.on_exit(1.1, CONFIGURATION_ERROR) is not None
    health.on_start(3.0)
    assert health.on_exit(3.1, CONFIGURATION_ERROR) is None


@pytest.mark.parametrize("other", [1, -9, 0])
def test_another_exit_or_a_stable_start_resets_the_count_of_configuration_errors(other: int) -> None:
    health = ChildHealth(POLICY)
    for code in (CONFIGURATION_ERROR, CONFIGURATION_ERROR, other, CONFIGURATION_ERROR, CONFIGURATION_ERROR):
        health.on_start(0.0)
        assert health.on_exit(0.1, code) is not None
    health.on_start(0.0)
    assert health.on_exit(POLICY.stable_start_time, CONFIGURATION_ERROR) is not None  # a stable start counts 1
