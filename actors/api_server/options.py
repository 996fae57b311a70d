"""The APIServer's command-line options (a light module: the launcher imports it)."""

from __future__ import annotations

import math
from dataclasses import dataclass

from actors.api_server import request_ids
from actors.options import option
from transport.limits import API_BURST_MAX, API_RATE_MAX


@dataclass(frozen=True, slots=True)
class APIServerOptions:
    host: str = option("127.0.0.1", "address to bind")
    port: int = option(8080, "port to bind, 0 = any free port")
    retention: int = option(request_ids.DEFAULT_RETENTION, "answer GET for the last N ids issued by this run",
                            metavar="N")
    state_file: str | None = option(None, "also persist an id high-water mark here, so ids stay unique even "
                                    "if the clock steps back between runs", metavar="PATH")
    latency_ms: float = option(0.0, "fault injection (tests): delay every response by MS milliseconds",
                               metavar="MS")
    error_rate: float = option(0.0, "fault injection (tests): answer this fraction (0..1) of requests with "
                               "a 503", metavar="P")
    seed: int | None = option(None, "seed for --error-rate", parse=int)
    rate_limit: float | None = option(None, "throttle as Amazon does: at most R requests per second per "
                                      "endpoint (a batch call counts as one), else 429 with Retry-After; "
                                      "off by default", parse=float, metavar="R")
    burst: int | None = option(None, "with --rate-limit: up to B requests at once after a quiet spell "
                               "(default: R rounded up, one second's worth)", parse=int, metavar="B")

    def __post_init__(self) -> None:
        if not 0 <= self.port <= 65535:
            raise ValueError("--port must be within 0..65535")
        if self.retention < 1:
            raise ValueError("--retention must be >= 1")
        if not 0 <= self.latency_ms < 3_600_000:
            raise ValueError("--latency-ms must be within 0..3600000")
        if not 0 <= self.error_rate <= 1:
            raise ValueError("--error-rate must be within 0..1")
        if self.rate_limit is not None and not 0 < self.rate_limit <= API_RATE_MAX:  # NaN fails too
            raise ValueError(f"--rate-limit must be within 0..{API_RATE_MAX:.0f} (exclusive of 0)")
        if self.burst is not None:
            if self.rate_limit is None:
                raise ValueError("--burst needs --rate-limit")
            if not 1 <= self.burst <= API_BURST_MAX:
                raise ValueError(f"--burst must be within 1..{API_BURST_MAX}")

    @property
    def effective_burst(self) -> int:
        """--burst, or one second's worth of --rate-limit."""
        if self.burst is not None:
            return self.burst
        return max(1, math.ceil(self.rate_limit or 1))
