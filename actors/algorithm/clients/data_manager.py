"""The Algorithm's side of the DataManager: a DEALER client asking for the last competitor prices of a
book (``LastPricesRequest``) or of many books at once (``WindowsRequest``), many requests in flight
on one socket, matched to replies by ``request_id``."""

from __future__ import annotations

import asyncio
import itertools
import logging
import secrets
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import zmq
import zmq.asyncio

from actors.algorithm.options import PricingOptions
from actors.options import default_of
from transport import protocol
from transport.logs import FrameDecoder, RateLimitedLog
from transport.protocol import (
    LastPricesReply,
    LastPricesRequest,
    WindowsReply,
    WindowsRequest,
    is_data_file_unavailable,
)
from transport.roles import DATA
from transport.sockets import Sockets

log = logging.getLogger(__name__)

_R = TypeVar("_R", LastPricesReply, WindowsReply)
DRAIN_MAX = 1000  # replies handled per turn of the receive loop before it yields
# s: a batch unanswered this long (or the request timeout, if longer) after a single request was is not
# understood. (0.25 s alone lost the race to an overloaded DataManager at 100,000 books, 2026-12-05.)
PROBE_GRACE = 0.25
REPROBE_AFTER = 60.0  # s: then try batches again (the DataManager may have been upgraded)
# Reopens of the socket in a row with no batch answered between them before a DataManager that answered
# batches is probed again. A silence is overload far more often than a restart into an older version: a
# probe after every reopen judged an overloaded DataManager (100,000 books) by a 0.25 s race, lost, and
# asked one book per request for a minute: 3.4% of the books per tick instead of 15-19% (2026-12-05).
REPROBE_REOPENS = 3
# s between two sends while a socket reopened lately connects again (within the request timeout after the
# reopen, see LastPricesClient._send).
CONNECT_POLL = 0.05


class RequestFailed(Exception):
    """The DataManager did not answer in time after every retry, or refused the request."""


class Refused(RequestFailed):
    """The DataManager answered with an error for this book (e.g. it has no prices for it)."""


class FileUnavailable(RequestFailed):
    """The DataManager answered that its data file cannot be read (every book gets the same error)."""


class NoReply(RequestFailed):
    """The request was sent (on its last attempt) and no reply came in time."""


class BatchesUnsupported(RequestFailed):
    """The DataManager answers LastPricesRequest but not WindowsRequest (a version before it)."""


@dataclass(frozen=True, slots=True)
class RequestPolicy:
    """Lazy Pirate knobs: how long to wait for one reply (``--dm-timeout``, its default declared there)
    and how often to try."""

    timeout: float = default_of(PricingOptions, "dm_timeout")
    retries: int = 2  # attempts after the first
    max_in_flight: int = 1000

    @classmethod
    def of(cls, options: PricingOptions) -> RequestPolicy:
        return cls(timeout=options.dm_timeout)


