"""The Scheduler: the pure schedule arithmetic, a real PUB socket, and the process."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import msgpack
import pytest
import zmq
import zmq.asyncio
from hypothesis import given, settings
from hypothesis import strategies as st

from actors import runtime
from actors.kinds import SCHEDULER
from actors.scheduler.actor import Scheduler, next_seq, repeat_every
from actors.scheduler.options import SchedulerOptions
from tests.helpers import REPO, async_wait_for, ipc_endpoint, run_async, wait_for
from transport import protocol
from transport.protocol import PROTOCOL_VERSION, MessageType, Tick
from transport.roles import TICKS
from transport.sockets import Sockets

INTERVAL = 0.05

# --- next_seq ------------------------------------------------------------------------------------


@pytest.mark.parametrize(("now", "expected"), [
    (0.0, 0),  # long before t0
    (999.75, 0),
    (1000.0, 0),  # exactly t0: tick 0 is the next one
    (1000.25, 1),
    (1000.5, 2),  # exactly at tick 1's due time: it is due, the next is 2
    (1000.75, 2),
    (1001.0, 3),
    (1001.5, 4),
    (1250.0, 501),
])
def test_next_seq_at_boundaries(now: float, expected: int) -> None:
    # t0 and interval are exact binary fractions, so the boundaries are exact.
    assert next_seq(1000.0, 0.5, now) == expected


@settings(max_examples=300, deadline=None)
@given(t0=st.floats(min_value=0, max_value=2e9, allow_nan=False),
       interval=st.floats(min_value=0.01, max_value=60.0),
       k=st.integers(min_value=0, max_value=100_000),
       frac=st.floats(min_value=0.01, max_value=0.99))
def test_next_seq_counts_whole_intervals_since_t0(t0: float, interval: float, k: int, frac: float) -> None:
    now = t0 + (k + frac) * interval  # strictly inside interval k, away from float rounding at the edges
    assert next_seq(t0, interval, now) == k + 1
    assert t0 + (k + 1) * interval > now  # and that tick is indeed not yet due


@settings(max_examples=200, deadline=None)
@given(t0=st.floats(min_value=0, max_value=2e9, allow_nan=False),
       interval=st.floats(min_value=0.01, max_value=60.0),
       a=st.floats(min_value=-1e6, max_value=1e6), b=st.floats(min_value=-1e6, max_value=1e6))
def test_next_seq_is_monotonic_and_never_negative(t0: float, interval: float, a: float, b: float) -> None:
    low, high = sorted((a, b))
    assert 0 <= next_seq(t0, interval, t0 + low) <= next_seq(t0, interval, t0 + high)


# --- a Scheduler in this process -----------------------------------------------------------------


async def collect_ticks(endpoint: str, scheduler: Scheduler, count: int) -> list[Tick]:
    """Run ``scheduler`` until a SUB socket has ``count`` ticks, then stop it."""
    ctx = zmq.asyncio.Context()
    sub = Sockets(ctx).sub(endpoint, channel=TICKS)
    stop = asyncio.Event()
    run = asyncio.create_task(scheduler.run(stop))
    ticks: list[Tick] = []
    try:
        while len(ticks) < count:
            tick = protocol.decode(await sub.recv())
            assert isinstance(tick, Tick)
            ticks.append(tick)
    finally:
        stop.set()
        await asyncio.wait_for(run, 1.0)
        sub.close(linger=0)
        ctx.destroy(linger=0)
    return ticks


def test_ticks_are_consecutive_and_on_schedule(ipc_dir: Path) -> None:
    endpoint = ipc_endpoint(ipc_dir, "ticks")
    t0 = time.time()
    ctx = zmq.asyncio.Context()
    scheduler = Scheduler(Sockets(ctx), SchedulerOptions(ticks_endpoint=endpoint, tick=INTERVAL, t0=t0))
    try:
        ticks = run_async(collect_ticks(endpoint, scheduler, 6), timeout=5)
    finally:
        ctx.destroy(linger=0)
    seqs = [t.seq for t in ticks]
    assert seqs == list(range(seqs[0], seqs[0] + 6))
    for tick in ticks:
        assert tick.interval == INTERVAL
        assert tick.t0 == t0  # identifies the run: a receiver tells a new run from seq going backwards
        assert tick.scheduled_at == pytest.approx(t0 + tick.seq * INTERVAL, abs=1e-9)
        assert -0.005 < tick.sent_at - tick.scheduled_at < 0.05
    assert scheduler.counters["ticks_sent"] >= 6
    assert scheduler.counters["last_seq"] >= seqs[-1]


def test_a_restarted_scheduler_continues_the_sequence(ipc_dir: Path) -> None:
    endpoint = ipc_endpoint(ipc_dir, "ticks")
    t0 = time.time()
    ctx = zmq.asyncio.Context()
    try:
        first = Scheduler(Sockets(ctx), SchedulerOptions(ticks_endpoint=endpoint, tick=INTERVAL, t0=t0))
        run_async(collect_ticks(endpoint, first, 3), timeout=5)
        last_of_first = first.counters["last_seq"]
        # The second run starts at least one whole interval after the first stopped.
        wait_for(lambda: next_seq(t0, INTERVAL, time.time()) > last_of_first + 2, timeout=2)
        expected_at_least = next_seq(t0, INTERVAL, time.time())
        second = Scheduler(Sockets(ctx), SchedulerOptions(ticks_endpoint=endpoint, tick=INTERVAL, t0=t0))
        ticks = run_async(collect_ticks(endpoint, second, 3), timeout=5)
    finally:
        ctx.destroy(linger=0)
    counters = second.counters
    first_sent = counters["last_seq"] - counters["ticks_sent"] + 1 + counters["ticks_skipped"]
    assert first_sent >= expected_at_least > last_of_first + 2  # no replay of the missed ticks
    assert first_sent <= expected_at_least + 2
    assert all(t.seq >= first_sent for t in ticks)
    assert all(t.t0 == t0 for t in ticks)  # the same run: its seq continues
    assert [t.seq for t in ticks] == list(range(ticks[0].seq, ticks[0].seq + 3))


def test_a_subscriber_joining_after_a_tick_gets_it_repeated_before_the_next(ipc_dir: Path) -> None:
    """The slow joiner: a SUB connected after tick 0 was sent (a standalone Algorithm started after the
    Scheduler, a restarted one) still gets tick 0, repeated, long before tick 1 is due."""
    endpoint = ipc_endpoint(ipc_dir, "ticks")

    async def scenario() -> list[Tick]:
        ctx = zmq.asyncio.Context()
        scheduler = Scheduler(Sockets(ctx), SchedulerOptions(ticks_endpoint=endpoint, tick=3.0, t0=time.time()))
        stop = asyncio.Event()
        run = asyncio.create_task(scheduler.run(stop))
        try:
            await async_wait_for(lambda: scheduler.counters["ticks_sent"] == 1)  # tick 0 went to nobody
            sub = Sockets(ctx).sub(endpoint, channel=TICKS)
            ticks = [protocol.decode_as(await sub.recv(), Tick), protocol.decode_as(await sub.recv(), Tick)]
            sub.close(linger=0)
            assert scheduler.counters["ticks_sent"] == 1 and scheduler.counters["ticks_repeated"] >= 2
            return ticks
        finally:
            stop.set()
            await asyncio.wait_for(run, 1.0)
            ctx.destroy(linger=0)

    ticks = run_async(scenario(), timeout=5)
    assert [t.seq for t in ticks] == [0, 0]  # tick 0 again (every second at most; here every 1 s)
    assert all(t.scheduled_at == ticks[0].t0 for t in ticks)  # the same tick: only sent_at differs
    assert ticks[1].sent_at - ticks[0].sent_at == pytest.approx(1.0, abs=0.3)


def test_fast_ticks_are_not_repeated() -> None:
    assert repeat_every(0.05) is None
    assert repeat_every(0.5) == 0.25 and repeat_every(5.0) == 1.0


def test_stop_event_stops_the_scheduler_promptly(ipc_dir: Path) -> None:
    async def scenario() -> float:
        ctx = zmq.asyncio.Context()
        try:
            # A long interval: the scheduler is asleep waiting for its next tick when stopped.
            options = SchedulerOptions(ticks_endpoint=ipc_endpoint(ipc_dir, "ticks"), tick=30.0, t0=time.time())
            scheduler = Scheduler(Sockets(ctx), options)
            stop = asyncio.Event()
            run = asyncio.create_task(scheduler.run(stop))
            await asyncio.sleep(0)  # let it start and bind
            assert not run.done()
            started = time.monotonic()
            stop.set()
            await asyncio.wait_for(run, 0.5)
            return time.monotonic() - started
        finally:
            ctx.destroy(linger=0)

    assert run_async(scenario(), timeout=5) < 0.5


def parse_args(argv: list[str]) -> SchedulerOptions:
    return runtime.parse_options(SCHEDULER, SchedulerOptions, None, argv)[0]


def test_parse_args_rejects_a_non_positive_tick() -> None:
    assert parse_args(["--tick", "0.25"]).tick == 0.25
    with pytest.raises(SystemExit):
        parse_args(["--tick", "0"])


# --- the process ---------------------------------------------------------------------------------


def _comm(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/comm") as comm:
            return comm.read().strip()
    except FileNotFoundError:
        return ""


def test_scheduler_process_publishes_is_named_and_exits_cleanly_on_sigterm(ipc_dir: Path) -> None:
    endpoint = ipc_endpoint(ipc_dir, "ticks")
    ctx = zmq.Context()
    sub = ctx.socket(zmq.SUB)
    sub.setsockopt(zmq.SUBSCRIBE, b"")
    sub.setsockopt(zmq.LINGER, 0)
    sub.setsockopt(zmq.RCVTIMEO, 5000)
    sub.connect(endpoint)
    process = subprocess.Popen(
        [sys.executable, "-m", "actors.scheduler", "--tick", str(INTERVAL), "--ticks-endpoint", endpoint,
         "--parent-pid", str(os.getpid()), "--log-level", "WARNING"],
        cwd=REPO, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        frames = [msgpack.unpackb(sub.recv()) for _ in range(3)]
        assert [f[:2] for f in frames] == [[PROTOCOL_VERSION, MessageType.TICK]] * 3
        assert [f[2] for f in frames] == list(range(frames[0][2], frames[0][2] + 3))
        wait_for(lambda: _comm(process.pid) == "scheduler", timeout=2)
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=3) == 0
    finally:
        with contextlib.suppress(ProcessLookupError):
            process.kill()
        process.wait(timeout=5)
        assert process.stderr is not None
        process.stderr.close()
        sub.close()
        ctx.term()


def test_scheduler_help_exits_zero() -> None:
    result = subprocess.run([sys.executable, "-m", "actors.scheduler", "--help"], cwd=REPO,
                            capture_output=True, text=True, timeout=20, check=False)
    assert result.returncode == 0
    assert "--tick" in result.stdout and "--ticks-endpoint" in result.stdout and "--heartbeat-endpoint" in result.stdout
