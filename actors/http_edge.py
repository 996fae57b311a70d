"""The HTTP edge below an aiohttp application (the APIServer's and the Dashboard's): what aiohttp does
on its own for a request that never reaches a handler, made to follow the project's rules.

- A malformed request (bad request line or HTTP version, bad header, line too long...) gets a JSON
  ``{"error": ...}`` 400 like every other error, not aiohttp's plain text, and costs one escaped,
  rate-limited log line and a counter instead of an 11-line traceback per request.
- Open connections are capped (``HTTP_CONNECTIONS_MAX``; a further one is answered 503 and closed),
  a connection must send its request's headers within ``HTTP_IDLE_TIMEOUT`` (aiohttp's keep-alive
  timer also runs before the first request, so a slowloris is closed too), and a client that stops
  reading our responses is dropped after ``HTTP_WRITE_TIMEOUT``.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final, cast

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError, LineTooLong
from aiohttp.web_request import BaseRequest

from transport.limits import (
    HTTP_BODY_TIMEOUT,
    HTTP_CONNECTIONS_MAX,
    HTTP_HEADERS_MAX,
    HTTP_IDLE_TIMEOUT,
    HTTP_LINE_MAX_BYTES,
    HTTP_WRITE_TIMEOUT,
)
from transport.logs import RateLimitedLog, printable

_SUMMARY_MAX: Final = 160
# What the edge counts; the server's counters dict must hold these keys.
EDGE_COUNTERS: Final = ("bad_http", "disconnects", "internal_errors", "slow_readers", "connections_refused")


@dataclass(frozen=True, slots=True)
class HttpBounds:
    """What one client may hold of the server (the defaults are the system's limits; tests shrink them)."""

    connections: int = HTTP_CONNECTIONS_MAX
    idle_timeout: float = HTTP_IDLE_TIMEOUT
    body_timeout: float = HTTP_BODY_TIMEOUT
    write_timeout: float = HTTP_WRITE_TIMEOUT

    def handler_options(self) -> dict[str, Any]:
        """aiohttp's per-connection options: bounded lines and headers, the idle / header timeout, no
        access log (a line per request at 10k requests/s is unbounded noise)."""
        return {"keepalive_timeout": self.idle_timeout, "max_line_size": HTTP_LINE_MAX_BYTES,
                "max_field_size": HTTP_LINE_MAX_BYTES, "max_headers": HTTP_HEADERS_MAX, "access_log": None}


def describe_parse_error(exc: BaseException | None, message: str | None = None) -> str:
    """One short, single-line, escaped reason for a request aiohttp's parser refused. The parser's own
    text spans several lines and quotes the peer's bytes under a caret: keep the reasons, drop those."""
    if isinstance(exc, LineTooLong):
        return f"request line or header longer than {HTTP_LINE_MAX_BYTES} bytes"
    text = message or (exc.message if isinstance(exc, HttpProcessingError) else str(exc or ""))
    parts = []
    for line in str(text).splitlines():
        line = line.strip()
        if not line or line.startswith(("b'", 'b"', "bytearray(", "^")) or not line.strip("^~ "):
            continue
        parts.append(line.rstrip(":."))
    return printable(": ".join(parts) or "malformed request", _SUMMARY_MAX)


def json_error(status: int, message: str, headers: dict[str, str] | None = None) -> web.Response:
    return web.json_response({"error": message}, status=status, headers=headers)


class JsonErrorHandler(web.RequestHandler):
    """aiohttp's per-connection protocol, with JSON errors, one-line logs and a write timeout."""

    __slots__ = ("_bad_log", "_counters", "_write_timeout", "_write_timer")

    def __init__(self, manager: web.Server, *, loop: asyncio.AbstractEventLoop, counters: dict[str, int],
                 bad_log: RateLimitedLog, bounds: HttpBounds) -> None:
        super().__init__(manager, loop=loop, **bounds.handler_options())
        self._counters = counters
        self._bad_log = bad_log
        self._write_timeout = bounds.write_timeout
        self._write_timer: asyncio.TimerHandle | None = None

    def handle_error(self, request: BaseRequest, status: int = 500, exc: BaseException | None = None,
                     message: str | None = None) -> web.StreamResponse:
        if request.writer.output_size > 0:  # as aiohttp: a response already started cannot be replaced
            raise ConnectionError("response already started; cannot send the error")
        if isinstance(exc, ConnectionError):  # the client left while we read its body: nobody to answer
            self._counters["disconnects"] += 1
            text = "connection lost"
        elif status == 400:  # only the parser's refusals come here with 400 (handlers answer their own)
            reason = describe_parse_error(exc, message)
            self._counters["bad_http"] += 1
            self._bad_log.warning("bad http", "malformed HTTP request from %s: %s", request.remote, reason)
            text = f"malformed HTTP request: {reason}"
        elif status == 504:
            self._counters["internal_errors"] += 1
            self._bad_log.error("timeout", "request timed out: %s %s", request.method, request.path)
            text = "request timed out"
        else:  # a bug of ours: one line, rate-limited (a peer may trigger it again and again)
            self._counters["internal_errors"] += 1
            self._bad_log.error("internal", "internal error on %s %s: %r", request.method, request.path, exc)
            text = "internal server error"
        response = json_error(status, text)
        response.force_close()  # as aiohttp does: the connection's state is unknown after an error
        return response

    def log_exception(self, *args: Any, **kw: Any) -> None:
        """aiohttp's own reports ("Unhandled exception", ...): one rate-limited line, no traceback, as
        a peer may cause them again and again."""
        exc = kw.get("exc_info")
        text = (str(args[0]) % args[1:]) if args else "error"
        self._counters["internal_errors"] += 1
        self._bad_log.error("aiohttp", "%s: %r", text, exc)

    # A client that stops reading fills our socket buffer; the transport then pauses our writes and a
    # handler would wait on it forever, holding a connection slot. Bound that wait.
    def pause_writing(self) -> None:
        super().pause_writing()
        self._write_timer = self._loop.call_later(self._write_timeout, self._drop_slow_reader)

    def resume_writing(self) -> None:
        super().resume_writing()
        if self._write_timer is not None:
            self._write_timer.cancel()
            self._write_timer = None

    def connection_lost(self, exc: BaseException | None) -> None:
        if self._write_timer is not None:
            self._write_timer.cancel()
            self._write_timer = None
        super().connection_lost(exc)

    def _drop_slow_reader(self) -> None:
        self._write_timer = None
        self._counters["slow_readers"] += 1
        self._bad_log.warning("slow reader", "dropping a connection that left %.0fs of responses unread",
                              self._write_timeout)
        if self.transport is not None:
            self.transport.abort()  # close() would wait for the unread buffer to drain


class _Refused(asyncio.Protocol):
    """Over the connection cap: answer 503 at once and close; nothing is read."""

    def __init__(self, limit: int) -> None:
        self._limit = limit

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # A stream transport, though not always a WriteTransport subclass (uvloop's is not): no isinstance.
        transport = cast(asyncio.WriteTransport, transport)
        body = json.dumps({"error": f"too many connections (limit {self._limit})"}).encode()
        transport.write(b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
                        b"Connection: close\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
        transport.close()


def protocol_factory(server: web.Server, loop: asyncio.AbstractEventLoop, counters: dict[str, int],
                     bad_log: RateLimitedLog, bounds: HttpBounds) -> Callable[[], asyncio.Protocol]:
    """What ``loop.create_server`` calls per accepted connection: a :class:`JsonErrorHandler`, or a
    refusal when ``bounds.connections`` are already open."""
    def make() -> asyncio.Protocol:
        if len(server.connections) >= bounds.connections:
            counters["connections_refused"] += 1
            bad_log.warning("connections", "refused a connection: %d already open (the limit)", bounds.connections)
            return _Refused(bounds.connections)
        return JsonErrorHandler(server, loop=loop, counters=counters, bad_log=bad_log, bounds=bounds)
    return make
