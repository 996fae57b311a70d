"""The actor runtime: heartbeats to the supervisor, the parent watch."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
from pathlib import Path

import zmq
import zmq.asyncio

from actors import runtime
from tests.helpers import REPO, ipc_endpoint, run_async
from transport import protocol
from transport.protocol import Heartbeat

LOGGER = "tests.runtime.ratelimited"

# --- heartbeat and parent watch in this process --------------------------------------------------


class TinyActor:
    name = "tiny"

    def __init__(self) -> None:
        self.done = asyncio.Event()
        self.stopped_by_runtime = False
        self._counters = {"widgets": 7}

    @property
    def counters(self) -> dict[str, int]:
        return self._counters

    async def run(self, stop: asyncio.Event) -> None:
        done = asyncio.create_task(self.done.wait())
        stopped = asyncio.create_task(stop.wait())
        await asyncio.wait([done, stopped], return_when=asyncio.FIRST_COMPLETED)
        self.stopped_by_runtime = stop.is_set()
        done.cancel()
        stopped.cancel()


def _args(heartbeat: str | None = None, parent_pid: int | None = None) -> runtime.RuntimeOptions:
    return runtime.RuntimeOptions(heartbeat_endpoint=heartbeat, heartbeat_interval=0.05, parent_pid=parent_pid)


def test_serve_sends_heartbeats_from_the_event_loop(ipc_dir: Path) -> None:
    endpoint = ipc_endpoint(ipc_dir, "heartbeat")
    actor = TinyActor()

    async def scenario() -> list[Heartbeat]:
        ctx = zmq.asyncio.Context()
        pull = ctx.socket(zmq.PULL)  # stands in for the launcher's inbox, but awaitable
        pull.bind(endpoint)
        try:
            serve = asyncio.create_task(runtime._serve("tiny", lambda _sockets: actor, _args(heartbeat=endpoint), None))
            beats: list[Heartbeat] = []
            while len(beats) < 3:
                beat = protocol.decode(await pull.recv())
                assert isinstance(beat, Heartbeat)
                beats.append(beat)
            actor.done.set()  # the actor returns on its own: _serve stops the heartbeat and returns
            await asyncio.wait_for(serve, 2.0)
            return beats
        finally:
            pull.close(linger=0)
            ctx.destroy(linger=0)

    beats = run_async(scenario(), timeout=10)
    assert {(b.actor, b.pid) for b in beats} == {("tiny", os.getpid())}
    seqs = [b.seq for b in beats]
    assert seqs == sorted(set(seqs))
    assert all(b.counters == {"widgets": 7} for b in beats)
    assert all(b.sent_at > 0 for b in beats)
    assert not actor.stopped_by_runtime


def test_serve_stops_when_the_parent_is_gone() -> None:
    actor = TinyActor()
    not_our_parent = os.getppid() + 1_000_000

    async def scenario() -> None:
        serve = runtime._serve("tiny", lambda _sockets: actor, _args(parent_pid=not_our_parent), None)
        await asyncio.wait_for(serve, 2.0)

    run_async(scenario(), timeout=5)
    assert actor.stopped_by_runtime


def test_serve_keeps_running_while_the_parent_is_alive() -> None:
    actor = TinyActor()

    async def scenario() -> bool:
        args = _args(parent_pid=os.getppid())
        serve = asyncio.create_task(runtime._serve("tiny", lambda _sockets: actor, args, None))
        # The watch checks at once; a wrong verdict would have stopped the actor by now.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(serve), 0.2)
        running = not serve.done()
        actor.done.set()
        await asyncio.wait_for(serve, 2.0)
        return running

    assert run_async(scenario(), timeout=5)
    assert not actor.stopped_by_runtime


# --- heartbeat from a real actor process ---------------------------------------------------------


def test_scheduler_process_heartbeats_with_its_name_pid_and_increasing_seq(ipc_dir: Path) -> None:
    heartbeat = ipc_endpoint(ipc_dir, "heartbeat")
    ctx = zmq.Context()
    pull = ctx.socket(zmq.PULL)
    pull.setsockopt(zmq.LINGER, 0)
    pull.setsockopt(zmq.RCVTIMEO, 5000)
    pull.bind(heartbeat)
    process = subprocess.Popen(
        [sys.executable, "-m", "actors.scheduler", "--tick", "0.05", "--ticks-endpoint", ipc_endpoint(ipc_dir, "ticks"),
         "--heartbeat-endpoint", heartbeat, "--heartbeat-interval", "0.05", "--parent-pid", str(os.getpid()),
         "--log-level", "WARNING"],
        cwd=REPO, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        beats = []
        for _ in range(4):
            beat = protocol.decode(pull.recv())
            assert isinstance(beat, Heartbeat)
            beats.append(beat)
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=3) == 0
    finally:
        with contextlib.suppress(ProcessLookupError):
            process.kill()
        process.wait(timeout=5)
        pull.close()
        ctx.term()
    assert {(b.actor, b.pid) for b in beats} == {("scheduler", process.pid)}
    seqs = [b.seq for b in beats]
    assert seqs == sorted(set(seqs))
    assert set(beats[-1].counters) >= {"ticks_sent", "ticks_skipped", "last_seq"}
    assert beats[-1].counters["ticks_sent"] >= beats[0].counters["ticks_sent"]
