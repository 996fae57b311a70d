"""The launcher's own options (supervision), declared once as dataclass fields like every actor's:
default, help and bounds in one place; a bad value is one usage error at start."""

from __future__ import annotations

from dataclasses import dataclass

from actors.options import default_of, option
from repricer_supervisor.policy import RestartPolicy


def _seconds(name: str, value: float | None, low: float, high: float) -> None:
    if value is not None and not low <= value <= high:  # also refuses nan and inf
        raise ValueError(f"--{name.replace('_', '-')} must be within {low:g}..{high:.0f} seconds, got {value}")


@dataclass(frozen=True, slots=True)
class SupervisionOptions:
    duration: float | None = option(None, "stop cleanly after S seconds (default: run until Ctrl-C / SIGTERM)",
                                    parse=float, metavar="S")
    hang_timeout: float = option(default_of(RestartPolicy, "time_to_dead"),
                                 "kill and restart an actor silent for this long", metavar="S")
    max_backoff: float = option(default_of(RestartPolicy, "max_backoff"),
                                "longest wait between restarts of a crashing actor", metavar="S")
    grace: float = option(5.0, "on stop, SIGKILL actors still running after S seconds", metavar="S")
    status_every: float = option(60.0, "log every actor's RSS and counters every S seconds (and publish them "
                                 "on --events)", metavar="S")

    def __post_init__(self) -> None:
        _seconds("duration", self.duration, 0.01, 1e9)
        _seconds("grace", self.grace, 0.01, 600)
        _seconds("status_every", self.status_every, 0.1, 86_400)
        self.policy()  # --hang-timeout and --max-backoff are checked by the policy itself

    def policy(self) -> RestartPolicy:
        return RestartPolicy(time_to_dead=self.hang_timeout, max_backoff=self.max_backoff)
