"""Hostile input, second run: what a local process can do to the ticks, the launcher's events socket and
the Ledger's file (issue 20), against a quiet phase of the same run.

One launcher run prices 100 books on a 0.5 s tick (x = 0) with the Scheduler outside it: a real
Scheduler publishes to a tap (:mod:`bench.tick_tap`) that forwards its ticks to the Algorithm and
sends forged ones beside them. The phases, each as long as the others of ``bench.hostile``:

- ``quiet``: the baseline;
- ``forged_tick_ahead``: one tick of the current run, due 50 s ahead (seq + 100), within the clock skew;
- ``forged_run_after_gap``: the Scheduler silent for 1.2 s (SIGSTOP), then tick 0 of a new run with a
  86,400 s interval;
- ``ledger_truncated``: the Ledger's database truncated to 0 bytes mid-run;
- ``ledger_deleted``: the database deleted with its -wal and -shm mid-run;
- ``subscription_flood``: an XSUB sending distinct 209-byte subscriptions to the launcher's events
  socket (up to 1,000,000), and at the phase's end, the flood still on, the DataManager SIGSTOPped:
  how long the launcher takes to notice the hang (its timeout is 3 s; it looks once a second).

For each: the share of the (book, tick) pairs of the ticks the real Scheduler sent that were decided,
as a ratio to the quiet phase; the restarts and hangs meanwhile (the target: none; the SIGSTOP of the
last phase comes after its window); and the RSS of the process attacked (the Algorithm, the Ledger,
the launcher) 3 s after the attack against just before it (the target: within 10%).
"""

from __future__ import annotations

import contextlib
import dataclasses
import multiprocessing
import os
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import zmq

from bench import common
from bench.common import Config, Outcome, Row
from bench.driver import LauncherRun, private_dir
from bench.hostile import BOOKS, TICK, _csv, _disturbed, _run_attack, _stop
from bench.tick_tap import RUN_WITHOUT_SCHEDULER, TickTap, ahead, foreign_run
from repricer_supervisor.procfs import rss_kib

SUBSCRIPTIONS: Final = 1_000_000
SUBSCRIPTION_BYTES: Final = 209  # the message: 1 (subscribe) + the topic
FRESH_EVERY: Final = 10_000  # subscriptions per XSUB of the flooder
SETTLE: Final = 3.0  # seconds after an attack before the memory is read again (the launcher trims after 2)
HANG_TIMEOUT: Final = 3.0


def subscription_flood(endpoint: str, sent: Any, count: int = SUBSCRIPTIONS) -> None:
    """Distinct subscriptions as fast as ZeroMQ takes them (issue 20: 1M of them from one XSUB took the
    launcher from 31 MiB to 9.8 GiB); ``sent.value`` counts them. A fresh XSUB every ``FRESH_EVERY``:
    one that the launcher dropped would send again every subscription it holds on each reconnect
    (libzmq's XSUB keeps them), slowing the flood down by itself."""
    ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
    xsub = ctx.socket(zmq.XSUB)
    while sent.value < count:
        if sent.value % FRESH_EVERY == 0:
            xsub.close(linger=0)
            xsub = ctx.socket(zmq.XSUB)
            xsub.setsockopt(zmq.LINGER, 0)
            xsub.connect(endpoint)
        try:
            xsub.send(b"\x01" + f"{sent.value:016x}".encode().ljust(SUBSCRIPTION_BYTES - 1, b"x"), zmq.NOBLOCK)
            sent.value += 1
        except zmq.Again:
            xsub.poll(10, zmq.POLLOUT)
    while True:
        time.sleep(60)


@dataclass(slots=True)
class Result:
    kept: float
    restarts: int
    rss_kib: tuple[int, int]  # the attacked process's, just before the attack and SETTLE after it
    hang_noticed: float | None = None  # seconds from a SIGSTOP to the launcher's "hung" (the flood only)
    note: str = ""


