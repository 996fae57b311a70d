"""The batched path's CPU per decision, per process, beside the bare batched script (issue 19).

One real launcher run in the batched configuration (``--api-batch 500 --dm-batch 500``, ``--json``,
``--delay 0``, the Ledger on, a 2 s tick; 20,000 books, quick 10,000; ``BENCH_BATCHED_BOOKS`` overrides),
then, in the same run, the bare batched script (:mod:`bench.bare_batched`) on the same CSV, books and
ticks. The CSV has a row per book for every tick and 5 more (``data/generate.py``, interleaved), so the
DataManager parses about one new row per book per tick all along, as the bare script does.

* each process's CPU (all threads, ``/proc/PID/task/*/schedstat``: the launcher and every actor, pids
  from the launcher's events) from our receiving tick ``WARMUP`` to our receiving tick ``WARMUP +
  measured``, divided by the decision lines received in that window;
* the bare script's own CPU (``time.process_time``) over the same ticks, divided by its decisions;
* their ratio, per process and for all processes together.

CPU time is what a shared machine's load disturbs least; the rates are not compared here.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench import common, throughput
from bench.common import Config, Outcome, Row

WARMUP = 2
TICK = 2.0
BATCHED = ("--api-batch", "500", "--dm-batch", "500")
ORDER = ("datamanager", "algorithm", "apiserver", "ledger", "scheduler", "launcher")


def rows_per_book(measured: int) -> int:
    """Enough for each book to get a new point on every tick of the run, with a margin of 2 ticks."""
    return WARMUP + measured + 5 + 2


def system(books: int, measured: int, csv: Path, extra: tuple[str, ...] = ()) -> dict[str, Any]:
    """The launcher, batched: CPU us per decision of each process over ``measured`` ticks after WARMUP."""
    args = ["--data-file", str(csv), "--books-file", str(throughput.books_file(books)), "--tick", repr(TICK),
            "--delay", "0", "--hang-timeout", "10", *BATCHED, *extra]
    last = WARMUP + measured
    with common.launcher(args) as run:
        run.wait_actors(4)
        run.wait_tick(WARMUP, timeout=60.0 + WARMUP * TICK)
        cpu_start, dm_start = common.cpu_by_kind(run.all_pids()), run.counters("datamanager")
        run.wait_tick(last, timeout=30.0 + (last + 2) * TICK)
        cpu = {name: used - cpu_start.get(name, 0.0) for name, used in common.cpu_by_kind(run.all_pids()).items()}
        dm_end, counters = run.counters("datamanager"), run.counters("algorithm")
        ticks = list(run.ticks.ticks)
    first = ticks[0][0]
    t0 = first.scheduled_at - first.seq * TICK
    start, end = t0 + WARMUP * TICK, t0 + last * TICK
    decisions = sum(1 for at, _ in run.timed_decisions() if start <= at < end)
    return {"books": books, "tick": TICK, "measured_ticks": measured, "decisions": decisions,
            "offered": books * measured, "cpu_s": cpu,
            "us_per_decision": {name: 1e6 * used / max(1, decisions) for name, used in cpu.items()},
            "dm_rows_read": dm_end.get("rows_read", 0) - dm_start.get("rows_read", 0),
            "overruns": counters.get("overruns", 0), "skipped": counters.get("skipped", 0)}


def bare(books: int, measured: int, csv: Path) -> dict[str, Any]:
    """The bare batched script on the same file, books and ticks, in its own process (its lines read and
    dropped by us, as the launcher's are read by the run)."""
    process = subprocess.run(
        [sys.executable, "-m", "bench.bare_batched", "--data-file", str(csv), "--books", str(books),
         "--ticks", str(WARMUP + measured), "--warmup", str(WARMUP)],
        cwd=common.REPO, stdin=subprocess.DEVNULL, capture_output=True, timeout=170,
        check=True)
    result: dict[str, Any] = json.loads(process.stderr.decode().strip().splitlines()[-1])
    result["lines"] = process.stdout.count(b"\n")
    return result


def measure(cfg: Config) -> Outcome:
    books = int(os.environ.get("BENCH_BATCHED_BOOKS") or cfg.pick(10_000, 20_000))
    measured = cfg.pick(5, 8)
    csv = common.ensure_csv(books, rows_per_book(measured))
    started = time.time()
    ours = system(books, measured, csv)
    floor = bare(books, measured, csv)
    out = Outcome(raw={"system": ours, "bare": floor, "started": started})
    base = floor["us_per_decision"]
    note = (f"{books:,} books, {TICK:g} s tick, {measured} ticks; {ours['decisions']:,} decisions of "
            f"{ours['offered']:,} offered; rows parsed per decision: DataManager "
            f"{ours['dm_rows_read'] / max(1, ours['decisions']):.2f}, "
            f"bare {floor['rows'] / max(1, floor['decisions']):.2f}")
    for name in sorted(ours["us_per_decision"], key=lambda n: ORDER.index(n) if n in ORDER else len(ORDER)):
        out.rows.append(Row(f"{name} CPU per decision, batched", ours["us_per_decision"][name], "us", base,
                            "bare batched script"))
    total = sum(ours["us_per_decision"].values())
    out.rows.append(Row("all processes' CPU per decision, batched", total, "us", base, "bare batched script",
                        note=note))
    return out
