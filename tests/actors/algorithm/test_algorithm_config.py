"""The Algorithm and its config: what loading skipped is logged and counted the same at start as on
a reload, a reload it cannot take is a refused reload, and a SIGHUP with nothing to reload is counted.
Real signals, real sockets (nothing answers them: no tick is needed here)."""

from __future__ import annotations

import asyncio
import io
import logging
import os
import signal
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import pytest
import zmq.asyncio

from actors.algorithm.actor import Algorithm
from actors.algorithm.options import AlgorithmOptions
from actors.pricing.config import Config, load_config
from actors.pricing.strategies import Pair, Strategy
from tests.helpers import async_wait_for, ipc_endpoint, run_async
from transport import limits
from transport.sockets import Sockets

CONFIG = '[strategies.a]\n[[books]]\nfile = "books.txt"\n'


def config_files(folder: Path, books: str = "B1\nB2\n", extra: str = "") -> Path:
    (folder / "books.txt").write_text(books)
    path = folder / "c.toml"
    path.write_text(CONFIG + extra)
    return path


def running(ipc_dir: Path, make: Callable[[Sockets[zmq.asyncio.Socket]], Algorithm],
            body: Callable[[Algorithm], Coroutine[Any, Any, None]]) -> Algorithm:
    """Run the Algorithm made by ``make`` while ``body`` runs, then stop it."""
    async def scenario() -> Algorithm:
        ctx = zmq.asyncio.Context()
        algorithm = make(Sockets(ctx))
        stop = asyncio.Event()
        try:
            async with asyncio.TaskGroup() as group:
                task = group.create_task(algorithm.run(stop))
                # Started: its SIGHUP handler is in place (before it, a SIGHUP would end this process).
                await async_wait_for(lambda: signal.getsignal(signal.SIGHUP) != signal.SIG_DFL)
                try:
                    await body(algorithm)
                finally:
                    stop.set()
                    await asyncio.wait_for(task, 5)
        finally:
            ctx.destroy(linger=0)
        return algorithm

    return run_async(scenario(), timeout=20)


def options(ipc_dir: Path, config: Path | None = None) -> AlgorithmOptions:
    return AlgorithmOptions(ticks_endpoint=ipc_endpoint(ipc_dir, "ticks"), data_endpoint=ipc_endpoint(ipc_dir, "dm"),
                            api_url="http://127.0.0.1:9", ledger_endpoint="",
                            config=None if config is None else str(config))


async def sighup(algorithm: Algorithm, counter: str, expected: int) -> None:
    """One SIGHUP to this process, handled once ``counter`` reaches ``expected`` (signals sent in a
    row may merge into one, so each is waited for)."""
    os.kill(os.getpid(), signal.SIGHUP)
    await async_wait_for(lambda: algorithm.counters.get(counter) == expected)


def test_the_catalogs_bad_rows_are_logged_and_counted_at_start(ipc_dir: Path, tmp_path: Path,
                                                               caplog: pytest.LogCaptureFixture) -> None:
    path = config_files(tmp_path, extra='[guardrails]\ncatalog = "cat.csv"\n')
    (tmp_path / "cat.csv").write_text("book_id,floor,ceiling\nB1,1,2\nB2,2,1\nB9,1,2\nB2,abc,3\nB1,5\n")
    config = load_config(path)

    async def body(algorithm: Algorithm) -> None:
        await async_wait_for(lambda: "for books not priced" in caplog.text)

    with caplog.at_level(logging.INFO):
        algorithm = running(ipc_dir, lambda s: Algorithm(s, options(ipc_dir, path), config,
                                                         out=io.StringIO()), body)
    c = algorithm.counters
    assert (c["catalog_rows"], c["catalog_bad_rows"], c["catalog_unknown_books"]) == (1, 3, 1)
    assert (c["catalog_bad_rows_floor_above_ceiling"], c["catalog_bad_rows_bad_floor"],
            c["catalog_bad_rows_wrong_column_count"]) == (1, 1, 1)
    assert ("cat.csv: 1 row(s) used, 3 bad (bad_floor 1, floor_above_ceiling 1, wrong_column_count 1), "
            "1 for books not priced") in caplog.messages
    assert any(m.startswith("cat.csv line 3: skipped a bad row (floor_above_ceiling)") for m in caplog.messages)
    assert "cat.csv line 4: book B9 is not priced by this config: row ignored" in caplog.messages
    assert len(c) <= 128  # what a Heartbeat carries (protocol.MAX_COUNTERS)


def test_a_sighup_without_a_config_is_counted_and_logged_rate_limited(ipc_dir: Path,
                                                                      caplog: pytest.LogCaptureFixture) -> None:
    async def body(algorithm: Algorithm) -> None:
        for count in range(1, 8):
            await sighup(algorithm, "reload_without_config", count)

    pairs = [Pair("B1", Strategy("default"))]
    algorithm = running(ipc_dir, lambda s: Algorithm(s, options(ipc_dir), Config({}, pairs),
                                                         out=io.StringIO()), body)
    assert algorithm.counters["reload_without_config"] == 7
    assert "config_reloads" not in algorithm.counters  # no reloader without --config
    assert caplog.messages.count("SIGHUP: nothing to reload (no --config)") == 5  # the log's burst


def test_a_reload_over_the_pair_limit_is_refused_and_the_next_good_one_is_taken(
        ipc_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setattr(limits, "BOOKS_MAX", 3)  # a worker tracks at most 3 pairs, dropped ones included
    path = config_files(tmp_path)
    config = load_config(path)

    async def body(algorithm: Algorithm) -> None:
        (tmp_path / "books.txt").write_text("B3\nB4\n")  # valid alone, but B1 and B2 stay tracked: 4 pairs
        await sighup(algorithm, "config_reload_errors", 1)
        assert algorithm.counters["config_reloads"] == 0 and algorithm.counters["pairs_active"] == 2
        config_files(tmp_path, extra='[pause]\nbooks = ["B2"]\n')
        await sighup(algorithm, "config_reloads", 1)
        assert algorithm.counters["pairs_active"] == 1 and algorithm.counters["config_reload_errors"] == 1

    with caplog.at_level(logging.INFO):
        algorithm = running(ipc_dir, lambda s: Algorithm(s, options(ipc_dir, path), config,
                                                         out=io.StringIO()), body)
    assert (algorithm.counters["config_reloads"], algorithm.counters["config_reload_errors"]) == (1, 1)
    refused = [m for m in caplog.messages if m.startswith("config reload refused, the running config stays")]
    assert len(refused) == 1 and "more than 3 pairs" in refused[0]
    assert any("reloaded: 2 pair(s) (was 2)" in m for m in caplog.messages)  # compared with the running one
