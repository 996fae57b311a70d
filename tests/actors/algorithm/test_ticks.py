"""Tick intake: which ticks are followed (pure gate), and the receive loop under a flood."""

from __future__ import annotations

import asyncio
import itertools
import time
from pathlib import Path
from typing import Any

import pytest
import zmq
import zmq.asyncio
from hypothesis import given, settings
from hypothesis import strategies as st

from actors.algorithm.ticks import TickGate, TickReceiver, Verdict
from tests.helpers import async_wait_for, ipc_endpoint, run_async, stamp_every_ms
from transport import limits, protocol
from transport.protocol import Tick
from transport.sockets import Sockets

pytestmark = pytest.mark.both_loops  # uvloop: the loop every actor runs on in production

NOW = 1_800_000_000.0
T0 = NOW - 100.0


def tick(seq: int, t0: float = T0, interval: float = 1.0) -> Tick:
    return Tick(seq, t0 + seq * interval, NOW, interval, t0)


def test_consecutive_ticks_are_followed_and_repeats_are_stale() -> None:
    gate = TickGate()
    assert gate.judge(tick(100), NOW) is Verdict.NEW
    assert gate.judge(tick(101), NOW + 1) is Verdict.NEW
    assert gate.judge(tick(101), NOW + 1) is Verdict.STALE
    assert gate.judge(tick(99), NOW + 1) is Verdict.STALE


def test_a_new_scheduler_run_is_followed_from_seq_0() -> None:
    gate = TickGate()
    assert gate.judge(tick(100), NOW) is Verdict.NEW
    later = NOW + 30  # the old run stopped; a new launcher started a new run just now
    assert gate.judge(tick(0, t0=later), later) is Verdict.NEW_RUN
    assert gate.judge(tick(1, t0=later), later + 1) is Verdict.NEW
    assert gate.judge(tick(101), later + 1) is Verdict.FOREIGN_RUN  # the old run is no longer followed


def test_another_run_while_ours_is_alive_is_refused() -> None:
    gate = TickGate()
    assert gate.judge(tick(100), NOW) is Verdict.NEW
    assert gate.judge(tick(3, t0=NOW - 3.2), NOW + 0.2) is Verdict.FOREIGN_RUN
    assert gate.judge(tick(101), NOW + 1) is Verdict.NEW


def test_one_forged_huge_seq_is_refused_and_does_not_silence_the_run() -> None:
    gate = TickGate()
    assert gate.judge(tick(100), NOW) is Verdict.NEW
    forged = Tick(2**63 - 1, 0.0, NOW, 1.0, T0)
    assert gate.judge(forged, NOW) is Verdict.IMPLAUSIBLE
    consistent_but_far = tick(2**40)
    assert gate.judge(consistent_but_far, NOW) is Verdict.IMPLAUSIBLE
    assert gate.judge(tick(101), NOW + 1) is Verdict.NEW


def test_scheduled_at_must_agree_with_the_run() -> None:
    gate = TickGate()
    assert gate.judge(Tick(100, T0 + 100.5, NOW, 1.0, T0), NOW) is Verdict.IMPLAUSIBLE


@settings(max_examples=200)
@given(seq=st.integers(0, 2**63 - 1), interval=st.floats(limits.TICK_MIN, limits.TICK_MAX),
       t0=st.floats(0, 4e9))
def test_only_ticks_due_near_our_clock_are_followed(seq: int, interval: float, t0: float) -> None:
    candidate = Tick(seq, t0 + seq * interval, NOW, interval, t0)
    verdict = TickGate().judge(candidate, NOW)
    due = t0 + seq * interval
    assert verdict.accepted == (abs(due - NOW) <= max(limits.TICK_CLOCK_SKEW_MAX, 2 * interval))


def test_the_receiver_counts_each_verdict_and_dispatches_the_newest() -> None:
    followed: list[int] = []
    receiver = TickReceiver(TickGate(), lambda t, v: followed.append(t.seq), clock=lambda: NOW)
    frames = [protocol.encode(t) for t in (tick(100), tick(101), tick(99), Tick(2**63 - 1, 0.0, NOW, 1.0, T0))]
    receiver.handle([*frames, b"garbage"])
    assert followed == [101]
    c = receiver.counters
    seen = (c["ticks"], c["superseded_ticks"], c["stale_ticks"], c["implausible_ticks"], c["bad_frames"])
    assert seen == (1, 1, 1, 1, 1)
    assert c["last_tick"] == 101


