"""The Algorithm's side of the APIServer (Amazon's API): register a request, read its result.

In-flight requests are bounded by a FIFO semaphore of our own, because aiohttp's connection-pool limit
is not fair under load (its p99 reaches seconds); every request has a timeout.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from decimal import Decimal
from types import MappingProxyType
from typing import Any, Final

import aiohttp

_JSON: Final = MappingProxyType({"Content-Type": "application/json"})


class ApiError(Exception):
    """The APIServer did not give a usable answer; the decision is skipped and retried next tick."""


@dataclass(frozen=True, slots=True)
class HttpPolicy:
    timeout: float = 2.0
    max_in_flight: int = 64


class ApiClient:
    def __init__(self, session: aiohttp.ClientSession, base_url: str, policy: HttpPolicy) -> None:
        self._session = session
        self._base = base_url.rstrip("/")
        self._timeout = aiohttp.ClientTimeout(total=policy.timeout)
        self._slots = asyncio.Semaphore(policy.max_in_flight)
        self.counters: dict[str, int] = {"http_requests": 0, "http_errors": 0}

    async def _call(self, method: str, path: str, body: dict[str, str] | None = None) -> dict[str, Any]:
        data = json.dumps(body, separators=(",", ":")).encode() if body is not None else None
        async with self._slots:
            self.counters["http_requests"] += 1
            try:
                async with self._session.request(method, self._base + path, data=data,
                                                 headers=_JSON if data is not None else None,
                                                 timeout=self._timeout) as response:
                    payload = json.loads(await response.read())
                    if response.status != 200:
                        detail = payload.get("error") if isinstance(payload, dict) else payload
                        raise ApiError(f"{method} {path}: HTTP {response.status}: {detail!s:.200}")
            except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
                self.counters["http_errors"] += 1
                raise ApiError(f"{method} {path}: {type(exc).__name__}: {exc!s:.200}") from None
            except ApiError:
                self.counters["http_errors"] += 1
                raise
        if not isinstance(payload, dict):
            self.counters["http_errors"] += 1
            raise ApiError(f"{method} {path}: expected a JSON object, got {payload!r:.100}")
        return payload

    async def register_request(self, book: str, strategy: str, price: Decimal) -> int:
        """POST /register-request; the id under which Amazon will answer whether the book sold."""
        payload = await self._call("POST", "/register-request",
                                   {"book": book, "strategy": strategy, "price": str(price)})
        request_id = payload.get("id")
        if type(request_id) is not int or request_id < 0:
            raise ApiError(f"register-request: bad id {request_id!r:.50}")
        return request_id

    async def request_data(self, request_id: int) -> bool:
        """GET /request-data/<id>: whether the book sold."""
        payload = await self._call("GET", f"/request-data/{request_id}")
        sold = payload.get("sold")
        if type(sold) is not bool:
            raise ApiError(f"request-data/{request_id}: bad 'sold' {sold!r:.50}")
        return sold
