"""The launcher starts and supervises the Ledger like any actor (restarted after a SIGKILL, stopped with
the others), keeps a --run-dir run's database in that directory, and runs without it on --no-ledger."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from bench.driver import LauncherRun
from repricer_supervisor.procfs import alive
from tests.harness import write_csv
from tests.helpers import REPO

# No hang is provoked here: a generous hang timeout keeps a loaded machine from restarting anyone.
FAST = ["--books", "A,B,C", "--tick", "0.2", "--delay", "0", "--hang-timeout", "5", "--grace", "3"]


def test_the_launcher_supervises_the_ledger(tmp_path: Path, ipc_dir: Path) -> None:
    csv_path = write_csv(tmp_path / "prices.csv")
    run = LauncherRun(["--data-file", str(csv_path), *FAST], ipc_dir)
    try:
        before = run.wait_for_actors(["ledger", "algorithm"])
        database = str(ipc_dir / "ledger.sqlite3")  # a --run-dir run keeps its database there

        def logged(pid: int, what: str) -> bool:
            return any(f"ledger[{pid}]" in line and f"{what} {database}" in line for line in run.log)

        run.wait_until(lambda: logged(before["ledger"], "created"), 20, "the database created")
        os.kill(before["ledger"], signal.SIGKILL)
        after = run.wait_restart("ledger", before["ledger"])
        assert run.pids()["algorithm"] == before["algorithm"], run.log[-20:]  # the others are undisturbed
        run.wait_until(lambda: logged(after, "opened"), 20, "the restarted Ledger to reopen its database")
        assert run.stop() == 0, run.log[-20:]
        assert not alive(after)
    finally:
        run.kill_everything()


def test_no_ledger_runs_without_it(tmp_path: Path, ipc_dir: Path) -> None:
    csv_path = write_csv(tmp_path / "prices.csv")
    run = LauncherRun(["--data-file", str(csv_path), *FAST, "--no-ledger"], ipc_dir)
    try:
        run.wait_for_actors(["scheduler", "algorithm"])
        run.wait_decisions(3)
        assert "ledger" not in run.pids()
        assert run.stop() == 0
    finally:
        run.kill_everything()
    assert not (ipc_dir / "ledger.sqlite3").exists()


def test_bad_ledger_options_are_refused_at_start() -> None:
    for bad in (["--retain-days", "-1"], ["--synchronous", "sometimes"], ["--ledger-endpoint", "tcp://0.0.0.0:5599"]):
        done = subprocess.run([sys.executable, "launcher.py", *bad], cwd=REPO, capture_output=True, text=True,
                              timeout=30)
        assert done.returncode == 2, bad
        assert "retain-days" in done.stderr or "synchronous" in done.stderr or "CURVE" in done.stderr
