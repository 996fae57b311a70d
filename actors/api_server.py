"""The APIServer: an aiohttp mock of Amazon's repricing API.

``POST /register-request`` with ``{"book": ID, "price": "12.34"[, "strategy": NAME]}`` returns
``{"id": N}``; ``GET /request-data/N`` returns ``{"sold": true}`` for an even id, ``false`` for odd.
Every error is JSON ``{"error": "..."}``: 400 malformed id or body, 404 unknown id or path, 405 wrong
method, 413 body over 4 KiB, 503 injected fault.

Ids are sequential within one run and start at the wall clock in microseconds, so a restarted server
issues fresh ids without any state file -- assuming the clock does not step back and fewer than 1M
ids/s were issued (see :mod:`actors.request_ids`). ``--state-file`` adds a persisted high-water mark
that survives a clock step back too. Memory is O(1): the server knows the last ``--retention`` ids of
this run as a window, not a set.

Plain HTTP, so it binds loopback only unless ``--insecure`` is given.
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import json
import logging
import os
import random
import re
import sys
from collections.abc import Sequence
from decimal import Decimal
from typing import Any, Final

from aiohttp import web
from aiohttp.typedefs import Handler

from actors import request_ids, runtime
from actors.request_ids import IdAllocator

log = logging.getLogger("apiserver")

MAX_BODY: Final = 4096
MAX_BOOK_LEN: Final = 128
MAX_STRATEGY_LEN: Final = 64
MAX_PRICE_PLACES: Final = 6
MAX_PRICE: Final = Decimal(1_000_000)  # no book costs more; also bounds '1e999999' style numbers
SHUTDOWN_TIMEOUT: Final = 0.5  # in-flight requests get this long once stop is set
_PRICE_RE: Final = re.compile(rf"[0-9]{{1,7}}(?:\.[0-9]{{1,{MAX_PRICE_PLACES}}})?")
_SOLD: Final = b'{"sold":true}'
_NOT_SOLD: Final = b'{"sold":false}'
_UNKNOWN_PAST: Final = "unknown id (issued before this server started, or expired)"
_UNKNOWN_FUTURE: Final = "unknown id (not issued yet)"
_COUNTER_NAMES: Final = ("registered", "lookups", "sold", "not_sold", "bad_requests", "unknown_ids",
                         "unknown_paths", "bad_methods", "too_large", "injected_errors",
                         "persist_errors", "other_errors")
# Framework-raised errors (routing, body size) and the counter each one bumps.
_STATUS_COUNTER: Final = {400: "bad_requests", 404: "unknown_paths", 405: "bad_methods", 413: "too_large"}


class BadRequest(ValueError):
    """A malformed request body; the message goes back to the client."""


class StateFile:
    """The persisted id high-water mark: ``{"next_block_end": N}``, replaced atomically."""

    def __init__(self, path: str) -> None:
        self.path = path

    def load(self) -> int | None:
        """The persisted mark, or None if there is no file yet. A corrupt file raises: guessing could
        reissue ids."""
        try:
            with open(self.path, encoding="utf-8") as f:
                data = json.load(f)
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as e:
            raise ValueError(f"cannot read id state file {self.path}: {e}") from e
        value = data.get("next_block_end") if isinstance(data, dict) else None
        if type(value) is not int or not 0 <= value <= request_ids.MAX_ID:
            raise ValueError(f"id state file {self.path} has no valid next_block_end: {data!r}")
        return value

    def save(self, next_block_end: int) -> None:
        # Write a temp file, fsync, then rename over the old one: a crash leaves either the old or the
        # new mark, never a torn file; the directory fsync makes the rename itself durable.
        tmp = f"{self.path}.tmp.{os.getpid()}"
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump({"next_block_end": next_block_end}, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path)
        dir_fd = os.open(os.path.dirname(os.path.abspath(self.path)), os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number")


def parse_price(value: object) -> Decimal:
    if isinstance(value, str):
        # A regex, not Decimal(): Decimal() also takes 'NaN', '1e3', '1_000' and surrounding spaces.
        if not _PRICE_RE.fullmatch(value):
            raise BadRequest(f"price must be a decimal string like '12.34' (at most {MAX_PRICE_PLACES} "
                             "decimal places)")
        price = Decimal(value)
    elif isinstance(value, Decimal):
        price = value
    elif isinstance(value, int) and not isinstance(value, bool):
        price = Decimal(value)
    else:
        raise BadRequest("price must be a decimal string or a number")
    if not price.is_finite() or price <= 0:
        raise BadRequest("price must be finite and > 0")
    if price > MAX_PRICE:
        raise BadRequest(f"price must be at most {MAX_PRICE}")
    exponent = price.as_tuple().exponent
    if isinstance(exponent, int) and exponent < -MAX_PRICE_PLACES:
        raise BadRequest(f"price has more than {MAX_PRICE_PLACES} decimal places")
    return price


def parse_registration(body: bytes) -> tuple[str, Decimal, str | None]:
    """(book, price, strategy) from a /register-request body, or BadRequest."""
    try:
        data = json.loads(body, parse_float=Decimal, parse_constant=_reject_constant)
    except (ValueError, RecursionError) as e:  # JSONDecodeError and bad UTF-8 are ValueErrors
        raise BadRequest(f"body is not valid JSON: {e}") from None
    if not isinstance(data, dict):
        raise BadRequest("body must be a JSON object")
    book = data.get("book")
    if not isinstance(book, str) or not book.strip() or len(book) > MAX_BOOK_LEN:
        raise BadRequest(f"book must be a non-empty string of at most {MAX_BOOK_LEN} characters")
    if "price" not in data:
        raise BadRequest("price is missing")
    price = parse_price(data["price"])
    strategy = data.get("strategy")
    if strategy is not None and (not isinstance(strategy, str) or len(strategy) > MAX_STRATEGY_LEN):
        raise BadRequest(f"strategy must be a string of at most {MAX_STRATEGY_LEN} characters")
    return book, price, strategy


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> web.Response:
    return web.json_response({"error": message}, status=status, headers=headers)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:  # some other host name: cannot vouch for it
        return False


class APIServer:
    name = "apiserver"

    def __init__(self, host: str = "127.0.0.1", port: int = 8080,
                 retention: int = request_ids.DEFAULT_RETENTION, latency_ms: float = 0,
                 error_rate: float = 0, seed: int | None = None,
                 state_file: str | None = None) -> None:
        if not 0 <= error_rate <= 1:
            raise ValueError("error_rate must be within 0..1")
        if latency_ms < 0:
            raise ValueError("latency_ms must be >= 0")
        self.host = host
        self.port = port
        self.latency = latency_ms / 1000
        self.error_rate = error_rate
        self._rng = random.Random(seed)
        self.started = asyncio.Event()
        self._counters = dict.fromkeys(_COUNTER_NAMES, 0)
        self._bad_log = runtime.RateLimitedLog(log)
        self._state = StateFile(state_file) if state_file else None
        floor = self._state.load() if self._state else None
        start = request_ids.initial_id(floor=floor or 0)
        self.ids = IdAllocator(start, retention, reserve=self._state.save if self._state else None)

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


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m actors.api_server", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default %(default)s)")
    parser.add_argument("--port", type=int, default=8080,
                        help="port to bind, 0 = any free port (default %(default)s)")
    parser.add_argument("--retention", type=int, default=request_ids.DEFAULT_RETENTION, metavar="N",
                        help="answer GET for the last N ids issued by this run (default %(default)s)")
    parser.add_argument("--state-file", default=None, metavar="PATH",
                        help="also persist an id high-water mark here, so ids stay unique even if the "
                             "clock steps back between runs")
    faults = parser.add_argument_group("fault injection (tests only; off by default)")
    faults.add_argument("--latency-ms", type=float, default=0.0, metavar="MS",
                        help="delay every response by MS milliseconds")
    faults.add_argument("--error-rate", type=float, default=0.0, metavar="P",
                        help="answer this fraction (0..1) of requests with a 503")
    faults.add_argument("--seed", type=int, default=None, help="seed for --error-rate")
    runtime.add_common_arguments(parser)
    args = parser.parse_args(argv)
    if not 0 <= args.port <= 65535:
        parser.error("--port must be within 0..65535")
    if args.retention < 1:
        parser.error("--retention must be >= 1")
    if not 0 <= args.latency_ms < 3_600_000:
        parser.error("--latency-ms must be >= 0")
    if not 0 <= args.error_rate <= 1:
        parser.error("--error-rate must be within 0..1")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if not is_loopback(args.host) and not args.insecure:
        print(f"apiserver: refusing to bind {args.host!r}: not a loopback address and this mock speaks "
              "plain HTTP; pass --insecure to do it anyway", file=sys.stderr)
        return 2
    if args.state_file:
        try:  # a corrupt mark is fatal (guessing could reissue ids): say so plainly, not as a traceback
            StateFile(args.state_file).load()
        except ValueError as e:
            print(f"apiserver: {e}", file=sys.stderr)
            return 2
    return runtime.run_actor("apiserver", lambda ctx: APIServer(
        args.host, args.port, args.retention, args.latency_ms, args.error_rate, args.seed, args.state_file,
    ), args)


if __name__ == "__main__":
    sys.exit(main())
