"""The APIServer: an aiohttp mock of Amazon's repricing API.

``POST /register-request`` with ``{"book": ID, "price": "12.34"[, "strategy": NAME]}`` returns
``{"id": N}``; ``GET /request-data/N`` returns ``{"sold": true}`` for an even id, ``false`` for odd.
Every error is JSON ``{"error": "..."}``: 400 malformed id or body, 404 unknown id or path, 405 wrong
method, 413 body over 4 KiB, 503 injected fault.

Ids are sequential within one run and start at the wall clock in microseconds, so a restarted server
issues fresh ids without any state file -- assuming the clock does not step back and fewer than 1M
ids/s were issued (see :mod:`actors.api_server.request_ids`). ``--state-file`` adds a persisted high-water mark
that survives a clock step back too. Memory is O(1): the server knows the last ``--retention`` ids of
this run as a window, not a set.

Plain HTTP, so it binds loopback only unless ``--insecure`` is given.
"""

from __future__ import annotations

import asyncio
import logging
import random
import sys
from collections.abc import Sequence
from types import MappingProxyType
from typing import Final

import zmq.asyncio
from aiohttp import web
from aiohttp.typedefs import Handler

from actors import runtime
from actors.api_server import request_ids
from actors.api_server.options import APIServerOptions
from actors.api_server.request_ids import IdAllocator
from actors.api_server.requests import BadRequest, parse_registration
from actors.api_server.state_file import StateFile
from actors.kinds import API_SERVER
from transport.endpoints import is_loopback_host
from transport.limits import HTTP_BODY_MAX_BYTES as MAX_BODY
from transport.logs import RateLimitedLog
from transport.sockets import Sockets

log = logging.getLogger(API_SERVER.name)

SHUTDOWN_TIMEOUT: Final = 0.5  # in-flight requests get this long once stop is set
_SOLD: Final = b'{"sold":true}'
_NOT_SOLD: Final = b'{"sold":false}'
_UNKNOWN_PAST: Final = "unknown id (issued before this server started, or expired)"
_UNKNOWN_FUTURE: Final = "unknown id (not issued yet)"
_COUNTER_NAMES: Final = ("registered", "lookups", "sold", "not_sold", "bad_requests", "unknown_ids",
                         "unknown_paths", "bad_methods", "too_large", "injected_errors",
                         "persist_errors", "other_errors")
# Framework-raised errors (routing, body size) and the counter each one bumps.
_STATUS_COUNTER: Final = MappingProxyType({400: "bad_requests", 404: "unknown_paths", 405: "bad_methods",
                                           413: "too_large"})




def _error(status: int, message: str, headers: dict[str, str] | None = None) -> web.Response:
    return web.json_response({"error": message}, status=status, headers=headers)


