"""Rates from counters (pure): decisions/s, skipped/s and overruns/s over the last minutes, derived from
the counters each Algorithm worker reports in its ``ActorStatus`` messages.

A worker's counters start at 0 in every process, so a new pid (or a value that went down) starts a new
series: what it reports counts from 0. The first value seen of a series only sets its baseline (what
happened before the Dashboard was listening is not a burst now). Counts are kept per time bucket in a
ring of fixed length: memory does not grow with time, actors or messages.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from typing import Any, Final

RATE_KEYS: Final = ("decisions", "skipped", "overruns")
RATE_ACTOR_PREFIX: Final = "algorithm"  # the kind whose counters are rates (one per worker)
SERIES_MAX: Final = 4096  # (actor, pid) series remembered at most; the oldest is forgotten first


class RateRing:
    def __init__(self, history: float, bucket: float) -> None:
        self.bucket = bucket
        self.size = max(1, int(history / bucket))
        self._ring: deque[tuple[int, dict[str, int]]] = deque(maxlen=self.size)
        self._last: dict[str, tuple[int, dict[str, int]]] = {}  # actor -> (pid, last counters)
        self.totals = dict.fromkeys(RATE_KEYS, 0)
        self._first: int | None = None  # the bucket of the first status seen: no rate is known before it

    def observe(self, actor: str, pid: int, counters: Mapping[str, int], now: float) -> None:
        """One status of ``actor``: add what its counters moved by since its last one."""
        if not actor.startswith(RATE_ACTOR_PREFIX) or pid <= 0:
            return
        if self._first is None:
            self._first = int(now // self.bucket)
        values = {k: counters[k] for k in RATE_KEYS if k in counters}
        previous = self._last.pop(actor, None)  # re-inserted below: the dict stays in recency order
        if len(self._last) >= SERIES_MAX:
            self._last.pop(next(iter(self._last)))
        self._last[actor] = (pid, values)
        if previous is None:
            return  # baseline only
        old_pid, old = previous
        moved: dict[str, int] = {}
        for key, value in values.items():
            before = old.get(key, 0) if old_pid == pid else 0
            delta = value - before if value >= before else value  # went down: a new series from 0
            if delta > 0:
                moved[key] = delta
        if moved:
            self._add(moved, now)

    def _add(self, moved: Mapping[str, int], now: float) -> None:
        index = int(now // self.bucket)
        if self._ring and self._ring[-1][0] > index:
            index = self._ring[-1][0]  # a clock step back: count it in the newest bucket
        if not self._ring or self._ring[-1][0] < index:
            self._ring.append((index, {}))
        counts = self._ring[-1][1]
        for key, delta in moved.items():
            counts[key] = counts.get(key, 0) + delta
            self.totals[key] += delta

    def series(self, now: float) -> dict[str, Any]:
        """The complete buckets up to ``now`` (zero-filled) since the first status seen, as per-second
        rates, oldest first; ``t`` is each bucket's end, epoch seconds."""
        current = int(now // self.bucket)
        first = max(current - self.size, self._first if self._first is not None else current)
        by_index = {index: counts for index, counts in self._ring if first <= index < current}
        indexes = range(first, current)
        out: dict[str, Any] = {"bucket": self.bucket, "t": [(i + 1) * self.bucket for i in indexes]}
        for key in RATE_KEYS:
            out[key] = [round(by_index.get(i, {}).get(key, 0) / self.bucket, 3) for i in indexes]
        return out

    def now(self, now: float) -> dict[str, float]:
        """The rates of the last complete bucket."""
        last = int(now // self.bucket) - 1
        counts = next((c for i, c in reversed(self._ring) if i == last), {})
        return {key: round(counts.get(key, 0) / self.bucket, 3) for key in RATE_KEYS}
