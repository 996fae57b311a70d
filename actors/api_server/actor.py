"""The APIServer: an aiohttp mock of Amazon's repricing API.

``POST /register-request`` with ``{"book": ID, "price": "12.34"[, "strategy": NAME]}`` returns
``{"id": N}``; ``GET /request-data/N`` returns ``{"sold": true}`` for an even id, ``false`` for odd.
Batched, as Amazon's API offers them: ``POST /register-requests`` with ``{"items": [{"book", "price",
"strategy"}, ...]}`` returns ``{"results": [{"id": N} | {"error": "item I: why"}, ...]}``, and ``POST
/request-data`` with ``{"ids": [N, ...]}`` returns ``{"results": [{"id": N, "sold": true} | {"id": N,
"error": ...}, ...]}`` (up to 1000 items, 256 KiB; a bad item fails alone).
Every error is JSON ``{"error": "..."}``: 400 malformed id, body or HTTP request, 404 unknown id or
path, 405 wrong method, 408 body too slow, 413 body over 4 KiB (256 KiB for a batch), 429 over
``--rate-limit`` (with ``Retry-After`` and ``"retry_after"`` in seconds), 503 injected fault or too
many connections.

Ids are sequential within one run and start at the wall clock in microseconds, so a restarted server
issues fresh ids without any state file -- assuming the clock does not step back and fewer than 1M
ids/s were issued (see :mod:`actors.api_server.request_ids`). ``--state-file`` adds a persisted high-water mark
that survives a clock step back too. Memory is O(1): the server knows the last ``--retention`` ids of
this run as a window, not a set.

Plain HTTP, so it binds loopback only unless ``--insecure`` is given.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import os
import random
import sys
import time
from collections.abc import Callable, Sequence
from types import MappingProxyType
from typing import Any, Final

import zmq.asyncio
from aiohttp import web
from aiohttp.typedefs import Handler

from actors import http_edge, runtime
from actors.api_server import request_ids
from actors.api_server.handlers import COUNTER_NAMES, Handlers
from actors.api_server.options import APIServerOptions
from actors.api_server.rate_limit import RateLimiter, retry_after_body, retry_after_header
from actors.api_server.request_ids import IdAllocator
from actors.api_server.state_file import StateFile
from actors.http_edge import HttpBounds, json_error
from actors.kinds import API_SERVER
from actors.probes import READY, Readiness, not_ready
from transport.limits import HTTP_BATCH_BODY_MAX_BYTES
from transport.logs import RateLimitedLog
from transport.sockets import Sockets

log = logging.getLogger(API_SERVER.name)

SHUTDOWN_TIMEOUT: Final = 0.5  # in-flight requests get this long once stop is set
BACKLOG: Final = 1024
# Route names: each is an endpoint with its own rate-limit bucket.
ENDPOINTS: Final = ("register-request", "request-data", "register-requests", "request-data-batch")
# Framework-raised errors (routing) and the counter each one bumps.
_STATUS_COUNTER: Final = MappingProxyType({400: "bad_requests", 404: "unknown_paths", 405: "bad_methods"})
_PATH_LOGGED: Final = 120  # characters of a refused request's path in its log line


class ListenError(Exception):
    """The server cannot listen (port in use, no permission, unknown host): a configuration error."""


class APIServer:
    name = API_SERVER.name

    def __init__(self, options: APIServerOptions, clock: Callable[[], float] = time.monotonic,
                 bounds: HttpBounds | None = None) -> None:
        self.host = options.host
        self.port = options.port
        self.latency = options.latency_ms / 1000
        self.error_rate = options.error_rate
        self._rng = random.Random(options.seed)
        self._clock = clock
        self.started = asyncio.Event()
        self._counters = dict.fromkeys(COUNTER_NAMES, 0)
        self._bad_log = RateLimitedLog(log)
        self._limiter = RateLimiter(ENDPOINTS, options.rate_limit, options.effective_burst, clock())
        self._state = StateFile(options.state_file) if options.state_file else None
        floor = self._state.load() if self._state else None
        start = request_ids.initial_id(floor=floor or 0)
        self.ids = IdAllocator(start, options.retention, reserve=self._state.save if self._state else None)
        self._bounds = bounds or HttpBounds()
        self._handlers = Handlers(self.ids, self._counters, self._bad_log, self._bounds.body_timeout)
        self._runner: web.AppRunner | None = None

    @property
    def counters(self) -> dict[str, int]:
        return self._counters

    def readiness(self) -> Readiness:
        """Ready once it listens."""
        return READY if self.started.is_set() else not_ready(f"not yet listening on port {self.port}")

    @property
    def open_connections(self) -> int:
        server = self._runner.server if self._runner is not None else None
        return len(server.connections) if server is not None else 0

    def _throttled(self, request: web.Request) -> web.Response | None:
        """429 if this request's endpoint is over its rate limit (unknown paths have none)."""
        endpoint = request.match_info.route.name
        wait = self._limiter.take(endpoint, self._clock()) if endpoint else 0.0
        if not wait:
            return None
        self._counters["rate_limited"] += 1
        self._bad_log.warning("rate limit", "rate limit exceeded on %s from %s", endpoint, request.remote)
        return web.json_response({"error": "rate limit exceeded", "retry_after": retry_after_body(wait)},
                                 status=429, headers={"Retry-After": retry_after_header(wait)})

    def make_app(self) -> web.Application:
        @web.middleware
        async def errors_as_json(request: web.Request, handler: Handler) -> web.StreamResponse:
            # Throttling and fault injection first, so a refused call costs no id; latency applies to
            # every answer.
            if self.latency:
                await asyncio.sleep(self.latency)
            if (throttled := self._throttled(request)) is not None:
                return throttled
            if self.error_rate and self._rng.random() < self.error_rate:
                self._counters["injected_errors"] += 1
                return json_error(503, "injected fault (--error-rate)")
            try:
                return await handler(request)
            except web.HTTPException as e:  # routing 404/405 come as exceptions: make them JSON
                if e.status < 400:
                    raise
                counter = _STATUS_COUNTER.get(e.status, "other_errors")
                self._counters[counter] += 1
                # The peer's method and path, escaped and cut by the log (a scanner probes many paths).
                self._bad_log.warning(counter, "%d %s %s from %s", e.status, request.method,
                                      request.path[:_PATH_LOGGED], request.remote)
                message = e.reason if e.status != 404 else f"no such path {request.path[:80]!r}"
                if e.status == 405:
                    message = f"method {request.method} not allowed on {request.path[:80]!r}"
                allow = {"Allow": e.headers["Allow"]} if "Allow" in e.headers else None
                return json_error(e.status, message, allow)

        # Bodies are read by the handlers, each against its own limit; this only bounds aiohttp's own.
        app = web.Application(client_max_size=HTTP_BATCH_BODY_MAX_BYTES, middlewares=[errors_as_json])
        h = self._handlers
        app.router.add_post("/register-request", h.register, name="register-request", expect_handler=h.expect)
        app.router.add_get("/request-data/{id}", h.request_data, name="request-data", expect_handler=h.expect)
        app.router.add_post("/register-requests", h.register_batch, name="register-requests",
                            expect_handler=h.expect)
        app.router.add_post("/request-data", h.request_data_batch, name="request-data-batch",
                            expect_handler=h.expect)
        return app

    def _loop_error(self, loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        """An error asyncio caught in a callback (e.g. a protocol's): one rate-limited line, not the
        default multi-line traceback, since a peer may trigger it again and again."""
        self._counters["internal_errors"] += 1
        self._bad_log.error("event loop", "%s: %r", context.get("message", "error"), context.get("exception"))

    async def run(self, stop: asyncio.Event) -> None:
        self.ids.reserve()  # with --state-file: fail now, not on the first request, if it cannot be written
        runner = self._runner = web.AppRunner(self.make_app(), shutdown_timeout=SHUTDOWN_TIMEOUT)
        await runner.setup()
        listener: asyncio.Server | None = None
        loop = asyncio.get_running_loop()
        previous_handler = loop.get_exception_handler()
        loop.set_exception_handler(self._loop_error)
        try:
            assert runner.server is not None
            # Our own listening socket instead of a TCPSite: each connection gets the JSON-error,
            # bounded protocol of http_edge, and connections past the cap are refused.
            factory = http_edge.protocol_factory(runner.server, loop, self._counters, self._bad_log, self._bounds)
            try:
                listener = await loop.create_server(factory, self.host, self.port, backlog=BACKLOG)
            except OSError as e:  # asyncio's text repeats the address: say it once, plainly
                why = os.strerror(e.errno) if e.errno else str(e)
                hint = " (another process holds it; choose another --port)" if e.errno == errno.EADDRINUSE else ""
                raise ListenError(f"cannot listen on {self.host} port {self.port}: {why}{hint}") from None
            self.port = listener.sockets[0].getsockname()[1]
            host = f"[{self.host}]" if ":" in self.host else self.host
            log.info("listening on http://%s:%d (first id %d, retention %d)", host, self.port,
                     self.ids.run_start, self.ids.retention)
            self.started.set()
            await stop.wait()
        finally:
            if listener is not None:
                listener.close()  # no new connections; the runner closes the open ones
            await runner.cleanup()
            if listener is not None:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(SHUTDOWN_TIMEOUT):
                        await listener.wait_closed()
            loop.set_exception_handler(previous_handler)


def main(argv: Sequence[str] | None = None, liveness: runtime.Liveness | None = None) -> int:
    options, runtime_options = runtime.parse_options(API_SERVER, APIServerOptions, __doc__, argv)
    if runtime.refuse_plain_http(API_SERVER, options.host, runtime_options, "this mock speaks plain HTTP"):
        return 2
    if options.state_file:
        try:  # a corrupt mark is fatal (guessing could reissue ids): say so plainly, not as a traceback
            StateFile(options.state_file).load()
        except ValueError as e:
            print(f"apiserver: {e}", file=sys.stderr)
            return 2

    def make(sockets: Sockets[zmq.asyncio.Socket]) -> APIServer:
        return APIServer(options)

    try:
        return runtime.run_actor(API_SERVER.name, make, runtime_options, liveness)
    except ExceptionGroup as group:  # the actor runs in a TaskGroup: its error comes wrapped
        refused, rest = group.split(ListenError)
        if refused is None or rest is not None:
            raise
        reason: BaseException = refused
        while isinstance(reason, BaseExceptionGroup):
            reason = reason.exceptions[0]
        log.error("%s", reason)  # one clear line, no traceback
        return 2
