"""Every process of the system, read from /proc by the soak itself: RSS and CPU time, sampled with the
decisions printed so far.

Memory is judged *once warm*: from the middle sample to the last, each process (and their sum) may
grow at most ``max_growth`` percent (a cache that fills levels off in the first half; a leak keeps
growing in the second). CPU per decision is each process's CPU time (all threads) over the decisions
printed, between the first warm sample and the last, and over the whole run.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from bench.common import cpu_ns
from repricer_supervisor.procfs import rss_kib

MAX_SAMPLES: Final = 1000  # beyond: every other sample is dropped (the first and the last stay)


@dataclass(frozen=True, slots=True)
class Reading:
    pid: int
    rss_kib: int
    cpu_ns: int


@dataclass(frozen=True, slots=True)
class Sample:
    at: float
    decisions: int
    procs: Mapping[str, Reading]
    counters: Mapping[str, Mapping[str, int]]  # each actor's newest counters then

    @property
    def total_rss_kib(self) -> int:
        return sum(r.rss_kib for r in self.procs.values())


def read(pids: Mapping[str, int]) -> dict[str, Reading]:
    """RSS and CPU of each named process now (a process gone reads 0)."""
    return {name: Reading(pid, rss_kib(pid), cpu_ns(pid)) for name, pid in sorted(pids.items())}


class Samples:
    def __init__(self) -> None:
        self.samples: list[Sample] = []

    def add(self, sample: Sample) -> None:
        self.samples.append(sample)
        if len(self.samples) > MAX_SAMPLES:
            self.samples = [*self.samples[:-1:2], self.samples[-1]]

    def three(self, warm_from: float) -> tuple[Sample, Sample, Sample] | None:
        """The first sample once warm, the one nearest the middle of the rest, and the last."""
        warm = [s for s in self.samples if s.at >= warm_from]
        if len(warm) < 3:
            return None
        first, last = warm[0], warm[-1]
        middle = min(warm[1:-1], key=lambda s: abs(s.at - (first.at + last.at) / 2))
        return first, middle, last


def growth_pct(before: int, after: int) -> float:
    return 100.0 * (after - before) / before if before else 0.0


def memory(three: tuple[Sample, Sample, Sample], max_growth: float) -> tuple[dict[str, object], list[str]]:
    """RSS at start, middle and end of each process and of their sum; the processes (or "total")
    that grew more than ``max_growth`` percent from the middle to the end, or restarted."""
    start, middle, end = three
    out: dict[str, object] = {}
    grew: list[str] = []
    for name, last in end.procs.items():
        first, mid = start.procs.get(name), middle.procs.get(name)
        if first is None or mid is None or not (first.pid == mid.pid == last.pid):
            out[name] = {"restarted_or_new": True, "end_mib": round(last.rss_kib / 1024, 1)}
            grew.append(name)
            continue
        pct = growth_pct(mid.rss_kib, last.rss_kib)
        out[name] = {"start_mib": round(first.rss_kib / 1024, 1), "middle_mib": round(mid.rss_kib / 1024, 1),
                     "end_mib": round(last.rss_kib / 1024, 1), "growth_middle_to_end_pct": round(pct, 2),
                     "growth_start_to_end_pct": round(growth_pct(first.rss_kib, last.rss_kib), 2)}
        if pct > max_growth:
            grew.append(name)
    pct = growth_pct(middle.total_rss_kib, end.total_rss_kib)
    out["total"] = {"start_mib": round(start.total_rss_kib / 1024, 1),
                    "middle_mib": round(middle.total_rss_kib / 1024, 1),
                    "end_mib": round(end.total_rss_kib / 1024, 1), "growth_middle_to_end_pct": round(pct, 2),
                    "growth_start_to_end_pct": round(growth_pct(start.total_rss_kib, end.total_rss_kib), 2)}
    if pct > max_growth:
        grew.append("total")
    return {"at_s": [round(start.at, 1), round(middle.at, 1), round(end.at, 1)], "processes": out}, grew


def cpu_per_decision(start: Sample, end: Sample) -> dict[str, object]:
    """Microseconds of CPU per decision printed, per process and summed: between two samples (a
    process restarted in between is left out, and said so), and from each process's start."""
    decided = end.decisions - start.decisions
    window: dict[str, float | None] = {}
    whole: dict[str, float | None] = {}
    for name, last in end.procs.items():
        first = start.procs.get(name)
        same = first is not None and first.pid == last.pid
        window[name] = round((last.cpu_ns - first.cpu_ns) / 1000 / decided, 1) if same and first and decided else None
        whole[name] = round(last.cpu_ns / 1000 / end.decisions, 1) if end.decisions else None
    known = [v for v in window.values() if v is not None]
    return {"decisions": decided, "seconds": round(end.at - start.at, 1),
            "us_per_decision": window, "us_per_decision_total": round(sum(known), 1) if known else None,
            "whole_run_us_per_decision": whole,
            "whole_run_total": round(sum(v for v in whole.values() if v is not None), 1)}
