"""The thin HTTP client against raw asyncio servers that misbehave on purpose, and the API client's
reading of a 429."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from actors.algorithm.clients.api import RETRY_AFTER_DEFAULT, RETRY_AFTER_MAX, retry_after
from actors.algorithm.clients.http import MAX_RESPONSE_BYTES, HttpClient, HttpError, Response
from tests.helpers import free_port, run_async

pytestmark = pytest.mark.both_loops  # uvloop: the loop every actor runs on in production

OK = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 9\r\n\r\n{\"id\":42}"

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


@contextlib.asynccontextmanager
async def server(handler: Handler) -> AsyncIterator[str]:
    srv = await asyncio.start_server(handler, "127.0.0.1", 0)
    port = srv.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        srv.close()


async def read_request(reader: asyncio.StreamReader) -> bytes:
    head = await reader.readuntil(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":")[1])
    return head + await reader.readexactly(length)


def test_keep_alive_reuses_one_connection_and_sends_a_well_formed_request() -> None:
    connections = 0
    seen: list[bytes] = []

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        with contextlib.suppress(asyncio.IncompleteReadError):
            while True:
                seen.append(await read_request(reader))
                writer.write(OK)

    async def body() -> list[Response]:
        async with server(handler) as url:
            client = HttpClient(url, 4)
            answers = [await client.request("POST", "/register-request", b'{"a":1}', timeout=2) for _ in range(10)]
            await client.close()
            return answers

    answers = run_async(body())
    assert connections == 1
    assert all(a.status == 200 and a.body == b'{"id":42}' for a in answers)
    assert seen[0].startswith(b"POST /register-request HTTP/1.1\r\nHost: 127.0.0.1:")
    assert b"Content-Length: 7\r\n" in seen[0] and seen[0].endswith(b'\r\n\r\n{"a":1}')


def test_connections_are_capped_and_waiters_served_in_order() -> None:
    open_now = peak = 0

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal open_now, peak
        open_now += 1
        peak = max(peak, open_now)
        try:
            with contextlib.suppress(asyncio.IncompleteReadError, ConnectionError):
                while True:
                    await read_request(reader)
                    await asyncio.sleep(0.01)
                    writer.write(OK)
        finally:
            open_now -= 1

    async def body() -> None:
        async with server(handler) as url:
            client = HttpClient(url, 2)
            answers = await asyncio.gather(*(client.request("GET", "/x", timeout=5) for _ in range(20)))
            assert all(a.status == 200 for a in answers)
            await client.close()

    run_async(body())
    assert peak == 2


def test_a_silent_server_is_a_timeout_error_and_the_connection_is_dropped() -> None:
    connections = 0

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        await read_request(reader)
        with contextlib.suppress(asyncio.IncompleteReadError, ConnectionError):
            await reader.read()  # never answers

    async def body() -> None:
        async with server(handler) as url:
            client = HttpClient(url, 1)
            started = time.monotonic()
            with pytest.raises(HttpError, match=r"no response within 0\.2s"):
                await client.request("GET", "/x", timeout=0.2)
            assert 0.15 < time.monotonic() - started < 1.5
            with pytest.raises(HttpError):
                await client.request("GET", "/x", timeout=0.2)  # a fresh connection, not the stuck one
            await client.close()

    run_async(body())
    assert connections == 2


@pytest.mark.parametrize(("answer", "reason"), [
    (b"garbage\r\n\r\n", "malformed HTTP response"),
    (b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{\"id\"", "connection closed"),
    (b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % (MAX_RESPONSE_BYTES + 10) + b"x" * (MAX_RESPONSE_BYTES + 10),
     "larger than"),
])
def test_bad_answers_are_clean_errors(answer: bytes, reason: str) -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(answer)
        await writer.drain()
        writer.close()

    async def body() -> None:
        async with server(handler) as url:
            client = HttpClient(url, 1)
            with pytest.raises(HttpError, match=reason):
                await client.request("GET", "/x", timeout=2)
            await client.close()

    run_async(body())


def test_nobody_listening_is_a_clean_error() -> None:
    async def body() -> None:
        client = HttpClient(f"http://127.0.0.1:{free_port()}", 1)
        with pytest.raises(HttpError, match="cannot connect"):
            await client.request("GET", "/x", timeout=1)
        await client.close()

    run_async(body())


def test_only_plain_http_urls() -> None:
    with pytest.raises(ValueError, match="http://"):
        HttpClient("https://example.invalid", 1)


@pytest.mark.parametrize(("body", "header", "expected"), [
    ({"error": "rate limit exceeded", "retry_after": 0.25}, "1", 0.25),  # the body's exact value first
    ({"error": "rate limit exceeded"}, "2", 2.0),  # else the header
    ({}, None, RETRY_AFTER_DEFAULT),
    ({"retry_after": "soon"}, None, RETRY_AFTER_DEFAULT),
    ({"retry_after": -1}, None, RETRY_AFTER_DEFAULT),
    ({"retry_after": float("nan")}, None, RETRY_AFTER_DEFAULT),
    ({"retry_after": True}, None, RETRY_AFTER_DEFAULT),
    ({"retry_after": 1e9}, None, RETRY_AFTER_MAX),
    ([], "Wed, 21 Oct 2015 07:28:00 GMT", RETRY_AFTER_DEFAULT),
])
def test_retry_after(body: object, header: str | None, expected: float) -> None:
    assert retry_after(Response(429, b"", header), body) == expected


def test_a_kept_alive_connection_closed_by_the_server_is_retried_once_on_a_new_one() -> None:
    """The server's idle timeout may close a connection just as we reuse it: no byte of an answer came,
    so the request was not served, and it goes once more on a fresh connection."""
    connections = 0

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        await read_request(reader)
        writer.write(OK)
        await writer.drain()
        with contextlib.suppress(asyncio.IncompleteReadError):
            await read_request(reader)  # the second request on this connection: closed unanswered
        writer.close()

    async def body() -> None:
        async with server(handler) as url:
            client = HttpClient(url, 1)
            assert (await client.request("GET", "/a", timeout=2)).status == 200
            assert (await client.request("GET", "/b", timeout=2)).status == 200
            await client.close()

    run_async(body())
    assert connections == 2
