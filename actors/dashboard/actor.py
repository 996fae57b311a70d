"""The Dashboard: a browser view of the repricer, served by aiohttp.

History comes from the Ledger's SQLite database, read-only: its file (``--db``), or over the Ledger's
socket (``--ledger-endpoint``, CurveZMQ with ``--keys``) when the Dashboard runs on another machine
(:mod:`actors.dashboard.ledger`); live
state from the launcher's events PUB socket (``--events-endpoint``: ``SupervisorEvent`` and
``ActorStatus`` messages, :mod:`actors.dashboard.live`). Pages: ``/`` (overview, live over server-sent events),
``/books`` (every book x strategy, sorted, searched and paginated on the server), ``/book?id=``
(a chart and every decision, with a CSV download), ``/metrics`` (Prometheus). The JSON behind them is
under ``/api/``.

Plain HTTP with no authentication, so it binds loopback only unless ``--insecure`` is given (CurveZMQ
keys protect the events socket, not HTTP).
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Final

import zmq
import zmq.asyncio
from aiohttp import web

from actors import http_edge, runtime
from actors.dashboard import business
from actors.dashboard.bounds import BoundsError, BoundsSource, load_bounds
from actors.dashboard.business import Business
from actors.dashboard.ledger import LedgerBusy, LedgerReader, LedgerReads, LedgerUnavailable
from actors.dashboard.live import LiveState
from actors.dashboard.metrics import DashboardMetrics
from actors.dashboard.options import DashboardOptions
from actors.dashboard.remote import RemoteLedger
from actors.dashboard.sse import LiveStream, StreamLimits
from actors.dashboard.web import DashboardWeb
from actors.http_edge import HttpBounds
from actors.kinds import DASHBOARD
from actors.probes import READY, Readiness, not_ready
from transport.logs import FrameDecoder, RateLimitedLog, printable
from transport.protocol import ActorStatus, SupervisorEvent
from transport.roles import EVENTS
from transport.sockets import EVENTS_HWM, Sockets

log = logging.getLogger(DASHBOARD.name)

SHUTDOWN_TIMEOUT: Final = 1.0
MESSAGES_PER_TURN: Final = 100  # the event loop gets a turn at least this often while messages queue


class Dashboard:
    name = DASHBOARD.name

    def __init__(self, sockets: Sockets[zmq.asyncio.Socket], options: DashboardOptions,
                 bounds: BoundsSource) -> None:
        self._sockets = sockets
        self.options = options
        self.host = options.host
        self.port = options.port
        self.started = asyncio.Event()
        self.state = LiveState(options.history, options.bucket, time.time,
                               listening=options.events_endpoint is not None)
        self.ledger: LedgerReads = (RemoteLedger(sockets, options.ledger_endpoint, options.ledger_timeout)
                                    if options.ledger_endpoint else LedgerReader(options.db))
        self.business: Business | None = None  # the newest reading of the Ledger's database
        self.business_note = "waiting for the first reading of the Ledger's database"
        self._business_version = 0
        self.stream = LiveStream(self.snapshot, lambda: self.state.version + self._business_version,
                                 StreamLimits(options.max_clients))
        self.metrics = DashboardMetrics(self.state, self.all_counters, self.name, lambda: self.business)
        self.web = DashboardWeb(self.state, self.ledger, self.stream, self.metrics, bounds,
                                Path(options.backtest_report), business=lambda: self.business)
        self._own = {"events": 0, "bad_events": 0, "config_reloads": 0, "config_reload_errors": 0,
                     "reload_without_config": 0,
                     **dict.fromkeys(http_edge.EDGE_COUNTERS, 0)}
        self._peer_log = RateLimitedLog(log)
        self._sighup_log = RateLimitedLog(log)  # a SIGHUP storm's lines
        self._frames = FrameDecoder(self._own, "bad_events", RateLimitedLog(log), "bad_event",
                                    "rejected a frame on the events socket")
        self.statuses = 0

    @property
    def counters(self) -> dict[str, int]:
        """What the heartbeat carries. Not the statuses received: each of those would change the counters,
        so every status would make the next beat a message and that message a status (a loop at 1 Hz)."""
        merged = {**self._own, **self.web.counters, **self.web.csv.counters, **self.ledger.counters,
                  **self.stream.counters}
        merged["actors_refused"] = self.state.refused_actors
        return merged

    def readiness(self) -> Readiness:
        """Ready once it listens (the history it shows may still be unavailable: the pages say so)."""
        return READY if self.started.is_set() else not_ready(f"not yet listening on port {self.port}")

    def all_counters(self) -> dict[str, int]:
        return {**self.counters, "statuses": self.statuses}

    def snapshot(self) -> dict[str, object]:
        """The live state, and the newest reading of the Ledger's business: what the overview shows."""
        return {**self.state.snapshot(), "business": None if self.business is None else self.business.as_json(),
                "business_note": self.business_note}

    async def _read_business(self, stop: asyncio.Event) -> None:
        """Read the business from the Ledger's database every few seconds, and at once when an alert was
        raised or cleared (each reading replaces the last; without a database the overview says why)."""
        next_reading = 0.0
        while not stop.is_set():
            if time.monotonic() >= next_reading or await self._alerts_changed():
                next_reading = time.monotonic() + business.REFRESH_EVERY
                try:
                    self.business = await self.ledger.business(time.time())
                    self.business_note = ""
                except LedgerUnavailable as exc:
                    self.business, self.business_note = None, f"No history: {exc}."
                except LedgerBusy as exc:
                    self.business_note = f"The Ledger's database is busy: {exc}."  # the last reading stays
                self._business_version += 1
                self.stream.notify()
            try:
                async with asyncio.timeout(business.ALERTS_EVERY):
                    await stop.wait()
            except TimeoutError:
                pass

    async def _alerts_changed(self) -> bool:
        """Whether the alerts table changed since the last reading (a failure waits for the next one)."""
        if self.business is None:
            return False
        try:
            mark = await self.ledger.alerts_mark()
        except (LedgerUnavailable, LedgerBusy):
            return False
        return mark != self.business.alerts_mark

    def on_frame(self, frame: bytes) -> None:
        """One message from the events socket: into the live state, or counted and logged."""
        message = self._frames.decode_as(frame, SupervisorEvent, ActorStatus)
        if message is None:
            return
        refused = self.state.refused_actors
        if isinstance(message, SupervisorEvent):
            self._own["events"] += 1
            self.state.on_event(message)
        else:
            self.statuses += 1
            self.state.on_status(message)
        if self.state.refused_actors > refused:
            self._peer_log.warning("actors", "ignored a message about actor %s: %d actors already shown (the limit)",
                                   printable(message.actor, 64), len(self.state.actors))

    async def reload(self) -> None:
        """SIGHUP: the config's guardrails and pauses again (the workers reload it on the same signal); a
        config that cannot be read keeps the running ones."""
        # Every line a SIGHUP causes is rate-limited: 1,000 SIGHUPs at 50/s made 1,000 lines (issue 20).
        if not self.options.config:
            self._own["reload_without_config"] += 1
            self._sighup_log.info("sighup", "SIGHUP: no --config, nothing to reload")
            return
        try:
            bounds = await asyncio.to_thread(load_bounds, self.options.config)
        except BoundsError as exc:
            self._own["config_reload_errors"] += 1
            self._sighup_log.error("sighup_error", "config not reloaded, the running one stays: %s", exc)
            return
        self.web.bounds = bounds
        self._own["config_reloads"] += 1
        self._sighup_log.info("sighup_reloaded", "config reloaded from %s (guardrails and pauses)", self.options.config)

    async def _listen(self, endpoint: str) -> None:
        sub = self._sockets.sub(endpoint, EVENTS_HWM, channel=EVENTS)
        try:
            while True:
                self.on_frame(await sub.recv())
                for _ in range(MESSAGES_PER_TURN):  # drain what queued, then yield and notify once
                    try:
                        self.on_frame(await sub.recv(zmq.NOBLOCK))
                    except zmq.Again:
                        break
                self.stream.notify()
                await asyncio.sleep(0)
        finally:
            sub.close(linger=0)

    async def run(self, stop: asyncio.Event) -> None:
        # access_log=None: a line per request (the live stream, /metrics scrapes) is noise, and unbounded.
        runner = web.AppRunner(self.web.make_app(), access_log=None, shutdown_timeout=SHUTDOWN_TIMEOUT)
        await runner.setup()
        server: asyncio.Server | None = None
        try:
            assert runner.server is not None
            # As the APIServer's: malformed requests answered 400 with one rate-limited line and a counter
            # (not aiohttp's traceback), open connections capped, idle and stalled clients dropped.
            factory = http_edge.protocol_factory(runner.server, asyncio.get_running_loop(), self._own,
                                                 self._peer_log, HttpBounds())
            try:
                server = await asyncio.get_running_loop().create_server(factory, self.host, self.port, backlog=128)
            except OSError as exc:  # e.g. the port is taken: say which, plainly (the launcher retries)
                log.error("cannot listen on %s:%d: %s", self.host, self.port, exc.strerror or exc)
                raise
            self.port = server.sockets[0].getsockname()[1]
            host = f"[{self.host}]" if ":" in self.host else self.host
            log.info("dashboard on http://%s:%d/ (history from %s; live state from %s)", host, self.port,
                     self.ledger.where, self.options.events_endpoint or "nowhere: no --events-endpoint")
            self.started.set()
            loop = asyncio.get_running_loop()
            async with asyncio.TaskGroup() as group:
                # SIGHUP: the config again, as the workers read it (without a handler SIGHUP kills)
                loop.add_signal_handler(signal.SIGHUP, lambda: group.create_task(self.reload()))
                events = self.options.events_endpoint
                listener = group.create_task(self._listen(events)) if events else None
                # Cancelled at the stop, not awaited: a read waiting on a Ledger that is gone (its pod
                # stopped first) would hold the stop for up to --ledger-timeout.
                reader = group.create_task(self._read_business(stop))
                await stop.wait()
                reader.cancel()
                if listener is not None:
                    listener.cancel()
                self.stream.close()
        finally:
            asyncio.get_running_loop().remove_signal_handler(signal.SIGHUP)
            self.stream.close()
            if server is not None:
                server.close()  # no new connections; the runner closes the open ones
            # Reads still waiting on the Ledger end now: its pod may be stopping too, and a page waiting
            # for it held the stop for seconds (5.4 s against a 5 s grace in a container test).
            self.ledger.close()
            await runner.cleanup()
            self.ledger.close()  # and any a handler opened again meanwhile


def main(argv: Sequence[str] | None = None, liveness: runtime.Liveness | None = None) -> int:
    options, runtime_options = runtime.parse_options(DASHBOARD, DashboardOptions, __doc__, argv)
    if runtime.refuse_plain_http(DASHBOARD, options.host, runtime_options,
                                 "the Dashboard speaks plain HTTP without authentication"):
        return 2
    try:
        bounds = load_bounds(options.config)
    except BoundsError as exc:
        print(f"dashboard: {options.config}: {exc}", file=sys.stderr)
        return 2

    def make(sockets: Sockets[zmq.asyncio.Socket]) -> Dashboard:
        return Dashboard(sockets, options, bounds)

    return runtime.run_actor(DASHBOARD.name, make, runtime_options, liveness)
