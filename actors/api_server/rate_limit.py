"""Rate limits as Amazon's Selling Partner API imposes them, pure: a token bucket per endpoint (a
steady ``rate`` of requests per second, and up to ``burst`` at once after a quiet spell). The clock
is passed in, so tests drive it by hand.

A refused request learns exactly when the next token is due (:meth:`TokenBucket.take`); the server
answers 429 with that wait in the body and, rounded up to whole seconds, in ``Retry-After``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Final

# A token this close to whole counts as whole: float sums of ``elapsed * rate`` may land at
# 0.9999999999 exactly when a client honoured the wait it was given.
_EPSILON: Final = 1e-9


class TokenBucket:
    """``burst`` tokens at most, refilled at ``rate`` per second; a request takes one."""

    __slots__ = ("burst", "rate", "tokens", "updated")

    def __init__(self, rate: float, burst: int, now: float) -> None:
        if not (math.isfinite(rate) and rate > 0):
            raise ValueError("rate must be a positive number")
        if burst < 1:
            raise ValueError("burst must be >= 1")
        self.rate = rate
        self.burst = burst
        self.tokens = float(burst)  # a fresh bucket is full
        self.updated = now

    def take(self, now: float) -> float:
        """Take a token at ``now``: 0.0 if granted, else the seconds until one is due (> 0). A refused
        request takes nothing, so refusals do not push the next grant further away."""
        elapsed = now - self.updated
        if elapsed > 0:  # a clock that stands still or steps back adds nothing
            self.tokens = min(self.burst, self.tokens + elapsed * self.rate)
            self.updated = now
        if self.tokens >= 1 - _EPSILON:
            self.tokens -= 1
            return 0.0
        return (1 - self.tokens) / self.rate


class RateLimiter:
    """One bucket per endpoint name, all with the same rate and burst (off: ``rate`` None)."""

    __slots__ = ("_buckets",)

    def __init__(self, endpoints: Iterable[str], rate: float | None, burst: int, now: float) -> None:
        self._buckets = {} if rate is None else {name: TokenBucket(rate, burst, now) for name in endpoints}

    def take(self, endpoint: str, now: float) -> float:
        """0.0 if ``endpoint`` may be served now (always, when it has no limit), else the wait."""
        bucket = self._buckets.get(endpoint)
        return 0.0 if bucket is None else bucket.take(now)


def retry_after_body(wait: float) -> float:
    """The ``retry_after`` of a 429 body: the wait rounded *up* to the millisecond, so a client that
    comes back exactly then finds its token."""
    return max(0.001, math.ceil(wait * 1000 - _EPSILON) / 1000)


def retry_after_header(wait: float) -> str:
    """``Retry-After`` is whole seconds (RFC 9110): rounded up, at least 1."""
    return str(max(1, math.ceil(wait - _EPSILON)))
