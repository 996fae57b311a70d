"""The supervisor's policy, pure: when to restart a child and when to call it hung. The launcher only
applies it (as jupyter_client's ``restarter.py``: named knobs, and a *stable start* that resets the
backoff).

No clock and no randomness of its own: both are passed in, so tests drive it with a fake clock.
"""

from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class RestartPolicy:
    initial_backoff: float = 0.5  # seconds before the first restart
    max_backoff: float = 30.0  # a crash loop settles at one start per this many seconds
    multiplier: float = 2.0
    jitter: float = 0.2  # +-20%, so children crashing together do not restart in lockstep
    stable_start_time: float = 10.0  # up this long = a good start: the backoff resets
    time_to_dead: float = 3.0  # no heartbeat for this long = hung
    startup_timeout: float = 15.0  # first heartbeat due within this long of a start (imports, binds)

    def __post_init__(self) -> None:
        if self.initial_backoff <= 0 or self.max_backoff < self.initial_backoff or self.multiplier < 1:
            raise ValueError("backoff must satisfy 0 < initial <= max and multiplier >= 1")
        if not 0 <= self.jitter < 1 or self.time_to_dead <= 0 or self.startup_timeout <= 0:
            raise ValueError("jitter must be in [0, 1); time_to_dead and startup_timeout positive")


class ChildHealth:
    """One child's restart and liveness bookkeeping."""

    def __init__(self, policy: RestartPolicy, rng: random.Random | None = None) -> None:
        self.policy = policy
        self._rng = rng or random.Random()
        self.failures = 0  # consecutive short-lived runs
        self.restarts = 0
        self.started_at: float | None = None
        self.last_heartbeat: float | None = None

    def on_start(self, now: float) -> None:
        self.started_at = now
        self.last_heartbeat = None

    def on_heartbeat(self, now: float) -> None:
        self.last_heartbeat = now

    def is_hung(self, now: float) -> bool:
        """Missed heartbeats for ``time_to_dead`` (or never sent one within ``startup_timeout``)."""
        if self.started_at is None:
            return False
        if self.last_heartbeat is None:
            return now - self.started_at > self.policy.startup_timeout
        return now - self.last_heartbeat > self.policy.time_to_dead

    def on_exit(self, now: float) -> float:
        """Record an exit; return how long to wait before starting the child again."""
        ran_for = now - self.started_at if self.started_at is not None else 0.0
        self.started_at = None
        self.restarts += 1
        if ran_for >= self.policy.stable_start_time:
            self.failures = 0
        delay = min(self.policy.max_backoff, self.policy.initial_backoff * self.policy.multiplier ** self.failures)
        self.failures += 1
        spread = self.policy.jitter * delay
        return max(0.0, delay + self._rng.uniform(-spread, spread))
