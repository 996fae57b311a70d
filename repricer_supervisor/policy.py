"""The supervisor's policy, pure: when to restart a child, when to give up on it, and when to call it
hung. The launcher only applies it (as jupyter_client's ``restarter.py``: named knobs, and a *stable
start* that resets the backoff).

No clock and no randomness of its own: both are passed in, so tests drive it with a fake clock.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

# The exit code of an actor that cannot work as configured (argparse's usage errors, a port in use,
# bad keys, a bad config): restarting it changes nothing, so it is not retried for ever.
from actors.runtime import CONFIGURATION_ERROR as CONFIGURATION_ERROR


@dataclass(frozen=True, slots=True)
class RestartPolicy:
    initial_backoff: float = 0.5  # seconds before the first restart
    max_backoff: float = 30.0  # a crash loop settles at one start per this many seconds, never more
    multiplier: float = 2.0
    jitter: float = 0.2  # +-20% (folded below max_backoff), so children crashing together do not restart in lockstep
    stable_start_time: float = 10.0  # up this long = a good start: the backoff resets
    time_to_dead: float = 3.0  # no heartbeat for this long = hung
    startup_timeout: float = 15.0  # first heartbeat due within this long of a start (imports, binds)
    give_up_after: int = 3  # consecutive configuration errors (exit code 2) before giving up on a child

    def __post_init__(self) -> None:
        # The messages name the launcher's flags: this is where --hang-timeout and --max-backoff are checked.
        if not 0 < self.initial_backoff <= self.max_backoff <= 3600:
            raise ValueError(f"--max-backoff must be within {self.initial_backoff}..3600 s, got {self.max_backoff}")
        if not 0.1 <= self.time_to_dead <= 3600:
            raise ValueError(f"--hang-timeout must be within 0.1..3600 s, got {self.time_to_dead}")
        if not 1 <= self.multiplier <= 10 or not 0 <= self.jitter < 1 or not 0 < self.startup_timeout <= 3600:
            raise ValueError("the multiplier must be within 1..10, the jitter within [0, 1) and the startup timeout "
                             "within 0..3600 s")
        if not 0 <= self.stable_start_time <= 86_400 or not 1 <= self.give_up_after <= 1000:
            raise ValueError("stable_start_time must be within 0..86400 s and give_up_after within 1..1000")


class ChildHealth:
    """One child's restart and liveness bookkeeping."""

    def __init__(self, policy: RestartPolicy, rng: random.Random | None = None) -> None:
        self.policy = policy
        self._rng = rng or random.Random()
        self.failures = 0  # consecutive short-lived runs
        self.configuration_errors = 0  # consecutive exits with CONFIGURATION_ERROR
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

    def on_exit(self, now: float, exitcode: int | None = None) -> float | None:
        """Record an exit; return how long to wait before starting the child again, or None to give up:
        ``give_up_after`` configuration errors in a row, none of them a stable start."""
        ran_for = now - self.started_at if self.started_at is not None else 0.0
        self.started_at = None
        self.restarts += 1
        if ran_for >= self.policy.stable_start_time:
            self.failures = 0
            self.configuration_errors = 0
        self.configuration_errors = self.configuration_errors + 1 if exitcode == CONFIGURATION_ERROR else 0
        if self.configuration_errors >= self.policy.give_up_after:
            return None
        delay = min(self.policy.max_backoff, self.policy.initial_backoff * self.policy.multiplier ** self.failures)
        if delay < self.policy.max_backoff:  # no further once capped: multiplier ** failures would overflow
            self.failures += 1
        spread = self.policy.jitter * delay
        jittered = delay + self._rng.uniform(-spread, spread)
        if jittered > self.policy.max_backoff:
            # --max-backoff is a promise (the longest wait), not a centre: what the jitter would add
            # above it is taken off below it instead, so children at the cap still do not restart in step.
            jittered = 2 * self.policy.max_backoff - jittered
        return min(self.policy.max_backoff, max(0.0, jittered))
