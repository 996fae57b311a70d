"""The APIServer's four endpoints (the I/O side; the rules are in ``requests``, ``batches`` and
``request_ids``).

- ``POST /register-request`` ``{"book", "price"[, "strategy"]}`` -> ``{"id": N}``
- ``GET /request-data/N`` -> ``{"sold": true|false}`` (even ids sold)
- ``POST /register-requests`` ``{"items": [...]}`` -> ``{"results": [{"id": N} | {"error": "item I: ..."}]}``
- ``POST /request-data`` ``{"ids": [...]}`` -> ``{"results": [{"id": N, "sold": B} | {..., "error": ...}]}``
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Final, TypeVar

from aiohttp import HttpVersion11, web

from actors.api_server import batches, request_ids
from actors.api_server.request_ids import IdAllocator
from actors.api_server.requests import BadRequest, parse_registration
from actors.http_edge import describe_parse_error, json_error
from transport.limits import HTTP_BATCH_BODY_MAX_BYTES, HTTP_BODY_MAX_BYTES, HTTP_BODY_TIMEOUT
from transport.logs import RateLimitedLog

_T = TypeVar("_T")
_SOLD: Final = b'{"sold":true}'
_NOT_SOLD: Final = b'{"sold":false}'
_PATH_LOGGED: Final = 120  # characters of a refused request's path in its log line
COUNTER_NAMES: Final = ("registered", "lookups", "sold", "not_sold", "bad_requests", "unknown_ids",
                        "unknown_paths", "bad_methods", "too_large", "injected_errors", "persist_errors",
                        "other_errors", "batch_registers", "batch_lookups", "bad_items", "rate_limited",
                        "bad_http", "internal_errors", "connections_refused", "slow_readers", "body_timeouts",
                        "disconnects")


class _Refusal(Exception):
    """Reading the body failed in a way that ends the request with ``response``."""

    def __init__(self, response: web.Response) -> None:
        super().__init__(response.status)
        self.response = response


async def _closing(request: web.Request, response: web.Response) -> _Refusal:
    """Send ``response`` and close the connection now. aiohttp would otherwise linger reading the rest
    of the body: the very thing this client is slow to send, or that cannot be read at all."""
    response.force_close()
    await response.prepare(request)
    await response.write_eof()
    request.protocol.force_close()
    return _Refusal(response)


class Handlers:
    """The endpoints over one id allocator; every outcome counted, every problem logged rate-limited."""

    def __init__(self, ids: IdAllocator, counters: dict[str, int], bad_log: RateLimitedLog,
                 body_timeout: float = HTTP_BODY_TIMEOUT) -> None:
        self.ids = ids
        self._body_timeout = body_timeout
        self._counters = counters
        self._bad_log = bad_log

    def _bad(self, kind: str, message: str, request: web.Request) -> web.Response:
        self._counters["bad_requests"] += 1
        self._bad_log.warning(kind, "bad request %s %s from %s: %s", request.method, request.path,
                              request.remote, message)
        return json_error(400, message)

    async def _parsed_body(self, request: web.Request, limit: int, parse: Callable[[bytes], _T], kind: str
                           ) -> _T | web.Response:
        """The body as ``parse`` makes it, or the response that refuses it: the 413/408/400 of
        :meth:`_read`, or a 400 counted and logged as ``kind`` when ``parse`` raises BadRequest."""
        try:
            return parse(await self._read(request, limit))
        except _Refusal as refusal:
            return refusal.response
        except BadRequest as e:
            return self._bad(kind, str(e), request)

    async def _read(self, request: web.Request, limit: int) -> bytes:
        """The whole body, at most ``limit`` bytes (413 otherwise, chunked bodies too), received within
        the body timeout (408 otherwise: a client trickling its body must not hold us forever)."""
        if request.content_length is not None and request.content_length > limit:
            raise self._too_large(request, limit)
        try:
            if request.content.is_eof():  # the usual case: already all here, no timer needed
                return await self._read_all(request, limit)
            async with asyncio.timeout(self._body_timeout):
                return await self._read_all(request, limit)
        except TimeoutError:
            self._counters["body_timeouts"] += 1
            self._bad_log.warning("body timeout", "no complete body within %gs from %s", self._body_timeout,
                                  request.remote)
            raise await _closing(request, json_error(408, f"body not received within {self._body_timeout:g}s")
                                 ) from None
        except web.RequestPayloadError as e:  # bad chunking, a body that does not decompress...
            reason = describe_parse_error(e.__cause__ or e)
            self._counters["bad_http"] += 1
            self._bad_log.warning("bad http", "malformed body from %s: %s", request.remote, reason)
            raise await _closing(request, json_error(400, f"malformed request body: {reason}")) from None

    async def _read_all(self, request: web.Request, limit: int) -> bytes:
        body = bytearray()
        while chunk := await request.content.readany():
            body += chunk
            if len(body) > limit:
                raise self._too_large(request, limit)
        return bytes(body)

    async def expect(self, request: web.Request) -> web.Response | None:
        """``Expect: 100-continue`` gets its interim answer; any other expectation a JSON 417 (aiohttp's
        own would echo the peer's header into a plain-text answer)."""
        if request.headers.get("Expect", "").lower() == "100-continue":
            if request.version == HttpVersion11:
                await request.writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
            return None
        self._counters["bad_requests"] += 1
        self._bad_log.warning("bad expect", "unsupported Expect header from %s: %s", request.remote,
                              request.headers.get("Expect", ""))
        response = json_error(417, "unsupported Expect header: only 100-continue is")
        response.force_close()  # the client may or may not send its body now: start afresh
        return response

    def _too_large(self, request: web.Request, limit: int) -> _Refusal:
        self._counters["too_large"] += 1
        self._bad_log.warning("too large", "body over %d bytes refused (413): %s %s from %s", limit, request.method,
                              request.path[:_PATH_LOGGED], request.remote)
        return _Refusal(json_error(413, f"body larger than {limit} bytes"))

    def _allocate(self, count: int) -> int | None:
        try:
            return self.ids.allocate() if count == 1 else self.ids.allocate_many(count)
        except (OSError, OverflowError) as e:
            # Handing out an id whose block is not persisted could repeat it after a restart.
            self._counters["persist_errors"] += 1
            self._bad_log.warning("persist", "cannot issue an id: %s", e)
            return None

    async def register(self, request: web.Request) -> web.Response:
        # Validated only: the mock keeps no registration, it issues an id.
        parsed = await self._parsed_body(request, HTTP_BODY_MAX_BYTES, parse_registration, "bad body")
        if isinstance(parsed, web.Response):
            return parsed
        request_id = self._allocate(1)
        if request_id is None:
            return json_error(503, "cannot issue a request id right now")
        self._counters["registered"] += 1
        return web.Response(body=b'{"id":%d}' % request_id, content_type="application/json")

    async def request_data(self, request: web.Request) -> web.Response:
        text = request.match_info["id"]
        request_id = request_ids.parse_id(text)
        if request_id is None:
            return self._bad("bad id", f"malformed id {text[:40]!r}: expected a non-negative integer "
                             f"<= {request_ids.MAX_ID}", request)
        if not self.ids.is_known(request_id):
            self._counters["unknown_ids"] += 1
            message = batches.UNKNOWN_FUTURE if request_id >= self.ids.next_id else batches.UNKNOWN_PAST
            self._bad_log.warning("unknown id", "unknown id %d: %s", request_id, message)
            return json_error(404, message)
        self._counters["lookups"] += 1
        if request_ids.is_sold(request_id):
            self._counters["sold"] += 1
            return web.Response(body=_SOLD, content_type="application/json")
        self._counters["not_sold"] += 1
        return web.Response(body=_NOT_SOLD, content_type="application/json")

    async def register_batch(self, request: web.Request) -> web.Response:
        batch = await self._parsed_body(request, HTTP_BATCH_BODY_MAX_BYTES, batches.parse_registrations, "bad batch")
        if isinstance(batch, web.Response):
            return batch
        first_id = 0
        if batch.valid:
            allocated = self._allocate(batch.valid)
            if allocated is None:
                return json_error(503, "cannot issue request ids right now")
            first_id = allocated
        counters = self._counters
        counters["batch_registers"] += 1
        counters["registered"] += batch.valid
        if batch.errors:
            counters["bad_items"] += len(batch.errors)
            self._bad_log.warning("bad items", "%d of %d items refused from %s, first: %s", len(batch.errors),
                                  batch.count, request.remote, next(iter(batch.errors.values())))
        return web.Response(body=batches.registration_results(batch, first_id), content_type="application/json")

    async def request_data_batch(self, request: web.Request) -> web.Response:
        ids = await self._parsed_body(request, HTTP_BATCH_BODY_MAX_BYTES, batches.parse_lookups, "bad batch")
        if isinstance(ids, web.Response):
            return ids
        body, tally = batches.lookup_results(ids, self.ids)
        counters = self._counters
        counters["batch_lookups"] += 1
        counters["lookups"] += tally.sold + tally.not_sold
        counters["sold"] += tally.sold
        counters["not_sold"] += tally.not_sold
        if tally.unknown or tally.malformed:
            counters["unknown_ids"] += tally.unknown
            counters["bad_items"] += tally.malformed
            self._bad_log.warning("unknown id", "%d unknown and %d malformed of %d ids from %s", tally.unknown,
                                  tally.malformed, len(ids), request.remote)
        return web.Response(body=body, content_type="application/json")
