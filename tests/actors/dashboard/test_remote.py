"""The Dashboard's network reader against a real Ledger process (``python -m actors.ledger``) over
CurveZMQ: every read it makes gives what the file reader gives on the same database, a series longer
than one answer included (read a page at a time); a read with no Ledger connected is refused at once;
the Dashboard started with ``--ledger-endpoint`` serves a book's history and its business from it."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import zmq.asyncio

from actors.dashboard.actor import Dashboard
from actors.dashboard.bounds import DefaultBounds
from actors.dashboard.ledger import LedgerReader, LedgerReads, LedgerUnavailable
from actors.dashboard.options import DashboardOptions
from actors.dashboard.params import BooksQuery
from actors.dashboard.remote import RemoteLedger
from actors.dashboard.rows import DecisionRow
from actors.ledger_reads import queries
from bench import fake_ledger
from tests.helpers import REPO, async_wait_for, free_port, run_async
from transport.roles import DASHBOARD
from transport.security import Keys, Security, keygen
from transport.sockets import Sockets

pytestmark = pytest.mark.production_loop  # a process test: once, on the loop the actors run on

TICKS = queries.MAX_ROWS + 200  # a series longer than one answer


async def everything(reader: LedgerReads) -> list[Any]:
    return [await reader.summary(), await reader.books(BooksQuery(sort="price", descending=True, size=3, page=2)),
            await reader.pairs_of("B000002"), await reader.series("B000002", "fast", TICKS + 5),
            await reader.decisions("B000001", "default", None, 7), (await reader.business(1.0)),
            await reader.alerts_mark(), await reader.pair_alerts([("B000001", "default")])]


async def dashboard_reads(ctx: zmq.asyncio.Context, keys: Keys, endpoint: str, expected: list[DecisionRow]) -> None:
    """The Dashboard actor, its history from the Ledger at ``endpoint`` (its option, not a test's reader)."""
    options = DashboardOptions(port=0, ledger_endpoint=endpoint, db="/nonexistent/never-read.sqlite3")
    dashboard = Dashboard(Sockets(ctx, Security(keys)), options, DefaultBounds())
    stop = asyncio.Event()

    def get(path: str) -> Any:
        url = f"http://127.0.0.1:{dashboard.port}{path}"
        return json.loads(urllib.request.urlopen(url, timeout=10).read())

    async with asyncio.TaskGroup() as group:
        group.create_task(dashboard.run(stop))
        await asyncio.wait_for(dashboard.started.wait(), 10)
        await async_wait_for(lambda: dashboard.business is not None, 10, 0.05, "the business read over the network")
        assert (await asyncio.to_thread(get, "/api/ledger"))["endpoint"] == endpoint
        book = await asyncio.to_thread(get, "/api/book?id=B000002&strategy=fast")
        assert book["decisions"] == [d.as_json() for d in expected] and len(expected) == 100
        assert dashboard.business is not None and dashboard.business.books == 4
        stop.set()


def test_the_network_reader_reads_what_the_file_reader_reads_from_a_real_ledger(tmp_path: Path) -> None:
    db, keys = tmp_path / "ledger.sqlite3", keygen(tmp_path / "keys")
    fake_ledger.fill(db, books=4, strategies=("default", "fast"), ticks=TICKS, seed=2)
    endpoint = f"tcp://127.0.0.1:{free_port()}"
    with open(tmp_path / "ledger.err", "wb") as err:
        ledger = subprocess.Popen([sys.executable, "-m", "actors.ledger", "--ledger-endpoint", endpoint,
                                   "--db", str(db), "--keys", str(keys)], cwd=REPO, stdin=subprocess.DEVNULL,
                                  stdout=subprocess.DEVNULL, stderr=err)
    ctx = zmq.asyncio.Context()
    remote = RemoteLedger(Sockets(ctx, Security(Keys.load(keys, DASHBOARD))), endpoint, timeout=10.0)
    local = LedgerReader(db)

    async def scenario() -> None:
        with pytest.raises(LedgerUnavailable, match="is not connected"):  # not yet: at once, not after a timeout
            await asyncio.wait_for(remote.summary(), 1.0)

        async def answers() -> bool:
            try:
                await remote.summary()
            except LedgerUnavailable:
                return False
            return True

        await async_wait_for(answers, 20, 0.05, "the Ledger answering reads")
        theirs, ours = await everything(remote), await everything(local)
        assert theirs == ours
        assert len(theirs[3]) == TICKS and theirs[1].total == 8 and len(theirs[1].rows) == 3
        assert remote.counters["db_bad_replies"] == remote.counters["db_late_replies"] == 0
        expected = await local.decisions("B000002", "fast", None, 100)
        await dashboard_reads(ctx, Keys.load(keys, DASHBOARD), endpoint, expected)

    try:
        run_async(scenario(), timeout=40)
    finally:
        remote.close()
        local.close()
        ctx.term()
        ledger.terminate()
        ledger.wait(10)
    assert ledger.returncode == 0, (tmp_path / "ledger.err").read_text()[-2000:]


def test_a_stop_does_not_wait_for_a_read_the_ledger_never_answers(tmp_path: Path) -> None:
    """Its pod stopped at the same time, the Ledger answers nothing: a page waiting on it held the
    Dashboard's stop for seconds (5.4 s against its pod's 5 s grace, in a container test). The reads
    waiting end at the stop, well within --ledger-timeout."""
    endpoint = f"ipc://{tmp_path}/silent-ledger.sock"

    async def main() -> None:
        ctx = zmq.asyncio.Context()
        silent = ctx.socket(zmq.ROUTER)
        silent.bind(endpoint)
        options = DashboardOptions(port=0, ledger_endpoint=endpoint, ledger_timeout=30.0,
                                   db="/nonexistent/never-read.sqlite3")
        dashboard = Dashboard(Sockets(ctx), options, DefaultBounds())
        stop = asyncio.Event()
        running = asyncio.create_task(dashboard.run(stop))
        try:
            await asyncio.wait_for(dashboard.started.wait(), 10)
            await asyncio.wait_for(silent.recv_multipart(), 10)  # the business read: never answered
            url = f"http://127.0.0.1:{dashboard.port}/api/book?id=B1&strategy=default"
            page = asyncio.create_task(asyncio.to_thread(lambda: urllib.request.urlopen(url, timeout=60).read()))
            await asyncio.wait_for(silent.recv_multipart(), 10)  # the page's read: never answered
            stop.set()
            # At once now (under a millisecond here); before, 2.0 s: the runner's shutdown timeout, then
            # the cancelled page's read.
            await asyncio.wait_for(running, 1.0)
            await asyncio.gather(page, return_exceptions=True)
        finally:
            running.cancel()
            silent.close(linger=0)
            ctx.term()

    run_async(main(), timeout=30)
