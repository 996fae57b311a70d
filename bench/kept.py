"""kept: every printed decision is in the Ledger (issues 19 and 26), and what keeping it first costs.

* **cost per decision**: the launcher's black-box throughput run (:func:`bench.throughput.pipeline`)
  with the spool (keep, then print: the default) and with ``--no-spool`` (print, then keep in memory),
  alternating, on the default path and on the batched one (``--api-batch 500 --dm-batch 500``); the
  Algorithm's CPU per decision and the decisions/s achieved, spool vs ``--no-spool`` (the baseline).
* **SIGKILLs**: the launcher with the Algorithm and the Ledger SIGKILLed at random moments
  (:func:`bench.chaos.sigkill_run`; the issue's size: 1,000 books on a 0.5 s tick, 10 kills of each
  in 60 s), then a clean stop and the audit of every printed line against the database (missing,
  printed twice, kept as another decision). The same run with ``--no-spool`` is the baseline: what
  print-then-keep loses.
* **Ledger outages**: a worker deciding through 30 s of its Ledger SIGSTOPped, and 30 s SIGKILLed and
  kept down (:func:`bench.chaos.outage`): decisions printed during it vs those of a tick, then the
  audit.
* **a full spool** (1 MiB, no Ledger): repricing pauses (one line, a counter), a Ledger comes, it
  resumes; the audit.
* **at scale**: 100,000 books, 2 s tick, ``--api-batch 500``, the Ledger on (issue 19's run): books
  decided per steady tick, printed vs kept.

``--quick`` shrinks every size. The machine is shared: the rates are noisy, the audits are not.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from actors.algorithm.clients.outbox import LedgerPolicy, Outbox
from actors.algorithm.spool.spool import Spool
from bench import chaos, ledger, throughput
from bench.common import Config, Outcome, Row
from bench.driver import private_dir
from transport.protocol import Decision, decision_record

SPOOL = "keep then print (spool)"
NO_SPOOL = "--no-spool"


def cost_runs(books: int, tick: float, measured: int, rounds: int, extra: list[str]) -> dict[str, Any]:
    """Alternating rounds of the same run with and without the spool; medians of each."""
    runs: dict[str, list[dict[str, Any]]] = {SPOOL: [], NO_SPOOL: []}
    for round_ in range(rounds):
        order = (SPOOL, NO_SPOOL) if round_ % 2 == 0 else (NO_SPOOL, SPOOL)
        for mode in order:
            args = extra + (["--no-spool"] if mode == NO_SPOOL else [])
            runs[mode].append(throughput.pipeline(books, 1, tick, measured, args))

    def median(mode: str, pick: str) -> float:
        values: list[float] = [float(r["cpu_us_per_decision"].get("algorithm", 0.0)) if pick == "cpu"
                               else float(r["achieved_per_s"]) for r in runs[mode]]
        return statistics.median(values)

    return {"books": books, "tick": tick, "extra": extra, "rounds": rounds,
            "cpu": {mode: median(mode, "cpu") for mode in runs}, "rate": {mode: median(mode, "rate") for mode in runs},
            "runs": {mode: [{k: v for k, v in r.items() if k not in ("latencies_s", "per_tick")} for r in rs]
                     for mode, rs in runs.items()}}


def cost_rows(out: Outcome, label: str, c: dict[str, Any]) -> None:
    name = f"{label}, {c['books']:,} books, {c['tick']} s tick"
    note = f"medians of {c['rounds']} alternating round(s)"
    out.rows.append(Row(f"Algorithm CPU per decision with the spool, {name}", c["cpu"][SPOOL], "us",
                        c["cpu"][NO_SPOOL], "same run with --no-spool", note=note))
    out.rows.append(Row(f"Decisions/s achieved with the spool, {name}", c["rate"][SPOOL], "decisions/s",
                        c["rate"][NO_SPOOL], "same run with --no-spool", note=note))


def audit_row(out: Outcome, measure: str, outcome: chaos.Outcome, baseline: chaos.Outcome | None = None,
              note: str = "") -> None:
    a = outcome.audit
    out.rows.append(Row(measure, len(a.missing), "printed, not kept",
                        len(baseline.audit.missing) if baseline else None,
                        "same run with --no-spool" if baseline else "", target="0 (and none twice)",
                        met=a.exactly_once and a.printed > 0,
                        note=f"{a}; " + note + (f"; --no-spool: {baseline.audit}" if baseline else "")))


PHASES = ("inprocess", "cost", "sigkills", "outages", "full", "scale")


def measure(cfg: Config) -> Outcome:
    """Every phase, or those named in ``BENCH_KEPT`` (comma-separated); a phase that fails is a row
    saying so, the others still run."""
    wanted = [p for p in os.environ.get("BENCH_KEPT", ",".join(PHASES)).split(",") if p]
    out = Outcome()
    for phase in wanted:
        before = len(out.rows)
        try:
            PHASE_RUNS[phase](cfg, out)
        except Exception as exc:  # one phase's failure is reported, not the whole bench's
            out.rows.append(Row(f"kept: phase {phase} FAILED", 0, note=f"{type(exc).__name__}: {exc}"[:2000],
                                met=False))
        for row in out.rows[before:]:  # as they come: a long run's early phases are not lost to a late one
            print(f"kept {phase}: {row.measure}: {row.value:g} {row.unit} (baseline {row.baseline}) {row.note}",
                  file=sys.stderr, flush=True)
    return out


def cost(cfg: Config, out: Outcome) -> None:
    default = cost_runs(cfg.pick(1000, 2000), 1.0, cfg.pick(3, 5), cfg.pick(1, 3), [])
    batched = cost_runs(cfg.pick(10_000, 20_000), 2.0, cfg.pick(3, 4), cfg.pick(1, 3),
                        ["--api-batch", "500", "--dm-batch", "500"])
    out.raw["cost"] = {"default": default, "batched": batched}
    cost_rows(out, "default path", default)
    cost_rows(out, "batched path (--api-batch 500)", batched)


def sigkills(cfg: Config, out: Outcome) -> None:
    books, seconds = cfg.pick(200, 1000), cfg.pick(20.0, 60.0)
    kills = {"algorithm": cfg.pick(3, 10), "ledger": cfg.pick(3, 10)}
    killed: dict[str, chaos.Outcome] = {}
    for mode, extra in ((SPOOL, []), (NO_SPOOL, ["--no-spool"])):
        with private_dir("bk-") as directory:
            killed[mode] = chaos.sigkill_run(Path(directory), books=books, tick=0.5, seconds=seconds, kills=kills,
                                             seed=26, args=[*chaos.paced(books, 0.5), *extra])
    out.raw["sigkills"] = {mode: {"audit": str(o.audit), "kills": o.kills, "counters": o.counters,
                                  "ledger": o.ledger, "seconds": o.seconds} for mode, o in killed.items()}
    audit_row(out, f"SIGKILLs: Algorithm x{killed[SPOOL].kills['algorithm']}, Ledger x{killed[SPOOL].kills['ledger']} "
                   f"in {seconds:.0f} s, {books:,} books, 0.5 s tick", killed[SPOOL], killed[NO_SPOOL],
              f"kept unprinted {killed[SPOOL].audit.kept_unprinted}, "
              f"redelivered {killed[SPOOL].counters.get('spool_redelivered', 0)}")


def outages(cfg: Config, out: Outcome) -> None:
    outage_s = cfg.pick(8.0, 30.0)
    out.raw["outages"] = {}
    for how in ("stopped", "killed"):
        with private_dir("bk-") as directory:
            outcome, during, ticks, backlog = chaos.outage(Path(directory), how=how, books=40, seconds=outage_s)
        out.raw["outages"][how] = {"audit": str(outcome.audit), "during": during, "ticks": ticks,
                                   "backlog": backlog, "counters": outcome.counters}
        audit_row(out, f"Ledger {how} for {outage_s:.0f} s (40 books, 0.5 s tick)", outcome,
                  note=f"decided during it {during} of {40 * ticks} ({during / max(1, 40 * ticks):.0%}), "
                       f"spool backlog at its end {backlog}")


def full(cfg: Config, out: Outcome) -> None:
    with private_dir("bk-") as directory:
        result = chaos.full_spool(Path(directory))
    out.raw["full_spool"] = {"audit": str(result.outcome.audit), "bytes": result.bytes_at_full,
                             "pauses": result.pauses, "printed_while_paused": result.printed_while_paused,
                             "counters": result.outcome.counters}
    audit_row(out, "Spool full (1 MiB, no Ledger), then a Ledger", result.outcome,
              note=f"paused {result.pauses}x at {result.bytes_at_full:,} bytes ({result.pause_lines} line), "
                   f"{result.printed_while_paused} printed over 3 paused ticks, resumed ({result.resume_lines} "
                   f"line), paused {result.outcome.counters.get('spool_paused_ms', 0) / 1000:.1f} s")


def scale(cfg: Config, out: Outcome) -> None:
    # --seconds lengthens it: the Ledger's inserts cost more as each book's rows deepen (ledger.md).
    scale_books, scale_s = cfg.pick(10_000, 100_000), cfg.seconds or cfg.pick(20.0, 60.0)
    with private_dir("bk-") as directory:
        result = chaos.at_scale(Path(directory), books=scale_books, seconds=scale_s)
    with private_dir("bk-") as directory:  # the baseline: the same run without the Ledger
        bare = chaos.at_scale(Path(directory), books=scale_books, seconds=scale_s, args=["--no-ledger"])
    bare_steady = [bare.per_tick[t] / scale_books for t in bare.steady]
    steady = [result.per_tick[t] / scale_books for t in result.steady]
    c = result.outcome.counters
    out.raw["scale"] = {"audit": str(result.outcome.audit), "per_tick": result.per_tick, "counters": c,
                        "ledger": result.outcome.ledger, "no_ledger_per_tick": bare.per_tick}
    if steady:
        third = max(1, len(steady) // 3)
        out.rows.append(Row(f"At scale: books decided per steady tick, {scale_books:,} books, 2 s tick, "
                            "--api-batch 500, the Ledger on", 100 * statistics.mean(steady), "% (mean)",
                            100 * statistics.mean(bare_steady) if bare_steady else None, "same run, --no-ledger",
                            target=">= 95% every tick", met=min(steady) >= 0.95,
                            note=f"worst {100 * min(steady):.1f}% over {len(steady)} steady ticks; "
                                 f"first third {100 * statistics.mean(steady[:third]):.1f}%, last third "
                                 f"{100 * statistics.mean(steady[-third:]):.1f}%; "
                                 f"ticks held back by the Ledger {c.get('backpressure_ticks_ledger', 0)}, "
                                 f"pairs unstarted {c.get('unstarted', 0):,}"))
    audit_row(out, f"At scale: printed vs kept, {scale_books:,} books, {scale_s:.0f} s", result.outcome,
              note=f"kept unprinted {result.outcome.audit.kept_unprinted}")


async def _spool_cpu(directory: Path, decisions: list[Decision]) -> float:
    """CPU seconds (every thread) to append, commit, read back and acknowledge ``decisions`` as a worker
    does: 1,000 per group, the reader sending batches as they come."""
    spool: Spool[Decision] = Spool(directory, max_bytes=1 << 30, on_durable=lambda _: None)
    await spool.open()

    async def ship() -> None:
        while records := await spool.read(1200):
            spool.acknowledged([seq for seq, _ in records])

    started = time.process_time()
    for i in range(0, len(decisions), 1000):
        for d in decisions[i:i + 1000]:
            spool.append(decision_record(d), d, d.run, d.tick)
        await asyncio.sleep(0.003)  # the group's write and fsync
        await ship()
    await spool.flush(10)
    await ship()
    used = time.process_time() - started
    await spool.close()
    return used


def inprocess(cfg: Config, out: Outcome) -> None:
    """The spool's own CPU per decision against the outbox of --no-spool, in this process, alternating."""
    count = cfg.pick(20_000, 100_000)
    decisions = ledger.decisions(0, count)
    spool_us: list[float] = []
    outbox_us: list[float] = []
    for _ in range(cfg.pick(1, 3)):
        with private_dir("bk-") as directory:
            spool_us.append(1e6 * asyncio.run(_spool_cpu(Path(directory), decisions)) / count)
        box = Outbox(LedgerPolicy(outbox_max=count + 1))
        started = time.process_time()
        for i, d in enumerate(decisions):
            box.add(i, decision_record(d), 0.0)
        outbox_us.append(1e6 * (time.process_time() - started) / count)
    out.raw["inprocess"] = {"spool_us": spool_us, "outbox_us": outbox_us}
    out.rows.append(Row(f"Spool CPU per decision in-process ({count:,}: appended, fsync'd in groups of 1,000, read, "
                        "acknowledged)", statistics.median(spool_us), "us", statistics.median(outbox_us),
                        "--no-spool's outbox (decision_record + add)", note=f"rounds {spool_us} / {outbox_us}"))


PHASE_RUNS: dict[str, Callable[[Config, Outcome], None]] = {
    "inprocess": inprocess, "cost": cost, "sigkills": sigkills, "outages": outages, "full": full, "scale": scale}
