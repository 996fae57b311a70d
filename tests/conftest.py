"""Fixtures and options of the test suite (the helpers tests import live in ``tests.helpers``)."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import MAX_IPC_PATH


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


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--run-slow", action="store_true", help="also run the long soak tests (marked slow)")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--run-slow"):
        return
    skip = pytest.mark.skip(reason="slow soak run: give --run-slow")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)
