"""The probe listener of an actor that runs without a launcher (``--health-port``): ``/livez``,
``/readyz`` and ``/metrics`` over plain HTTP, on the actor's own event loop (what each answers, and
why on the loop: :mod:`actors.probes`).

Plain asyncio, bounded like every edge: at most :data:`CONNECTIONS_MAX` connections at once (more are
closed at once and counted), one request per connection, its head read within
:data:`REQUEST_TIMEOUT` and :data:`~actors.probes.HEAD_MAX_BYTES`; a bad request gets a JSON error,
one rate-limited, escaped log line and a counter. The listener's own counters are served with the
actor's on ``/metrics`` (``probe_requests``, ``probe_bad_requests``, ``probe_timeouts``,
``probe_connections_refused``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Final, Protocol

from actors import probes, prometheus_text
from actors.probes import Probe, Readiness, Refusal
from actors.prometheus_text import ProcessStats
from transport.logs import RateLimitedLog

log = logging.getLogger("health")

CONNECTIONS_MAX: Final = 16
REQUEST_TIMEOUT: Final = 2.0  # seconds for a request's head: a probe sends it at once
CLOSE_TIMEOUT: Final = 1.0
COUNTERS: Final = ("probe_requests", "probe_bad_requests", "probe_timeouts", "probe_connections_refused")


class Counted(Protocol):
    name: str

    @property
    def counters(self) -> Mapping[str, int]: ...


def start_time(stat: str, boot_time: float, ticks_per_second: int) -> float:
    """The process's start, epoch seconds, from the text of ``/proc/<pid>/stat`` (field 22 counts clock
    ticks since boot; the command name before it may hold spaces and parentheses, so count from the last
    ``)``)."""
    fields = stat[stat.rindex(")") + 2:].split()
    return boot_time + int(fields[19]) / ticks_per_second


def _boot_time(text: str) -> float:
    return float(next(line.split()[1] for line in text.splitlines() if line.startswith("btime ")))


class ProcessReader:
    """Reads this process's numbers from /proc at each scrape (Linux; elsewhere there are none)."""

    def __init__(self, proc: Path = Path("/proc")) -> None:
        self._proc = proc
        self._start: float | None = None
        if sys.platform.startswith("linux"):
            with contextlib.suppress(OSError, ValueError, IndexError, StopIteration):
                self._start = start_time((proc / "self" / "stat").read_text(), _boot_time((proc / "stat").read_text()),
                                         os.sysconf("SC_CLK_TCK"))

    def read(self) -> ProcessStats | None:
        if self._start is None:
            return None
        try:
            pages = int((self._proc / "self" / "statm").read_text().split()[1])
        except (OSError, ValueError, IndexError):
            return None
        times = os.times()
        return ProcessStats(pages * os.sysconf("SC_PAGE_SIZE"), times.user + times.system, self._start)


class HealthServer:
    """Serves the probes of ``actor`` on ``host:port`` until :meth:`close`. ``telemetry`` gives the
    counters to publish (the actor's, plus what the runtime adds); ``stopping`` makes ``/readyz`` 503."""

    def __init__(self, actor: Counted, telemetry: Callable[[], Mapping[str, int]], host: str, port: int,
                 stopping: asyncio.Event, *, connections: int = CONNECTIONS_MAX,
                 request_timeout: float = REQUEST_TIMEOUT) -> None:
        self._actor = actor
        self._telemetry = telemetry
        self.host = host
        self.port = port
        self._stopping = stopping
        self._connections = connections
        self._timeout = request_timeout
        self._open = 0
        self._server: asyncio.Server | None = None
        self._process = ProcessReader()
        self._rlog = RateLimitedLog(log)
        self.counters: dict[str, int] = dict.fromkeys(COUNTERS, 0)

    def readiness(self) -> Readiness:
        return probes.readiness_of(self._actor)

    def metrics(self) -> str:
        counters = {**self._telemetry(), **self.counters}
        ready = self.readiness().ready and not self._stopping.is_set()
        return prometheus_text.exposition(self._actor.name, counters, ready=ready, process=self._process.read())

    async def start(self) -> None:
        """Listen (an address in use raises OSError: a configuration error, see ``runtime``)."""
        self._server = await asyncio.start_server(self._serve, self.host, self.port, limit=probes.HEAD_MAX_BYTES,
                                                  backlog=CONNECTIONS_MAX)
        self.port = self._server.sockets[0].getsockname()[1]
        host = f"[{self.host}]" if ":" in self.host else self.host
        log.info("probes on http://%s:%d (/livez, /readyz, /metrics)", host, self.port)

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(CLOSE_TIMEOUT):
                    await self._server.wait_closed()
            self._server = None

    def answer(self, request: probes.Request) -> probes.Response:
        name = self._actor.name
        if request.probe is Probe.LIVE:
            return probes.live(name)
        if request.probe is Probe.READY:
            return probes.ready(name, self.readiness(), self._stopping.is_set())
        return probes.Response(200, self.metrics().encode(), prometheus_text.CONTENT_TYPE)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self._open >= self._connections:
            self.counters["probe_connections_refused"] += 1
            self._rlog.warning("connections", "refused a probe connection: %d already open (the limit)", self._open)
            writer.transport.abort()
            return
        self._open += 1
        try:
            reply = await self._read(reader, writer.get_extra_info("peername"))
            if reply is not None:
                writer.write(reply)
                with contextlib.suppress(TimeoutError, ConnectionError):
                    async with asyncio.timeout(CLOSE_TIMEOUT):
                        await writer.drain()
        finally:
            self._open -= 1
            writer.close()

    async def _read(self, reader: asyncio.StreamReader, peer: object) -> bytes | None:
        """The bytes to answer with, or None when there is nobody to answer."""
        try:
            async with asyncio.timeout(self._timeout):
                head = await reader.readuntil(b"\r\n\r\n")
        except TimeoutError:
            self.counters["probe_timeouts"] += 1
            self._rlog.warning("timeout", "probe request from %s: no complete request within %.0fs", peer,
                               self._timeout)
            return None
        except asyncio.LimitOverrunError:
            return self._refused(probes.refuse(431, f"request head over {probes.HEAD_MAX_BYTES} bytes"), peer)
        except (asyncio.IncompleteReadError, ConnectionError):
            return None  # the peer left before sending a whole request (a TCP probe does): nothing to say
        request = probes.parse_head(head)
        if isinstance(request, Refusal):
            return self._refused(request, peer)
        self.counters["probe_requests"] += 1
        return self.answer(request).encode(request.head_only)

    def _refused(self, refusal: Refusal, peer: object) -> bytes:
        self.counters["probe_bad_requests"] += 1
        self._rlog.warning("bad request", "refused a probe request from %s: %s", peer, refusal.reason)
        return refusal.response.encode()
