"""The live stream: snapshots as the state moves, a bound on clients, and a slow client dropped rather
than buffered."""

from __future__ import annotations

import asyncio
import json
import logging
import socket
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from actors.dashboard.sse import LiveStream, StreamLimits, TooManyClients
from tests.helpers import async_wait_for, run_async

pytestmark = pytest.mark.both_loops  # uvloop: the loop every actor runs on in production


class Source:
    """A state whose snapshot and version the test moves by hand."""

    def __init__(self, size: int = 10) -> None:
        self.version = 0
        self.size = size

    def snapshot(self) -> dict[str, Any]:
        return {"version": self.version, "padding": "x" * self.size}


def app_for(stream: LiveStream) -> web.Application:
    async def live(request: web.Request) -> web.StreamResponse:
        try:
            return await stream.serve(request)
        except TooManyClients as exc:
            return web.json_response({"error": str(exc)}, status=503)

    app = web.Application()
    app.router.add_get("/live", live)
    return app


async def next_state(response: Any) -> dict[str, Any]:
    async for line in response.content:
        if line.startswith(b"data: "):
            state: dict[str, Any] = json.loads(line[6:])
            return state
    raise AssertionError("stream ended")


def test_clients_get_the_newest_state_as_it_moves_and_no_more_than_the_bound() -> None:
    source = Source()
    stream = LiveStream(source.snapshot, lambda: source.version,
                        StreamLimits(max_clients=2, interval=0.01, keepalive=0.2))

    async def scenario() -> None:
        async with TestClient(TestServer(app_for(stream))) as client:
            first, second = await client.get("/live"), await client.get("/live")
            assert first.headers["Content-Type"] == "text/event-stream"
            assert (await next_state(first))["version"] == 0
            assert (await next_state(second))["version"] == 0
            third = await client.get("/live")
            assert third.status == 503 and "at most 2" in (await third.json())["error"]
            source.version = 5  # several changes at once: one snapshot, the newest
            stream.notify()
            assert (await next_state(first))["version"] == 5
            assert await asyncio.wait_for(first.content.readline(), 2.0) == b"\n"  # the end of that event
            assert await asyncio.wait_for(first.content.readline(), 2.0) == b": keepalive\n"  # nothing moved
            second.close()
            await async_wait_for(lambda: stream.clients == 1, timeout=5)
            assert (await client.get("/live")).status == 200  # a freed place is given again
            stream.close()
        assert stream.counters["live_refused"] == 1

    run_async(scenario())


def test_a_client_that_does_not_read_is_dropped_not_buffered(caplog: pytest.LogCaptureFixture) -> None:
    source = Source(size=200_000)
    stream = LiveStream(source.snapshot, lambda: source.version,
                        StreamLimits(max_clients=4, interval=0.0, keepalive=10, write_timeout=0.3,
                                     buffer_limit=64 * 1024))

    async def scenario() -> None:
        async with TestServer(app_for(stream)) as server:
            reader = socket.socket()
            reader.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # a tiny window: the server's buffer fills
            reader.setblocking(False)
            await asyncio.get_running_loop().sock_connect(reader, (server.host, server.port))
            reader.send(b"GET /live HTTP/1.1\r\nHost: x\r\n\r\n")
            try:
                def changed_until_dropped() -> bool:  # a new version every 10 ms until the reader is dropped
                    if stream.counters["live_dropped"]:
                        return True
                    source.version += 1
                    stream.notify()
                    return False

                await async_wait_for(changed_until_dropped, timeout=2, interval=0.01, what="the reader to be dropped")
                await async_wait_for(lambda: stream.counters["live_dropped"] == 1 and stream.clients == 0, timeout=5)
            finally:
                reader.close()
                stream.close()

    with caplog.at_level(logging.WARNING, "dashboard"):
        run_async(scenario(), timeout=20)
    assert any("dropped the live stream of 127.0.0.1: it does not keep up" in r.getMessage() for r in caplog.records)
