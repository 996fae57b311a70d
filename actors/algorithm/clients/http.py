"""A small HTTP/1.1 keep-alive client for one server, on ``httptools``' response parser (the
llhttp parser Node.js uses, also used by uvicorn), built for the Algorithm's hot path.

What it keeps from a full client: a total timeout per request, keep-alive connections reused, a cap
on connections (callers beyond it wait in FIFO order, within their timeout), a bound on the response
size, and one exception type, :class:`HttpError`, for every failure (refused, reset, timed out,
malformed, too large). What it leaves out because the APIServer needs none of it: TLS, redirects,
cookies, compression, proxies, chunked request bodies, pipelining. ``bench/http_clients.py`` measures
it against aiohttp and other clients on the same server (README "Performance").
"""

from __future__ import annotations

import asyncio
import collections
from typing import Final, NamedTuple
from urllib.parse import urlsplit

import httptools

MAX_RESPONSE_BYTES: Final = 4 * 1024 * 1024  # a larger answer is an error, never buffered whole


class HttpError(Exception):
    """The request got no usable HTTP response (connection, timeout or protocol failure)."""


class Response(NamedTuple):
    status: int
    body: bytes
    retry_after: str | None  # the Retry-After header, when the server sent one


class _Connection(asyncio.Protocol):
    """One TCP connection; one request at a time on it."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self._parser = httptools.HttpResponseParser(self)
        self._body: list[bytes] = []
        self._size = 0
        self._retry_after: str | None = None
        self._header: bytes = b""
        self._waiter: asyncio.Future[Response] | None = None
        self.reusable = False
        self._answered = False  # a byte of the current request's answer has arrived
        self.closed_unanswered = False  # the server closed while a request waited, before any answer

    # asyncio callbacks
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # a stream transport (uvloop's is no subclass)

    def connection_lost(self, exc: Exception | None) -> None:
        self.reusable = False
        self.transport = None
        self.closed_unanswered = self._waiter is not None and not self._answered
        self._fail(HttpError(f"connection closed by the server{f': {exc}' if exc else ''}"))

    def data_received(self, data: bytes) -> None:
        self._answered = True
        if self._waiter is None:  # bytes nobody asked for: the connection is out of step
            self.close()
            return
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(HttpError(f"malformed HTTP response: {exc}"))
            self.close()

    # httptools callbacks
    def on_header(self, name: bytes, value: bytes) -> None:
        if name.lower() == b"retry-after":
            self._retry_after = value.decode("latin-1")[:40]

    def on_body(self, body: bytes) -> None:
        self._size += len(body)
        if self._size > MAX_RESPONSE_BYTES:
            self._fail(HttpError(f"response larger than {MAX_RESPONSE_BYTES} bytes"))
            self.close()
            return
        self._body.append(body)

    def on_message_complete(self) -> None:
        waiter = self._waiter
        if waiter is None or waiter.done():
            return
        self.reusable = self._parser.should_keep_alive()
        body = self._body[0] if len(self._body) == 1 else b"".join(self._body)
        waiter.set_result(Response(self._parser.get_status_code(), body, self._retry_after))

    # our side
    def send(self, request: bytes) -> asyncio.Future[Response]:
        assert self.transport is not None
        self._body = []
        self._size = 0
        self._retry_after = None
        self.reusable = False
        self._answered = False
        self._waiter = waiter = asyncio.get_running_loop().create_future()
        self.transport.write(request)
        return waiter

    def done(self) -> None:
        self._waiter = None

    def _fail(self, exc: HttpError) -> None:
        waiter, self._waiter = self._waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_exception(exc)

    def close(self) -> None:
        self.reusable = False
        if self.transport is not None:
            self.transport.close()
            self.transport = None


def _expire(waiter: asyncio.Future[Response], timeout: float) -> None:
    if not waiter.done():
        waiter.set_exception(HttpError(f"no response within {timeout}s"))


class HttpClient:
    """Requests to one ``http://host:port`` with at most ``max_connections`` connections open."""

    def __init__(self, base_url: str, max_connections: int = 64) -> None:
        parts = urlsplit(base_url)
        if parts.scheme != "http" or not parts.hostname:
            raise ValueError(f"expected an http://host[:port] URL, got {base_url!r}")
        self._host = parts.hostname
        self._port = parts.port or 80
        self._prefix = parts.path.rstrip("/")
        netloc = parts.netloc.rsplit("@", 1)[-1]
        self._host_header = f"Host: {netloc}\r\n".encode("ascii")
        self._max = max_connections
        self._idle: collections.deque[_Connection] = collections.deque()
        self._open = 0  # connections open or being opened: <= max_connections
        self._waiters: collections.deque[asyncio.Future[None]] = collections.deque()
        self._closed = False

    async def request(self, method: str, path: str, body: bytes | None = None, *,
                      timeout: float) -> Response:  # noqa: ASYNC109 - one total deadline, like aiohttp's
        """Send one request and read its whole response, within ``timeout`` seconds in all."""
        head = f"{method} {self._prefix}{path} HTTP/1.1\r\n".encode("ascii") + self._host_header
        if body is not None:
            head += b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(body)
            message = head + body
        else:
            message = head + b"\r\n"
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            connection = self._idle_connection()
            reused = connection is not None
            if connection is None:  # none idle: open one, or wait for one (the slow path)
                try:
                    async with asyncio.timeout(max(0.0, deadline - loop.time())):
                        connection = await self._acquire()
                except TimeoutError:
                    raise HttpError(f"no connection within {timeout}s") from None
                except OSError as exc:
                    raise HttpError(f"cannot connect to {self._host}:{self._port}: {exc.strerror or exc}") from None
            waiter = connection.send(message)
            # A timer on the waiter, not asyncio.timeout(): a third of the cost on the hot path.
            expiry = loop.call_at(deadline, _expire, waiter, timeout)
            try:
                return await waiter
            except HttpError:
                # A kept-alive connection the server closed just as we reused it (its idle timeout):
                # nothing of an answer came, so the request was not served; once more on a new one.
                if reused and connection.closed_unanswered:
                    continue
                raise
            finally:
                expiry.cancel()
                connection.done()
                self._release(connection)  # unanswered: not reusable, so closed

    def _idle_connection(self) -> _Connection | None:
        while self._idle:
            connection = self._idle.pop()  # the most recently used: its socket is warm
            if connection.transport is not None:
                return connection
            self._open -= 1  # closed by the server while idle
        return None

    async def _acquire(self) -> _Connection:
        while True:
            if self._closed:
                raise HttpError("client closed")
            connection = self._idle_connection()
            if connection is not None:
                return connection
            if self._open < self._max:
                self._open += 1
                try:
                    loop = asyncio.get_running_loop()
                    _, connection = await loop.create_connection(_Connection, self._host, self._port)
                except BaseException:
                    self._open -= 1
                    self._wake()
                    raise
                return connection
            waiter = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            try:
                await waiter
            except BaseException:
                if not waiter.cancelled() and waiter.done():
                    self._wake()  # we were woken but will not use the slot: pass it on
                raise
            finally:
                if waiter in self._waiters:
                    self._waiters.remove(waiter)

    def _release(self, connection: _Connection) -> None:
        if connection.reusable and connection.transport is not None and not self._closed:
            self._idle.append(connection)
        else:
            connection.close()
            self._open -= 1
        self._wake()

    def _wake(self) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return

    async def close(self) -> None:
        self._closed = True
        while self._idle:
            self._idle.pop().close()
            self._open -= 1
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_exception(HttpError("client closed"))
