"""Replay at scale and under a flood, through the real launcher (issues 14 and 9).

A compact ``book_id,price`` file with many books packs more points per book into a 256 KiB chunk than
a window keeps (64): the DataManager used to detach every book at once and then re-scan the same region
once per book, stalling for seconds. Here every (book, tick) must be decided with its exact window,
whether the file is interleaved, sorted by book, or both.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from bench.driver import LauncherRun
from tests.harness import check_decision, read_points
from tests.helpers import REPO

# 100 books x 64 points x ~11 bytes a row is far below a 256 KiB chunk: the old reader detached every
# book at once and stalled for seconds when the windows needed new rows (tick ~60: it missed ~10% of
# these decisions). 1,000 decisions/s is a fifth of what the pipeline does on 2 cores, so only the
# DataManager can make one miss; 100 ticks take 10 s per layout.
BOOKS = 100
TICKS = 100
TICK = 0.1


def compact_csv(path: Path, layout: str, books: list[str], points: int) -> Path:
    """``book_id,price`` rows: interleaved (one row per book per step), sorted by book, or mixed (half
    the books interleaved, then the other half sorted)."""
    def price(k: int, i: int) -> str:
        return f"{10 + k % 80}.{(i * 7 + k) % 100:02d}"

    index = {b: k for k, b in enumerate(books)}
    half = len(books) // 2
    if layout == "interleaved":
        rows = [(b, i) for i in range(points) for b in books]
    elif layout == "sorted":
        rows = [(b, i) for b in books for i in range(points)]
    else:
        rows = [(b, i) for i in range(points) for b in books[:half]] + [(b, i) for b in books[half:] for i in
                                                                        range(points)]
    path.write_text("book_id,price\n" + "".join(f"{b},{price(index[b], i)}\n" for b, i in rows), encoding="utf-8")
    return path


def start(ipc_dir: Path, csv: Path, books: list[str], tick: float) -> LauncherRun:
    (ipc_dir / "books.txt").write_text("\n".join(books) + "\n", encoding="utf-8")
    return LauncherRun(["--data-file", str(csv), "--books-file", str(ipc_dir / "books.txt"), "--tick", str(tick),
                        "--delay", "0"], ipc_dir, status_every=1)


def disturbed(run: LauncherRun) -> list[str]:
    return [f"{e.actor} {e.event}" for e in run.events() if e.event in ("hung", "exited") and e.actor != "launcher"]


@pytest.mark.alone
@pytest.mark.timeout(180)
@pytest.mark.parametrize("layout", ["interleaved", "sorted", "mixed"])
def test_every_book_is_decided_at_every_tick_with_its_exact_window(layout: str, tmp_path: Path,
                                                                   ipc_dir: Path) -> None:
    books = [f"K{i:03d}" for i in range(BOOKS)]
    csv = compact_csv(tmp_path / "prices.csv", layout, books, TICKS + 40)
    run = start(ipc_dir, csv, books, TICK)
    try:
        run.wait_until(lambda: any(d["tick"] >= TICKS for d in run.decisions()), TICKS * TICK + 60, f"tick {TICKS}")
        assert run.stop() == 0
    finally:
        run.kill_everything()
    points = read_points(csv)
    for decision in run.decisions():
        check_decision(decision, points)  # the exact window: tick k sees points k..k+4 of its book
    decided = Counter((d["book"], d["tick"]) for d in run.decisions())
    assert max(decided.values()) == 1
    per_tick = Counter(t for _, t in decided)
    # From the first tick every book was decided (the APIServer may still be starting before: up to 4 s)
    # plus a second of warm-up (connections, the Ledger's resume query, the file's first read can make
    # a pair of the first tick decide for the next one instead), every book at every tick; the last
    # tick is cut by the stop. The windows run out of the first chunk's rows at tick ~60.
    first = min(t for t, n in per_tick.items() if n == len(books)) + 10
    last = max(per_tick)
    assert first <= 50 and last >= TICKS
    missing = [(b, t) for t in range(first, last) for b in books if (b, t) not in decided]
    assert not missing, f"{len(missing)} missing, e.g. {missing[:5]}"
    assert not disturbed(run)
    dm = run.counters("datamanager")
    assert dm["errors"] == 0 and dm["expired"] == 0 and dm["requests"] > 0
    if layout == "interleaved":
        assert dm["parks"] == 0 and dm["lines_caught_up"] == 0  # read once, never further than needed
    else:
        assert dm["catch_ups"] > 0  # parked books caught up from their offsets, not by a scan per book
        assert dm["lines_caught_up"] <= dm["lines_read"]


# What a flood's failure needs to be told apart: which ticks lost decisions, whether the Algorithm's
# requests timed out (and reopened its socket) or were shed, or the DataManager never saw them.
DM_KEYS = ("requests", "batch_requests", "replies", "errors", "shed", "shed_behind", "busy", "expired", "steppers",
           "waiting", "moves_refused", "overload_refused", "seeks", "parks")
ALGORITHM_KEYS = ("ticks", "last_tick", "stale_ticks", "superseded_ticks", "tick_stalls", "decisions", "skipped",
                  "skipped_dm", "skipped_dm_book", "missed", "overruns", "carried", "unstarted", "dm_requests",
                  "dm_timeouts", "dm_reopens", "dm_stale_replies", "dm_bad_frames")
SCHEDULER_KEYS = ("ticks_sent", "ticks_skipped", "ticks_repeated")  # a tick skipped: the Scheduler was held up


def flood_report(run: LauncherRun, begin: int, end: int, kept: float, flood: tuple[float, float]) -> str:
    """Per tick, the decisions made and when the last was printed, in seconds from the flooder's launch
    (the flood ran over ticks ``begin``..``end``, wall times ``flood``); the counters of the
    DataManager, the Algorithm and the Scheduler (their last status, up to a second old); the
    launcher's events and the warnings of all three."""
    per_tick: Counter[int] = Counter()
    last: dict[int, float] = {}
    for at, decision in run.timed_decisions():
        per_tick[decision["tick"]] += 1
        last[decision["tick"]] = at
    ticks = " ".join(f"{t}:{per_tick[t]}" + (f"@{last[t] - flood[0]:+.1f}s" if t in last else "")
                     for t in range(begin - 2, end + 4))
    dm, algorithm, scheduler = run.counters("datamanager"), run.counters("algorithm"), run.counters("scheduler")
    events = "; ".join(f"{e.actor} {e.event} {e.detail}"[:160] for e in run.events()
                       if e.event not in ("started", "stopping"))
    warned = [line[:200] for line in run.log if " WARNING " in line or " ERROR " in line]
    warnings = ([line for line in warned if " algorithm" in line][-10:]
                + [line for line in warned if " scheduler" in line][-3:]
                + [line for line in warned if " datamanager" in line and "rejected a frame" not in line][-3:])
    return "\n".join([
        f"kept {kept:.1%} over ticks {begin}..{end} (a flood of {flood[1] - flood[0]:.1f} s); decisions per tick "
        f"(count@last printed): {ticks}",
        "datamanager: " + " ".join(f"{k}={dm.get(k)}" for k in DM_KEYS),
        "algorithm: " + " ".join(f"{k}={algorithm.get(k)}" for k in ALGORITHM_KEYS),
        "scheduler: " + " ".join(f"{k}={scheduler.get(k)}" for k in SCHEDULER_KEYS),
        f"events: {events or 'none'}",
        *warnings])


