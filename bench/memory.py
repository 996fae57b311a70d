"""Memory: RSS (from /proc/PID/statm) of the launcher and each actor, at 1 book and at 10k books (the
pipeline runs of :mod:`bench.throughput`, sampled at their end); its growth over the long soak run of
:mod:`bench.ticks` (first sample after a warm-up vs the last); the DataManager's RSS after reading a
10M-row (1M in quick mode) CSV vs a 1,000-row one (:mod:`bench.cold_read`).
"""

from __future__ import annotations

from bench import cold_read, throughput, ticks
from bench.common import Config, Outcome, Row

TARGET_TOTAL_KIB = 150 * 1024
WARMUP_SAMPLES = 5  # seconds of the soak run before the first sample that counts


def _mib(kib: float) -> float:
    return kib / 1024


def measure(cfg: Config) -> Outcome:
    out = Outcome()
    measured = cfg.pick(4, 8)
    one = throughput.run_pipeline(1, 1, measured=measured)["rss_kib"]
    many = throughput.run_pipeline(10000, 1, measured=measured)["rss_kib"]
    out.raw["one_book_kib"] = one
    out.raw["10k_books_kib"] = many
    per = ", ".join(f"{k} {_mib(v):.0f}" for k, v in one.items() if k != "total")
    out.rows.append(Row("total RSS, 1 book (launcher and actors)", _mib(one["total"]), "MiB", target="< 150 MB",
                        met=one["total"] * 1024 < 150e6, note=f"MiB: {per}"))
    per = ", ".join(f"{k} {_mib(v):.0f}" for k, v in many.items() if k != "total")
    out.rows.append(Row("total RSS, 10k books", _mib(many["total"]), "MiB", _mib(one["total"]), "1 book",
                        note=f"MiB: {per}"))
    soak = ticks.soak(cfg)
    samples = soak["rss"]
    first = samples[min(WARMUP_SAMPLES, len(samples) - 1)][1]["total"]
    last = samples[-1][1]["total"]
    growth = 100.0 * (last - first) / first if first else 0.0
    out.raw["soak"] = {"first_kib": first, "last_kib": last, "growth_pct": growth, "samples": samples,
                       "n_ticks": soak["n_ticks"]}
    worst = max(
        (100.0 * (samples[-1][1].get(name, 0) - samples[min(WARMUP_SAMPLES, len(samples) - 1)][1].get(name, 0))
         / max(1, samples[min(WARMUP_SAMPLES, len(samples) - 1)][1].get(name, 0)), name)
        for name in samples[-1][1] if name != "total")
    out.rows.append(Row(f"total RSS growth over {soak['n_ticks']} ticks at {ticks.SOAK_TICK}s, 5 books", growth,
                        "%", target="< 2%", met=growth < 2.0,
                        note=f"{_mib(first):.1f} -> {_mib(last):.1f} MiB; worst process {worst[1]} "
                             f"{worst[0]:+.1f}%"))
    # A leak grows steadily; a cache filling up (SQLite's pages, the allocator's arenas) levels off.
    # The second half of the same run tells them apart.
    half = samples[len(samples) // 2][1]["total"]
    late = 100.0 * (last - half) / half if half else 0.0
    out.raw["soak"]["second_half_growth_pct"] = late
    out.rows.append(Row("total RSS growth over the second half of the same run", late, "%", target="< 2%",
                        met=late < 2.0, note=f"{_mib(half):.1f} -> {_mib(last):.1f} MiB: a leak would keep growing"))
    big_rows = cfg.pick(200_000, 2_000_000)
    big = cold_read.dm_rss(big_rows)
    small = cold_read.dm_rss(200)
    ratio_label = f"{cold_read.BOOKS * big_rows / 1e6:g}M rows vs 1,000 rows"
    out.raw["dm_rss"] = {"big_kib": big["rss_kib"], "small_kib": small["rss_kib"]}
    out.rows.append(Row(f"DataManager RSS after reading {ratio_label}", _mib(big["rss_kib"]), "MiB",
                        _mib(small["rss_kib"]), "1,000-row CSV", "about the same (<= 1.1x)",
                        met=big["rss_kib"] <= 1.1 * small["rss_kib"]))
    return out
