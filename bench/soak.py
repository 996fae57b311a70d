"""Soak run: the real launcher for a long time (or many accelerated ticks), sampling the supervisor's
counters and every process's RSS; reports restarts, hangs, decisions and memory growth.

    python -m bench.soak --tick 0.05 --ticks 4320            # six hours of 5 s ticks, accelerated
    python -m bench.soak --tick 5 --duration 1800            # 30 minutes at the default tick

Exit code 0 only if there was no restart, no hang, no duplicate decision, no (book, tick) missing
without a counter explaining it (an overrun, a skip, a skipped or superseded tick), and RSS stayed
flat (< --max-growth % from the first sample after warm-up to the last).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field

from bench.driver import launched
from transport.protocol import ActorStatus, SupervisorEvent


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
    pairs: int = 0  # (book, strategy) pairs priced
    scheduler_counters: dict[str, int] = field(default_factory=dict)

    def unaccounted(self) -> int:
        """Missing decisions that no counter explains: a silent loss (must be 0). The Algorithm counts
        ``missed``: pair-ticks it never started -- pairs a tick could not start before the next one
        (a pair busy at a tick decides it once free), and every pair of a tick it never saw (one the
        Scheduler skipped, or the Algorithm superseded: its seq is jumped over)."""
        counted = self.algorithm_counters.get
        explained = counted("missed", 0) + counted("skipped", 0)
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
            "superseded_ticks": self.algorithm_counters.get("superseded_ticks", 0),
            "ticks_skipped": self.scheduler_counters.get("ticks_skipped", 0),
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


def soak(tick: float, duration: float | None = None, books: int = 5, delay: float = 0.0, status_every: float = 5.0,
         extra: Sequence[str] = (), ticks: int | None = None) -> SoakResult:
    """Run the launcher for ``duration`` seconds (``--duration``), or until ``ticks`` consecutive ticks
    have been decided from the first one (however long the start took), and follow what it publishes:
    decisions on stdout, every process's status (RSS, counters) and the supervisor's events."""
    if (duration is None) == (ticks is None):
        raise ValueError("give a duration or a number of ticks")
    keys: Counter[tuple[str, int]] = Counter()
    decided: list[int] = []  # [first, newest] tick decided
    ticks_per_book: dict[str, set[int]] = defaultdict(set)
    result = SoakResult(0.0, 0, 0, 0, 0, {}, pairs=books)
    latest: dict[str, ActorStatus] = {}

    def on_decision(at: float, line: bytes) -> None:
        decision = json.loads(line)
        keys[(decision["book"], decision["tick"])] += 1
        ticks_per_book[decision["book"]].add(decision["tick"])
        if decided:
            decided[1] = max(decided[1], decision["tick"])
        else:
            decided.extend([decision["tick"], decision["tick"]])

    def on_message(message: SupervisorEvent | ActorStatus) -> None:
        if not isinstance(message, ActorStatus):
            return
        if message.actor != "launcher":
            latest[message.actor] = message
            return
        if not decided:
            return  # still starting (imports, first reads): memory is not steady before a first decision
        # A periodic report (every --status-every): one sample of every process's memory.
        result.rss_kib.setdefault("launcher", []).append(message.rss_kib - sum(s.rss_kib for s in latest.values()))
        for name, status in latest.items():
            if status.pid:
                result.rss_kib.setdefault(name, []).append(status.rss_kib)
        result.total_rss_kib.append(message.rss_kib)
        result.total_pss_kib.append(message.pss_kib)

    book_ids = ",".join(f"B{i:03}" for i in range(1, books + 1))
    args = ["--tick", str(tick), "--delay", str(delay), "--books", book_ids, *extra]
    if duration is not None:
        args += ["--duration", str(duration)]
    with launched(args, status_every, on_decision=on_decision, on_message=on_message) as run:
        if ticks is not None:
            run.wait_until(lambda: bool(decided) and decided[1] - decided[0] + 1 >= ticks,
                           60 + 4 * tick * ticks, f"{ticks} ticks decided")
            code = run.stop(timeout=60)
        else:
            code = run.wait((duration or 0) + 60)
        if code != 0:
            raise RuntimeError(f"the launcher exited with code {code}:\n{run.log_tail()}")
        result.seconds = run.wait_until(lambda: run.feed.end, 5, "the launcher's last event", False).ts - \
            run.started_at
        final = {s.actor: s for s in run.statuses() if s.actor != "launcher"}  # each actor's last word
    result.decisions = sum(keys.values())
    result.duplicates = sum(n - 1 for n in keys.values() if n > 1)
    # Restarts and hangs over the whole run, as the supervisor counted them for each process.
    result.counters = {"exits": sum(s.restarts for s in final.values()), "hangs": sum(s.hangs for s in final.values())}
    result.scheduler_counters = dict(final["scheduler"].counters) if "scheduler" in final else {}
    for name, status in final.items():
        if name.startswith("algorithm"):
            for key, value in status.counters.items():
                result.algorithm_counters[key] = result.algorithm_counters.get(key, 0) + value
    all_ticks = set().union(*ticks_per_book.values()) if ticks_per_book else set()
    result.ticks = len(all_ticks)
    if all_ticks:
        span = set(range(min(all_ticks), max(all_ticks) + 1))
        result.missing_decisions = sum(len(span - seen) for seen in ticks_per_book.values())
    return result


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.soak", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tick", type=float, default=0.05)
    parser.add_argument("--ticks", type=int, default=4320,
                        help="run until this many ticks are decided, from the first (default %(default)s)")
    parser.add_argument("--duration", type=float, default=None, help="seconds; overrides --ticks")
    parser.add_argument("--books", type=int, default=5)
    parser.add_argument("--delay", type=float, default=0.0)
    parser.add_argument("--status-every", type=float, default=None, help="seconds between RSS samples")
    parser.add_argument("--max-growth", type=float, default=2.0, help="percent (default %(default)s)")
    args = parser.parse_args(argv)
    seconds = args.duration if args.duration is not None else args.tick * args.ticks
    status_every = args.status_every or max(1.0, seconds / 60)
    result = soak(args.tick, args.duration, args.books, args.delay, status_every,
                  ticks=None if args.duration is not None else args.ticks)
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
