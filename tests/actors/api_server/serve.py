"""Helpers of the APIServer's tests: the real server in this process on a free port, JSON calls, and
raw-socket exchanges for what an HTTP client library would never send."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

import aiohttp

from actors.api_server.actor import APIServer
from actors.api_server.options import APIServerOptions
from actors.http_edge import HttpBounds
from tests.helpers import run_async

T = TypeVar("T")


def run(test: Callable[[], Awaitable[T]], timeout: float = 20.0) -> T:
    """Run one async test body with a hard deadline (no pytest-asyncio here), on the test's loop."""
    async def body() -> T:
        return await test()
    return run_async(body(), timeout)


@contextlib.asynccontextmanager
async def serving(bounds: HttpBounds | None = None, **kwargs: Any) -> AsyncIterator[tuple[APIServer, str]]:
    server = APIServer(APIServerOptions(port=0, **kwargs), bounds=bounds)
    stop = asyncio.Event()
    task = asyncio.create_task(server.run(stop))
    started = asyncio.create_task(server.started.wait())
    await asyncio.wait([task, started], timeout=5, return_when=asyncio.FIRST_COMPLETED)
    if task.done():
        started.cancel()
        task.result()  # re-raise why it failed to start
    assert server.started.is_set(), "server did not start within 5 s"
    try:
        yield server, f"http://127.0.0.1:{server.port}"
    finally:
        stop.set()
        async with asyncio.timeout(1.0):  # cleanup must be prompt
            await task


async def call(session: aiohttp.ClientSession, method: str, url: str, **kwargs: Any) -> tuple[int, Any]:
    async with session.request(method, url, **kwargs) as resp:
        assert resp.content_type == "application/json", (resp.status, await resp.text())
        return resp.status, await resp.json()


async def exchange(port: int, data: bytes, timeout: float = 3.0) -> bytes:  # noqa: ASYNC109 - a deadline
    """Send raw bytes on a fresh connection; everything received until the server closes it."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(data)
        await writer.drain()
        async with asyncio.timeout(timeout):
            return await reader.read()  # until EOF
    finally:
        writer.close()


def split_response(raw: bytes) -> tuple[int, dict[str, str], bytes]:
    """(status, headers with lower-case names, body) of one raw HTTP/1.x response."""
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {name.strip().lower(): value.strip() for name, _, value in (line.partition(":") for line in lines[1:])}
    return status, headers, body


def split_responses(raw: bytes) -> list[tuple[int, dict[str, str], bytes]]:
    """Every response in ``raw`` (several when requests were pipelined), by their Content-Length."""
    found = []
    while raw:
        head, _, rest = raw.partition(b"\r\n\r\n")
        status, headers, _ = split_response(head + b"\r\n\r\n")
        length = int(headers.get("content-length", "0"))
        found.append((status, headers, rest[:length]))
        raw = rest[length:]
    return found
