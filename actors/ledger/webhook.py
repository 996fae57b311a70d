"""Alert changes POSTed to a webhook as JSON (``[alerts] webhook``), off the decisions' path.

:meth:`Webhook.send` only queues (bounded: :data:`QUEUE_MAX`, more are dropped, counted and logged);
one task delivers them in order, each with at most :data:`ATTEMPTS` tries, :data:`TIMEOUT` seconds
each and a growing pause between them; a 2xx answer is delivered, anything else is tried again, then
given up (counted and logged, rate-limited). A slow or dead endpoint therefore delays only the next
alerts, never a decision. The body is :meth:`AlertChange.as_json`.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Final

from actors.kinds import LEDGER
from actors.ledger.watch import AlertChange
from transport.logs import RateLimitedLog

log = logging.getLogger(LEDGER.name)

QUEUE_MAX: Final = 1000
ATTEMPTS: Final = 3
TIMEOUT: Final = 5.0
PAUSE: Final = 1.0  # before the second try; doubled before each next one

Post = Callable[[bytes], Awaitable[int]]  # sends a body, returns the HTTP status (raises on no answer)


class Webhook:
    def __init__(self, url: str, *, attempts: int = ATTEMPTS, timeout: float = TIMEOUT, pause: float = PAUSE,
                 queue_max: int = QUEUE_MAX, post: Post | None = None) -> None:
        self.url = url
        self._attempts = attempts
        self._timeout = timeout
        self._pause = pause
        self._queue: deque[AlertChange] = deque()
        self._queue_max = queue_max
        self._wake = asyncio.Event()
        self._post = post
        self._rlog = RateLimitedLog(log)
        self.counters = {"webhook_sent": 0, "webhook_failed": 0, "webhook_retries": 0, "webhook_dropped": 0}

    def send(self, change: AlertChange) -> None:
        if len(self._queue) >= self._queue_max:
            self.counters["webhook_dropped"] += 1
            self._rlog.warning("webhook_dropped", "alert not sent to the webhook: %d already wait", len(self._queue))
            return
        self._queue.append(change)
        self._wake.set()

    async def run(self) -> None:
        """Deliver until cancelled."""
        if self._post is not None:
            await self._deliver_all(self._post)
            return
        import aiohttp  # only a Ledger with a webhook pays for the HTTP client

        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self._timeout)) as session:
            async def post(body: bytes) -> int:
                async with session.post(self.url, data=body, headers={"Content-Type": "application/json"}) as reply:
                    return reply.status

            await self._deliver_all(post)

    async def _deliver_all(self, post: Post) -> None:
        while True:
            if not self._queue:
                self._wake.clear()
                await self._wake.wait()
            change = self._queue.popleft()
            await self._deliver(post, change)

    async def _deliver(self, post: Post, change: AlertChange) -> None:
        body = json.dumps(change.as_json(), separators=(",", ":")).encode()
        pause = self._pause
        why = ""
        for attempt in range(self._attempts):
            if attempt:
                self.counters["webhook_retries"] += 1
                await asyncio.sleep(pause)
                pause *= 2
            try:
                async with asyncio.timeout(self._timeout):
                    status = await post(body)
            except TimeoutError:
                why = f"no answer within {self._timeout:.0f}s"
                continue
            except Exception as exc:  # the client's many connection errors: all mean "not delivered"
                why = f"{type(exc).__name__}: {exc}"
                continue
            if 200 <= status < 300:
                self.counters["webhook_sent"] += 1
                return
            why = f"answered {status}"
        self.counters["webhook_failed"] += 1
        self._rlog.warning("webhook_failed", "webhook %s did not take alert %s (%s %s) after %d tries: %s",
                           self.url, change.name, change.book or change.strategy or "system",
                           "raised" if change.raised else "cleared", self._attempts, why)
