"""Throughput: book decisions per second through the real multiprocess pipeline (``launcher.py``,
``--delay 0``) as the number of books grows, and with several Algorithm workers; beside it, in the
same run, the ceilings: the APIServer alone, the DataManager alone, and the bare baseline script
(:mod:`bench.baseline`) against the same two processes.

Per pipeline run (tick = max(0.5, books/20000) s unless given): two warm-up ticks, then ``n`` measured
ticks. For each measured tick ``k`` (scheduled at t0 + k*tick) we count the decisions for ``k`` that
our reader received before tick ``k+1`` was due:

* ``sustained`` = those in-tick decisions / (n * tick): decisions per second delivered on time;
* ``achieved`` = every decision received during the measured window / its length;
* ``burst`` = median over ticks of decisions(k) / (last decision of k - scheduled_at(k)): how fast a
  tick's worth of work is done, independent of the tick length (the pipeline's capacity);
* ``keeps_up`` = every book decided within its tick on every measured tick (no overrun, no skip).

The default run and the ``--api-batch 500`` run are repeated with ``--no-ledger``: what keeping every
decision in the Ledger costs, side by side (issue 11).

A final *capacity* run sets the tick to books / (0.8 * max(burst, achieved)) at the largest book count
up to 10k, to show the rate sustained without overruns when the tick is not the limit.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench import common, driver
from bench.common import Config, Outcome, Row
from transport import limits

ROWS_PER_BOOK = 12
WARMUP_TICKS = 2
TARGET_RATE = 5000.0
CAPACITY_LOAD = 0.8  # the capacity run offers this fraction of the measured rate
CAPACITY_BOOKS = 10_000


def books_file(books: int) -> Path:
    common.DATA_DIR.mkdir(parents=True, exist_ok=True)
    path = common.DATA_DIR / f"books_{books}.txt"
    if not path.exists():
        path.write_text("\n".join(common.book_ids(books)) + "\n", encoding="utf-8")
    return path


def default_tick(books: int) -> float:
    return max(0.5, books / 20000)


def pipeline(books: int, workers: int, tick: float, measured: int, extra: Sequence[str] = ()) -> dict[str, Any]:
    """One launcher run; see the module docstring for what is computed."""
    csv = common.ensure_csv(books, ROWS_PER_BOOK)
    args = ["--data-file", str(csv), "--books-file", str(books_file(books)), "--tick", repr(tick), "--delay", "0",
            "--workers", str(workers), "--hang-timeout", "10"]
    last = WARMUP_TICKS + measured  # tick whose publication closes the measured window
    with common.launcher(args + list(extra)) as run:
        run.wait_actors(3 + workers)
        run.wait_tick(WARMUP_TICKS, timeout=30.0 + (WARMUP_TICKS + 2) * tick)
        cpu_start = common.cpu_by_kind(run.pids())
        run.wait_tick(last, timeout=30.0 + (last + 2) * tick)
        cpu = {name: used - cpu_start.get(name, 0.0) for name, used in common.cpu_by_kind(run.pids()).items()}
        time.sleep(min(0.2, tick / 4))
        rss = run.rss()
        counters = run.counters("algorithm")
        dm_counters = run.counters("datamanager")
        ticks = list(run.ticks.ticks)
    decisions = run.timed_decisions()
    first_tick = ticks[0][0]
    t0 = first_tick.scheduled_at - first_tick.seq * tick

    def scheduled(seq: int) -> float:
        return t0 + seq * tick

    per_tick: list[dict[str, float]] = []
    latencies: list[float] = []
    in_tick_total = 0
    window_start, window_end = scheduled(WARMUP_TICKS), scheduled(last)
    achieved = sum(1 for at, _ in decisions if window_start <= at < window_end)
    by_tick: dict[int, list[float]] = {}
    for at, decision in decisions:
        by_tick.setdefault(int(decision["tick"]), []).append(at)
    bursts: list[float] = []
    for seq in range(WARMUP_TICKS, last):
        times = by_tick.get(seq, [])
        due = scheduled(seq)
        in_tick = sum(1 for at in times if at < scheduled(seq + 1))
        in_tick_total += in_tick
        latencies.extend(at - due for at in times)
        span = (max(times) - due) if times else 0.0
        if times and span > 0:
            bursts.append(len(times) / span)
        per_tick.append({"seq": seq, "decisions": len(times), "in_tick": in_tick, "span_s": span})
    window = measured * tick
    burst = common.percentile(bursts, 50) if bursts else 0.0
    return {
        "books": books, "workers": workers, "tick": tick, "measured_ticks": measured,
        "offered_per_s": books / tick, "sustained_per_s": in_tick_total / window, "achieved_per_s": achieved / window,
        "burst_per_s": burst, "in_tick_fraction": in_tick_total / (books * measured),
        "keeps_up": in_tick_total == books * measured,
        "latency_ms": common.summary_ms(latencies), "latencies_s": latencies,
        "overruns": counters.get("overruns", 0), "skipped": counters.get("skipped", 0),
        "decisions_counter": counters.get("decisions", 0), "superseded_ticks": counters.get("superseded_ticks", 0),
        "dm_timeouts": counters.get("dm_timeouts", 0), "http_errors": counters.get("http_errors", 0),
        "dm_rows_read": dm_counters.get("rows_read", 0), "rss_kib": rss, "per_tick": per_tick,
        # CPU per decision, from /proc: what contention on a shared machine disturbs least
        "cpu_us_per_decision": {name: 1e6 * used / max(1, achieved) for name, used in cpu.items()},
        "gc_pause_max_us": counters.get("gc_pause_max_us", 0), "gc_collections": counters.get("gc_collections", 0),
        "gc_cpu_max_us": counters.get("gc_cpu_max_us", 0),
        "unstarted": counters.get("unstarted", 0), "extra": list(extra),
        "ledger_acked": counters.get("ledger_acked", 0), "ledger_dropped": counters.get("ledger_dropped", 0),
    }


def run_pipeline(books: int, workers: int = 1, tick: float | None = None, measured: int = 8,
                 extra: Sequence[str] = ()) -> dict[str, Any]:
    """Cached per (books, workers, tick, measured, extra options) within one bench run."""
    tick = tick if tick is not None else default_tick(books)
    key = f"pipeline:{books}:{workers}:{tick}:{measured}:{' '.join(extra)}"
    return common.cached(key, lambda: pipeline(books, workers, tick, measured, extra))


# --- ceilings -------------------------------------------------------------------------------------


def _client(mode: str, api_url: str, data: str, books: Path, concurrency: int, seconds: float) -> dict[str, Any]:
    out = subprocess.run([sys.executable, "-m", "bench.baseline", mode, "--api-url", api_url, "--data-endpoint", data,
                          "--books-file", str(books), "--concurrency", str(concurrency), "--seconds", str(seconds),
                          "--client", "thin",
                          "--warmup", "1"], cwd=common.REPO, capture_output=True, text=True,
                         timeout=seconds + 60, check=True)
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def _wrk(directory: Path, port: int, seconds: float) -> float | None:
    if shutil.which("wrk") is None:
        return None
    script = directory / "post.lua"
    script.write_text('wrk.method = "POST"\nwrk.body = \'{"book":"B001","price":"12.34"}\'\n'
                      'wrk.headers["Content-Type"] = "application/json"\n', encoding="utf-8")
    out = subprocess.run(["wrk", "-t1", "-c64", f"-d{max(1, round(seconds))}s", "-s", str(script),
                          f"http://127.0.0.1:{port}/register-request"], capture_output=True, text=True,
                         timeout=seconds + 30)
    match = re.search(r"Requests/sec:\s+([\d.]+)", out.stdout)
    return float(match.group(1)) if match else None


def ceilings(cfg: Config, books: int) -> dict[str, Any]:
    """APIServer alone, DataManager alone, the bare baseline: all against the same two processes."""
    seconds = cfg.pick(3.0, 8.0)
    csv = common.ensure_csv(books, ROWS_PER_BOOK)
    bfile = books_file(books)
    with driver.private_dir("bn-") as directory:
        port = driver.free_port()
        endpoint = f"ipc://{directory}/dm.sock"
        api_url = f"http://127.0.0.1:{port}"
        with common.actor("api_server", "--port", str(port)), \
                common.actor("data_manager", "--data-file", str(csv), "--data-endpoint", endpoint):
            driver.wait_http(f"{api_url}/request-data/0")
            # Make the DataManager read the whole file first, like the pipeline's warm-up ticks do.
            driver.dm_request(endpoint, common.book_ids(books)[-1], 10**6, timeout=120.0)
            api = _client("api", api_url, endpoint, bfile, 64, seconds)
            wrk = _wrk(directory, port, seconds)
            dm = _client("dm", api_url, endpoint, bfile, 500, seconds)
            bare = _client("bare", api_url, endpoint, bfile, 128, seconds)
    return {"books": books, "api": api, "wrk_post_req_per_s": wrk, "dm": dm, "bare": bare}


# --- the measurement ------------------------------------------------------------------------------


def _note(r: dict[str, Any]) -> str:
    cpu = r.get("cpu_us_per_decision", {})
    return (f"offered {r['offered_per_s']:.0f}/s, achieved {r['achieved_per_s']:.0f}/s, "
            f"burst {r['burst_per_s']:.0f}/s, in-tick {100 * r['in_tick_fraction']:.0f}%, "
            f"overruns {r['overruns']}, unstarted {r.get('unstarted', 0)}, skipped {r['skipped']}, "
            f"Algorithm CPU {cpu.get('algorithm', 0):.0f} us/decision, GC max pause "
            f"{r.get('gc_pause_max_us', 0) / 1000:.1f} ms")


def capacity(r: dict[str, Any]) -> float:
    """Decisions per second the pipeline can do: a tick's decisions over the time from its tick to
    its last line (burst), or what it achieved when overloaded, whichever is larger."""
    return float(max(r["burst_per_s"], r["achieved_per_s"]))


def overload_curve(cfg: Config, cap: float, books: int) -> list[dict[str, Any]]:
    """Achieved vs offered from 0.5x to 3x the measured capacity (``books`` fixed, the tick varied)."""
    points = []
    for factor in cfg.pick((0.5, 1.1, 2.0), (0.5, 0.9, 1.1, 1.5, 2.0, 3.0)):
        tick = round(max(limits.TICK_MIN, books / (factor * cap)), 3)
        r = run_pipeline(books, 1, tick=tick, measured=cfg.pick(4, 6))
        points.append({"factor": factor, "tick": tick, "offered_per_s": r["offered_per_s"],
                       "achieved_per_s": r["achieved_per_s"], "achieved_vs_capacity": r["achieved_per_s"] / cap,
                       "per_tick": [t["decisions"] for t in r["per_tick"]]})
    return points


def measure(cfg: Config) -> Outcome:
    out = Outcome()
    books = cfg.pick(2000, CAPACITY_BOOKS)
    measured = cfg.pick(4, 6)
    ceil = common.cached(f"ceilings:{books}:{cfg.quick}", lambda: ceilings(cfg, books))
    bare = float(ceil["bare"]["rate"])
    api = float(ceil["api"]["rate"])
    out.raw["ceilings"] = ceil
    runs: list[dict[str, Any]] = []

    # The black-box run of issue 10: default options, 2 s tick, x = 0, --json.
    main = run_pipeline(books, 1, tick=2.0, measured=measured)
    runs.append(main)
    cap = capacity(main)
    out.rows.append(Row(f"decisions/s, {books} books, 2 s tick, default options (every book every tick?)",
                        main["sustained_per_s"], "/s", target="every book every tick" if books == CAPACITY_BOOKS
                        else "", met=main["keeps_up"] if books == CAPACITY_BOOKS else None, note=_note(main)))
    out.rows.append(Row(f"capacity, {books} books (a tick's decisions / time from tick to last line)", cap, "/s",
                        bare, "bare", target=">= 6,500/s" if books == CAPACITY_BOOKS else "",
                        met=cap >= 6500 if books == CAPACITY_BOOKS else None))
    cpu = main["cpu_us_per_decision"]
    bare_cpu = float(ceil["bare"].get("cpu_us_per_completion", 0.0))
    out.rows.append(Row("Algorithm CPU per decision (process CPU / decisions, from /proc)", cpu.get("algorithm", 0.0),
                        "us", bare_cpu or None, "bare script CPU per decision",
                        note=", ".join(f"{k} {v:.0f} us" for k, v in cpu.items())))
    out.rows.append(Row("GC: longest collection pause in the Algorithm during the run",
                        main["gc_pause_max_us"] / 1000, "ms", target="< 10 ms", met=main["gc_pause_max_us"] < 10_000,
                        note=f"{main['gc_collections']} collections; most CPU in one: "
                        f"{main.get('gc_cpu_max_us', 0) / 1000:.1f} ms (the wall pause also holds waits for a core)"))
    out.rows.append(Row("pipeline capacity vs bare baseline (same HTTP client)", cap, "/s", bare, "bare decisions/s",
                        ">= 1.0x", met=cap >= bare))

    # Batched calls (issue 10 part 2).
    big = cfg.pick(20_000, 100_000)
    batched = run_pipeline(big, 1, tick=2.0, measured=measured, extra=("--api-batch", "500"))
    runs.append(batched)
    spans = sorted(t["span_s"] for t in batched["per_tick"])
    out.raw["batched_tick_span_p99_s"] = common.percentile(spans, 99) if spans else None
    out.rows.append(Row(f"decisions/s, {big} books, 2 s tick, --api-batch 500", batched["achieved_per_s"], "/s",
                        target=">= 50,000/s" if big == 100_000 else "",
                        met=batched["achieved_per_s"] >= 50_000 if big == 100_000 else None,
                        note=_note(batched) + f"; tick completion p99 {out.raw['batched_tick_span_p99_s']}s; "
                        f"Algorithm RSS {batched['rss_kib'].get('algorithm', 0)} KiB"))

    # The Ledger's cost (issue 11): the same runs without it, side by side.
    bare_ledger = run_pipeline(books, 1, tick=2.0, measured=measured, extra=("--no-ledger",))
    runs.append(bare_ledger)
    out.rows.append(Row(f"capacity, {books} books, with the Ledger (default) vs --no-ledger", cap, "/s",
                        capacity(bare_ledger), "--no-ledger capacity", note=f"with: {_note(main)}; "
                        f"ledger acked {main['ledger_acked']}, dropped {main['ledger_dropped']}"))
    batched_bare = run_pipeline(big, 1, tick=2.0, measured=measured, extra=("--api-batch", "500", "--no-ledger"))
    runs.append(batched_bare)
    out.rows.append(Row(f"decisions/s, {big} books, --api-batch 500, with the Ledger vs --no-ledger",
                        batched["achieved_per_s"], "/s", batched_bare["achieved_per_s"], "--no-ledger",
                        note=f"with: ledger acked {batched['ledger_acked']}, dropped {batched['ledger_dropped']}; "
                        f"without: {_note(batched_bare)}"))

    # Overload: achieved vs offered.
    curve = overload_curve(cfg, cap, books)
    out.raw["overload_curve"] = curve
    for point in curve:
        target = ">= 90% of capacity" if point["factor"] == 1.1 else ""
        out.rows.append(Row(f"overload: offered {point['factor']}x capacity ({point['offered_per_s']:.0f}/s), achieved",
                            point["achieved_per_s"], "/s", cap, "capacity", target,
                            met=point["achieved_vs_capacity"] >= 0.9 if point["factor"] == 1.1 else None,
                            note=f"per tick {point['per_tick']}"))

    if not cfg.quick:
        two = run_pipeline(books, 2, tick=2.0, measured=measured)
        runs.append(two)
        out.rows.append(Row(f"capacity, {books} books, 2 Algorithm workers", capacity(two), "/s", cap,
                            "1 worker", note=_note(two)))

    out.rows.append(Row("ceiling: APIServer alone, POST+GET pairs/s (thin client, 64 in flight)", api, "/s",
                        note=f"errors {ceil['api']['errors']:.0f}"))
    out.rows.append(Row("ceiling: DataManager alone, requests/s (LastPricesClient, 500 in flight)",
                        float(ceil["dm"]["rate"]), "/s"))
    out.rows.append(Row("bare baseline (bench/baseline.py bare, thin client, 128 in flight), decisions/s", bare,
                        "/s", note=f"errors {ceil['bare']['errors']:.0f}"))
    out.raw["runs"] = [{k: v for k, v in r.items() if k != "latencies_s"} for r in runs]
    return out