class LocalRun:
    """The launcher run (no Scheduler of its own), its tap and the real Scheduler behind it."""

    def __init__(self, directory: Path, csv_path: Path) -> None:
        self.directory = directory
        self.tap = TickTap.in_run_dir(directory)
        books = common.write_books_file(directory, BOOKS)
        self.run = LauncherRun(["--data-file", str(csv_path), "--books-file", str(books), "--tick", str(TICK),
                                "--delay", "0", "--hang-timeout", str(HANG_TIMEOUT), *RUN_WITHOUT_SCHEDULER],
                               directory, status_every=1.0)
        self.run.wait_for_actors(["datamanager", "apiserver", "ledger", "algorithm"])
        self.tap.start_scheduler(directory, TICK)
        self.run.wait_decisions(BOOKS * 2, timeout=60)

    def pid(self, actor: str) -> int:
        return self.run.process.pid if actor == "launcher" else self.run.pids()[actor]

    def kept(self, since: float, until: float) -> float:
        """The share of (book, tick) pairs of the real ticks sent within [since, until) that were decided
        (a tick the Scheduler skipped in a gap was offered to nobody)."""
        seqs = self.tap.seqs_between(since, until - TICK)  # the last tick has had time to be decided
        if not seqs:
            return float("nan")
        decided = {(d["book"], d["tick"]) for d in self.run.decisions() if d["tick"] in seqs}
        return len(decided) / (len(seqs) * BOOKS)

    def phase(self, seconds: float, actor: str, act: Callable[[], object] | None = None,
              attackers: list[object] | None = None) -> Result:
        """``act`` at the start (after a second of the attackers), ``seconds`` in all."""
        rss_before = rss_kib(self.pid(actor))
        start = time.time()
        try:
            if act is not None:
                time.sleep(1.0)
                act()
            time.sleep(max(0.0, start + seconds - time.time()))  # the phase runs for a fixed time
        finally:
            end = time.time()
            if attackers:
                _stop(attackers)
        time.sleep(2 * TICK)  # the last ticks' decisions come in
        restarts = _disturbed(self.run, start)
        time.sleep(max(0.0, end + SETTLE - time.time()))
        return Result(self.kept(start + 1.0, end), restarts, (rss_before, rss_kib(self.pid(actor))))

    def flooded_phase(self, seconds: float) -> Result:
        """The subscription flood for ``seconds``, then, the flood still on, the DataManager SIGSTOPped:
        how long until the launcher kills it as hung."""
        launcher = self.run.process.pid
        rss_before = rss_kib(launcher)
        start = time.time()
        sent = multiprocessing.get_context("spawn").RawValue("q", 0)
        attackers = _run_attack(subscription_flood, (self.run.events_endpoint, sent))
        try:
            time.sleep(seconds)
            end = time.time()
            time.sleep(2 * TICK)
            kept, restarts = self.kept(start + 1.0, end), _disturbed(self.run, start)
            victim = self.run.pids()["datamanager"]
            frozen_at = time.monotonic()
            os.kill(victim, signal.SIGSTOP)
            try:
                self.run.wait_restart("datamanager", victim, timeout=30)
            finally:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(victim, signal.SIGCONT)
            noticed = time.monotonic() - frozen_at
            rss_peak = rss_kib(launcher)
        finally:
            _stop(attackers)
        time.sleep(SETTLE)
        return Result(kept, restarts, (rss_before, rss_kib(launcher)), noticed,
                      f"{sent.value:,} subscriptions sent; launcher RSS {rss_peak / 1024:.1f} MiB at the end of "
                      "the flood")

    def close(self) -> None:
        try:
            if self.run.process.poll() is None:
                self.run.stop()
        finally:
            self.run.kill_everything()
            self.tap.close()


def _ledger_files(directory: Path) -> list[Path]:
    db = directory / "ledger.sqlite3"
    return [db, db.with_name(db.name + "-wal"), db.with_name(db.name + "-shm")]


def _truncate(directory: Path) -> None:
    os.truncate(_ledger_files(directory)[0], 0)


def _delete(directory: Path) -> None:
    for path in _ledger_files(directory):
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def measure(config: Config) -> Outcome:
    seconds = config.pick(8.0, 30.0)
    outcome = Outcome()
    rows = int(2 * (6 * seconds + 60) / TICK)
    with private_dir("bl-") as directory:
        local = LocalRun(directory, _csv(directory / "clean.csv", rows, fuzz=False))
        try:
            tap = local.tap
            results = {
                "quiet": local.phase(seconds, "algorithm"),
                "forged_tick_ahead": local.phase(seconds, "algorithm", lambda: tap.forge(ahead(tap.wait_tick()))),
                "forged_run_after_gap": local.phase(
                    seconds, "algorithm", lambda: tap.gap_then_forge(1.2, lambda: foreign_run(time.time()))),
                "ledger_truncated": local.phase(seconds, "ledger", lambda: _truncate(directory)),
                "ledger_deleted": local.phase(seconds, "ledger", lambda: _delete(directory)),
            }
            results["subscription_flood"] = local.flooded_phase(seconds)
            counters = {actor: {k: v for k, v in local.run.counters(actor).items() if k in wanted}
                        for actor, wanted in (("algorithm", ("early_ticks", "foreign_run_ticks", "new_runs",
                                                             "resyncs", "returns", "stale_ticks")),
                                              ("ledger", ("db_lost", "nacks", "acks")),
                                              ("launcher", ("events_rebinds", "memory_trims", "hangs")))}
            assert local.run.stop() == 0
        finally:
            local.close()
    base = results.pop("quiet")
    outcome.raw = {"seconds": seconds, "baseline": base.kept, "baseline_restarts": base.restarts,
                   "counters": counters, "attacks": {k: dataclasses.asdict(v) for k, v in results.items()}}
    attacked = {"forged_tick_ahead": "Algorithm", "forged_run_after_gap": "Algorithm", "ledger_truncated": "Ledger",
                "ledger_deleted": "Ledger", "subscription_flood": "launcher"}
    for name, result in results.items():
        before, after = result.rss_kib
        memory = after / before
        met = result.kept >= 0.95 * base.kept and result.restarts == 0 and memory <= 1.10
        outcome.rows.append(Row(f"hostile: decisions kept during {name} ({seconds:.0f} s, {BOOKS} books, {TICK} s "
                                f"tick, the Scheduler behind a tap)", result.kept, "of sent", base.kept,
                                "quiet phase, same run", ">= 0.95x, no restart, RSS <= 1.10x", met,
                                f"restarts/hangs during it: {result.restarts}; {attacked[name]} RSS "
                                f"{after / 1024:.1f} MiB {SETTLE:.0f} s after against {before / 1024:.1f} before "
                                f"({memory:.2f}x)" + (f"; {result.note}" if result.note else "")))
    noticed = results["subscription_flood"].hang_noticed
    assert noticed is not None
    outcome.rows.append(Row("hostile: a SIGSTOPped DataManager killed as hung, during the subscription flood", noticed,
                            "s", None, "", f"<= {HANG_TIMEOUT + 1.5:.1f} s (--hang-timeout {HANG_TIMEOUT:.0f}, "
                            "checked once a second)", noticed <= HANG_TIMEOUT + 1.5))
    return outcome
