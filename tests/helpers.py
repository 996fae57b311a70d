"""Helpers the tests share: run a coroutine with a hard timeout, short private ipc:// paths, waiting
on a condition with a deadline, a free TCP port, a fake clock."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any, TypeVar

from bench.driver import free_port as free_port  # one definition each, shared with the benchmarks
from bench.polling import async_wait_for as async_wait_for
from bench.polling import wait_for as wait_for

T = TypeVar("T")

REPO = Path(__file__).resolve().parent.parent
# sun_path is 108 bytes including the terminating NUL.
MAX_IPC_PATH = 100


# The event loops the loop-sensitive tests run on: asyncio's own, and uvloop, which every actor runs on in
# production (actors.runtime). They differ where it hurts: uvloop's ``call_at`` with a time already due
# returns a plain Handle (no ``when()``), its transports are no ``asyncio.WriteTransport``.
LOOPS = ("asyncio", "uvloop")


class LoopChoice:
    """Which loop :func:`run_async` starts; set per test by the ``loop_kind`` fixture (tests/conftest.py)."""

    kind = "asyncio"


def loop_factory(kind: str | None = None) -> Callable[[], asyncio.AbstractEventLoop]:
    """A factory of fresh loops of ``kind`` ("asyncio" or "uvloop"; default: the test's choice)."""
    if (kind or LoopChoice.kind) == "uvloop":
        import uvloop
        return uvloop.new_event_loop
    return asyncio.new_event_loop


def run_async(coro: Coroutine[Any, Any, T], timeout: float = 10.0) -> T:
    """Run ``coro`` in a fresh event loop (the test's choice of loop, see :class:`LoopChoice`); fail
    (TimeoutError) if it takes longer than ``timeout``."""

    async def bounded() -> T:
        async with asyncio.timeout(timeout):
            return await coro

    with asyncio.Runner(loop_factory=loop_factory()) as runner:
        return runner.run(bounded())


def ipc_endpoint(directory: Path, name: str) -> str:
    """``ipc://<directory>/<name>.sock``, checked against the unix socket path limit."""
    path = os.path.join(directory, f"{name}.sock")
    assert len(path.encode()) <= MAX_IPC_PATH, f"ipc path too long: {path}"
    return f"ipc://{path}"


class FakeClock:
    """A clock the test moves by hand: ``clock()`` returns ``now``."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


async def stamp_every_ms(stamps: list[float]) -> None:
    """What a heartbeat would see: a stamp each time a 1 ms sleep wakes up (gaps = event-loop stalls).
    Runs until cancelled."""
    while True:
        await asyncio.sleep(0.001)
        stamps.append(time.monotonic())


def python(*args: str, timeout: float = 30.0) -> subprocess.CompletedProcess[str]:
    """``python ARGS...`` run from the repository, its output captured: a command as a user types it."""
    return subprocess.run([sys.executable, *args], cwd=REPO, capture_output=True, text=True, timeout=timeout)

