"""The decisions an Algorithm worker has made and the Ledger has not yet acknowledged, as a pure object
(no I/O, the clock passed in): which batch to send now, which to send again, and when to look next.
A decision is held as its record (:func:`transport.protocol.decision_record`, the bytes a batch frame
is made of) with its seq, the worker's own number for it (the spool's).

Bounded: at most ``outbox_max`` decisions in all (a full outbox refuses the new decision: the caller
counts it; with a spool, the caller reads no more from it than fits), at most ``in_flight`` batches
formed at once. A batch is sent,
then sent again with the same id if no acknowledgement came within ``ack_timeout`` (the Ledger
inserts idempotently, so a resend never stores twice); a refusal ("busy", database unavailable) or a
socket with no Ledger behind it backs off from ``retry_min`` doubling to ``retry_max``. New decisions
wait up to ``linger`` seconds for company, so a tick's decisions leave in a few full batches.
"""

from __future__ import annotations

import itertools
from collections import deque
from dataclasses import dataclass
from typing import Final

from transport import limits

NEVER: Final = float("inf")


@dataclass(frozen=True, slots=True)
class LedgerPolicy:
    outbox_max: int = limits.LEDGER_OUTBOX_MAX
    batch_max: int = limits.LEDGER_BATCH_MAX
    # Batches sent and not yet acknowledged, at most. The Ledger commits what came together in one
    # transaction: 16 (3,200 decisions) against 4 decided 1.12-1.25x the books per tick at 100,000 books,
    # 2 s tick, --api-batch 500 (3 runs of 60 s each, 2026-12-05; bigger transactions share B-tree pages).
    in_flight: int = 16
    linger: float = 0.05  # seconds a new decision may wait for more to fill its batch
    ack_timeout: float = 5.0  # a batch not acknowledged within this is sent again
    retry_min: float = 0.1  # first wait after a refusal or no Ledger connected; doubles per failure
    retry_max: float = 2.0
    query_timeout: float = 2.0  # one LastDecidedRequest attempt
    resume_timeout: float = 5.0  # last_prices() gives up (the caller falls back) after this in all

    def __post_init__(self) -> None:
        if not 1 <= self.batch_max <= limits.LEDGER_BATCH_MAX:
            raise ValueError(f"batch_max must be within 1..{limits.LEDGER_BATCH_MAX}")
        if self.outbox_max < self.batch_max or self.in_flight < 1:
            raise ValueError("outbox_max must hold a batch, in_flight must be at least 1")
        if not 0 < self.retry_min <= self.retry_max or self.ack_timeout <= 0 or self.linger < 0:
            raise ValueError("timeouts must be positive, retry_min <= retry_max")


@dataclass(slots=True)
class Batch:
    batch_id: int
    seqs: tuple[int, ...]  # of its decisions, in order
    records: tuple[bytes, ...]  # the decisions, packed
    due: float  # when to send it (again)
    sends: int = 0


class Outbox:
    def __init__(self, policy: LedgerPolicy) -> None:
        self._policy = policy
        self._unsent: deque[tuple[float, int, bytes]] = deque()  # (added at, seq, record), oldest first
        self._batches: dict[int, Batch] = {}  # formed, not yet acknowledged: <= in_flight
        self._ids = itertools.count(1)
        self._size = 0
        self._backoff = 0.0  # current wait after a failure; 0 after a success
        self._paused_until = 0.0  # no send before this (backing off)
        self.flushing = False  # send partial batches at once (stopping)

    def __len__(self) -> int:
        """Decisions not yet acknowledged (in batches or not)."""
        return self._size

    @property
    def in_flight(self) -> int:
        """Batches formed and not yet acknowledged."""
        return len(self._batches)

    @property
    def unsent(self) -> int:
        """Decisions not yet in a batch."""
        return len(self._unsent)

    def add(self, seq: int, record: bytes, now: float) -> bool:
        """Keep decision ``seq`` until acknowledged; False (and nothing kept) when the outbox is full."""
        if self._size >= self._policy.outbox_max:
            return False
        self._unsent.append((now, seq, record))
        self._size += 1
        return True

    def next_batch(self, now: float) -> Batch | None:
        """The batch to send now, if any: a batch due again first (oldest id), else a new one."""
        if now < self._paused_until:
            return None
        due = [batch for batch in self._batches.values() if batch.due <= now]
        if due:
            batch = min(due, key=lambda b: b.batch_id)
        elif self._unsent and len(self._batches) < self._policy.in_flight and self._batch_ready(now):
            count = min(len(self._unsent), self._policy.batch_max)
            taken = [self._unsent.popleft() for _ in range(count)]
            batch = Batch(next(self._ids), tuple(seq for _, seq, _ in taken), tuple(rec for _, _, rec in taken), now)
            self._batches[batch.batch_id] = batch
        else:
            return None
        batch.sends += 1
        batch.due = now + self._policy.ack_timeout
        return batch

    def _batch_ready(self, now: float) -> bool:
        return (self.flushing or len(self._unsent) >= self._policy.batch_max
                or now - self._unsent[0][0] >= self._policy.linger)

    def acknowledged(self, batch_id: int) -> Batch | None:
        """The Ledger committed batch ``batch_id``: forget it; return it (None if unknown: a late
        acknowledgement of a batch acknowledged before)."""
        batch = self._batches.pop(batch_id, None)
        if batch is not None:
            self._size -= len(batch.seqs)
            self._backoff = 0.0
        return batch

    def refused(self, batch_id: int, now: float) -> bool:
        """The Ledger could not store batch ``batch_id`` (or it could not be sent): send it again after
        a growing wait. False if the batch is unknown."""
        batch = self._batches.get(batch_id)
        if batch is None:
            return False
        self._backoff = min(self._policy.retry_max, max(self._policy.retry_min, self._backoff * 2))
        self._paused_until = now + self._backoff
        batch.due = self._paused_until
        return True

    def resend_all(self, now: float) -> None:
        """The socket was reopened: every batch in flight is due again."""
        for batch in self._batches.values():
            batch.due = min(batch.due, now)

    def overdue(self, now: float) -> bool:
        """Some batch was sent and not acknowledged within the timeout."""
        return any(batch.sends and batch.due <= now for batch in self._batches.values())

    def next_due(self, now: float) -> float:
        """The earliest time :meth:`next_batch` may have something to send (NEVER if nothing waits)."""
        times = [batch.due for batch in self._batches.values()]
        if self._unsent and len(self._batches) < self._policy.in_flight:
            ready = now if self._batch_ready(now) else self._unsent[0][0] + self._policy.linger
            times.append(ready)
        return max(min(times), self._paused_until) if times else NEVER