def _expire(future: asyncio.Future[Any]) -> None:
    if not future.done():
        future.set_exception(TimeoutError())


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

    def __init__(self, sockets: Sockets[zmq.asyncio.Socket], endpoints: Sequence[str],
                 policy: RequestPolicy) -> None:
        self._sockets = sockets
        self._endpoints = tuple(endpoints)
        self._policy = policy
        self._ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future[Any]] = {}
        self._slots = asyncio.Semaphore(policy.max_in_flight)
        # One identity for the life of the process, kept across reopens: the DataManager serves the
        # clients stepping through the ticks first under a flood, and knows them by it. (A leading
        # zero byte is ZeroMQ's own; a printable prefix tells them apart in a capture.)
        self._identity = b"algorithm-" + secrets.token_bytes(12)
        self._socket = self._open()
        self._last_reply_at = time.monotonic()
        # Until when a send that finds no DataManager connected waits for the reopened socket's connection
        # (the DataManager was there a moment ago) instead of failing the attempt at once.
        self._reconnecting_until = 0.0
        self._rlog = RateLimitedLog(log)
        # Whether the DataManager answers WindowsRequest: None until a first batch tells (probed
        # beside a single request, so a DataManager from before batches costs one timeout, not a tick).
        self.batches: bool | None = None
        self._reprobe_at = 0.0
        self._reopens_since_batch = 0  # reopens since a batch was last answered (see REPROBE_REOPENS)
        self.counters: dict[str, int] = {
            "dm_requests": 0, "dm_timeouts": 0, "dm_reopens": 0, "dm_bad_frames": 0, "dm_stale_replies": 0,
        }
        self._frames = FrameDecoder(self.counters, "dm_bad_frames", self._rlog, "bad_frame",
                                    "rejected a frame from the DataManager")

    def _open(self) -> zmq.asyncio.Socket:
        return self._sockets.dealer(self._endpoints, self._identity, channel=DATA)

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
            for _ in range(DRAIN_MAX):  # drain what else has arrived, bounded so the loop stays fair
                try:
                    self._on_frame(await sock.recv(zmq.NOBLOCK))
                except zmq.Again:
                    break
            # recv() hands back done futures while replies are queued: a flood would never suspend us
            await asyncio.sleep(0)

    def _on_frame(self, frame: bytes) -> None:
        reply = self._frames.decode_as(frame, LastPricesReply, WindowsReply)
        if reply is None:
            return
        self._last_reply_at = time.monotonic()
        future = self._pending.pop(reply.request_id, None)
        if future is None or future.done():
            self.counters["dm_stale_replies"] += 1  # its caller timed out already
        else:
            future.set_result(reply)

    async def last_prices(self, book: str, tick: int, count: int) -> LastPricesReply:
        """The window for ``book`` at ``tick``; raise :class:`RequestFailed` after the last retry."""
        reply = await self._ask(lambda rid: LastPricesRequest(rid, book, tick, count), LastPricesReply,
                                f"{book}@{tick}")
        if reply.error:
            refused = FileUnavailable if is_data_file_unavailable(reply.error) else Refused
            raise refused(f"DataManager refused {book}@{tick}: {reply.error}")
        return reply

    async def windows(self, tick: int, count: int, books: Sequence[str]) -> WindowsReply:
        """The windows of many ``books`` at ``tick`` in one request (at most
        ``limits.BATCH_BOOKS_MAX`` books, books x count <= ``limits.BATCH_PRICES_MAX``); per-book
        failures are in the reply's ``errors``; raise :class:`RequestFailed` after the last retry."""
        books = tuple(books)
        if self.batches is False and time.monotonic() >= self._reprobe_at:
            self.batches = None
        if self.batches is False:
            raise BatchesUnsupported("the DataManager does not answer WindowsRequest")
        if self.batches is None:
            reply = await self._probe(tick, count, books)
        else:
            reply = await self._ask(lambda rid: WindowsRequest(rid, tick, count, books), WindowsReply,
                                    f"{len(books)} books@{tick}")
        self._reopens_since_batch = 0
        if len(reply.windows) != len(books):
            raise RequestFailed(f"DataManager answered {len(reply.windows)} windows for {len(books)} books")
        return reply

    async def _probe(self, tick: int, count: int, books: tuple[str, ...]) -> WindowsReply:
        """A first batch, beside a single request for its first book: if the single one is answered
        and the batch not within PROBE_GRACE after it, the DataManager predates WindowsRequest; single
        requests are used from then on, and batches are tried again after REPROBE_AFTER seconds (a
        slow first batch then costs a minute of single requests, not batches for good)."""
        batch = asyncio.ensure_future(self._ask(lambda rid: WindowsRequest(rid, tick, count, books), WindowsReply,
                                                "a first batch", probing=True))
        try:
            try:
                await self.last_prices(books[0], tick, count)
                answered = True
            except Refused:
                answered = True
            except RequestFailed:
                answered = False
            if answered:
                grace = max(PROBE_GRACE, self._policy.timeout)
                done, _ = await asyncio.wait({batch}, timeout=grace)
                # Another request's batch answered meanwhile (a tick starts many at once) settles it.
                if not done and self.batches is None:
                    self.batches = False
                    self._reprobe_at = time.monotonic() + REPROBE_AFTER
                    # Rate-limited: a flood makes every reopen probe again (issue 20).
                    self._rlog.warning("no_batches", "the DataManager answered a single request but not a batch "
                                       "within %.2fs (a version before batches, or overloaded?): one "
                                       "LastPricesRequest per book for the next %.0fs", grace, REPROBE_AFTER)
                    raise BatchesUnsupported("the DataManager does not answer WindowsRequest")
            reply = await batch
        finally:
            batch.cancel()  # done already, or given up: never left running
        self.batches = True
        return reply

    async def _ask(self, make: Callable[[int], LastPricesRequest | WindowsRequest], kind: type[_R],
                   what: str, probing: bool = False) -> _R:
        async with self._slots:
            last_error = "no attempt"
            for _attempt in range(1 + self._policy.retries):
                request_id = next(self._ids)
                future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
                self._pending[request_id] = future
                self.counters["dm_requests"] += 1
                try:
                    sent_on = await self._send(protocol.encode(make(request_id)))
                    if sent_on is None:
                        last_error = "no DataManager connected"
                        await asyncio.sleep(min(0.1, self._policy.timeout))
                        continue
                    # A timer on the future, not asyncio.timeout(): a third of the cost per request.
                    expiry = asyncio.get_running_loop().call_later(self._policy.timeout, _expire, future)
                    try:
                        reply = await future
                    except TimeoutError:
                        self.counters["dm_timeouts"] += 1
                        last_error = f"no reply within {self._policy.timeout}s"
                        if not probing:  # an older DataManager ignores a probe: that is no sign of death
                            self._note_timeout(sent_on)
                        continue
                    finally:
                        expiry.cancel()
                finally:
                    self._pending.pop(request_id, None)
                if not isinstance(reply, kind):
                    raise RequestFailed(f"DataManager answered {what} with a {type(reply).__name__}")
                return reply
            failure = NoReply if last_error.startswith("no reply") else RequestFailed
            raise failure(f"DataManager: {last_error} after {1 + self._policy.retries} attempts")

    async def _send(self, frame: bytes) -> zmq.asyncio.Socket | None:
        """Send ``frame``; return the socket it went on, or None if no DataManager is connected. No
        peer at all fails at once (a caller is not held a timeout for a DataManager that is not there);
        but a socket reopened within the request timeout waits for its connection until then: under a
        flood the DataManager took longer than the retries' pauses to accept it, and the retries of a
        request that had just timed out failed at once, "no DataManager connected", costing the
        tick's pairs (a flood over a real run beside a busy core, 1 run in 20)."""
        while True:
            sock = self._socket  # a reopen meanwhile: the new one
            try:
                await sock.send(frame, zmq.NOBLOCK)
                return sock
            except zmq.Again:
                if time.monotonic() >= self._reconnecting_until:
                    return None
            await asyncio.sleep(CONNECT_POLL)

    def _note_timeout(self, sent_on: zmq.asyncio.Socket) -> None:
        # One lost reply while others arrive is just a retry; silence for a whole timeout means the
        # peer is gone and whatever is queued towards it must be dropped.
        if sent_on is self._socket and time.monotonic() - self._last_reply_at >= self._policy.timeout:
            self._reopen()

    def _reopen(self) -> None:
        self.counters["dm_reopens"] += 1
        self._rlog.warning("reopen", "DataManager silent for %.1fs: reopening the socket (Lazy Pirate)",
                           self._policy.timeout)
        old, self._socket = self._socket, self._open()
        self._last_reply_at = time.monotonic()
        self._reconnecting_until = self._last_reply_at + self._policy.timeout
        self._reopens_since_batch += 1
        if self.batches is not True or self._reopens_since_batch >= REPROBE_REOPENS:
            self.batches = None  # a restarted DataManager may be another version: ask again
        old.close(linger=0)

    def close(self) -> None:
        self._socket.close(linger=0)
        for future in self._pending.values():
            future.cancel()
        self._pending.clear()
