"""The probe listener on a real socket, its event loop in a thread of this process: what it answers,
that a blocked loop answers nothing (the liveness signal), and its bounds."""

from __future__ import annotations

import asyncio
import contextlib
import http.client
import json
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from actors.health import HealthServer
from actors.probes import READY, Readiness, not_ready
from tests.helpers import loop_factory, wait_for

pytestmark = pytest.mark.both_loops


class ProbedActor:
    name = "tiny"

    def __init__(self) -> None:
        self.ready = False
        self.counters = {"widgets": 7}

    def readiness(self) -> Readiness:
        return READY if self.ready else not_ready("no peer yet")


@dataclass
class Running:
    loop: asyncio.AbstractEventLoop
    server: HealthServer
    stopping: asyncio.Event

    def call(self, fn: object) -> None:
        self.loop.call_soon_threadsafe(fn)  # type: ignore[arg-type]


@contextlib.contextmanager
def listening(actor: ProbedActor, **bounds: float) -> Iterator[Running]:
    """The listener on 127.0.0.1, any port, on a loop (the test's kind) running in a thread."""
    loop = loop_factory()()
    stopping = asyncio.Event()
    server = HealthServer(actor, lambda: actor.counters, "127.0.0.1", 0, stopping, **bounds)  # type: ignore[arg-type]
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        asyncio.run_coroutine_threadsafe(server.start(), loop).result(5)
        yield Running(loop, server, stopping)
    finally:
        asyncio.run_coroutine_threadsafe(server.close(), loop).result(5)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)
        loop.close()


def get(port: int, path: str, timeout: float = 2.0, method: str = "GET") -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request(method, path)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def raw(port: int, data: bytes, timeout: float = 2.0) -> bytes:
    """What the listener answers to ``data`` before it closes the connection (reset: nothing)."""
    chunks = []
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock, \
            contextlib.suppress(ConnectionResetError):
        sock.sendall(data)
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def test_live_ready_and_metrics() -> None:
    actor = ProbedActor()
    with listening(actor) as running:
        port = running.server.port
        assert get(port, "/livez") == (200, b'{"actor":"tiny","live":true}\n')
        status, body = get(port, "/readyz")
        assert (status, json.loads(body)) == (503, {"actor": "tiny", "ready": False, "reason": "no peer yet"})
        actor.ready = True
        assert get(port, "/readyz")[0] == 200
        status, body = get(port, "/metrics")
        lines = body.decode().splitlines()
        assert status == 200
        assert 'repricer_tiny_undescribed{actor="tiny",counter="widgets"} 7' in lines
        assert 'repricer_actor_ready{actor="tiny"} 1' in lines
        assert 'repricer_probe_requests_total{actor="tiny"} 4' in lines  # this one included
        assert get(port, "/metrics", method="HEAD") == (200, b"")
        running.call(running.stopping.set)  # the actor is stopping: not ready, still alive
        wait_for(lambda: get(port, "/readyz")[0] == 503, timeout=5)
        assert json.loads(get(port, "/readyz")[1])["reason"] == "stopping"
        assert get(port, "/livez")[0] == 200
        assert 'repricer_actor_ready{actor="tiny"} 0' in get(port, "/metrics")[1].decode().splitlines()


def test_a_blocked_event_loop_answers_no_probe_until_it_turns_again() -> None:
    with listening(ProbedActor()) as running:
        port = running.server.port
        assert get(port, "/livez")[0] == 200
        blocked = threading.Event()

        def block() -> None:
            blocked.set()
            time.sleep(1.5)  # a bug holding the loop: nothing else on it runs

        running.call(block)
        assert blocked.wait(5)
        started = time.monotonic()
        with pytest.raises(TimeoutError):  # the kubelet's probe times out the same way
            get(port, "/livez", timeout=0.5)
        assert time.monotonic() - started < 1.5  # failed while the loop was still blocked
        wait_for(lambda: get(port, "/livez", timeout=2)[0] == 200, timeout=5)


def test_bad_requests_get_an_error_and_a_counter() -> None:
    with listening(ProbedActor(), request_timeout=0.2) as running:
        port, counters = running.server.port, running.server.counters
        assert raw(port, b"\x16\x03\x01garbage\r\n\r\n").startswith(b"HTTP/1.1 400 Bad Request\r\n")
        assert raw(port, b"GET /nope HTTP/1.1\r\n\r\n").startswith(b"HTTP/1.1 404 ")
        assert raw(port, b"GET /livez HTTP/1.1\r\nX: " + b"a" * 5000 + b"\r\n\r\n").startswith(b"HTTP/1.1 431 ")
        wait_for(lambda: counters["probe_bad_requests"] == 3, timeout=5)
        assert raw(port, b"GET /livez HTTP/1.1\r\n") == b""  # never finished: closed after the timeout
        wait_for(lambda: counters["probe_timeouts"] == 1, timeout=5)
        assert counters["probe_requests"] == 0


def test_connections_over_the_cap_are_closed_at_once() -> None:
    with listening(ProbedActor(), connections=2, request_timeout=5.0) as running:
        port, counters = running.server.port, running.server.counters
        idle = [socket.create_connection(("127.0.0.1", port), timeout=2) for _ in range(2)]
        try:
            wait_for(lambda: running.server._open == 2, timeout=5)
            assert raw(port, b"GET /livez HTTP/1.1\r\n\r\n") == b""  # refused: closed, nothing read
            assert counters["probe_connections_refused"] == 1
        finally:
            for sock in idle:
                sock.close()
        wait_for(lambda: running.server._open == 0, timeout=5)
        assert get(port, "/livez")[0] == 200  # the slots came back
