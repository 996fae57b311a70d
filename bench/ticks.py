"""Tick accuracy, from a long accelerated *soak* run (5 books, tick 0.05 s; 3,000 ticks in full
mode, 300 in quick mode) that :mod:`bench.memory` shares for its RSS-growth measurement.

* send jitter: the Scheduler's own ``sent_at - scheduled_at`` per tick;
* receive jitter: our SUB's receive wall time - ``scheduled_at`` (adds ZeroMQ delivery);
* drift: median send lateness of the last 10% of ticks minus that of the first 10% (an absolute
  schedule has none), plus ticks missing from the sequence we received and the Scheduler's
  ``ticks_skipped`` counter.
"""

from __future__ import annotations

import time
from typing import Any

from bench import common
from bench.common import Config, Outcome, Row

SOAK_TICK = 0.05
SOAK_BOOKS = 5
SKIP_FIRST = 10  # ticks around startup, while the actors are still connecting
TARGET_P99_MS = 2.0


def _soak(n_ticks: int) -> dict[str, Any]:
    args = ["--books", ",".join(common.book_ids(SOAK_BOOKS)), "--data-file", str(common.REPO / "data" / "data.csv"),
            "--tick", repr(SOAK_TICK), "--delay", "0"]
    rss_samples: list[tuple[float, dict[str, int]]] = []
    with common.launcher(args) as run:
        run.wait_actors(4)
        next_sample = time.monotonic()

        def sampled_until_done() -> bool:  # an RSS sample a second meanwhile
            nonlocal next_sample
            if time.monotonic() >= next_sample:
                rss_samples.append((time.time(), run.rss()))
                next_sample += 1.0
            return bool(run.ticks.ticks) and run.ticks.ticks[-1][0].seq >= n_ticks

        run.wait_until(sampled_until_done, 30.0 + n_ticks * SOAK_TICK * 1.5, f"tick {n_ticks}")
        rss_samples.append((time.time(), run.rss()))
        scheduler = run.counters("scheduler")
        algorithm = run.counters("algorithm")
        ticks = list(run.ticks.ticks)
        decisions = run.decision_count()
    return {"ticks": ticks, "rss": rss_samples, "scheduler": scheduler, "algorithm": algorithm,
            "decisions": decisions, "n_ticks": n_ticks}


def soak(cfg: Config) -> dict[str, Any]:
    n = cfg.pick(300, 3000)
    return common.cached(f"soak:{n}", lambda: _soak(n))


def measure(cfg: Config) -> Outcome:
    data = soak(cfg)
    ticks = [(t, at) for t, at in data["ticks"] if t.seq >= SKIP_FIRST]
    send = [t.sent_at - t.scheduled_at for t, _ in ticks]
    recv = [at - t.scheduled_at for t, at in ticks]
    s_send, s_recv = common.summary_ms(send), common.summary_ms(recv)
    tenth = max(1, len(send) // 10)
    drift_ms = (common.percentile(send[-tenth:], 50) - common.percentile(send[:tenth], 50)) * 1000
    seqs = [t.seq for t, _ in ticks]
    missing = (seqs[-1] - seqs[0] + 1 - len(set(seqs))) if seqs else 0
    skipped = data["scheduler"].get("ticks_skipped", 0)
    out = Outcome(raw={"send_ms": s_send, "recv_ms": s_recv, "drift_ms": drift_ms, "missing": missing,
                       "ticks_skipped": skipped, "received": len(ticks), "n_ticks": data["n_ticks"],
                       "algorithm": data["algorithm"], "decisions": data["decisions"]})
    n = len(ticks)
    out.rows.append(Row(f"tick send jitter p50 (sent_at - scheduled_at, {n} ticks at {SOAK_TICK}s)", s_send["p50"],
                        "ms"))
    out.rows.append(Row("tick send jitter p99", s_send["p99"], "ms", target="< 2 ms",
                        met=s_send["p99"] < TARGET_P99_MS))
    out.rows.append(Row("tick send jitter max", s_send["max"], "ms"))
    out.rows.append(Row("tick receive delay p50 (SUB receive - scheduled_at)", s_recv["p50"], "ms"))
    out.rows.append(Row("tick receive delay p99", s_recv["p99"], "ms", target="< 2 ms",
                        met=s_recv["p99"] < TARGET_P99_MS))
    out.rows.append(Row("tick receive delay max", s_recv["max"], "ms"))
    out.rows.append(Row(f"tick drift over {n} ticks (last 10% - first 10% median lateness)", drift_ms, "ms",
                        target="no drift (|d| < 1 ms, no skipped tick)",
                        met=abs(drift_ms) < 1.0 and missing == 0 and skipped == 0,
                        note=f"missing {missing}, ticks_skipped {skipped}"))
    return out