class APIServer:
    name = API_SERVER.name

    def __init__(self, options: APIServerOptions) -> None:
        self.host = options.host
        self.port = options.port
        self.latency = options.latency_ms / 1000
        self.error_rate = options.error_rate
        self._rng = random.Random(options.seed)
        self.started = asyncio.Event()
        self._counters = dict.fromkeys(_COUNTER_NAMES, 0)
        self._bad_log = RateLimitedLog(log)
        self._state = StateFile(options.state_file) if options.state_file else None
        floor = self._state.load() if self._state else None
        start = request_ids.initial_id(floor=floor or 0)
        self.ids = IdAllocator(start, options.retention, reserve=self._state.save if self._state else None)

    @property
    def counters(self) -> dict[str, int]:
        return self._counters

    def _bad(self, kind: str, message: str, request: web.Request) -> web.Response:
        self._counters["bad_requests"] += 1
        self._bad_log.warning(kind, "bad request %s %s from %s: %s", request.method, request.path,
                              request.remote, message)
        return _error(400, message)

    async def _register(self, request: web.Request) -> web.Response:
        if request.content_length is not None and request.content_length > MAX_BODY:
            raise web.HTTPRequestEntityTooLarge(max_size=MAX_BODY, actual_size=request.content_length)
        body = await request.read()  # raises 413 past client_max_size for chunked bodies too
        try:
            parse_registration(body)
        except BadRequest as e:
            return self._bad("bad body", str(e), request)
        try:
            request_id = self.ids.allocate()
        except (OSError, OverflowError) as e:
            # Handing out an id whose block is not persisted could repeat it after a restart.
            self._counters["persist_errors"] += 1
            self._bad_log.warning("persist", "cannot issue an id: %s", e)
            return _error(503, "cannot issue a request id right now")
        self._counters["registered"] += 1
        return web.Response(body=b'{"id":%d}' % request_id, content_type="application/json")

    async def _request_data(self, request: web.Request) -> web.Response:
        text = request.match_info["id"]
        request_id = request_ids.parse_id(text)
        if request_id is None:
            return self._bad("bad id", f"malformed id {text[:40]!r}: expected a non-negative integer "
                             f"<= {request_ids.MAX_ID}", request)
        if not self.ids.is_known(request_id):
            self._counters["unknown_ids"] += 1
            message = _UNKNOWN_FUTURE if request_id >= self.ids.next_id else _UNKNOWN_PAST
            self._bad_log.warning("unknown id", "unknown id %d: %s", request_id, message)
            return _error(404, message)
        self._counters["lookups"] += 1
        if request_ids.is_sold(request_id):
            self._counters["sold"] += 1
            return web.Response(body=_SOLD, content_type="application/json")
        self._counters["not_sold"] += 1
        return web.Response(body=_NOT_SOLD, content_type="application/json")

    def make_app(self) -> web.Application:
        @web.middleware
        async def errors_as_json(request: web.Request, handler: Handler) -> web.StreamResponse:
            # Fault injection first, so an injected error costs no id; latency applies to every answer.
            if self.latency:
                await asyncio.sleep(self.latency)
            if self.error_rate and self._rng.random() < self.error_rate:
                self._counters["injected_errors"] += 1
                return _error(503, "injected fault (--error-rate)")
            try:
                return await handler(request)
            except web.HTTPException as e:  # routing 404/405 and 413 come as exceptions: make them JSON
                if e.status < 400:
                    raise
                self._counters[_STATUS_COUNTER.get(e.status, "other_errors")] += 1
                message = e.reason if e.status != 404 else f"no such path {request.path[:80]!r}"
                if e.status == 405:
                    message = f"method {request.method} not allowed on {request.path[:80]!r}"
                elif e.status == 413:
                    message = f"body larger than {MAX_BODY} bytes"
                allow = {"Allow": e.headers["Allow"]} if "Allow" in e.headers else None
                return _error(e.status, message, allow)

        app = web.Application(client_max_size=MAX_BODY, middlewares=[errors_as_json])
        app.router.add_post("/register-request", self._register)
        app.router.add_get("/request-data/{id}", self._request_data)
        return app

    async def run(self, stop: asyncio.Event) -> None:
        self.ids.reserve()  # with --state-file: fail now, not on the first request, if it cannot be written
        # access_log=None: one line per request at 10k req/s is unbounded noise.
        runner = web.AppRunner(self.make_app(), access_log=None, shutdown_timeout=SHUTDOWN_TIMEOUT)
        await runner.setup()
        try:
            site = web.TCPSite(runner, self.host, self.port, backlog=1024)
            await site.start()
            self.port = runner.addresses[0][1]
            host = f"[{self.host}]" if ":" in self.host else self.host
            log.info("listening on http://%s:%d (first id %d, retention %d)", host, self.port,
                     self.ids.run_start, self.ids.retention)
            self.started.set()
            await stop.wait()
        finally:
            await runner.cleanup()


def main(argv: Sequence[str] | None = None, liveness: runtime.Liveness | None = None) -> int:
    options, runtime_options = runtime.parse_options(API_SERVER, APIServerOptions, __doc__, argv)
    if not is_loopback_host(options.host) and not runtime_options.insecure:
        print(f"apiserver: refusing to bind {options.host!r}: not a loopback address and this mock speaks "
              "plain HTTP; pass --insecure to do it anyway", file=sys.stderr)
        return 2
    if options.state_file:
        try:  # a corrupt mark is fatal (guessing could reissue ids): say so plainly, not as a traceback
            StateFile(options.state_file).load()
        except ValueError as e:
            print(f"apiserver: {e}", file=sys.stderr)
            return 2

    def make(sockets: Sockets[zmq.asyncio.Socket]) -> APIServer:
        return APIServer(options)

    return runtime.run_actor(API_SERVER.name, make, runtime_options, liveness)
