import random

import pytest

from supervisor.policy import ChildHealth, RestartPolicy

POLICY = RestartPolicy(initial_backoff=0.5, max_backoff=8.0, multiplier=2.0, jitter=0.0, stable_start_time=10.0,
                       time_to_dead=3.0, startup_timeout=15.0)


def crash_loop(health: ChildHealth, runs: int, ran_for: float) -> list[float]:
    clock, delays = 0.0, []
    for _ in range(runs):
        health.on_start(clock)
        clock += ran_for
        delay = health.on_exit(clock)
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
    assert all(0.8 <= d <= 1.2 for d in delays)
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
                                    {"jitter": 1.0}, {"time_to_dead": 0}])
def test_bad_policies_are_rejected(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        RestartPolicy(**kwargs)
