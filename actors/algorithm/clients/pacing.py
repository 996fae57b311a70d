"""A token bucket: how the Algorithm paces its own calls to one APIServer endpoint, and how it obeys
a 429's ``retry_after``. Pure: the clock is passed in."""

from __future__ import annotations

import time
from collections.abc import Callable


class TokenBucket:
    """``rate`` calls per second on average, ``burst`` at once; ``rate`` 0 means unlimited (only a
    pause from :meth:`pause` applies). A caller asks :meth:`delay` before it commits to a call, so no
    worker ever sleeps holding one, and :meth:`take` when it sends."""

    def __init__(self, rate: float = 0.0, burst: int = 1, clock: Callable[[], float] = time.monotonic) -> None:
        if rate < 0 or burst < 1:
            raise ValueError(f"rate must be >= 0 and burst >= 1, got {rate}, {burst}")
        self.rate = rate
        self.burst = float(burst)
        self._clock = clock
        self._tokens = float(burst)
        self._stamp = clock()
        self._paused_until = 0.0

    def _refill(self, now: float) -> None:
        if self.rate:
            self._tokens = min(self.burst, self._tokens + (now - self._stamp) * self.rate)
        self._stamp = now

    def delay(self) -> float:
        """Seconds until a call may be sent (0: now)."""
        now = self._clock()
        self._refill(now)
        wait = self._paused_until - now
        if self.rate and self._tokens < 1:
            wait = max(wait, (1 - self._tokens) / self.rate)
        return max(0.0, wait)

    def take(self) -> None:
        """Spend one token (the call is being sent)."""
        self._refill(self._clock())
        if self.rate:
            self._tokens -= 1

    def pause(self, seconds: float) -> None:
        """The server said to wait (429 ``retry_after``): no call before ``seconds`` from now, and the
        burst is spent and cut to 2 -- calls resume at the paced rate with no burst a server's own
        bucket would refuse, yet a timer that fires a little late is still made up for."""
        now = self._clock()
        self._paused_until = max(self._paused_until, now + max(0.0, seconds))
        self._refill(now)
        self._tokens = min(self._tokens, 0.0)
        self.burst = min(self.burst, 2.0)
