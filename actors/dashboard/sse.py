"""The overview's live stream: server-sent events carrying the live state, bounded every way
(:class:`StreamLimits`).

- At most ``max_clients`` streams; one more gets a 503 (counted).
- A client never has a queue: it is sent the newest snapshot, at most once per ``interval``, when
  the state moved (and a comment line every ``keepalive`` seconds otherwise). The snapshot is
  serialized once per state version, whatever the number of clients.
- A slow client is dropped, never buffered: if its unsent bytes pass ``buffer_limit`` or a write
  does not complete within ``write_timeout``, its connection is closed (counted).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

from aiohttp import web

from transport.logs import RateLimitedLog

log = logging.getLogger("dashboard")

KEEPALIVE: Final = 15.0
WRITE_TIMEOUT: Final = 5.0
BUFFER_LIMIT: Final = 256 * 1024


class TooManyClients(Exception):
    pass


@dataclass(frozen=True, slots=True)
class StreamLimits:
    """The bounds of the live stream (see above): streams at most, seconds between two snapshots to a
    client and between keepalives, and what a slow client may cost (seconds a write may take, bytes
    left unsent) before it is dropped."""

    max_clients: int
    interval: float = 1.0
    keepalive: float = KEEPALIVE
    write_timeout: float = WRITE_TIMEOUT
    buffer_limit: int = BUFFER_LIMIT


class LiveStream:
    def __init__(self, snapshot: Callable[[], dict[str, Any]], version: Callable[[], int],
                 limits: StreamLimits) -> None:
        self._snapshot = snapshot
        self._version = version
        self.limits = limits
        self._changed = asyncio.Event()
        self._closing = False
        self._cached: tuple[int, bytes] = (-1, b"")
        self.clients = 0
        self.counters = {"live_clients": 0, "live_refused": 0, "live_dropped": 0, "live_sent": 0}
        self._log = RateLimitedLog(log)

    def notify(self) -> None:
        """The state moved: wake every stream (each sends at its own pace)."""
        self._changed.set()
        self._changed = asyncio.Event()

    def close(self) -> None:
        """Shutting down: every stream ends now."""
        self._closing = True
        self.notify()

    def snapshot_json(self) -> bytes:
        """The newest snapshot as JSON, serialized once per state version."""
        version = self._version()
        if self._cached[0] != version:
            self._cached = (version, json.dumps(self._snapshot(), separators=(",", ":")).encode())
        return self._cached[1]

    def payload(self) -> bytes:
        """The newest snapshot as one SSE message (JSON has no raw newline: one data line)."""
        return b"event: state\ndata: " + self.snapshot_json() + b"\n\n"

    async def serve(self, request: web.Request) -> web.StreamResponse:
        if self.clients >= self.limits.max_clients:
            self.counters["live_refused"] += 1
            raise TooManyClients(f"{self.clients} live clients already (at most {self.limits.max_clients})")
        self.clients += 1
        self.counters["live_clients"] = self.clients
        try:
            response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-store",
                                                   "X-Accel-Buffering": "no"})
            await response.prepare(request)
            await self._stream(request, response)
            return response
        finally:
            self.clients -= 1
            self.counters["live_clients"] = self.clients

    async def _stream(self, request: web.Request, response: web.StreamResponse) -> None:
        sent = -1
        await self._send(request, response, b"retry: 2000\n\n")
        while not self._closing:
            version = self._version()
            if version != sent:
                if not await self._send(request, response, self.payload()):
                    return
                sent = version
                self.counters["live_sent"] += 1
                await asyncio.sleep(self.limits.interval)  # at most one snapshot per interval per client
                continue
            changed = self._changed
            try:
                async with asyncio.timeout(self.limits.keepalive):
                    await changed.wait()
            except TimeoutError:
                if not await self._send(request, response, b": keepalive\n\n"):
                    return

    async def _send(self, request: web.Request, response: web.StreamResponse, data: bytes) -> bool:
        """Write or drop: False (and the connection closed) for a client that does not keep up."""
        transport = request.transport
        if transport is None or transport.is_closing():
            return False
        if transport.get_write_buffer_size() > self.limits.buffer_limit:
            return self._drop(request)
        try:
            async with asyncio.timeout(self.limits.write_timeout):
                await response.write(data)
        except TimeoutError:
            return self._drop(request)
        except (ConnectionError, RuntimeError):  # the client went away
            return False
        return True

    def _drop(self, request: web.Request) -> bool:
        self.counters["live_dropped"] += 1
        self._log.warning("slow live client", "dropped the live stream of %s: it does not keep up (over %d bytes "
                          "unsent, or a write stalled %.0fs)", request.remote, self.limits.buffer_limit,
                          self.limits.write_timeout)
        if request.transport is not None:
            with contextlib.suppress(Exception):
                request.transport.abort()
        return False
