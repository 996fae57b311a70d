"""The Algorithm's side of the APIServer (Amazon's API): register requests, read their results, one
at a time or in batches, paced by a token bucket per endpoint.

Per-item calls: ``POST /register-request`` then ``GET /request-data/<id>``. Batched calls (``--api-batch
N``): ``POST /register-requests`` with ``{"items": [...]}`` and ``POST /request-data`` with ``{"ids":
[...]}``; a bad item is reported in its place, the others succeed. A 429 pauses the endpoint for the
server's ``retry_after`` (the body's float, else the ``Retry-After`` header) and raises
:class:`RateLimited`; nothing is retried here, so a limit never turns into a storm of retries.
Every request has a timeout; every failure is an :class:`ApiError` with the reason.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Final

import orjson

from actors.algorithm.clients.http import HttpClient, HttpError, Response
from actors.algorithm.clients.pacing import TokenBucket
from actors.algorithm.options import PricingOptions
from actors.options import default_of
from transport import limits

REGISTER: Final = "register"
READ: Final = "read"
RETRY_AFTER_MAX: Final = 60.0  # seconds: a longer wait asked by a server is capped (and still counted)
RETRY_AFTER_DEFAULT: Final = 1.0  # a 429 that says nothing usable


class ApiError(Exception):
    """The APIServer did not give a usable answer; the decision is skipped and retried next tick."""


class RateLimited(ApiError):
    """429: the endpoint is paused for ``retry_after`` seconds."""

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after


@dataclass(frozen=True, slots=True)
class HttpPolicy:
    """Timeout, concurrency and pacing of the calls to the APIServer. The defaults are the options'
    (``--http-timeout``, ``--max-in-flight``, ``--api-rate``, ``--api-burst``), declared there once."""

    timeout: float = default_of(PricingOptions, "http_timeout")
    max_in_flight: int = default_of(PricingOptions, "max_in_flight")  # connections (so requests in flight) at most
    rate: float = default_of(PricingOptions, "api_rate")  # calls per second per endpoint; 0: unpaced
    burst: int = default_of(PricingOptions, "api_burst")

    @classmethod
    def of(cls, options: PricingOptions) -> HttpPolicy:
        return cls(timeout=options.http_timeout, max_in_flight=options.max_in_flight, rate=options.api_rate,
                   burst=options.api_burst)


def registration_prefix(book: str, strategy: str) -> bytes:
    """The constant start of a pair's registration body, made once per pair: only the price varies."""
    return b'{"book":%s,"strategy":%s,"price":"' % (json.dumps(book).encode(), json.dumps(strategy).encode())


def retry_after(response: Response, payload: Any) -> float:
    """Seconds a 429 asks us to wait: the body's ``retry_after`` (exact), else the header's whole
    seconds, else a default; capped at RETRY_AFTER_MAX."""
    value: Any = payload.get("retry_after") if isinstance(payload, dict) else None
    if value is None and response.retry_after is not None:
        value = response.retry_after.strip()
    try:
        seconds = float(value) if value is not None and not isinstance(value, bool) else RETRY_AFTER_DEFAULT
    except (TypeError, ValueError):
        seconds = RETRY_AFTER_DEFAULT
    if not math.isfinite(seconds) or seconds < 0:
        seconds = RETRY_AFTER_DEFAULT
    return min(seconds, RETRY_AFTER_MAX)


