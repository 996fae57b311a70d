"""What an orchestrator asks an actor that no launcher supervises, as pure logic (the listener that
answers is :mod:`actors.health`): is it alive, is it ready, what are its numbers.

- ``/livez``: answered from the actor's event loop, so an answer *is* the proof that the loop turns.
  A blocked loop (a bug, a deadlock, SIGSTOP) answers nothing, and a probe with a 1 s timeout,
  every second, failing after 3 misses, detects it within ~3 s: the bound the launcher uses for its
  heartbeats (``RestartPolicy.time_to_dead``).
- ``/readyz``: "connected and serving", as each actor defines it (:class:`Probed`); 503 with the
  reason otherwise, and while the actor stops.
- ``/metrics``: the actor's counters in Prometheus' text format (:mod:`actors.prometheus_text`).

Requests are parsed here, sans-I/O: one request per connection, ``GET`` or ``HEAD``, a request line
and headers of at most :data:`HEAD_MAX_BYTES`; anything else gets a 4xx and a reason for the log.
"""

from __future__ import annotations

import enum
import json
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final, Protocol, runtime_checkable

from transport.logs import printable

HEAD_MAX_BYTES: Final = 4096  # request line plus headers; a probe sends ~100 bytes
_REASONS: Final = MappingProxyType({200: "OK", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed",
                                    431: "Request Header Fields Too Large", 503: "Service Unavailable"})


class Probe(enum.Enum):
    LIVE = "/livez"
    READY = "/readyz"
    METRICS = "/metrics"


@dataclass(frozen=True, slots=True)
class Readiness:
    """An actor's answer to "are you connected and serving?"; ``reason`` says why not."""

    ready: bool
    reason: str = ""


READY: Final = Readiness(True)


def not_ready(reason: str) -> Readiness:
    return Readiness(False, reason)


@runtime_checkable
class Probed(Protocol):
    """An actor that says what *ready* means for it. One without ``readiness`` is ready while it runs."""

    def readiness(self) -> Readiness: ...


def readiness_of(actor: object) -> Readiness:
    return actor.readiness() if isinstance(actor, Probed) else READY


@dataclass(frozen=True, slots=True)
class Request:
    probe: Probe
    head_only: bool  # HEAD: the status and headers, no body


@dataclass(frozen=True, slots=True)
class Response:
    status: int
    body: bytes
    content_type: str = "application/json"

    def encode(self, head_only: bool = False) -> bytes:
        head = (f"HTTP/1.1 {self.status} {_REASONS.get(self.status, 'Error')}\r\n"
                f"Content-Type: {self.content_type}\r\nContent-Length: {len(self.body)}\r\n"
                "Cache-Control: no-store\r\nConnection: close\r\n\r\n").encode()
        return head if head_only else head + self.body


@dataclass(frozen=True, slots=True)
class Refusal:
    """A request that is not answered with a probe: the response, and the reason for the log."""

    response: Response
    reason: str


def _json(status: int, payload: dict[str, object]) -> Response:
    return Response(status, json.dumps(payload, separators=(",", ":")).encode() + b"\n")


def refuse(status: int, reason: str) -> Refusal:
    return Refusal(_json(status, {"error": reason}), reason)


def parse_head(head: bytes) -> Request | Refusal:
    """The request in ``head`` (request line and headers, up to the blank line), or why it is refused."""
    line, _, _ = head.partition(b"\r\n")
    parts = line.split(b" ")
    if len(parts) != 3 or not parts[2].startswith(b"HTTP/1."):
        return refuse(400, f"malformed request line '{printable(line.decode('latin-1'), 80)}'")
    method, target, _version = parts
    path = target.split(b"?", 1)[0]
    probe = next((p for p in Probe if p.value.encode() == path), None)
    if probe is None:
        return refuse(404, f"no such path '{printable(path.decode('latin-1'), 80)}'")
    if method not in (b"GET", b"HEAD"):
        return refuse(405, f"method {printable(method.decode('latin-1'), 16)} not allowed")
    return Request(probe, head_only=method == b"HEAD")


def live(actor: str) -> Response:
    return _json(200, {"actor": actor, "live": True})


def ready(actor: str, readiness: Readiness, stopping: bool) -> Response:
    if stopping:
        readiness = not_ready("stopping")
    payload: dict[str, object] = {"actor": actor, "ready": readiness.ready}
    if not readiness.ready:
        payload["reason"] = printable(readiness.reason, 300)
    return _json(200 if readiness.ready else 503, payload)
