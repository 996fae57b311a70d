"""LastPricesClient (Lazy Pirate over DEALER) against a fake DataManager built on ``Sockets.router``."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import random
import threading
import time
from collections.abc import AsyncIterator, Callable
from decimal import Decimal
from pathlib import Path
from typing import NamedTuple

import pytest
import zmq
import zmq.asyncio

from actors.algorithm.clients.data_manager import REPROBE_REOPENS, LastPricesClient, RequestFailed, RequestPolicy
from tests.helpers import async_wait_for, ipc_endpoint, run_async, stamp_every_ms
from transport import protocol
from transport.protocol import LastPricesReply, LastPricesRequest, Tick
from transport.roles import DATA
from transport.sockets import Sockets

pytestmark = pytest.mark.both_loops  # uvloop: the loop every actor runs on in production

Multipart = list[bytes]


def window(request: LastPricesRequest) -> tuple[Decimal, ...]:
    """The prices the fake answers with: derived from the request, so a mismatch is visible."""
    return tuple(Decimal(f"{request.tick}.{i:02d}") for i in range(request.count))


def answer(request: LastPricesRequest, error: str = "") -> bytes:
    prices = () if error else window(request)
    return protocol.encode(LastPricesReply(request.request_id, request.book, request.tick, prices, error))


class FakeDataManager:
    """A ROUTER that decodes every request and sends what ``respond`` returns (possibly nothing)."""

    def __init__(self, sockets: Sockets[zmq.asyncio.Socket], endpoint: str,
                 respond: Callable[[bytes, LastPricesRequest], list[Multipart]] | None = None) -> None:
        self.sock = sockets.router(endpoint, channel=DATA)
        self.received: list[LastPricesRequest] = []
        self._respond = respond or (lambda identity, request: [[identity, answer(request)]])

    async def run(self) -> None:
        try:
            while True:
                identity, data = await self.sock.recv_multipart()
                request = protocol.decode(data)
                assert isinstance(request, LastPricesRequest)
                self.received.append(request)
                for message in self._respond(identity, request):
                    await self.sock.send_multipart(message)
        finally:
            self.sock.close(linger=0)

    def books(self, book: str) -> list[LastPricesRequest]:
        return [r for r in self.received if r.book == book]


def connected(client: LastPricesClient) -> bool:
    """With ZMQ_IMMEDIATE the DEALER is writable only once a DataManager connection is up."""
    events = client._socket.get(zmq.EVENTS)
    assert isinstance(events, int)
    return bool(events & zmq.POLLOUT)


class Harness(NamedTuple):
    client: LastPricesClient
    dm: FakeDataManager | None
    group: asyncio.TaskGroup
    receiver: asyncio.Task[None]  # the client's run() loop


@contextlib.asynccontextmanager
async def running(endpoint: str, policy: RequestPolicy,
                  respond: Callable[[bytes, LastPricesRequest], list[Multipart]] | None = None,
                  fake: bool = True) -> AsyncIterator[Harness]:
    """A client (receive loop running) and, unless ``fake`` is False, a fake DataManager, all in one
    TaskGroup so a crash in the fake fails the test at once instead of after every timeout."""
    ctx = zmq.asyncio.Context()
    sockets = Sockets(ctx)
    client = LastPricesClient(sockets, [endpoint], policy)
    try:
        async with asyncio.TaskGroup() as group:
            dm = FakeDataManager(sockets, endpoint, respond) if fake else None
            tasks = [group.create_task(client.run())]
            if dm is not None:
                tasks.append(group.create_task(dm.run()))
                await async_wait_for(lambda: connected(client), timeout=2.0)
            yield Harness(client, dm, group, tasks[0])
            for task in tasks:
                task.cancel()
    finally:
        client.close()
        ctx.destroy(linger=0)


async def keepalive(client: LastPricesClient, done: asyncio.Event) -> None:
    """Steady traffic, so a single lost reply is not mistaken for a dead peer."""
    while not done.is_set():
        await client.last_prices("keepalive", 0, 1)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(0.03):
                await done.wait()


# --- tests ---------------------------------------------------------------------------------------


def test_many_concurrent_requests_are_matched_to_their_replies(ipc_dir: Path) -> None:
    n = 200
    held: list[tuple[bytes, LastPricesRequest]] = []

    def respond(identity: bytes, request: LastPricesRequest) -> list[Multipart]:
        held.append((identity, request))
        if len(held) < n:
            return []
        random.Random(42).shuffle(held)  # answer all at once, in an order unrelated to the requests
        return [[identity, answer(request)] for identity, request in held]

    async def scenario() -> None:
        async with running(ipc_endpoint(ipc_dir, "dm"), RequestPolicy(timeout=5.0, retries=0), respond) as (
                client, dm, _, _):
            replies = await asyncio.gather(*(client.last_prices(f"book-{i}", i, 1 + i % 64) for i in range(n)))
            assert dm is not None and len(dm.received) == n
        for i, reply in enumerate(replies):
            assert (reply.book, reply.tick) == (f"book-{i}", i)
            assert reply.prices == window(LastPricesRequest(0, f"book-{i}", i, 1 + i % 64))
        assert len({r.request_id for r in replies}) == n
        assert client.counters["dm_requests"] == n
        assert client.counters["dm_timeouts"] == client.counters["dm_stale_replies"] == 0
        assert client.counters["dm_bad_frames"] == 0

    run_async(scenario(), timeout=10)


def test_a_dropped_request_times_out_and_the_retry_succeeds(ipc_dir: Path) -> None:
    def respond(identity: bytes, request: LastPricesRequest) -> list[Multipart]:
        if request.book == "drop-me" and len(dm_received("drop-me")) == 1:
            return []  # lose the first attempt
        return [[identity, answer(request)]]

    holder: list[FakeDataManager] = []

    def dm_received(book: str) -> list[LastPricesRequest]:
        return holder[0].books(book)

    async def scenario() -> None:
        policy = RequestPolicy(timeout=0.3, retries=2)
        async with running(ipc_endpoint(ipc_dir, "dm"), policy, respond) as (client, dm, group, _):
            assert dm is not None
            holder.append(dm)
            done = asyncio.Event()
            group.create_task(keepalive(client, done))
            started = time.monotonic()
            reply = await client.last_prices("drop-me", 7, 3)
            elapsed = time.monotonic() - started
            done.set()
        attempts = dm.books("drop-me")
        assert len(attempts) == 2
        assert attempts[0].request_id != attempts[1].request_id
        assert reply.request_id == attempts[1].request_id
        assert (reply.book, reply.tick, reply.prices) == ("drop-me", 7, window(attempts[1]))
        assert 0.3 <= elapsed < 1.0
        assert client.counters["dm_timeouts"] == 1
        # Replies kept arriving during the timeout: one lost reply is a retry, not a dead peer.
        assert client.counters["dm_reopens"] == 0

    run_async(scenario(), timeout=10)


def test_a_late_reply_is_counted_as_stale(ipc_dir: Path) -> None:
    held: list[tuple[bytes, LastPricesRequest]] = []

    def respond(identity: bytes, request: LastPricesRequest) -> list[Multipart]:
        if request.book != "late":
            return [[identity, answer(request)]]
        if not held:
            held.append((identity, request))
            return []
        # The first attempt's reply arrives after its caller gave up, just before the retry's reply.
        old_identity, old_request = held[0]
        return [[old_identity, answer(old_request)], [identity, answer(request)]]

    async def scenario() -> None:
        async with running(ipc_endpoint(ipc_dir, "dm"), RequestPolicy(timeout=0.3, retries=2), respond) as (
                client, dm, group, _):
            done = asyncio.Event()
            group.create_task(keepalive(client, done))
            reply = await client.last_prices("late", 1, 2)
            await async_wait_for(lambda: client.counters["dm_stale_replies"] == 1, timeout=2.0)
            done.set()
        assert dm is not None
        attempts = dm.books("late")
        assert len(attempts) == 2
        assert reply.request_id == attempts[1].request_id
        assert client.counters["dm_stale_replies"] == 1
        assert client.counters["dm_timeouts"] == 1

    run_async(scenario(), timeout=10)


def test_request_failed_after_every_retry_when_nobody_answers(ipc_dir: Path) -> None:
    timeout, retries = 0.2, 2

    async def scenario() -> None:
        async with running(ipc_endpoint(ipc_dir, "dm"), RequestPolicy(timeout=timeout, retries=retries),
                           lambda identity, request: []) as (client, _, _, _):
            started = time.monotonic()
            with pytest.raises(RequestFailed, match=f"after {1 + retries} attempts"):
                await client.last_prices("b", 1, 1)
            elapsed = time.monotonic() - started
            counters = dict(client.counters)
        assert counters["dm_requests"] == 1 + retries
        assert 1 <= counters["dm_timeouts"] <= 1 + retries
        # Each timed-out attempt waited the whole timeout, and the whole thing is bounded.
        assert counters["dm_timeouts"] * timeout * 0.95 <= elapsed < (1 + retries) * timeout + 0.5

    run_async(scenario(), timeout=10)


def test_a_silent_peer_makes_the_client_reopen_its_socket(ipc_dir: Path) -> None:
    async def scenario() -> None:
        async with running(ipc_endpoint(ipc_dir, "dm"), RequestPolicy(timeout=0.2, retries=0),
                           lambda identity, request: []) as (client, dm, _, _):
            first_socket = client._socket
            with pytest.raises(RequestFailed):
                await client.last_prices("b", 1, 1)
            await async_wait_for(lambda: client.counters["dm_reopens"] >= 1, timeout=2.0)
            assert client._socket is not first_socket
            assert first_socket.closed
            # The new socket connects to the same (still silent) peer, which gets the next request.
            await async_wait_for(lambda: connected(client), timeout=2.0)
            with pytest.raises(RequestFailed):
                await client.last_prices("again", 1, 1)
            assert dm is not None
            await async_wait_for(lambda: len(dm.books("again")) == 1, timeout=2.0)

    run_async(scenario(), timeout=10)


def test_garbage_reply_frames_are_counted(ipc_dir: Path) -> None:
    endpoint = ipc_endpoint(ipc_dir, "dm")

    async def raw_fake(sock: zmq.asyncio.Socket) -> None:
        # Answers every request, without decoding it, with a non-msgpack frame and a non-reply.
        while True:
            identity, _ = await sock.recv_multipart()
            await sock.send_multipart([identity, b"\xc1garbage"])
            await sock.send_multipart([identity, protocol.encode(Tick(1, 1.0, 1.0, 1.0))])

    async def scenario() -> None:
        async with running(endpoint, RequestPolicy(timeout=0.3, retries=0), fake=False) as h:
            sock = h.client._sockets.router(endpoint, channel=DATA)
            fake = h.group.create_task(raw_fake(sock))
            await async_wait_for(lambda: connected(h.client), timeout=2.0)
            with pytest.raises(RequestFailed):
                await h.client.last_prices("b", 1, 1)
            await async_wait_for(lambda: h.client.counters["dm_bad_frames"] == 2, timeout=2.0)
            fake.cancel()
            sock.close(linger=0)
        assert h.client.counters["dm_stale_replies"] == 0

    run_async(scenario(), timeout=10)


def test_garbage_reply_frames_are_counted_and_do_not_break_later_requests(ipc_dir: Path) -> None:
    def respond(identity: bytes, request: LastPricesRequest) -> list[Multipart]:
        if request.book != "garbage":
            return [[identity, answer(request)]]
        tick = protocol.encode(Tick(1, 1.0, 1.0, 1.0))  # valid, but not a reply
        return [[identity, b"\xc1garbage"], [identity, tick], [identity, answer(request)]]

    async def scenario() -> None:
        async with running(ipc_endpoint(ipc_dir, "dm"), RequestPolicy(timeout=1.0, retries=0), respond) as (
                client, _, _, _):
            first = await client.last_prices("garbage", 1, 1)
            later = await asyncio.gather(*(client.last_prices(f"b{i}", i, 2) for i in range(10)))
        assert first.book == "garbage"
        assert [r.book for r in later] == [f"b{i}" for i in range(10)]
        assert client.counters["dm_bad_frames"] == 2
        assert client.counters["dm_timeouts"] == 0

    run_async(scenario(), timeout=10)


def test_a_reply_with_an_error_raises_request_failed_without_retrying(ipc_dir: Path) -> None:
    def respond(identity: bytes, request: LastPricesRequest) -> list[Multipart]:
        return [[identity, answer(request, error="unknown book")]]

    async def scenario() -> None:
        async with running(ipc_endpoint(ipc_dir, "dm"), RequestPolicy(timeout=1.0, retries=3), respond) as (
                client, dm, _, _):
            with pytest.raises(RequestFailed, match="unknown book"):
                await client.last_prices("nope", 4, 1)
        assert dm is not None and len(dm.received) == 1
        assert client.counters["dm_requests"] == 1
        assert client.counters["dm_timeouts"] == 0

    run_async(scenario(), timeout=10)


def test_requests_succeed_once_a_late_peer_comes_up(ipc_dir: Path) -> None:
    endpoint = ipc_endpoint(ipc_dir, "dm")

    async def scenario() -> None:
        async with running(endpoint, RequestPolicy(timeout=0.3, retries=20), fake=False) as (client, _, group, _):
            request = group.create_task(client.last_prices("b", 3, 2))
            await async_wait_for(lambda: client.counters["dm_requests"] >= 1, timeout=2.0)
            assert not request.done()
            dm = FakeDataManager(client._sockets, endpoint)
            fake = group.create_task(dm.run())
            reply = await request
            fake.cancel()
        assert (reply.book, reply.tick, reply.prices) == ("b", 3, window(dm.received[-1]))
        assert reply.request_id == dm.received[-1].request_id

    run_async(scenario(), timeout=10)


def test_no_peer_connected_fails_fast(ipc_dir: Path) -> None:
    timeout = 0.6

    async def scenario() -> None:
        async with running(ipc_endpoint(ipc_dir, "nobody"), RequestPolicy(timeout=timeout, retries=0),
                           fake=False) as (client, _, _, _):
            started = time.monotonic()
            with pytest.raises(RequestFailed, match="no DataManager connected"):
                await client.last_prices("b", 1, 1)
            assert time.monotonic() - started < timeout / 2
            assert client.counters["dm_timeouts"] == 0

    run_async(scenario(), timeout=10)


def test_close_cancels_pending_requests(ipc_dir: Path) -> None:
    async def scenario() -> None:
        async with running(ipc_endpoint(ipc_dir, "dm"), RequestPolicy(timeout=5.0, retries=0),
                           lambda identity, request: []) as (client, dm, _, receiver):
            request = asyncio.create_task(client.last_prices("b", 1, 1))
            assert dm is not None
            await async_wait_for(lambda: len(dm.received) == 1, timeout=2.0)
            receiver.cancel()  # the owner stops run() before closing
            with contextlib.suppress(asyncio.CancelledError):
                await receiver
            client.close()
            with pytest.raises(asyncio.CancelledError):
                await request
            assert client._pending == {}

    run_async(scenario(), timeout=10)


@pytest.mark.alone
def test_a_flood_of_replies_does_not_starve_the_event_loop(ipc_dir: Path) -> None:
    """A peer that sends garbage as fast as ZeroMQ takes it (100,000 frames, from a thread, each send
    waiting for room): the client's receive loop yields at its bound, so another coroutine keeps
    running throughout (a loop that never suspends on a pending future would stop it for the whole
    flood, since a frame is always queued)."""
    endpoint = ipc_endpoint(ipc_dir, "dm")
    plain = zmq.Context()
    bound, stop = threading.Event(), threading.Event()

    def flood() -> None:
        # The socket is the thread's alone (a ZeroMQ socket used by two threads aborts the process).
        router = plain.socket(zmq.ROUTER)
        router.setsockopt(zmq.LINGER, 0)
        router.setsockopt(zmq.ROUTER_MANDATORY, 1)  # wait for room instead of dropping
        try:
            router.bind(endpoint)
            bound.set()
            with contextlib.suppress(zmq.ZMQError):  # the client goes away at the end: the rest is moot
                while not router.poll(100, zmq.POLLIN):
                    if stop.is_set():
                        return
                identity, _ = router.recv_multipart()
                sent = 0
                while sent < 100_000 and not stop.is_set():
                    if router.poll(100, zmq.POLLOUT):
                        router.send_multipart([identity, b"garbage"])
                        sent += 1
        finally:
            router.close(linger=0)

    sender = threading.Thread(target=flood, daemon=True)
    sender.start()
    assert bound.wait(10)

    async def body() -> list[float]:
        ctx = zmq.asyncio.Context()
        # A long timeout: no Lazy Pirate reopen (a new identity) while the garbage flows.
        client = LastPricesClient(Sockets(ctx), [endpoint], RequestPolicy(timeout=60, retries=50))
        stamps: list[float] = []

        try:
            async with asyncio.TaskGroup() as group:
                beat = group.create_task(stamp_every_ms(stamps))
                receiver = group.create_task(client.run())
                ask = group.create_task(client.last_prices("A", 0, 5))  # it only opens the way for the flood
                await async_wait_for(lambda: client.counters["dm_bad_frames"] >= 90_000, timeout=30)
                for task in (receiver, beat, ask):
                    task.cancel()
            return [b - a for a, b in itertools.pairwise(stamps)]
        finally:
            client.close()
            ctx.destroy(linger=0)

    try:
        gaps = run_async(body(), timeout=40)
    finally:
        stop.set()
        sender.join(10)
        if not sender.is_alive():
            plain.term()  # (a thread stuck in a send would make term wait for ever)
    assert len(gaps) > 20 and max(gaps) < 0.25, (len(gaps), max(gaps, default=0))


def test_a_datamanager_that_answered_batches_is_probed_again_only_after_reopens_in_a_row(ipc_dir: Path) -> None:
    """A silence is overload far more often than a restart into a version from before batches: after every
    reopen an overloaded DataManager (100,000 books) was probed again, lost the probe's 0.25 s race and was
    asked one book per request for a minute. Now only REPROBE_REOPENS reopens with no batch answered
    between them bring the probe back; a DataManager never seen answering a batch is probed after one."""
    async def scenario() -> None:
        async with running(ipc_endpoint(ipc_dir, "dm"), RequestPolicy(timeout=0.2, retries=0),
                           lambda identity, request: []) as (client, _, _, _):
            client.batches = True  # as once a batch was answered
            for _ in range(REPROBE_REOPENS - 1):
                client._reopen()
                assert client.batches is True
            client._reopen()
            assert client.batches is None
            client.batches = False  # judged to predate batches: a reopen asks again at once
            client._reopen()
            assert client.batches is None
            assert client.counters["dm_reopens"] == REPROBE_REOPENS + 1

    run_async(scenario(), timeout=10)


def test_a_retry_after_a_reopen_waits_for_the_new_connection(ipc_dir: Path) -> None:
    """A request times out, the socket is reopened, and the DataManager takes a while to accept the new
    connection (under a flood: longer than the retries' pauses). The retry waits for it, within the
    request timeout after the reopen, instead of failing at once with "no DataManager connected"."""
    endpoint = ipc_endpoint(ipc_dir, "dm")
    timeout = 0.8

    async def scenario() -> None:
        ctx = zmq.asyncio.Context()
        sockets = Sockets(ctx)
        try:
            async with running(endpoint, RequestPolicy(timeout=timeout, retries=1), fake=False) as (client, _, group,
                                                                                                  _):
                silent = FakeDataManager(sockets, endpoint, lambda identity, request: [])
                serving = group.create_task(silent.run())
                await async_wait_for(lambda: connected(client), timeout=2.0)
                request = asyncio.ensure_future(client.last_prices("b", 3, 2))
                await async_wait_for(lambda: len(silent.received) == 1, timeout=2.0)
                serving.cancel()  # the DataManager's socket closes: the reopened one finds no peer
                await async_wait_for(lambda: client.counters["dm_reopens"] == 1, timeout=2.0)
                await asyncio.sleep(0.1)  # a DataManager slow to accept: as long as the old pause between attempts
                answering = FakeDataManager(sockets, endpoint)
                serving = group.create_task(answering.run())
                reply = await request
                serving.cancel()
            assert reply.prices == window(answering.received[-1])
            assert client.counters["dm_timeouts"] == 1
        finally:
            ctx.destroy(linger=0)

    run_async(scenario(), timeout=10)
