"""Fixtures and options of the test suite (the helpers tests import live in ``tests.helpers``)."""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import signal
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import LOOPS, MAX_IPC_PATH, LoopChoice


@pytest.fixture
def ipc_dir(tmp_path: Path) -> Iterator[Path]:
    """A directory private to this test whose paths fit in an ipc:// endpoint."""
    if len(str(tmp_path)) <= MAX_IPC_PATH - 24:
        yield tmp_path
        return
    short = Path(tempfile.mkdtemp(prefix="zt-", dir="/tmp"))
    try:
        yield short
    finally:
        shutil.rmtree(short, ignore_errors=True)


@pytest.fixture
def taken_port() -> Iterator[int]:
    """A TCP port on 127.0.0.1 held (listening) for the test's duration."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


@pytest.fixture(autouse=True)
def machine_share(request: pytest.FixtureRequest) -> Iterator[None]:
    """Under pytest-xdist (several workers, one machine): a test marked ``alone`` -- it measures what the
    whole machine can do, e.g. every book of 10,000 decided each tick -- runs with no other test running:
    it closes the gate (no test starts) and waits for the running ones to end. Every other test passes
    the gate and shares the machine. (A waiting ``alone`` test gets the gate between two tests.)"""
    run = os.environ.get("PYTEST_XDIST_TESTRUNUID")
    if run is None:  # one process: every test runs alone (but for what CI builds beside it: paused)
        with background_paused(request.node.get_closest_marker("alone") is not None):
            yield
        return
    base = Path(tempfile.gettempdir()) / f"repricer-tests-{run}"
    with open(f"{base}.gate", "a") as gate, open(f"{base}.running", "a") as running:
        if request.node.get_closest_marker("alone") is not None:
            fcntl.flock(gate, fcntl.LOCK_EX)
            fcntl.flock(running, fcntl.LOCK_EX)
        else:
            fcntl.flock(gate, fcntl.LOCK_SH)
            fcntl.flock(running, fcntl.LOCK_SH)
            fcntl.flock(gate, fcntl.LOCK_UN)
        try:
            with background_paused(request.node.get_closest_marker("alone") is not None):
                yield
        finally:
            fcntl.flock(running, fcntl.LOCK_UN)
            fcntl.flock(gate, fcntl.LOCK_UN)


@contextlib.contextmanager
def background_paused(alone: bool) -> Iterator[None]:
    """For an ``alone`` test, the process group named by ``REPRICER_TESTS_PAUSE_PGID`` (CI's container
    build, started beside the suite by .ci/run) is stopped (SIGSTOP) until the test ends: a test of
    what the machine can do gets the machine. Gone or not ours: nothing to pause."""
    pgid = int(os.environ.get("REPRICER_TESTS_PAUSE_PGID", "0") or 0)
    if not alone or pgid <= 1:
        yield
        return
    try:
        os.killpg(pgid, signal.SIGSTOP)
    except (ProcessLookupError, PermissionError):
        yield
        return
    try:
        yield
    finally:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, signal.SIGCONT)


@pytest.fixture(autouse=True)
def loop_kind(request: pytest.FixtureRequest) -> Iterator[str]:
    """The event loop ``run_async`` starts: asyncio's; each of asyncio's and uvloop for a test marked
    ``both_loops``; uvloop alone for one marked ``production_loop`` (a long load test worth one run)."""
    kind: str = getattr(request, "param", "asyncio")
    LoopChoice.kind = kind
    try:
        yield kind
    finally:
        LoopChoice.kind = "asyncio"


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if metafunc.definition.get_closest_marker("production_loop") is not None:
        metafunc.parametrize("loop_kind", ["uvloop"], indirect=True)
    elif metafunc.definition.get_closest_marker("both_loops") is not None:
        metafunc.parametrize("loop_kind", LOOPS, indirect=True)


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--run-slow", action="store_true", help="also run the long soak tests (marked slow)")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--run-slow"):
        return
    skip = pytest.mark.skip(reason="slow soak run: give --run-slow")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)
