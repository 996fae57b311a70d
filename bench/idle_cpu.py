"""CPU when idle: utime + stime (from /proc/PID/stat) of the launcher and all its children, pricing 1
book every 5 s (the default x of 1 s), over 60 s after a warm-up (15 s in quick mode), as % of one core.
"""

from __future__ import annotations

import time

from bench import common
from bench.common import Config, Outcome, Row

TARGET_PCT = 0.2


def measure(cfg: Config) -> Outcome:
    window = cfg.pick(15.0, 60.0)
    warmup = cfg.pick(4.0, 8.0)
    with common.launcher(["--books", "B001", "--tick", "5"], status_every=3600.0) as run:
        run.wait_actors(4)
        time.sleep(warmup)
        pids = run.all_pids()
        before = {name: common.cpu_seconds(pid) for name, pid in pids.items()}
        start = time.monotonic()
        time.sleep(window)
        after = {name: common.cpu_seconds(pid) for name, pid in pids.items()}
        elapsed = time.monotonic() - start
        restarted = run.pids() != {k: v for k, v in pids.items() if k != "launcher"}
    per = {name: 100.0 * (after[name] - before[name]) / elapsed for name in pids}
    total = sum(per.values())
    out = Outcome(raw={"window_s": elapsed, "per_process_pct": per, "total_pct": total, "restarted": restarted})
    detail = ", ".join(f"{name} {pct:.2f}%" for name, pct in sorted(per.items()))
    out.rows.append(Row(f"idle CPU, 1 book, tick 5s, over {elapsed:.0f}s (% of one core)", total, "%",
                        target="< 0.2%", met=total < TARGET_PCT, note=detail))
    return out
