"""The Scheduler's command-line options (a light module: the launcher imports it)."""

from __future__ import annotations

import math
from dataclasses import dataclass

from actors.options import borrow, option
from actors.run_inputs import RunInputs, check_tick
from transport import endpoints


@dataclass(frozen=True, slots=True)
class SchedulerOptions:
    ticks_endpoint: str = option(endpoints.DEFAULT_TICKS, "PUB endpoint to bind", metavar="ENDPOINT",
                                 deprecated=("--ticks",))
    tick: float = borrow(RunInputs, "tick")
    t0: float | None = option(None, "start of the run, epoch seconds: tick seq counts intervals since t0 "
                              "(default: now; the launcher passes its own so restarts continue the sequence)",
                              parse=float, render=repr)

    def __post_init__(self) -> None:
        check_tick(self.tick)
        if self.t0 is not None and not math.isfinite(self.t0):
            raise ValueError("--t0 must be a finite number of seconds")
