"""Logs for people, over the real launcher: the periodic status is one INFO line a person reads (the full
counters at DEBUG), each actor's stop is one readable line, and a resume says at start how many pairs
took their last price from the Ledger, from when."""

from __future__ import annotations

import re
from pathlib import Path

from bench.driver import LauncherRun
from tests.harness import write_csv

ACTORS = ("scheduler", "datamanager", "apiserver", "ledger", "algorithm")


def test_status_stop_and_resume_lines_read_as_sentences(tmp_path: Path, ipc_dir: Path) -> None:
    csv_path = write_csv(tmp_path / "prices.csv")
    args = ["--data-file", str(csv_path), "--books", "A,B", "--tick", "0.3", "--delay", "0"]
    with LauncherRun(args, ipc_dir, status_every=1) as run:
        run.wait_decisions(6)
        # Once every actor has reported its counters (they ride a heartbeat when they change).
        status = run.wait_until(lambda: [line for line in run.log if " INFO status: 5 of 5 actors up" in line
                                         and "Ledger lag" in line and " 0.0 decisions/s" not in line], 30,
                                "a status line of the whole system")
        assert run.stop() == 0, run.log_tail()
    log = run.log
    assert re.search(r"status: 5 of 5 actors up, [0-9.]+ decisions/s, 0 restarts, Ledger lag [0-9.]+ s, spool [0-9]+, "
                     r"alerts: none$", status[-1]), status[-1]
    assert not [line for line in log if re.search(r" INFO status \S+ pid=", line)]  # per actor: DEBUG only
    stops = {actor: [line for line in log if re.search(rf" {actor}\[\d+\] INFO stopped after ", line)]
             for actor in ACTORS}
    assert all(len(lines) == 1 for lines in stops.values()), stops
    assert not [line for line in log if "counters {" in line or "stopped; counters" in line]  # no Python dicts
    assert re.search(r"INFO stopped after \d+ s: \d+ decisions", stops["algorithm"][0]), stops["algorithm"]
    assert re.search(r"INFO stopped after \d+ s: \d+ decisions stored", stops["ledger"][0]), stops["ledger"]
    assert re.search(r"launcher\[\d+\] INFO stopped \(exit code 0\): \d+ actor starts", "\n".join(log))

    with LauncherRun(args, ipc_dir) as again:  # the same --run-dir: the same Ledger database
        line = again.wait_until(lambda: next((text for text in again.log if "INFO resumed " in text), None), 30,
                                "the resume line")
        assert again.stop() == 0
    # Both pairs were decided on the same ticks: one moment, or two when the last tick was cut short.
    assert re.search(r"algorithm\[\d+\] INFO resumed 2 of 2 pair\(s\) from the Ledger: their last prices, decided "
                     r"(at )?\d{4}-\d\d-\d\d \d\d:\d\d:\d\d( to \d\d:\d\d:\d\d)? UTC by the run started "
                     r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC$", line), line