def flood_while_deciding(ipc_dir: Path, tmp_path: Path, seconds: float) -> None:
    books = [f"K{i:03d}" for i in range(20)]
    csv = compact_csv(tmp_path / "prices.csv", "interleaved", books, 3000)
    run = start(ipc_dir, csv, books, 0.5)  # the flooder and the DataManager take a core each
    try:
        run.wait_until(lambda: len({d["tick"] for d in run.decisions()}) >= 3, 30, "3 ticks decided")
        # The flood starts once the DataManager knows the Algorithm as a stepper (served first under a
        # flood); a flood before that is a named limit (docs/limits.md), not what this test measures.
        run.wait_until(lambda: (run.counters("datamanager").get("steppers") or 0) >= 1, 30, "a stepper known")
        begin = max(d["tick"] for d in run.decisions()) + 1
        flood_started = time.time()
        flooder = subprocess.run([sys.executable, "-m", "bench.flood", f"ipc://{ipc_dir}/data-0.sock", "--seconds",
                                  str(seconds), "--books", ",".join(books)], cwd=REPO, capture_output=True, text=True,
                                 timeout=seconds + 30, check=True)
        flood = (flood_started, time.time())
        end = max(d["tick"] for d in run.decisions())
        run.wait_until(lambda: any(d["tick"] > end + 2 for d in run.decisions()), 30, "decisions after the flood")
        assert run.stop() == 0
    finally:
        run.kill_everything()
    assert int(flooder.stdout) > 10_000, "the flooder did flood"
    points = read_points(csv)
    decided = {(d["book"], d["tick"]) for d in run.decisions()}
    for decision in run.decisions():
        check_decision(decision, points)
    wanted = [(b, t) for t in range(begin, end + 1) for b in books]
    kept = sum(1 for key in wanted if key in decided) / len(wanted)
    report = flood_report(run, begin, end, kept, flood)
    print(report)  # shown by pytest with any failure below
    assert kept >= 0.95, f"only {kept:.1%} of the decisions during the flood\n{report}"
    assert not disturbed(run)
    counters = run.counters("datamanager")
    # Reached the DataManager: served, or (beyond the others' budget while the Algorithm steps) shed.
    assert counters["requests"] + counters["shed"] > 10_000 and counters["shed"] > 0


@pytest.mark.alone
def test_a_flooding_client_does_not_cost_the_algorithm_its_decisions(tmp_path: Path, ipc_dir: Path) -> None:
    flood_while_deciding(ipc_dir, tmp_path, 6.0)


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_a_flooding_client_for_30_seconds(tmp_path: Path, ipc_dir: Path) -> None:
    flood_while_deciding(ipc_dir, tmp_path, 30.0)
