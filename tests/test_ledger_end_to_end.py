"""The Ledger through the real launcher (issue 11): a SIGKILLed Algorithm worker resumes each pair
from its last decided price (what the APIServer receives proves it), and a SIGKILLed worker and a
SIGKILLed Ledger lose nothing that was printed (issue 26)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sqlite3
import threading
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest
from aiohttp import web

from bench.audit import audit
from bench.driver import LauncherRun, free_port
from tests.harness import write_csv

FAST = ["--books", "A,B,C", "--tick", "0.3", "--delay", "0", "--hang-timeout", "5", "--grace", "5"]


class RecordingApi:
    """A stand-in for the APIServer that records every registered price (book, price, when)."""

    def __init__(self) -> None:
        self.port = free_port()
        self.registered: list[tuple[str, Decimal, float]] = []
        self._lock = threading.Lock()
        self._next_id = 1_000
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    async def _register(self, request: web.Request) -> web.Response:
        body = json.loads(await request.read())
        with self._lock:
            self.registered.append((body["book"], Decimal(body["price"]), time.time()))
            self._next_id += 1
            request_id = self._next_id
        return web.json_response({"id": request_id})

    async def _read(self, request: web.Request) -> web.Response:
        return web.json_response({"sold": int(request.match_info["id"]) % 2 == 0})

    def _serve(self) -> None:
        asyncio.set_event_loop(self._loop)
        app = web.Application()
        app.router.add_post("/register-request", self._register)
        app.router.add_get("/request-data/{id}", self._read)
        runner = web.AppRunner(app, access_log=None)
        self._loop.run_until_complete(runner.setup())
        self._loop.run_until_complete(web.TCPSite(runner, "127.0.0.1", self.port).start())
        self._ready.set()
        self._loop.run_forever()
        self._loop.run_until_complete(runner.cleanup())

    def __enter__(self) -> RecordingApi:
        self._thread.start()
        assert self._ready.wait(10)
        return self

    def __exit__(self, *exc: object) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)


@pytest.fixture
def api() -> Iterator[RecordingApi]:
    with RecordingApi() as server:
        yield server


def stored(db: Path) -> list[tuple[str, str, int, float, str]]:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        return list(conn.execute("SELECT book, strategy, tick, ts, price FROM decisions"))


def test_a_killed_worker_resumes_each_pair_from_its_last_decided_price(tmp_path: Path, ipc_dir: Path,
                                                                       api: RecordingApi) -> None:
    csv_path = write_csv(tmp_path / "prices.csv", rows_per_book=200)
    run = LauncherRun(["--data-file", str(csv_path), *FAST, "--run", "scheduler,datamanager,ledger,algorithm",
                       "--api-url", f"http://127.0.0.1:{api.port}"], ipc_dir)
    try:
        before = run.wait_for_actors(["ledger", "algorithm"])
        run.wait_decisions(12)
        killed_at = time.time()
        os.kill(before["algorithm"], signal.SIGKILL)
        run.wait_restart("algorithm", before["algorithm"])
        count = run.decision_count()
        run.wait_decisions(count + 6, timeout=30)
        assert run.stop() == 0
    finally:
        run.kill_everything()
    rows = stored(ipc_dir / "ledger.sqlite3")
    for book in ("A", "B", "C"):
        kept = [(ts, Decimal(price)) for b, _, _, ts, price in rows if b == book and ts < killed_at]
        assert kept, f"no decision of {book} kept before the kill"
        last_price = max(kept)[1]
        after = [price for b, price, at in api.registered if b == book and at > killed_at]
        assert after, f"no registration of {book} after the restart"
        # The restarted worker's first registration of the pair: its last decided price, not the average.
        assert after[0] == last_price, (book, after[:3], last_price)
    assert run.counters("algorithm").get("ledger_resumed", 0) >= 3


def test_printed_decisions_survive_a_killed_worker_and_a_killed_ledger(tmp_path: Path, ipc_dir: Path) -> None:
    """Keep, then print (issue 26). The Ledger is SIGSTOPped, so decisions printed from then on are
    acknowledged by nobody; the worker is SIGKILLed holding them, then the stopped Ledger is SIGKILLed
    too. Printed first and kept afterwards (``--no-spool``), those decisions die with the worker; kept
    in its spool first, the restarted worker delivers them to the restarted Ledger. After a clean stop
    every printed line is in the database exactly once, as printed."""
    csv_path = write_csv(tmp_path / "prices.csv", rows_per_book=200)
    run = LauncherRun(["--data-file", str(csv_path), *FAST], ipc_dir, status_every=0.3)
    try:
        before = run.wait_for_actors(["ledger", "algorithm"])
        run.wait_decisions(9)
        os.kill(before["ledger"], signal.SIGSTOP)
        unacknowledged = run.decision_count() + 6  # printed while no Ledger can acknowledge them
        run.wait_decisions(unacknowledged)
        os.kill(before["algorithm"], signal.SIGKILL)
        run.wait_restart("algorithm", before["algorithm"])
        os.kill(before["ledger"], signal.SIGKILL)
        run.wait_restart("ledger", before["ledger"])
        count = run.decision_count()
        run.wait_decisions(count + 9, timeout=30)
        # The restarted worker found them in its spool, and the Ledger acknowledged them all.
        run.wait_until(lambda: (c := run.counters("algorithm")).get("spool_redelivered", 0) >= 6
                       and c.get("spool_backlog", 1) == 0, 30, "the spool's decisions delivered")
        assert run.stop() == 0
    finally:
        run.kill_everything()
    result = audit(run.decisions(), ipc_dir / "ledger.sqlite3")
    assert result.printed > unacknowledged
    assert result.exactly_once, str(result)


def test_two_runs_with_the_same_tick_numbers_are_both_kept(tmp_path: Path, ipc_dir: Path) -> None:
    csv_path = write_csv(tmp_path / "prices.csv", rows_per_book=200)
    printed: list[tuple[str, str, int]] = []
    for _ in range(2):  # ticks start at 0 again: the run tells them apart
        run = LauncherRun(["--data-file", str(csv_path), *FAST], ipc_dir)
        try:
            run.wait_decisions(6)
            assert run.stop() == 0
        finally:
            run.kill_everything()
        printed += [(d["book"], d["strategy"], d["tick"]) for d in run.decisions()]
    with sqlite3.connect(f"file:{ipc_dir / 'ledger.sqlite3'}?mode=ro", uri=True) as conn:
        runs = conn.execute("SELECT count(DISTINCT run) FROM decisions").fetchone()[0]
        kept = conn.execute("SELECT count(*) FROM decisions").fetchone()[0]
    assert len(set(printed)) < len(printed)  # the same (book, strategy, tick) was printed by both runs
    assert runs == 2 and kept == len(printed)