class ApiClient:
    def __init__(self, http: HttpClient, policy: HttpPolicy) -> None:
        self._http = http
        self._timeout = policy.timeout
        self.buckets = {REGISTER: TokenBucket(policy.rate, policy.burst), READ: TokenBucket(policy.rate, policy.burst)}
        self.counters: dict[str, int] = {"http_requests": 0, "http_errors": 0, "http_429": 0}

    async def _call(self, endpoint: str, method: str, path: str, body: bytes | None = None) -> dict[str, Any]:
        self.buckets[endpoint].take()
        self.counters["http_requests"] += 1
        try:
            response = await self._http.request(method, path, body, timeout=self._timeout)
            payload = orjson.loads(response.body)  # ~3x the standard library on these small bodies
        except (HttpError, ValueError) as exc:  # orjson.JSONDecodeError is a ValueError
            self.counters["http_errors"] += 1
            raise ApiError(f"{method} {path}: {type(exc).__name__}: {exc!s:.200}") from None
        if response.status != 200:
            self.counters["http_errors"] += 1
            detail = payload.get("error") if isinstance(payload, dict) else payload
            if response.status == 429:
                self.counters["http_429"] += 1
                wait = retry_after(response, payload)
                self.buckets[endpoint].pause(wait)
                raise RateLimited(f"{method} {path}: HTTP 429: {detail!s:.200} (retry after {wait:.3g}s)", wait)
            raise ApiError(f"{method} {path}: HTTP {response.status}: {detail!s:.200}")
        if not isinstance(payload, dict):
            self.counters["http_errors"] += 1
            raise ApiError(f"{method} {path}: expected a JSON object, got {payload!r:.100}")
        return payload

    # --- one item per call ---------------------------------------------------------------------

    async def register_request(self, prefix: bytes, price: Decimal) -> int:
        """POST /register-request; the id under which Amazon will answer whether the book sold."""
        payload = await self._call(REGISTER, "POST", "/register-request", prefix + str(price).encode() + b'"}')
        request_id = payload.get("id")
        if type(request_id) is not int or request_id < 0:
            raise ApiError(f"register-request: bad id {request_id!r:.50}")
        return request_id

    async def request_data(self, request_id: int) -> bool:
        """GET /request-data/<id>: whether the book sold."""
        payload = await self._call(READ, "GET", f"/request-data/{request_id}")
        sold = payload.get("sold")
        if type(sold) is not bool:
            raise ApiError(f"request-data/{request_id}: bad 'sold' {sold!r:.50}")
        return sold

    # --- batches ------------------------------------------------------------------------------

    async def register_batch(self, items: Sequence[tuple[bytes, Decimal]]) -> list[int | str]:
        """POST /register-requests for (prefix, price) items: per item its id, or the server's reason."""
        if not 1 <= len(items) <= limits.API_BATCH_MAX:
            raise ValueError(f"a batch holds 1..{limits.API_BATCH_MAX} items, got {len(items)}")
        body = b'{"items":[' + b",".join(prefix + str(price).encode() + b'"}' for prefix, price in items) + b"]}"
        if len(body) > limits.HTTP_BATCH_BODY_MAX_BYTES:  # only with very long ids: halve and go on
            half = len(items) // 2
            return await self.register_batch(items[:half]) + await self.register_batch(items[half:])
        payload = await self._call(REGISTER, "POST", "/register-requests", body)
        results: list[int | str] = []
        for entry in _results(payload, len(items), "register-requests"):
            request_id = entry.get("id")
            if type(request_id) is int and request_id >= 0 and "error" not in entry:
                results.append(request_id)
            else:
                results.append(str(entry.get("error") or f"bad id {request_id!r:.50}")[:300])
        return results

    async def read_batch(self, ids: Sequence[int]) -> list[bool | str]:
        """POST /request-data for ``ids``: per id whether it sold, or the server's reason."""
        if not 1 <= len(ids) <= limits.API_BATCH_MAX:
            raise ValueError(f"a batch holds 1..{limits.API_BATCH_MAX} ids, got {len(ids)}")
        body = b'{"ids":[' + ",".join(map(str, ids)).encode() + b"]}"
        payload = await self._call(READ, "POST", "/request-data", body)
        results: list[bool | str] = []
        for request_id, entry in zip(ids, _results(payload, len(ids), "request-data"), strict=True):
            sold = entry.get("sold")
            if entry.get("id") != request_id:
                results.append(f"answer for id {entry.get('id')!r:.30} in the place of {request_id}")
            elif type(sold) is bool and "error" not in entry:
                results.append(sold)
            else:
                results.append(str(entry.get("error") or f"bad 'sold' {sold!r:.50}")[:300])
        return results


def _results(payload: dict[str, Any], expected: int, what: str) -> list[dict[str, Any]]:
    results = payload.get("results")
    if type(results) is not list or len(results) != expected:
        size = len(results) if type(results) is list else type(results).__name__
        raise ApiError(f"{what}: expected a 'results' list of {expected}, got {size}")
    if not all(type(entry) is dict for entry in results):
        raise ApiError(f"{what}: a result is not a JSON object")
    return results
