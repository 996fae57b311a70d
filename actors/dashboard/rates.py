"""Rates from counters (pure): decisions/s, skipped/s and overruns/s over the last minutes, derived from
the counters each Algorithm worker reports in its ``ActorStatus`` messages; and the same way the
business of the last hour from the Ledger's tallies (price and competitor moves, guardrail hits).

A worker's counters start at 0 in every process, so a new pid (or a value that went down) starts a new
series: what it reports counts from 0. The first value seen of a series only sets its baseline (what
happened before the Dashboard was listening is not a burst now). Counts are kept per time bucket in a
ring of fixed length: memory does not grow with time, actors or messages.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Mapping
from typing import Any, Final

RATE_KEYS: Final = ("decisions", "skipped", "overruns")
RATE_ACTOR_PREFIX: Final = "algorithm"  # the kind whose counters are rates (one per worker)
SERIES_MAX: Final = 4096  # (actor, pid) series remembered at most; the oldest is forgotten first
# The Ledger's tallies the overview shows for the last hour (actors/ledger/watch.py); "stored" is the
# decisions it kept.
BUSINESS_KEYS: Final = ("stored", "prices_up", "prices_down", "competitor_up", "competitor_down")
BUSINESS_PREFIXES: Final = ("guardrail_",)
KEYS_MAX: Final = 64  # distinct counters counted at most (guardrail names are few)


def business_key(name: str) -> bool:
    return name in BUSINESS_KEYS or name.startswith(BUSINESS_PREFIXES)


class RateRing:
    def __init__(self, history: float, bucket: float, actor_prefix: str = RATE_ACTOR_PREFIX,
                 keys: Callable[[str], bool] | None = None) -> None:
        """``actor_prefix``: whose statuses count; ``keys``: which of their counters (default :data:`RATE_KEYS`)."""
        self.bucket = bucket
        self.size = max(1, int(history / bucket))
        self._prefix = actor_prefix
        self._wanted = keys or RATE_KEYS.__contains__
        self._ring: deque[tuple[int, dict[str, int]]] = deque(maxlen=self.size)
        self._last: dict[str, tuple[int, dict[str, int]]] = {}  # actor -> (pid, last counters)
        self.totals = dict.fromkeys(RATE_KEYS, 0) if keys is None else {}
        self._first: int | None = None  # the bucket of the first status seen: no rate is known before it

    def observe(self, actor: str, pid: int, counters: Mapping[str, int], now: float) -> None:
        """One status of ``actor``: add what its counters moved by since its last one."""
        if not actor.startswith(self._prefix) or pid <= 0:
            return
        if self._first is None:
            self._first = int(now // self.bucket)
        values = {k: v for k, v in counters.items() if self._wanted(k)}
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
            if key not in self.totals and len(self.totals) >= KEYS_MAX:
                continue
            counts[key] = counts.get(key, 0) + delta
            self.totals[key] = self.totals.get(key, 0) + delta

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

    def window(self, now: float) -> tuple[float, dict[str, int]]:
        """What moved over the whole ring up to ``now`` (the current bucket included), and how many seconds
        that covers: the ring's length, or less since the first status seen."""
        current = int(now // self.bucket)
        oldest = current - self.size + 1
        counts: dict[str, int] = {}
        for index, bucket in self._ring:
            if index >= oldest:
                for key, value in bucket.items():
                    counts[key] = counts.get(key, 0) + value
        start = max(oldest, self._first if self._first is not None else current) * self.bucket
        return max(0.0, now - start), counts
