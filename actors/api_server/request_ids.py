"""Request ids for the mock API server: unique across restarts without a state file, in O(1) memory.

The scheme: one server run hands out sequential ids starting at ``start``, the wall clock in
microseconds since the epoch when the server starts (:func:`initial_id`). A restarted server
therefore starts above every id the previous run issued, **assuming** (1) the wall clock does not
step back between the runs and (2) a run issued fewer than 1,000,000 ids per second on average (it
consumes one microsecond of "clock headroom" per id). Both hold for a mock serving ~10k req/s with
NTP slewing. Where (1) cannot be trusted, the server can also persist a high-water mark
(``reserve`` callback, blocks of :data:`BLOCK` ids); the start is then ``max(clock, high water)``.

Which ids are "known" is a window, not a set: ``run_start <= id < next_id`` and
``id >= next_id - retention``. Memory is a handful of ints however many ids were issued.

Pure: no I/O here. The clock is a parameter and persisting is a callback supplied by the caller.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Final

MAX_ID: Final = 2**63 - 1  # ids stay within a signed 64-bit int: safe for any client's JSON parser
BLOCK: Final = 10_000
DEFAULT_RETENTION: Final = 1_000_000


def initial_id(clock_ns: Callable[[], int] = time.time_ns, floor: int = 0) -> int:
    """The first id of a new run: the clock in microseconds, never below ``floor`` (a persisted
    high-water mark, or the previous id + 1)."""
    return max(clock_ns() // 1000, floor)


def is_sold(request_id: int) -> bool:
    """The mock's verdict: even ids sold, odd ids did not."""
    return request_id % 2 == 0


def parse_id(text: str) -> int | None:
    """A request id from a URL segment: a plain ASCII non-negative integer <= MAX_ID, else None."""
    # isascii() first: str.isdigit() also accepts e.g. '²', which int() then rejects.
    if not (0 < len(text) <= 19 and text.isascii() and text.isdigit()):
        return None
    value = int(text)
    return value if value <= MAX_ID else None


class IdAllocator:
    """Sequential ids from ``start`` plus the "is this id known" window.

    With ``reserve``, ids are handed out in blocks: before the first id of a new block,
    ``reserve(block_end)`` is called (it must persist ``block_end`` durably, or raise). If it raises,
    no id is handed out and the allocator is unchanged, so a failed write never leaks an id that a
    later run could issue again.
    """

    __slots__ = ("_reserve", "block", "block_end", "next_id", "retention", "run_start")

    def __init__(self, start: int, retention: int = DEFAULT_RETENTION, *, block: int = BLOCK,
                 reserve: Callable[[int], None] | None = None) -> None:
        if not 0 <= start <= MAX_ID:
            raise ValueError(f"start {start} outside 0..{MAX_ID}")
        if retention < 1:
            raise ValueError("retention must be >= 1")
        if block < 1:
            raise ValueError("block must be >= 1")
        self.run_start = start
        self.next_id = start
        self.retention = retention
        self.block = block
        self._reserve = reserve
        # Without persistence there is no block to renew: one "block" up to the end of the id space
        # keeps allocate() down to a single comparison.
        self.block_end = start if reserve is not None else MAX_ID

    def reserve(self) -> None:
        """Persist the next block now (e.g. at start-up, to fail fast on an unwritable state file)."""
        if self._reserve is None:
            return
        end = min(self.next_id + self.block, MAX_ID)
        if end <= self.next_id:
            raise OverflowError("request id space exhausted")
        self._reserve(end)
        self.block_end = end

    def allocate(self) -> int:
        request_id = self.next_id
        if request_id >= self.block_end:
            if self._reserve is None:
                raise OverflowError("request id space exhausted")
            self.reserve()
        self.next_id = request_id + 1
        return request_id

    def allocate_many(self, count: int) -> int:
        """``count`` (>= 1) consecutive ids at once; the first is returned. All or nothing: if the block
        cannot be reserved, nothing is handed out."""
        if count < 1:
            raise ValueError("count must be >= 1")
        first = self.next_id
        end = first + count
        if end > self.block_end:
            if self._reserve is None or end > MAX_ID:
                raise OverflowError("request id space exhausted")
            # One reservation that covers the whole batch, however large the batch against the block.
            reserved = min(max(end, first + self.block), MAX_ID)
            self._reserve(reserved)
            self.block_end = reserved
        self.next_id = end
        return first

    @property
    def oldest_known(self) -> int:
        """The smallest id still known: ids ``oldest_known <= id < next_id`` are answered."""
        return max(self.run_start, self.next_id - self.retention)

    def is_known(self, request_id: int) -> bool:
        """Issued by this run and still within the last ``retention`` ids."""
        return self.oldest_known <= request_id < self.next_id

    @property
    def issued(self) -> int:
        return self.next_id - self.run_start
