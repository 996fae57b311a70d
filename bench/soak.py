"""Soak run: the real launcher for a long time (or many accelerated ticks), sampling the supervisor's
counters and every process's RSS; reports restarts, hangs, decisions and memory growth.

    python -m bench.soak --tick 0.05 --ticks 4320            # six hours of 5 s ticks, accelerated
    python -m bench.soak --tick 5 --duration 1800            # 30 minutes at the default tick

Exit code 0 only if there was no restart, no hang, no duplicate decision, no (book, tick) missing
without an overrun or skip counted for it, and RSS stayed flat (< --max-growth % from the first
sample after warm-up to the last).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
STATUS = re.compile(r"status (\S+) pid=(\S+) rss_kib=(\d+)")
FINAL_COUNTERS = re.compile(r"stopped; counters (\{.*\})")
LAUNCHER_STATUS = re.compile(
    r"status launcher pid=\d+ rss_kib=(\d+) total_rss_kib=(\d+) total_pss_kib=(\d+) (\{.*\})")


@dataclass
class SoakResult:
    seconds: float
    ticks: int
    decisions: int
    duplicates: int
    missing_decisions: int  # (book, tick) pairs in the run's span that printed no decision
    counters: dict[str, int]
    algorithm_counters: dict[str, int] = field(default_factory=dict)
    rss_kib: dict[str, list[int]] = field(default_factory=dict)
    total_rss_kib: list[int] = field(default_factory=list)
    total_pss_kib: list[int] = field(default_factory=list)

    def unaccounted(self) -> int:
        """Missing decisions that no counter explains: a silent loss (must be 0)."""
        # "missed": pair-ticks the Algorithm never started (a pair busy at a tick decides it once free)
        explained = self.algorithm_counters.get("missed", 0) + self.algorithm_counters.get("skipped", 0)
        return max(0, self.missing_decisions - explained)

    def growth(self, samples: list[int], warmup: int) -> float:
        """Percent growth from the first sample after ``warmup`` samples to the last."""
        usable = samples[warmup:] or samples
        return 100.0 * (usable[-1] - usable[0]) / usable[0] if usable and usable[0] else 0.0

    def report(self, warmup: int) -> dict[str, object]:
        return {
            "seconds": round(self.seconds, 1),
            "ticks": self.ticks,
            "decisions": self.decisions,
            "duplicates": self.duplicates,
            "missing_decisions": self.missing_decisions,
            "overruns": self.algorithm_counters.get("overruns", 0),
            "skipped": self.algorithm_counters.get("skipped", 0),
            "restarts": self.counters.get("exits", 0),
            "hangs": self.counters.get("hangs", 0),
            "samples": len(self.total_rss_kib),
            "rss_kib_first_last_max": {name: [s[min(warmup, len(s) - 1)], s[-1], max(s)]
                                       for name, s in self.rss_kib.items() if s},
            "rss_growth_pct": {name: round(self.growth(s, warmup), 2) for name, s in self.rss_kib.items()},
            "total_rss_growth_pct": round(self.growth(self.total_rss_kib, warmup), 2),
            "total_pss_kib_first_last": [self.total_pss_kib[min(warmup, len(self.total_pss_kib) - 1)],
                                         self.total_pss_kib[-1]] if self.total_pss_kib else [],
            "total_pss_growth_pct": round(self.growth(self.total_pss_kib, warmup), 2),
        }


def soak(tick: float, duration: float, books: int = 5, delay: float = 0.0, status_every: float = 5.0,
         extra: Sequence[str] = ()) -> SoakResult:
    """Run the launcher for ``duration`` seconds and collect what it says."""
    with tempfile.TemporaryDirectory(prefix="soak-", dir="/tmp") as run_dir:
        book_ids = ",".join(f"B{i:03}" for i in range(1, books + 1))
        command = [sys.executable, str(REPO / "launcher.py"), "--json", "--run-dir", run_dir, "--api-port",
                   str(_free_port()), "--tick", str(tick), "--delay", str(delay), "--books", book_ids,
                   "--status-every", str(status_every), "--duration", str(duration), *extra]
        process = subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        keys: Counter[tuple[str, int]] = Counter()
        ticks_per_book: dict[str, set[int]] = defaultdict(set)
        log: list[str] = []

        def read_errors() -> None:
            assert process.stderr is not None
            for line in process.stderr:
                if "status" in line or "WARNING" in line or "ERROR" in line or "stopped; counters" in line:
                    log.append(line.rstrip())
                    del log[:-5000]  # bounded: a soak must not grow its own memory either

        reader = threading.Thread(target=read_errors, daemon=True)
        reader.start()
        started = time.monotonic()
        assert process.stdout is not None
        for line in process.stdout:
            decision = json.loads(line)
            keys[(decision["book"], decision["tick"])] += 1
            ticks_per_book[decision["book"]].add(decision["tick"])
        try:
            process.wait(timeout=duration + 60)
        except subprocess.TimeoutExpired:
            process.send_signal(signal.SIGKILL)
            raise
        reader.join(10)
        elapsed = time.monotonic() - started

    result = SoakResult(elapsed, 0, sum(keys.values()), sum(n - 1 for n in keys.values() if n > 1), 0, {})
    all_ticks = set().union(*ticks_per_book.values()) if ticks_per_book else set()
    result.ticks = len(all_ticks)
    if all_ticks:
        span = set(range(min(all_ticks), max(all_ticks) + 1))
        result.missing_decisions = sum(len(span - seen) for seen in ticks_per_book.values())
    for line in log:
        if (match := STATUS.search(line)) and match.group(1) != "launcher":
            result.rss_kib.setdefault(match.group(1), []).append(int(match.group(3)))
        if "algorithm" in line and (match := FINAL_COUNTERS.search(line)):
            result.algorithm_counters = json.loads(match.group(1).replace("'", '"'))
        if match := LAUNCHER_STATUS.search(line):
            result.rss_kib.setdefault("launcher", []).append(int(match.group(1)))
            result.total_rss_kib.append(int(match.group(2)))
            result.total_pss_kib.append(int(match.group(3)))
            result.counters = json.loads(match.group(4).replace("'", '"'))
    return result


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.soak", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tick", type=float, default=0.05)
    parser.add_argument("--ticks", type=int, default=4320, help="run for this many ticks (default %(default)s)")
    parser.add_argument("--duration", type=float, default=None, help="seconds; overrides --ticks")
    parser.add_argument("--books", type=int, default=5)
    parser.add_argument("--delay", type=float, default=0.0)
    parser.add_argument("--status-every", type=float, default=None, help="seconds between RSS samples")
    parser.add_argument("--max-growth", type=float, default=2.0, help="percent (default %(default)s)")
    args = parser.parse_args(argv)
    duration = args.duration if args.duration is not None else args.tick * args.ticks + 3.0  # + t0 allowance
    status_every = args.status_every or max(1.0, duration / 60)
    result = soak(args.tick, duration, args.books, args.delay, status_every)
    warmup = max(1, len(result.total_rss_kib) // 10)
    report = result.report(warmup)
    print(json.dumps({"command": " ".join(["python -m bench.soak", *(argv or sys.argv[1:])]), "pid": os.getpid(),
                      **report}, indent=2))
    growth = result.growth(result.total_rss_kib, warmup)
    healthy = (result.counters.get("exits", 0) == 0 and result.counters.get("hangs", 0) == 0
               and result.duplicates == 0 and result.unaccounted() == 0 and abs(growth) < args.max_growth)
    return 0 if healthy else 1


if __name__ == "__main__":
    sys.exit(main())
