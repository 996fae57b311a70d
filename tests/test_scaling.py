"""Several strategies per book and several Algorithm workers, through the real launcher."""

from __future__ import annotations

import os
import signal
from collections import Counter, defaultdict
from decimal import Decimal
from pathlib import Path

from actors.pricing.rule import PricingRule
from bench.driver import LauncherRun
from repricer_supervisor.procfs import alive
from tests.harness import check_decision, read_points, write_csv

CONFIG = """
[strategies.default]
delay = 0

[strategies.wide]
window = 3
sold_factor = "1.2"
unsold_factor = "0.8"
delay = 0.05

[[books]]
ids = ["A"]
strategies = ["default", "wide"]

[[books]]
ids = ["B", "C"]
strategies = ["default"]
"""

RULES = {"default": PricingRule(), "wide": PricingRule(3, Decimal("1.2"), Decimal("0.8"))}


def test_two_strategies_on_one_book_each_decide_every_tick(tmp_path: Path, ipc_dir: Path) -> None:
    csv_path = write_csv(tmp_path / "prices.csv", rows_per_book=100)
    (tmp_path / "repricer.toml").write_text(CONFIG)
    with LauncherRun(["--data-file", str(csv_path), "--config", str(tmp_path / "repricer.toml"), "--tick", "0.2"],
                     ipc_dir) as run:
        run.wait_until(lambda: len({d["tick"] for d in run.decisions() if d["strategy"] == "wide"}) >= 10, 60,
                       "ten ticks decided by the second strategy")
        assert run.stop() == 0  # the Algorithm finishes what it started: both strategies, every tick
    decisions = run.decisions()
    points = read_points(csv_path)
    ticks: dict[tuple[str, str], set[int]] = defaultdict(set)
    for d in decisions:
        check_decision(d, points, RULES[d["strategy"]])
        ticks[(d["book"], d["strategy"])].add(d["tick"])
    assert set(ticks) == {("A", "default"), ("A", "wide"), ("B", "default"), ("C", "default")}
    assert ticks[("A", "default")] == ticks[("A", "wide")]  # both strategies decided every tick
    assert len(ticks[("A", "wide")]) >= 10
    assert max(Counter((d["book"], d["strategy"], d["tick"]) for d in decisions).values()) == 1


def test_killing_one_of_several_workers_pauses_only_its_share(tmp_path: Path, ipc_dir: Path) -> None:
    csv_path = write_csv(tmp_path / "prices.csv", rows_per_book=200)
    actors = ["scheduler", "datamanager", "apiserver", "algorithm-0", "algorithm-1"]
    with LauncherRun(["--data-file", str(csv_path), "--books", "A,B,C", "--workers", "2", "--tick", "0.2",
                      "--delay", "0", "--hang-timeout", "1.5"], ipc_dir) as run:
        before = run.wait_for_actors(actors)
        run.wait_decisions(6)
        # Which worker owns which book follows from the decisions themselves: no book is in two shares.
        os.kill(before["algorithm-0"], signal.SIGKILL)
        run.wait_restart("algorithm-0", before["algorithm-0"])
        after = run.pids()
        assert all(after[name] == before[name] and alive(before[name]) for name in actors if name != "algorithm-0")
        latest = max(d["tick"] for d in run.decisions())
        run.wait_until(lambda: {d["book"] for d in run.decisions() if d["tick"] > latest + 2} == {"A", "B", "C"},
                       20, "every book to be decided again")
        assert run.stop() == 0
    decisions = run.decisions()
    assert max(Counter((d["book"], d["strategy"], d["tick"]) for d in decisions).values()) == 1
    points = read_points(csv_path)
    for d in decisions:
        check_decision(d, points)


def test_several_datamanagers_share_the_requests_and_cover_for_each_other(tmp_path: Path, ipc_dir: Path) -> None:
    csv_path = write_csv(tmp_path / "prices.csv", rows_per_book=200)
    with LauncherRun(["--data-file", str(csv_path), "--books", "A,B,C", "--data-managers", "2", "--tick", "0.2",
                      "--delay", "0"], ipc_dir) as run:
        before = run.wait_for_actors(["datamanager-0", "datamanager-1", "algorithm"])
        run.wait_decisions(6)
        os.kill(before["datamanager-0"], signal.SIGSTOP)  # frozen, not gone: its requests time out
        latest = max(d["tick"] for d in run.decisions())
        run.wait_until(lambda: {d["book"] for d in run.decisions() if d["tick"] > latest + 3} == {"A", "B", "C"},
                       20, "decisions served by the other DataManager")
        assert run.pids()["algorithm"] == before["algorithm"]
        assert run.stop() == 0
    points = read_points(csv_path)
    for d in run.decisions():
        check_decision(d, points)
