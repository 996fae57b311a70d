"""The socket factory: every socket bounded (HWM, MAXMSGSIZE), LINGER 0, security applied."""

from __future__ import annotations

import errno
from pathlib import Path

import pytest
import zmq
import zmq.asyncio
import zmq.utils.monitor

from tests.helpers import ipc_endpoint
from transport import sockets
from transport.limits import FRAME_MAX_BYTES
from transport.roles import DATA, TICKS
from transport.security import Security, SecurityError
from transport.sockets import Sockets


def test_socket_factories_bound_their_queues(ipc_dir: Path) -> None:
    ctx = zmq.asyncio.Context()
    sync_ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context()  # the launcher's PULL is a plain socket
    factory, plain = Sockets(ctx), Sockets(sync_ctx)
    try:
        made = {
            "pub": (factory.pub(ipc_endpoint(ipc_dir, "pub")), sockets.TICK_HWM),
            "sub": (factory.sub(ipc_endpoint(ipc_dir, "pub"), channel=TICKS), sockets.TICK_HWM),
            "router": (factory.router(ipc_endpoint(ipc_dir, "router"), channel=DATA), sockets.REQUEST_HWM),
            "dealer": (factory.dealer([ipc_endpoint(ipc_dir, "router")], channel=DATA), sockets.REQUEST_HWM),
            "push": (factory.push(ipc_endpoint(ipc_dir, "pull")), sockets.HEARTBEAT_HWM),
            "pull": (plain.pull(ipc_endpoint(ipc_dir, "pull")), 1000),
        }
        for name, (sock, hwm) in made.items():
            assert sock.get(zmq.LINGER) == 0, name
            assert sock.get(zmq.SNDHWM) == hwm, name
            assert sock.get(zmq.RCVHWM) == hwm, name
            assert sock.get(zmq.MAXMSGSIZE) == FRAME_MAX_BYTES, name
        assert made["push"][0].get(zmq.IMMEDIATE) == 1
        assert made["dealer"][0].get(zmq.IMMEDIATE) == 1
        for sock, _ in made.values():
            sock.close(linger=0)
    finally:
        ctx.destroy(linger=0)
        sync_ctx.destroy(linger=0)


def test_a_subscriber_retries_a_publisher_not_there_yet_without_backing_off(ipc_dir: Path) -> None:
    # Issue 21: backing off to 1 s, the Algorithm's SUB joined the Scheduler after tick 0 and its repeat.
    ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
    try:
        sub = Sockets(ctx).sub(ipc_endpoint(ipc_dir, "not-yet"), channel=TICKS)
        monitor = sub.get_monitor_socket(zmq.EVENT_CONNECT_RETRIED)
        monitor.setsockopt(zmq.RCVTIMEO, 10_000)
        # Each retry's wait in ms: 100 plus a random jitter under 100; backing off, it doubled each time
        # (100-199, 200-299, 400-499, 800-899, 1000-1099).
        waits = [int(zmq.utils.monitor.recv_monitor_message(monitor)["value"]) for _ in range(5)]
        assert all(100 <= wait < 200 for wait in waits), waits
        sub.disable_monitor()
        monitor.close(linger=0)
        sub.close(linger=0)
    finally:
        ctx.destroy(linger=0)


def test_a_frame_over_the_limit_is_dropped_before_it_is_read(ipc_dir: Path) -> None:
    """MAXMSGSIZE: a peer sending more than one frame's worth loses its connection instead of making
    the receiver buffer it; the frame is never delivered, frames within the limit still are."""
    ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
    factory = Sockets(ctx)
    try:
        endpoint = ipc_endpoint(ipc_dir, "pull")
        pull = factory.pull(endpoint)
        push = ctx.socket(zmq.PUSH)  # a raw peer, without our limits
        push.connect(endpoint)
        push.send(b"x" * (FRAME_MAX_BYTES + 1))
        push.send(b"y" * FRAME_MAX_BYTES)  # after the peer reconnects
        assert pull.poll(3000) and pull.recv() == b"y" * FRAME_MAX_BYTES
        assert pull.poll(200) == 0
        push.close(linger=0)
        pull.close(linger=0)
    finally:
        ctx.destroy(linger=0)


def test_binding_a_public_address_without_keys_is_refused() -> None:
    ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
    try:
        with pytest.raises(SecurityError, match="without CURVE keys"):
            Sockets(ctx, Security()).router("tcp://0.0.0.0:0", channel=DATA)
    finally:
        ctx.destroy(linger=0)


def test_an_actor_endpoint_someone_listens_on_is_refused_not_taken_over(ipc_dir: Path) -> None:
    # ZeroMQ would remove the first one's socket file and bind anew: a second DataManager (or Ledger, or
    # Scheduler) started on the same ipc endpoint, say with the defaults, fails to start instead; its
    # actor exits 2 with that line (runtime: EADDRINUSE is a configuration error).
    endpoint = ipc_endpoint(ipc_dir, "data")
    ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
    try:
        first = Sockets(ctx).router(endpoint, channel=DATA)
        with pytest.raises(OSError, match=r"already in use \(another repricer\?\)") as refused:
            Sockets(ctx).pub(endpoint)
        assert refused.value.errno == errno.EADDRINUSE
        client = ctx.socket(zmq.DEALER)  # the first one still serves at its socket
        client.connect(endpoint)
        client.send(b"still there")
        assert first.poll(5000) and first.recv_multipart()[1] == b"still there"
        client.close(linger=0)
        first.close(linger=0)
    finally:
        ctx.destroy(linger=0)


def test_a_client_reopening_with_its_identity_is_heard_while_its_old_connection_lingers(ipc_dir: Path) -> None:
    """ROUTER_HANDOVER: the Algorithm's Lazy Pirate reopen keeps its DEALER identity (the DataManager
    knows the stepping client by it). Without handover a ROUTER that has not yet seen the old connection
    go (a flood keeps it busy) ignores the new one for good: its requests vanish, its socket is deaf
    until the next reopen (2 of 3 tries of a throwaway script, 2026-12-05). The old connection is kept
    open here, so the race is always lost."""
    ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
    factory = Sockets(ctx)
    identity = b"algorithm-" + bytes(12)
    try:
        endpoint = ipc_endpoint(ipc_dir, "data")
        router = factory.router(endpoint, channel=DATA)
        old = factory.dealer([endpoint], identity, channel=DATA)
        old.setsockopt(zmq.SNDTIMEO, 5000)
        old.send(b"before")
        assert router.poll(5000) and router.recv_multipart() == [identity, b"before"]
        new = factory.dealer([endpoint], identity, channel=DATA)  # the reopen; the old one not gone yet
        new.setsockopt(zmq.SNDTIMEO, 5000)
        new.send(b"after")
        assert router.poll(5000), "the reopened client was not heard"
        assert router.recv_multipart() == [identity, b"after"]
        router.send_multipart([identity, b"reply"])  # and the replies go to it
        assert new.poll(5000) and new.recv() == b"reply"
        for sock in (old, new, router):
            sock.close(linger=0)
    finally:
        ctx.destroy(linger=0)
