"""Garbage collection on the hot path: measured and tuned.

:class:`GcWatch` times every collection through ``gc.callbacks``: ``gc_pause_max_us`` is the longest
pause seen on the wall clock, ``gc_cpu_max_us`` the most CPU one collection used (a pause on a busy
machine also holds the time the process waited for a core; the CPU is the collector's own cost),
``gc_collections_full`` the full ones. :func:`tune` runs after start-up: it collects
once and *freezes* what exists (the pairs, their strategies, the modules: objects that live as long
as the process), so later full collections no longer walk them, and raises the young-generation
threshold so the collector runs a few times per tick instead of hundreds (each young collection only
walks what the decisions in flight allocated). Measured in ``bench/throughput.py`` (README).
"""

from __future__ import annotations

import gc
import time
from typing import Any, Final

GEN0_THRESHOLD: Final = 20_000  # allocations between young collections (CPython's default: 700)
GEN1_THRESHOLD: Final = 20
GEN2_THRESHOLD: Final = 100


def tune() -> None:
    gc.collect()
    gc.freeze()
    gc.set_threshold(GEN0_THRESHOLD, GEN1_THRESHOLD, GEN2_THRESHOLD)


class GcWatch:
    def __init__(self) -> None:
        self._started = 0.0
        self._cpu_started = 0.0
        self.counters: dict[str, int] = {"gc_collections": 0, "gc_collections_full": 0, "gc_pause_max_us": 0,
                                         "gc_pause_total_us": 0, "gc_pause_max_generation": -1,
                                         "gc_cpu_max_us": 0}

    def _callback(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
            self._cpu_started = time.process_time()
            return
        pause = int((time.perf_counter() - self._started) * 1e6)
        cpu = int((time.process_time() - self._cpu_started) * 1e6)
        counters = self.counters
        if cpu > counters["gc_cpu_max_us"]:
            counters["gc_cpu_max_us"] = cpu
        counters["gc_collections"] += 1
        if info.get("generation") == 2:
            counters["gc_collections_full"] += 1
        counters["gc_pause_total_us"] += pause
        if pause > counters["gc_pause_max_us"]:
            counters["gc_pause_max_us"] = pause
            counters["gc_pause_max_generation"] = int(info.get("generation", -1))

    def __enter__(self) -> GcWatch:
        gc.callbacks.append(self._callback)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._callback in gc.callbacks:
            gc.callbacks.remove(self._callback)
