"""The Dashboard's network reader against a real Ledger process (``python -m actors.ledger``) over
CurveZMQ: every read it makes gives what the file reader gives on the same database, a series longer
than one answer included (read a page at a time); a read with no Ledger connected is refused at once."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import zmq.asyncio

from actors.dashboard.ledger import LedgerReader, LedgerReads, LedgerUnavailable
from actors.dashboard.params import BooksQuery
from actors.dashboard.remote import RemoteLedger
from actors.ledger_reads import queries
from bench import fake_ledger
from tests.helpers import REPO, async_wait_for, free_port, run_async
from transport.security import Keys, Security, keygen
from transport.sockets import Sockets

pytestmark = pytest.mark.production_loop  # a process test: once, on the loop the actors run on

TICKS = queries.MAX_ROWS + 200  # a series longer than one answer


async def everything(reader: LedgerReads) -> list[Any]:
    return [await reader.summary(), await reader.books(BooksQuery(sort="price", descending=True, size=3, page=2)),
            await reader.pairs_of("B000002"), await reader.series("B000002", "fast", TICKS + 5),
            await reader.decisions("B000001", "default", None, 7), (await reader.business(1.0)),
            await reader.alerts_mark(), await reader.pair_alerts([("B000001", "default")])]


def test_the_network_reader_reads_what_the_file_reader_reads_from_a_real_ledger(tmp_path: Path) -> None:
    db, keys = tmp_path / "ledger.sqlite3", keygen(tmp_path / "keys")
    fake_ledger.fill(db, books=4, strategies=("default", "fast"), ticks=TICKS, seed=2)
    endpoint = f"tcp://127.0.0.1:{free_port()}"
    with open(tmp_path / "ledger.err", "wb") as err:
        ledger = subprocess.Popen([sys.executable, "-m", "actors.ledger", "--ledger-endpoint", endpoint,
                                   "--db", str(db), "--keys", str(keys)], cwd=REPO, stdin=subprocess.DEVNULL,
                                  stdout=subprocess.DEVNULL, stderr=err)
    ctx = zmq.asyncio.Context()
    remote = RemoteLedger(Sockets(ctx, Security(Keys.load(keys))), endpoint, timeout=10.0)
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

    try:
        run_async(scenario(), timeout=40)
    finally:
        remote.close()
        local.close()
        ctx.term()
        ledger.terminate()
        ledger.wait(10)
    assert ledger.returncode == 0, (tmp_path / "ledger.err").read_text()[-2000:]
