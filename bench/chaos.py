"""Runs that hurt the keeping of decisions, then audit it (:mod:`bench.audit`): the real launcher with
the Algorithm and the Ledger SIGKILLed at random moments, or a Ledger of our own (outside the
launcher, so it can be SIGSTOPped or kept down as long as we like). Shared by the tests (CI-sized)
and the benchmarks (full size).
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import subprocess
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench import common
from bench.audit import Audit, audit
from bench.driver import LauncherRun

# A killed actor comes back within a second (no growing backoff); a stopped one is not taken for hung
# before the tests' own pauses end.
# The clean stop at the end waits for the Ledger to take the spool's backlog (--grace: a loaded
# machine's Ledger is slower than the default 5 s assumes).
FAST_RESTARTS = ("--max-backoff", "1", "--hang-timeout", "10", "--grace", "60")


@dataclass
class Outcome:
    audit: Audit
    kills: dict[str, int] = field(default_factory=dict)  # actor -> SIGKILLs sent
    counters: dict[str, int] = field(default_factory=dict)  # the Algorithm workers' final counters, summed
    ledger: dict[str, int] = field(default_factory=dict)  # the Ledger's final counters
    seconds: float = 0.0


def data_args(books: int, rows: int = 400) -> list[str]:
    csv_path = common.ensure_csv(books, rows)
    books_file = common.write_books_file(csv_path.parent, books) if books > 50 else None
    return ["--data-file", str(csv_path),
            *(["--books-file", str(books_file)] if books_file else ["--books", ",".join(common.book_ids(books))])]


def kill_at_random(run: LauncherRun, *, seconds: float, kills: dict[str, int], seed: int) -> dict[str, int]:
    """SIGKILL each actor named in ``kills`` that many times at random moments within ``seconds`` (each
    kill waits for the actor to be running again first); how many were sent."""
    rng = random.Random(seed)
    plan = sorted((rng.uniform(0.0, seconds), actor) for actor, count in kills.items() for _ in range(count))
    sent = dict.fromkeys(kills, 0)
    start = time.monotonic()
    for at, actor in plan:
        time.sleep(max(0.0, start + at - time.monotonic()))  # the random moment itself: nothing awaited
        pid = run.wait_for_actors([actor], timeout=30)[actor]
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
            sent[actor] += 1
        run.wait_restart(actor, pid, timeout=30)
    time.sleep(max(0.0, start + seconds - time.monotonic()))
    return sent


def sigkill_run(directory: Path, *, books: int, tick: float, seconds: float, kills: dict[str, int], seed: int,
                args: Sequence[str] = ()) -> Outcome:
    """The launcher for ``seconds`` with ``kills`` SIGKILLs; then a clean stop and the audit."""
    started = time.monotonic()
    with LauncherRun([*data_args(books), "--tick", str(tick), "--delay", "0", *FAST_RESTARTS, *args], directory,
                     status_every=0.5) as run:
        run.wait_decisions(0, timeout=60)
        sent = kill_at_random(run, seconds=seconds, kills=kills, seed=seed)
        # Deciding again after the last kill, before the clean stop.
        after = run.decision_count()
        run.wait_for_actors(["algorithm", "ledger"], timeout=30)
        run.wait_decisions(after + books, timeout=60)
        assert run.stop(timeout=60) == 0, run.log_tail()
    return Outcome(audit(run.decisions(), directory / "ledger.sqlite3"), sent, run.counters("algorithm"),
                   run.counters("ledger"), time.monotonic() - started)


@contextlib.contextmanager
def own_ledger(directory: Path) -> Iterator[subprocess.Popen[bytes]]:
    """A Ledger outside the launcher (``--run`` without it), at the endpoint ``--run-dir`` gives it."""
    process = common.python_module("actors.ledger", "--ledger-endpoint", f"ipc://{directory}/ledger.sock", "--db",
                                   str(directory / "ledger.sqlite3"), "--parent-pid", str(os.getpid()),
                                   "--log-level", "WARNING")
    try:
        yield process
    finally:
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(signal.SIGCONT)
        common.terminate(process)


WITHOUT_LEDGER = ("--run", "scheduler,datamanager,apiserver,algorithm")


def launcher_without_ledger(directory: Path, books: int, tick: float, args: Sequence[str] = ()) -> LauncherRun:
    return LauncherRun([*data_args(books), "--tick", str(tick), "--delay", "0", *FAST_RESTARTS, *WITHOUT_LEDGER,
                        *args], directory, status_every=0.5)


def decided_between(run: LauncherRun, start: float, end: float) -> int:
    """Decisions our reader received between two wall times."""
    return sum(1 for at, _ in run.timed_decisions() if start <= at < end)


def finish(run: LauncherRun, directory: Path, books: int, extra: dict[str, Any] | None = None) -> Outcome:
    """Deciding again, then a clean stop (the Ledger must be up: the workers flush to it) and the audit."""
    after = run.decision_count()
    run.wait_decisions(after + books, timeout=60)
    run.wait_until(lambda: run.counters("algorithm").get("spool_backlog", 1) == 0, 120,
                   "every kept decision acknowledged by the Ledger")
    assert run.stop(timeout=60) == 0, run.log_tail()
    return Outcome(audit(run.decisions(), directory / "ledger.sqlite3"), counters=run.counters("algorithm"),
                   **(extra or {}))


def paced(books: int, tick: float) -> list[str]:
    """The API paced a little above the decision rate: a tick's decisions spread over the tick, so a kill
    at any moment finds decisions printed and not yet acknowledged by the Ledger."""
    return ["--api-rate", str(int(books / tick * 1.25)), "--api-burst", "2"]


def outage(directory: Path, *, how: str, books: int, seconds: float, tick: float = 0.5,
           args: Sequence[str] = ()) -> tuple[Outcome, int, int, int]:
    """A worker deciding through ``seconds`` of its Ledger's outage (``how``: "stopped" by SIGSTOP, or
    "killed" by SIGKILL and kept down), then the Ledger back, a clean stop and the audit;
    (outcome, decisions printed during the outage, the ticks it lasted, the spool's backlog at its end)."""
    started = time.monotonic()
    with own_ledger(directory) as ledger, launcher_without_ledger(directory, books, tick, args) as run:
        run.wait_decisions(books, timeout=60)
        began = time.time()
        if how == "stopped":
            os.kill(ledger.pid, signal.SIGSTOP)
        else:
            ledger.kill()
            ledger.wait(10)
        run.wait_until(lambda: time.time() - began >= seconds, seconds + 30, "the outage's end")  # decisions go on
        ended = time.time()
        during = decided_between(run, began + 1.0, ended)
        backlog = run.counters("algorithm").get("spool_backlog", 0)
        if how == "stopped":
            os.kill(ledger.pid, signal.SIGCONT)
            outcome = finish(run, directory, books)
        else:
            with own_ledger(directory):  # back at last
                outcome = finish(run, directory, books)
    outcome.seconds = time.monotonic() - started
    return outcome, during, int((ended - began - 1.0) / tick), backlog


@dataclass
class FullSpool:
    outcome: Outcome
    bytes_at_full: int
    pauses: int
    printed_while_paused: int  # after the pause began, over three paused ticks
    pause_lines: int
    resume_lines: int


def full_spool(directory: Path, *, books: int = 400, tick: float = 0.2) -> FullSpool:
    """The smallest spool (1 MiB) and no Ledger: it fills and repricing pauses; a Ledger comes: the
    spool empties and repricing resumes; then the audit."""
    with launcher_without_ledger(directory, books, tick, ["--spool-max-bytes", "1M"]) as run:
        run.wait_until(lambda: run.counters("algorithm").get("spool_full", 0) == 1, 180, "the spool full")
        full = run.counters("algorithm")
        printed = run.decision_count()
        run.wait_until(lambda: run.counters("algorithm")["backpressure_ticks_spool"] >= 3, 30, "three paused ticks")
        while_paused = run.decision_count() - printed
        pause_lines = sum("full (" in line and "repricing paused" in line for line in run.log)
        with own_ledger(directory):
            run.wait_until(lambda: run.counters("algorithm").get("spool_full", 1) == 0, 120, "room again")
            resume_lines = sum("has room again: repricing resumes" in line for line in run.log)
            outcome = finish(run, directory, books)
    return FullSpool(outcome, full["spool_bytes"], full["spool_full_pauses"], while_paused, pause_lines, resume_lines)


@dataclass
class Scale:
    outcome: Outcome
    per_tick: dict[int, int]  # decisions printed per tick
    steady: list[int]  # the ticks counted as steady (neither the first two nor the last)


def at_scale(directory: Path, *, books: int, seconds: float, tick: float = 2.0, args: Sequence[str] = ()) -> Scale:
    """The batched path at scale with the Ledger on (issue 19): ``seconds`` of deciding, the Ledger
    caught up, a clean stop, the audit. Lines are kept as bytes and parsed once, at the audit."""
    lines: list[bytes] = []
    started = time.monotonic()
    # The stop waits for the Ledger to take the backlog (a second or two at --ledger-backlog's default;
    # the launcher's --grace is raised so that a loaded machine's slower Ledger is not cut short).
    run_args = [*data_args(books, rows=40), "--tick", str(tick), "--delay", "0", "--api-batch", "500",
                "--dm-batch", "500", "--grace", "120", *args]
    with LauncherRun(run_args, directory, status_every=1.0, on_decision=lambda _, line: lines.append(line)) as run:
        run.wait_until(lambda: len(lines) >= books, 120 + books / 1000, "the first tick decided")
        began = time.time()
        run.wait_until(lambda: time.time() - began >= seconds, seconds + 30, "the run's end")
        assert run.stop(timeout=300) == 0, run.log_tail()
        counters, ledger = run.counters("algorithm"), run.counters("ledger")
    per_tick: dict[int, int] = {}
    decisions = (json.loads(line) for line in lines)

    def counted() -> Iterator[dict[str, Any]]:
        for d in decisions:
            per_tick[d["tick"]] = per_tick.get(d["tick"], 0) + 1
            yield d

    if "--no-ledger" in args:  # the baseline: only the per-tick counts
        for _ in counted():
            pass
        result = Audit(len(lines), 0)
    else:
        result = audit(counted(), directory / "ledger.sqlite3")
    ticks = sorted(per_tick)
    return Scale(Outcome(result, counters=counters, ledger=ledger, seconds=time.monotonic() - started), per_tick,
                 ticks[2:-1])