def test_a_tick_flood_does_not_starve_the_event_loop(ipc_dir: Path) -> None:
    """100,000 frames queued at once (about a second of decoding): another coroutine keeps running
    meanwhile, never waiting long (a receive loop that never suspends would stop it for the whole
    flood)."""

    async def body() -> None:
        ctx = zmq.asyncio.Context()
        endpoint = ipc_endpoint(ipc_dir, "ticks")
        pub = Sockets(ctx).pub(endpoint, hwm=100_000)
        sub = Sockets(ctx).sub(endpoint, hwm=100_000)
        followed: list[int] = []
        receiver = TickReceiver(TickGate(), lambda t, v: followed.append(t.seq))
        stamps: list[float] = []

        try:
            async with asyncio.TaskGroup() as group:
                task = group.create_task(receiver.run(sub))
                beat = group.create_task(stamp_every_ms(stamps))
                t0 = time.time()
                good = protocol.encode(Tick(0, t0, t0, 1.0, t0))
                async def sent_until_followed() -> bool:  # PUB drops what a SUB has not joined for yet
                    if not followed:
                        await pub.send(good)
                    return bool(followed)

                await async_wait_for(sent_until_followed, interval=0.01, what="the first tick to be followed")
                garbage = protocol.encode(Tick(2**63 - 1, 0.0, t0, 1.0, t0))
                for _ in range(100_000):
                    pub.send(garbage, zmq.NOBLOCK)  # a plain send: the flood does not wait for us
                sent = time.monotonic()
                await async_wait_for(lambda: receiver.counters["implausible_ticks"] >= 90_000, timeout=25)
                during = [t for t in stamps if t > sent]
                gaps = [b - a for a, b in itertools.pairwise(during)]
                assert len(gaps) > 20 and max(gaps) < 0.25, (len(gaps), max(gaps, default=0))
                task.cancel()
                beat.cancel()
        finally:
            pub.close(linger=0)
            sub.close(linger=0)
            ctx.destroy(linger=0)

    run_async(body(), timeout=30)


def test_ticks_that_stop_advancing_are_warned_about(ipc_dir: Path, caplog: Any) -> None:
    """After a tick with a 10 ms interval, silence (or only refused ticks) for a second is a stall:
    counted and logged (rate-limited), naming the last seq."""

    async def body() -> TickReceiver:
        ctx = zmq.asyncio.Context()
        sub = Sockets(ctx).sub(ipc_endpoint(ipc_dir, "ticks"))
        now = time.time()
        receiver = TickReceiver(TickGate(), lambda t, v: None)
        receiver.handle([protocol.encode(Tick(7, now, now, 0.01, now - 0.07))])
        try:
            async with asyncio.TaskGroup() as group:
                task = group.create_task(receiver.run(sub))
                await async_wait_for(lambda: receiver.counters["tick_stalls"] >= 1, timeout=5)
                task.cancel()
        finally:
            sub.close(linger=0)
            ctx.destroy(linger=0)
        return receiver

    receiver = run_async(body())
    assert receiver.counters["last_tick"] == 7
    assert any("no new tick for" in m and "last seq 7" in m for m in caplog.messages)


def test_new_runs_are_all_counted_but_logged_rate_limited(caplog: Any) -> None:
    """Forged ticks of ever new runs (each after the old one fell quiet) must not flood the log."""
    now = [NOW]
    receiver = TickReceiver(TickGate(), lambda t, v: None, clock=lambda: now[0])
    for _ in range(20):
        now[0] += 10.0  # the run followed is quiet for 10 intervals: the next run is taken
        receiver.handle([protocol.encode(Tick(0, now[0], now[0], 1.0, now[0]))])
    assert receiver.counters["new_runs"] == 19 and receiver.counters["ticks"] == 20
    logged = [m for m in caplog.messages if m.startswith("following a new Scheduler run")]
    assert len(logged) == 5  # RateLimitedLog's burst; the rest only counted


def test_the_tick_followed_coming_again_is_reported_as_a_repeat() -> None:
    repeats: list[int] = []
    receiver = TickReceiver(TickGate(), lambda t, v: None, clock=lambda: NOW, on_repeat=lambda t: repeats.append(t.seq))
    receiver.handle([protocol.encode(tick(100))])
    receiver.handle([protocol.encode(tick(100)), protocol.encode(tick(100))])  # the Scheduler repeats it
    receiver.handle([protocol.encode(tick(99))])  # older: stale, not a repeat
    receiver.handle([protocol.encode(tick(100, t0=T0 - 7))])  # another run's seq 100: not ours
    assert repeats == [100]
    assert receiver.counters["stale_ticks"] == 3
