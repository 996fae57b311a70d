"""Done when (issue 24): a backtest with ``parity`` demand, fed the request ids of a live run, makes that
run's decisions -- the prices its Ledger kept, pair by pair and tick by tick. The live run is the real
launcher (Scheduler, DataManager, APIServer, Algorithm, Ledger) on a file with two strategies and
guardrails that bind (a step limit, an ending, a floor); its ids are exported from the Ledger's
database as ``python -m actors.ledger history --format csv`` would, and replayed with ``--ids``."""

from __future__ import annotations

import csv
import sqlite3
from decimal import Decimal
from pathlib import Path

import pytest

from actors.algorithm.backtest import cli
from bench.driver import LauncherRun
from tests.actors.algorithm.backtest.helpers import price_file

# Windows of 4 and 5: their means terminate. (A window of 3 makes 60-digit means, which the Ledger's
# protocol refuses as longer than 40 characters: no decision of such a strategy is kept.)
CONFIG = """
[strategies.fast]
window = 4
sold_factor = "1.12"
unsold_factor = "0.91"
delay = 0
[strategies.slow]
window = 5
delay = 0
[[books]]
ids = ["A", "B", "C", "D"]
strategies = ["fast", "slow"]
[guardrails]
max_step_pct = 4
ending = "0.99"
floor = "11.00"
[guardrails.books.D]
ceiling = "30.00"
"""


def test_a_parity_backtest_fed_a_live_runs_ids_makes_its_decisions(tmp_path: Path, ipc_dir: Path,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    data = price_file(tmp_path / "prices.csv", ["A", "B", "C", "D"], 300, 11, bad_every=40)
    config = tmp_path / "repricer.toml"
    config.write_text(CONFIG, encoding="utf-8")
    run = LauncherRun(["--data-file", str(data), "--config", str(config), "--tick", "0.25", "--hang-timeout", "5",
                       "--grace", "5"], ipc_dir)
    try:
        run.wait_decisions(80, timeout=60)
        assert run.stop() == 0  # a clean stop: every printed decision is in the Ledger
    finally:
        run.kill_everything()
    with sqlite3.connect(f"file:{ipc_dir / 'ledger.sqlite3'}?mode=ro", uri=True) as conn:
        live = conn.execute("SELECT book, strategy, tick, request_id, sold, price, guardrail, run FROM decisions "
                            "ORDER BY book, strategy, tick").fetchall()
    assert len(live) >= 80
    assert len({row[7] for row in live}) == 1
    assert any(row[6] for row in live), "no guardrail moved a price: the test would prove less"
    assert {row[4] for row in live} == {0, 1}, "every decision sold, or none: the test would prove less"
    ids = tmp_path / "ids.csv"
    with ids.open("w", newline="", encoding="utf-8") as f:  # the columns of `python -m actors.ledger history`
        writer = csv.writer(f)
        writer.writerow(["tick", "book", "strategy", "request_id", "price", "run"])
        writer.writerows([tick, book, strategy, request_id, price, run_start]
                         for book, strategy, tick, request_id, _, price, _, run_start in live)
    decisions = tmp_path / "decisions.csv"
    assert cli.main(["--data-file", str(data), "--config", str(config), "--tick", "0.25", "--ids", str(ids),
                     "--decisions", str(decisions), "--no-html", "--format", "json"]) == 0
    capsys.readouterr()
    with decisions.open(newline="", encoding="utf-8") as f:
        replayed = {(r["book"], r["strategy"], int(r["tick"])): r for r in csv.DictReader(f)}
    assert set(replayed) == {(book, strategy, tick) for book, strategy, tick, *_ in live}
    for book, strategy, tick, request_id, sold, price, _, _ in live:
        mine = replayed[(book, strategy, tick)]
        assert int(mine["request_id"]) == request_id
        assert (mine["sold"] == "true") == bool(sold)
        assert Decimal(mine["price"]) == Decimal(price), (book, strategy, tick)
