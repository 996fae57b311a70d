"""Shared test helpers: run a coroutine with a hard timeout, short private ipc:// paths, polling."""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

T = TypeVar("T")

# sun_path is 108 bytes including the terminating NUL.
_MAX_IPC_PATH = 100


def run_async(coro: Coroutine[Any, Any, T], timeout: float = 10.0) -> T:
    """Run ``coro`` in a fresh event loop; fail (TimeoutError) if it takes longer than ``timeout``."""

    async def bounded() -> T:
        async with asyncio.timeout(timeout):
            return await coro

    return asyncio.run(bounded())


@pytest.fixture
def ipc_dir(tmp_path: Path) -> Iterator[Path]:
    """A directory private to this test whose paths fit in an ipc:// endpoint."""
    if len(str(tmp_path)) <= _MAX_IPC_PATH - 24:
        yield tmp_path
        return
    short = Path(tempfile.mkdtemp(prefix="zt-", dir="/tmp"))
    try:
        yield short
    finally:
        shutil.rmtree(short, ignore_errors=True)


def ipc_endpoint(directory: Path, name: str) -> str:
    """``ipc://<directory>/<name>.sock``, checked against the unix socket path limit."""
    path = os.path.join(directory, f"{name}.sock")
    assert len(path.encode()) <= _MAX_IPC_PATH, f"ipc path too long: {path}"
    return f"ipc://{path}"


def wait_for(predicate: Callable[[], object], timeout: float = 5.0, interval: float = 0.005) -> None:
    """Poll ``predicate`` (blocking) until it is truthy; AssertionError after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        time.sleep(interval)


async def async_wait_for(
    predicate: Callable[[], object],
    timeout: float = 5.0,  # noqa: ASYNC109 - a deadline for the poll, like wait_for's
    interval: float = 0.005,
) -> None:
    """Like :func:`wait_for`, yielding to the event loop between polls."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        await asyncio.sleep(interval)



def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--run-slow", action="store_true", help="also run the long soak tests (marked slow)")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--run-slow"):
        return
    skip = pytest.mark.skip(reason="slow soak run: give --run-slow")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)
