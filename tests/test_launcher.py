"""End to end: the real ``launcher.py`` with fast ticks; every printed decision is checked against an
independent computation from the CSV."""

from __future__ import annotations

import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

from bench.audit import audit
from bench.driver import LauncherRun
from repricer_supervisor.procfs import alive
from tests.harness import check_decision, read_points, write_csv
from tests.helpers import REPO


def test_help_documents_every_option() -> None:
    result = subprocess.run([sys.executable, "launcher.py", "--help"], cwd=REPO, capture_output=True, text=True,
                            timeout=30)
    assert result.returncode == 0
    for option in ("--data-file", "--books", "--tick", "--delay", "--mode", "--duration", "--json", "--workers"):
        assert option in result.stdout


def test_every_decision_matches_the_csv(tmp_path: Path, ipc_dir: Path) -> None:
    csv_path = write_csv(tmp_path / "prices.csv")
    with LauncherRun(["--data-file", str(csv_path), "--books", "A,B,C", "--tick", "0.2", "--delay", "0.05"],
                     ipc_dir) as run:
        run.wait_decisions(3 * 5, timeout=60)  # several ticks for every book
        code = run.stop()
        left_behind = [pid for pid in run.every_pid() if alive(pid)]  # before any cleanup kills them
    assert code == 0, run.log_tail()
    assert not left_behind  # a clean stop leaves no process behind
    decisions = run.decisions()
    points = read_points(csv_path)
    for decision in decisions:
        check_decision(decision, points)
    per_pair = Counter((d["book"], d["strategy"], d["tick"]) for d in decisions)
    assert max(per_pair.values()) == 1  # no (book, strategy, tick) decided twice
    assert {d["book"] for d in decisions} == {"A", "B", "C"}
    # Every actor's final counters arrive as messages after it stopped: nothing is read from the log.
    assert run.counters("algorithm")["decisions"] == len(decisions)
    # Every printed decision is in the Ledger exactly once, and a clean run keeps nothing unprinted (issue 19).
    kept = audit(decisions, ipc_dir / "ledger.sqlite3")
    assert kept.exactly_once and kept.printed == kept.kept == len(decisions), str(kept)
    assert {e.actor for e in run.events("stopped")} >= {"scheduler", "datamanager", "apiserver", "algorithm"}


def test_duration_stops_the_run_by_itself_with_exit_0_after_deciding_from_tick_0(tmp_path: Path,
                                                                                ipc_dir: Path) -> None:
    # --duration counts from the first tick (issue 21): counted from the launcher's start, a run shorter
    # than the start took (the Scheduler starts once the others run, tick 0 a second later) decided
    # nothing, and "--duration 5" on a 1 s tick decided nothing on a loaded machine.
    csv_path = write_csv(tmp_path / "prices.csv")
    with LauncherRun(["--data-file", str(csv_path), "--books", "A", "--tick", "0.2", "--delay", "0", "--duration", "1"],
                     ipc_dir) as run:
        started = time.monotonic()
        assert run.wait(40) == 0
        assert time.monotonic() - started >= 1.0
        assert not [pid for pid in run.every_pid() if alive(pid)]
    assert [d["tick"] for d in run.decisions()][:1] == [0], run.log_tail()
