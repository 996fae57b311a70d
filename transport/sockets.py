"""ZeroMQ sockets, configured once: bounded queues (HWM), LINGER 0 so nothing hangs at exit, and the
request-reply client the Algorithm uses to reach the DataManager.

Every socket is made here; actors never call ``ctx.socket`` themselves, so the limits below hold
everywhere.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final, TypeVar

import zmq
import zmq.asyncio

from transport import protocol
from transport.endpoints import is_loopback
from transport.protocol import LastPricesReply, LastPricesRequest, ProtocolError
from transport.security import Security, SecurityError

log = logging.getLogger(__name__)
_S = TypeVar("_S", bound="zmq.Socket[Any]")

# High-water marks: a slow or dead peer makes ZeroMQ drop (PUB) or refuse (DEALER, PUSH) instead of
# queueing without bound.
TICK_HWM: Final = 100
REQUEST_HWM: Final = 10_000
HEARTBEAT_HWM: Final = 10


def _configure(sock: _S, hwm: int) -> _S:
    sock.setsockopt(zmq.LINGER, 0)
    sock.setsockopt(zmq.SNDHWM, hwm)
    sock.setsockopt(zmq.RCVHWM, hwm)
    # Reconnect quickly to a restarted peer, but back off to a second so a dead one costs nothing.
    sock.setsockopt(zmq.RECONNECT_IVL, 100)
    sock.setsockopt(zmq.RECONNECT_IVL_MAX, 1000)
    return sock


# This process's socket security: one per process, set by the actor runtime from --keys/--insecure.
_security = Security()


def use_security(security: Security) -> Security:
    global _security
    _security = security
    return security


def _bind(sock: _S, endpoint: str) -> _S:
    try:
        _security.secure_server(sock, endpoint, is_loopback(endpoint))
    except SecurityError:
        sock.close(linger=0)
        raise
    sock.bind(endpoint)
    return sock


def _connect(sock: _S, *endpoints: str) -> _S:
    _security.secure_client(sock)
    for endpoint in endpoints:
        sock.connect(endpoint)
    return sock


def pub(ctx: zmq.Context[_S], endpoint: str) -> _S:
    """Ticks (asyncio context) or the launcher's supervisor events (plain context)."""
    return _bind(_configure(ctx.socket(zmq.PUB), TICK_HWM), endpoint)


def sub(ctx: zmq.asyncio.Context, endpoint: str) -> zmq.asyncio.Socket:
    sock = _configure(ctx.socket(zmq.SUB), TICK_HWM)
    sock.setsockopt(zmq.SUBSCRIBE, b"")
    return _connect(sock, endpoint)


def router(ctx: zmq.asyncio.Context, endpoint: str) -> zmq.asyncio.Socket:
    sock = _configure(ctx.socket(zmq.ROUTER), REQUEST_HWM)
    # A reply to a peer that has gone away is dropped, not an error.
    sock.setsockopt(zmq.ROUTER_MANDATORY, 0)
    return _bind(sock, endpoint)


def push(ctx: zmq.Context[Any], endpoint: str) -> zmq.Socket[Any]:
    """The heartbeat sender. Give it a plain context (``zmq.Context.shadow``): a NOBLOCK send needs
    no asyncio future, and a plain socket adds no wake-ups of the event loop."""
    sock = _configure(ctx.socket(zmq.PUSH), HEARTBEAT_HWM)
    sock.setsockopt(zmq.IMMEDIATE, 1)  # no queue towards a launcher that is not there
    return _connect(sock, endpoint)


def pull(ctx: zmq.Context[zmq.Socket[bytes]], endpoint: str) -> zmq.Socket[bytes]:
    """The supervisor's heartbeat inbox: a plain (blocking) socket, the launcher runs no event loop."""
    return _bind(_configure(ctx.socket(zmq.PULL), 1000), endpoint)


class RequestFailed(Exception):
    """The DataManager did not answer in time after every retry, or refused the request."""


@dataclass(frozen=True, slots=True)
class RequestPolicy:
    """Lazy Pirate knobs: how long to wait for one reply and how often to try."""

    timeout: float = 1.0
    retries: int = 2  # attempts after the first
    max_in_flight: int = 1000


