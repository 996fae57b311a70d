"""The launcher's events socket under a subscription flood (issue 20): bound again within one or two
turns of reading, whatever the topics, so libzmq never queues more than a turn's worth of a flood."""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Iterator

import pytest
import zmq

from repricer_supervisor.events import (
    REFUSED_MAX,
    SUBSCRIPTIONS_MAX,
    SUBSCRIPTIONS_PER_TURN,
    TOPICS,
    TRIM_AFTER,
    Events,
)
from tests.helpers import wait_for
from transport import memory

_ENDPOINTS = itertools.count()


@pytest.fixture
def ctx() -> Iterator[zmq.Context[zmq.Socket[bytes]]]:
    context: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
    yield context
    context.destroy(linger=0)


def events_on(ctx: zmq.Context[zmq.Socket[bytes]], clock: Callable[[], float] = time.monotonic) -> tuple[Events, str]:
    first = f"inproc://events-{next(_ENDPOINTS)}"

    def bind() -> zmq.Socket[bytes]:  # (an inproc name is not free at once after a close: a new one)
        sock = ctx.socket(zmq.XPUB)
        sock.setsockopt(zmq.XPUB_MANUAL, 1)
        sock.bind(f"inproc://events-{next(_ENDPOINTS)}")
        return sock

    events = Events(bind, clock=clock)
    assert events.sock is not None
    events.sock.bind(first)
    return events, first


def flood(ctx: zmq.Context[zmq.Socket[bytes]], endpoint: str, topics: list[bytes]) -> zmq.Socket[bytes]:
    xsub = ctx.socket(zmq.XSUB)
    xsub.setsockopt(zmq.LINGER, 0)
    xsub.connect(endpoint)
    for topic in topics:
        xsub.send(b"\x01" + topic)
    return xsub


def turns_until_rebound(events: Events, most: int) -> int:
    for turn in range(1, most + 1):
        events.read_subscriptions()
        if events.rebinds:
            return turn
    raise AssertionError(f"not bound again within {most} turns")


def test_a_flood_of_unknown_topics_rebinds_within_one_turn(ctx: zmq.Context[zmq.Socket[bytes]]) -> None:
    events, endpoint = events_on(ctx)
    xsub = flood(ctx, endpoint, [b"t%06d" % i for i in range(SUBSCRIPTIONS_PER_TURN)])
    wait_for(lambda: bool(events.sock and events.sock.poll(0, zmq.POLLIN)), 5, 0.01)
    assert REFUSED_MAX < SUBSCRIPTIONS_PER_TURN
    assert turns_until_rebound(events, 20) == 1
    assert events.refused_subscriptions == REFUSED_MAX + 1
    xsub.close()


def test_a_flood_of_a_known_topic_rebinds_within_two_turns(ctx: zmq.Context[zmq.Socket[bytes]]) -> None:
    events, endpoint = events_on(ctx)
    xsub = flood(ctx, endpoint, [b""] * (SUBSCRIPTIONS_MAX + 1))
    wait_for(lambda: bool(events.sock and events.sock.poll(0, zmq.POLLIN)), 5, 0.01)
    assert turns_until_rebound(events, 50) <= 2
    assert events.refused_subscriptions == 0
    xsub.close()


def test_an_honest_subscriber_is_applied_and_greeted_never_rebound(ctx: zmq.Context[zmq.Socket[bytes]]) -> None:
    events, endpoint = events_on(ctx)
    xsub = flood(ctx, endpoint, [*sorted(TOPICS), b"not-a-topic"])
    wait_for(lambda: bool(events.sock and events.sock.poll(0, zmq.POLLIN)), 5, 0.01)
    for _ in range(5):
        events.read_subscriptions()
    assert (events.rebinds, events.refused_subscriptions) == (0, 1)
    assert events.greeting_due_at is not None
    xsub.close()


def test_the_memory_of_a_flood_is_given_back_once_no_rebind_came_for_a_while(
        ctx: zmq.Context[zmq.Socket[bytes]], monkeypatch: pytest.MonkeyPatch) -> None:
    """glibc keeps what libzmq freed after a flood: the launcher stayed at 1.27x its memory before."""
    trims: list[float] = []
    clock = [1000.0]

    def trim() -> bool:
        trims.append(clock[0])
        return True

    monkeypatch.setattr(memory, "trim", trim)
    events, endpoint = events_on(ctx, lambda: clock[0])
    events.trim_after_flood()
    assert (events.trim_due_at, trims) == (None, [])  # no flood, nothing to give back
    xsub = flood(ctx, endpoint, [b"t%06d" % i for i in range(SUBSCRIPTIONS_PER_TURN)])
    wait_for(lambda: bool(events.sock and events.sock.poll(0, zmq.POLLIN)), 5, 0.01)
    turns_until_rebound(events, 20)
    assert events.trim_due_at == 1000.0 + TRIM_AFTER
    clock[0] += TRIM_AFTER - 0.1
    events.trim_after_flood()
    assert trims == []  # the flood may go on: not yet
    clock[0] += 0.1
    events.trim_after_flood()
    events.trim_after_flood()
    assert trims == [1000.0 + TRIM_AFTER] and events.memory_trims == 1  # once per flood
    assert events.trim_due_at is None
    xsub.close()
