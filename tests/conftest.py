"""Fixtures and options of the test suite (the helpers tests import live in ``tests.helpers``)."""

from __future__ import annotations

import shutil
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
