"""Guardrails, pause and reload through the real launcher (issue 12's "done when")."""

from __future__ import annotations

import itertools
import os
import signal
from decimal import Decimal
from pathlib import Path

from actors.pricing.rule import avg_comp_price, reprice
from bench.driver import LauncherRun
from tests.harness import expected_window, read_points


def write_csv(path: Path, a_prices: list[str], b_rows: int) -> Path:
    lines = ["timestamp,book_id,price"]
    for i, price in enumerate(a_prices):
        lines.append(f"t{i},A,{price}")
    lines += [f"t{i},B,{20 + i % 3}.00" for i in range(b_rows)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_a_crashed_competitor_prices_the_book_at_its_floor(tmp_path: Path, ipc_dir: Path) -> None:
    csv_path = write_csv(tmp_path / "p.csv", ["10.00"] * 8 + ["0.01"] * 200, 200)
    (tmp_path / "c.toml").write_text('[strategies.default]\ndelay = 0\n[[books]]\nids = ["A", "B"]\n'
                                     '[guardrails.books.A]\nfloor = "8.00"\n')
    run = LauncherRun(["--data-file", str(csv_path), "--config", str(tmp_path / "c.toml"), "--tick", "0.2"], ipc_dir)
    try:
        run.wait_until(lambda: any(d["book"] == "A" and d["tick"] >= 12 for d in run.decisions()), 40,
                  "decisions of A after the crash")
        assert run.stop() == 0
    finally:
        run.kill_everything()
    points = read_points(csv_path)
    crashed = [d for d in run.decisions() if d["book"] == "A" and d["tick"] >= 8]  # every window is 0.01 now
    assert crashed
    for d in crashed:
        rule = reprice(avg_comp_price(expected_window(points["A"], d["tick"])), d["sold"])
        assert d["rule_price"] == str(rule) and d["price"] == "8.00" and d["guardrail"] == ["floor"], d
    assert all(d["guardrail"] is None and d["price"] == d["rule_price"] for d in run.decisions() if d["book"] == "B")


def test_a_step_limit_turns_a_jump_into_steps(tmp_path: Path, ipc_dir: Path) -> None:
    csv_path = write_csv(tmp_path / "p.csv", ["10.00"] * 60 + ["13.00"] * 300, 10)  # the jump at tick 60 (6 s)
    (tmp_path / "c.toml").write_text('[strategies.default]\ndelay = 0\nwindow = 1\nsold_factor = 1\n'
                                     'unsold_factor = 1\n[[books]]\nids = ["A"]\n[guardrails]\nmax_step_pct = 5\n')
    run = LauncherRun(["--data-file", str(csv_path), "--config", str(tmp_path / "c.toml"), "--tick", "0.1"], ipc_dir)
    try:
        run.wait_until(lambda: any(d["price"] == "13.00" for d in run.decisions()), 60, "the price to reach 13.00")
        assert run.stop() == 0
    finally:
        run.kill_everything()
    decisions = sorted(run.decisions(), key=lambda d: d["tick"])
    assert decisions[0]["price"] == "10.00", "the Algorithm started after the jump: no last price to limit from"
    prices = [Decimal(d["price"]) for d in decisions]
    steps = [(b - a) / a for a, b in itertools.pairwise(prices)]
    assert max(steps) <= Decimal("0.05")
    # The rule jumps 30% at once (a window of 1: 10.00 -> 13.00); the price follows 5% per tick.
    limited = [d for d in decisions if d["guardrail"] == ["step"]]
    assert len(limited) >= 5 and all(d["rule_price"] == "13.00" for d in limited)
    assert sum(1 for s in steps if s > Decimal("0.049")) >= 5
    assert prices == sorted(prices) and prices[-1] == Decimal("13.00")  # converging, never overshooting


def test_sighup_reloads_the_config_and_a_bad_one_changes_nothing(tmp_path: Path, ipc_dir: Path) -> None:
    csv_path = write_csv(tmp_path / "p.csv", ["10.00"] * 400, 400)
    config = tmp_path / "c.toml"
    good = '[strategies.default]\ndelay = 0\n[[books]]\nids = ["A", "B"]\n'
    config.write_text(good)
    run = LauncherRun(["--data-file", str(csv_path), "--config", str(config), "--tick", "0.2"], ipc_dir)
    try:
        algorithm = run.wait_for_actors(["algorithm"])["algorithm"]
        run.wait_until(lambda: len(run.decisions()) >= 6, 40, "first decisions")
        config.write_text(good + '[pause]\nbooks = ["A"]\n')
        os.kill(run.process.pid, signal.SIGHUP)  # to the launcher, which forwards it to the Algorithm
        run.wait_until(lambda: run.counters("algorithm").get("config_reloads") == 1, 20, "the reload")
        paused_from = max(d["tick"] for d in run.decisions()) + 2  # a tick already under way may still finish
        run.wait_until(lambda: any(d["tick"] > paused_from + 5 for d in run.decisions()), 20, "later ticks")
        assert not [d for d in run.decisions() if d["book"] == "A" and d["tick"] > paused_from]
        config.write_text(good + '[pause]\nbooks = ["A"]\ncolour = 1\n')
        os.kill(algorithm, signal.SIGHUP)  # straight to the worker works too
        run.wait_until(lambda: run.counters("algorithm").get("config_reload_errors") == 1, 20, "the refused reload")
        assert any("reload refused" in line and ":7: pause.colour: unknown key" in line for line in run.log)
        latest = max(d["tick"] for d in run.decisions())
        run.wait_until(lambda: any(d["tick"] > latest + 5 for d in run.decisions()), 20, "more ticks")
        assert not [d for d in run.decisions() if d["book"] == "A" and d["tick"] > paused_from]  # still paused
        assert run.pids()["algorithm"] == algorithm  # reloaded in place, never restarted
        assert run.counters("algorithm")["paused"] > 0  # A's ticks, counted
        assert run.stop() == 0
    finally:
        run.kill_everything()
    seen = [(d["book"], d["strategy"], d["tick"]) for d in run.decisions()]
    assert len(seen) == len(set(seen))  # no pair decided twice in a tick