class LastPricesClient:
    """DEALER client for the DataManager's ROUTER: many requests in flight on one socket, matched to
    replies by ``request_id``.

    Reliability is the ZeroMQ guide's *Lazy Pirate* pattern adapted to DEALER: every request has a
    timeout and a bounded number of retries; when a timeout finds that nothing at all has come back
    since the socket was opened, the peer is presumed dead and the socket is closed and reopened, so
    requests queued towards it are dropped rather than delivered to a restarted peer long after their
    caller gave up. Several endpoints may be given: DEALER round-robins requests over the connected
    DataManagers (the guide's load-balancing without a broker).
    """

    def __init__(self, ctx: zmq.asyncio.Context, endpoints: Sequence[str], policy: RequestPolicy) -> None:
        self._ctx = ctx
        self._endpoints = tuple(endpoints)
        self._policy = policy
        self._ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future[LastPricesReply]] = {}
        self._slots = asyncio.Semaphore(policy.max_in_flight)
        self._socket = self._open()
        self._last_reply_at = time.monotonic()
        self.counters: dict[str, int] = {
            "dm_requests": 0, "dm_timeouts": 0, "dm_reopens": 0, "dm_bad_frames": 0, "dm_stale_replies": 0,
        }

    def _open(self) -> zmq.asyncio.Socket:
        sock = _configure(self._ctx.socket(zmq.DEALER), REQUEST_HWM)
        # Fail fast (zmq.Again) while no DataManager is connected, instead of queueing.
        sock.setsockopt(zmq.IMMEDIATE, 1)
        return _connect(sock, *self._endpoints)

    async def run(self) -> None:
        """Receive replies until cancelled; run it in the owner's TaskGroup.

        It waits on the socket with no timeout (an idle client costs no wake-ups). A reopen closes
        the old socket, which cancels the receive pending on it: that cancellation is told apart from
        the task's own by ``Task.cancelling()``.
        """
        while True:
            sock = self._socket
            try:
                frame = await sock.recv()
            except asyncio.CancelledError:
                task = asyncio.current_task()
                if (task is not None and task.cancelling()) or sock is self._socket:
                    raise  # we are being stopped
                continue  # the socket was reopened: listen on the new one
            except zmq.ZMQError:
                if sock is self._socket:
                    raise
                continue
            self._on_frame(frame)
            for _ in range(1000):  # drain what else has arrived, bounded so the loop stays fair
                try:
                    self._on_frame(await sock.recv(zmq.NOBLOCK))
                except zmq.Again:
                    break

    def _on_frame(self, frame: bytes) -> None:
        try:
            reply = protocol.decode_as(frame, LastPricesReply)
        except ProtocolError as exc:
            self.counters["dm_bad_frames"] += 1
            log.warning("rejected a frame from the DataManager: %s", exc)
            return
        self._last_reply_at = time.monotonic()
        future = self._pending.pop(reply.request_id, None)
        if future is None or future.done():
            self.counters["dm_stale_replies"] += 1  # its caller timed out already
        else:
            future.set_result(reply)

    async def last_prices(self, book: str, tick: int, count: int) -> LastPricesReply:
        """The window for ``book`` at ``tick``; raise :class:`RequestFailed` after the last retry."""
        async with self._slots:
            last_error = "no attempt"
            for _attempt in range(1 + self._policy.retries):
                request_id = next(self._ids)
                future: asyncio.Future[LastPricesReply] = asyncio.get_running_loop().create_future()
                self._pending[request_id] = future
                self.counters["dm_requests"] += 1
                try:
                    frame = protocol.encode(LastPricesRequest(request_id, book, tick, count))
                    try:
                        await self._socket.send(frame, zmq.NOBLOCK)
                    except zmq.Again:
                        last_error = "no DataManager connected"
                        await asyncio.sleep(min(0.1, self._policy.timeout))
                        continue
                    sent_on = self._socket
                    try:
                        async with asyncio.timeout(self._policy.timeout):
                            reply = await future
                    except TimeoutError:
                        self.counters["dm_timeouts"] += 1
                        last_error = f"no reply within {self._policy.timeout}s"
                        self._note_timeout(sent_on)
                        continue
                finally:
                    self._pending.pop(request_id, None)
                if reply.error:
                    raise RequestFailed(f"DataManager refused {book}@{tick}: {reply.error}")
                return reply
            raise RequestFailed(f"DataManager: {last_error} after {1 + self._policy.retries} attempts")

    def _note_timeout(self, sent_on: zmq.asyncio.Socket) -> None:
        # One lost reply while others arrive is just a retry; silence for a whole timeout means the
        # peer is gone and whatever is queued towards it must be dropped.
        if sent_on is self._socket and time.monotonic() - self._last_reply_at >= self._policy.timeout:
            self._reopen()

    def _reopen(self) -> None:
        self.counters["dm_reopens"] += 1
        log.warning("DataManager silent for %.1fs: reopening the socket (Lazy Pirate)", self._policy.timeout)
        old, self._socket = self._socket, self._open()
        self._last_reply_at = time.monotonic()
        old.close(linger=0)

    def close(self) -> None:
        self._socket.close(linger=0)
        for future in self._pending.values():
            future.cancel()
        self._pending.clear()
