"""CPU when idle: CPU time (all threads, from /proc/PID/task/*/schedstat) of the launcher and all its
children, pricing 1 book every 5 s (the default x of 1 s), over 60 s after a warm-up (15 s in quick
mode), as % of one core.

Baseline, measured over the same window: one bare asyncio process (uvloop) that wakes once a second
and does nothing else -- the price of a single wake-up on this machine, which bounds how low an
actor system with heartbeats can go.
"""

from __future__ import annotations

import subprocess
import sys
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
        waker = subprocess.Popen([sys.executable, "-c", _WAKER], stdin=subprocess.DEVNULL)
        try:
            time.sleep(1.0)  # let the waker import and settle
            before = {name: common.cpu_ns(pid) for name, pid in pids.items()}
            waker_before = common.cpu_ns(waker.pid)
            start = time.monotonic()
            time.sleep(window)
            after = {name: common.cpu_ns(pid) for name, pid in pids.items()}
            waker_after = common.cpu_ns(waker.pid)
            elapsed = time.monotonic() - start
        finally:
            waker.kill()
            waker.wait(5)
        restarted = run.pids() != {k: v for k, v in pids.items() if k != "launcher"}
    per = {name: 100.0 * (after[name] - before[name]) / 1e9 / elapsed for name in pids}
    total = sum(per.values())
    floor = 100.0 * (waker_after - waker_before) / 1e9 / elapsed
    out = Outcome(raw={"window_s": elapsed, "per_process_pct": per, "total_pct": total, "restarted": restarted,
                       "one_wakeup_per_second_pct": floor})
    detail = ", ".join(f"{name} {pct:.3f}%" for name, pct in sorted(per.items()))
    out.rows.append(Row(f"idle CPU, 1 book, tick 5s, over {elapsed:.0f}s (% of one core)", total, "%",
                        baseline=floor, baseline_label="a bare asyncio loop waking 1/s",
                        target="< 0.2%", met=total < TARGET_PCT, note=detail))
    return out


_WAKER = """
import asyncio, uvloop
async def main():
    while True:
        await asyncio.sleep(1.0)
uvloop.run(main())
"""
