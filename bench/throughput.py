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
from pathlib import Path
from typing import Any

from bench import common
from bench.common import Config, Outcome, Row
from supervisor import driver

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


def pipeline(books: int, workers: int, tick: float, measured: int) -> dict[str, Any]:
    """One launcher run; see the module docstring for what is computed."""
    csv = common.ensure_csv(books, ROWS_PER_BOOK)
    args = ["--data", str(csv), "--books-file", str(books_file(books)), "--tick", repr(tick), "--delay", "0",
            "--workers", str(workers), "--hang-timeout", "10"]
    last = WARMUP_TICKS + measured  # tick whose publication closes the measured window
    with common.launcher(args) as run:
        run.wait_actors(3 + workers)
        run.wait_tick(last, timeout=30.0 + (last + 2) * tick)
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
    }


def run_pipeline(books: int, workers: int = 1, tick: float | None = None, measured: int = 8) -> dict[str, Any]:
    """Cached per (books, workers, tick, measured) within one bench run."""
    tick = tick if tick is not None else default_tick(books)
    key = f"pipeline:{books}:{workers}:{tick}:{measured}"
    return common.cached(key, lambda: pipeline(books, workers, tick, measured))


# --- ceilings -------------------------------------------------------------------------------------


def _client(mode: str, api_url: str, data: str, books: Path, concurrency: int, seconds: float) -> dict[str, Any]:
    out = subprocess.run([sys.executable, "-m", "bench.baseline", mode, "--api-url", api_url, "--data", data,
                          "--books-file", str(books), "--concurrency", str(concurrency), "--seconds", str(seconds),
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
                common.actor("data_manager", "--csv", str(csv), "--data", endpoint):
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
    return (f"offered {r['offered_per_s']:.0f}/s, achieved {r['achieved_per_s']:.0f}/s, "
            f"burst {r['burst_per_s']:.0f}/s, in-tick {100 * r['in_tick_fraction']:.0f}%, "
            f"overruns {r['overruns']}, skipped {r['skipped']}")


def measure(cfg: Config) -> Outcome:
    counts = cfg.pick([1, 1000], [1, 100, 1000, 10000, 25000])
    largest = counts[-1]
    measured = cfg.pick(4, 8)
    out = Outcome()
    ceil = common.cached(f"ceilings:{largest}:{cfg.quick}", lambda: ceilings(cfg, largest))
    bare = float(ceil["bare"]["rate"])
    api = float(ceil["api"]["rate"])
    out.raw["ceilings"] = ceil
    runs: list[dict[str, Any]] = []
    for books in counts:
        r = run_pipeline(books, 1, measured=measured)
        runs.append(r)
        out.rows.append(Row(f"pipeline decisions/s, {books} books, tick {r['tick']}s", r["sustained_per_s"],
                            "/s", bare, "bare", note=_note(r)))
    for workers in cfg.pick([2], [2, 4]):
        r = run_pipeline(largest, workers, measured=measured)
        runs.append(r)
        out.rows.append(Row(f"pipeline decisions/s, {largest} books, {workers} workers", r["sustained_per_s"],
                            "/s", bare, "bare", note=_note(r)))
    # Capacity: a tick long enough for the measured rate (burst, or achieved when overloaded), at the
    # largest book count <= 10k (beyond, that tick would be tens of seconds).
    cap_books = max(b for b in counts if b <= CAPACITY_BOOKS)
    rate = max(max(r["burst_per_s"], r["achieved_per_s"]) for r in runs if r["books"] == cap_books)
    cap_tick = round(max(0.1, cap_books / (CAPACITY_LOAD * rate)), 2) if rate > 0 else default_tick(cap_books)
    cap = run_pipeline(cap_books, 1, tick=cap_tick, measured=cfg.pick(4, 3))
    runs.append(cap)
    out.rows.append(Row(f"pipeline decisions/s, {cap_books} books, capacity tick {cap_tick}s",
                        cap["sustained_per_s"], "/s", bare, "bare", note=_note(cap)))
    kept = [r for r in runs if r["keeps_up"]]
    best = max(kept or runs, key=lambda r: r["sustained_per_s"])
    best_rate = float(best["sustained_per_s"])
    label = f"{best['books']} books, {best['workers']} worker(s), tick {best['tick']}s" + (
        "" if best["keeps_up"] else " (with overruns)")
    out.rows.append(Row(f"best sustained decisions/s without overruns ({label})", best_rate, "/s",
                        target=">= 5,000/s", met=best_rate >= TARGET_RATE and best["keeps_up"]))
    out.rows.append(Row("pipeline vs bare baseline", best_rate, "/s", bare, "bare decisions/s", ">= 1.0x",
                        met=best_rate >= bare))
    out.rows.append(Row("pipeline vs APIServer ceiling", best_rate, "/s", api, "API pairs/s", ">= 0.7x",
                        met=best_rate >= 0.7 * api))
    out.rows.append(Row("ceiling: APIServer alone, POST+GET pairs/s (aiohttp, 64 in flight)", api, "/s",
                        note=f"errors {ceil['api']['errors']:.0f}"))
    if ceil["wrk_post_req_per_s"] is not None:
        out.rows.append(Row("ceiling: APIServer alone, wrk POST req/s (64 conns)", ceil["wrk_post_req_per_s"], "/s"))
    out.rows.append(Row("ceiling: DataManager alone, requests/s (LastPricesClient, 500 in flight)",
                        float(ceil["dm"]["rate"]), "/s"))
    out.rows.append(Row("bare baseline (bench/baseline.py bare, 128 in flight), decisions/s", bare, "/s",
                        note=f"errors {ceil['bare']['errors']:.0f}"))
    out.raw["runs"] = [{k: v for k, v in r.items() if k != "latencies_s"} for r in runs]
    return out
