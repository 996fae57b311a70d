"""Stand-ins for the Algorithm's edges, for testing its pipeline and pool without sockets (h11-style):
the DataManager, the APIServer, the sink and a clock the test moves by hand. Each answers at once (one
turn of the event loop) with what the test set."""

from __future__ import annotations

import asyncio
import heapq
import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal

from actors.algorithm.clients.api import READ, REGISTER, ApiError, RateLimited
from actors.algorithm.clients.data_manager import BatchesUnsupported, FileUnavailable, Refused, RequestFailed
from actors.algorithm.clients.pacing import TokenBucket
from actors.algorithm.pairs import PairTable
from actors.pricing.strategies import Pair, Strategy
from transport.protocol import Decision, LastPricesReply, Tick, WindowsReply, data_file_unavailable


def window(book: str, tick: int, count: int = 5) -> tuple[Decimal, ...]:
    """Prices distinct per book and tick, so a mix-up shows."""
    base = Decimal(10 + sum(map(ord, book)) % 7)
    return tuple(base + Decimal(tick) + Decimal(i) / 4 for i in range(count))


def tick(seq: int, interval: float = 1.0, t0: float = 1000.0) -> Tick:
    return Tick(seq, t0 + seq * interval, t0 + seq * interval, interval, t0)


def table(books: Sequence[str], delay: str = "0", name: str = "default") -> PairTable:
    strategy = Strategy(name, delay=Decimal(delay))
    return PairTable(Pair(book, strategy) for book in books)


class FakeClock:
    """Time as the pool sees it (``time`` and ``call_at`` of an event loop), moved by :meth:`advance`."""

    @dataclass(order=True)
    class Timer:
        when: float
        number: int
        callback: Callable[[], object] = field(compare=False)
        cancelled: bool = field(default=False, compare=False)

        def cancel(self) -> None:
            self.cancelled = True

    def __init__(self, now: float = 100.0) -> None:
        self.now = now
        self._timers: list[FakeClock.Timer] = []
        self._numbers = itertools.count()

    def time(self) -> float:
        return self.now

    def __call__(self) -> float:  # as a plain clock (a token bucket's)
        return self.now

    def call_at(self, when: float, callback: Callable[[], object], /) -> FakeClock.Timer | asyncio.Handle:
        if when <= self.now:  # as an event loop does: due already, so at its next turn
            return asyncio.get_running_loop().call_soon(callback)
        timer = FakeClock.Timer(when, next(self._numbers), callback)
        heapq.heappush(self._timers, timer)
        return timer

    def advance(self, seconds: float) -> None:
        """Move time on; run the timers now due, in order."""
        self.now += seconds
        while self._timers and self._timers[0].when <= self.now:
            timer = heapq.heappop(self._timers)
            if not timer.cancelled:
                timer.callback()


@dataclass
class FakeDataManager:
    """Answers windows (``window``), singly and in batches; ``refused`` books get an error in their place;
    ``down`` fails every request; ``old`` is a DataManager from before batches (``batches``: what the
    client knows of that: None until a batch was tried)."""

    batches: bool | None = True
    old: bool = False
    refused: frozenset[str] = frozenset()
    down: bool = False
    short: frozenset[str] = frozenset()  # books answered with one price too few
    file_error: str = ""  # the data file unusable for this reason: every book gets its error
    requests: list[tuple[str, int, tuple[str, ...]]] = field(default_factory=list)  # (kind, tick, books)

    def _window(self, book: str, seq: int, count: int) -> tuple[Decimal, ...]:
        return window(book, seq, count - 1 if book in self.short else count)

    async def last_prices(self, book: str, tick: int, count: int) -> LastPricesReply:
        await asyncio.sleep(0)
        self.requests.append(("one", tick, (book,)))
        if self.down:
            raise RequestFailed("DataManager: no reply within 0.2s after 3 attempts")
        if self.file_error:  # as the real client raises it
            raise FileUnavailable(f"DataManager refused {book}@{tick}: {data_file_unavailable(self.file_error)}")
        if book in self.refused:
            raise Refused(f"DataManager refused {book}@{tick}: unknown book")
        return LastPricesReply(1, book, tick, self._window(book, tick, count))

    async def windows(self, tick: int, count: int, books: Sequence[str]) -> WindowsReply:
        await asyncio.sleep(0)
        self.requests.append(("many", tick, tuple(books)))
        if self.old:
            self.batches = False
            raise BatchesUnsupported("the DataManager does not answer WindowsRequest")
        if self.down:
            raise RequestFailed("DataManager: no reply within 0.2s after 3 attempts")
        if self.file_error:
            return WindowsReply(1, tick, tuple(() for _ in books), tuple(data_file_unavailable(self.file_error)
                                                                         for _ in books))
        return WindowsReply(1, tick, tuple(() if b in self.refused else self._window(b, tick, count) for b in books),
                            tuple("unknown book" if b in self.refused else "" for b in books))


@dataclass
class FakeApi:
    """The APIServer: ids from 101 on (even ids sold); ``limited[endpoint]`` answers that many next calls
    with 429 (pausing the endpoint's bucket ``retry_after`` seconds, as the real client does);
    ``refused`` books get an item error; ``fail`` answers every call with an error."""

    clock: Callable[[], float] = field(default=lambda: 0.0)
    limited: dict[str, int] = field(default_factory=dict)
    retry_after: float = 0.5
    refused: frozenset[str] = frozenset()
    fail: bool = False
    next_id: int = 100
    registered: list[tuple[bytes, Decimal]] = field(default_factory=list)
    reads: list[int] = field(default_factory=list)
    calls: list[tuple[str, int]] = field(default_factory=list)  # (endpoint, items)
    buckets: dict[str, TokenBucket] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.buckets = {REGISTER: TokenBucket(clock=self.clock), READ: TokenBucket(clock=self.clock)}

    async def _call(self, endpoint: str, items: int) -> None:
        await asyncio.sleep(0)
        self.calls.append((endpoint, items))
        if self.fail:
            raise ApiError("POST /register-request: HTTP 503: injected")
        if self.limited.get(endpoint, 0) > 0:
            self.limited[endpoint] -= 1
            self.buckets[endpoint].pause(self.retry_after)
            raise RateLimited(f"{endpoint}: HTTP 429 (retry after {self.retry_after}s)", self.retry_after)

    def _register(self, prefix: bytes, price: Decimal) -> int | str:
        if any(b'"book":"%s"' % book.encode() in prefix for book in self.refused):
            return "book refused"
        self.registered.append((prefix, price))
        self.next_id += 1
        return self.next_id

    async def register_request(self, prefix: bytes, price: Decimal) -> int:
        await self._call(REGISTER, 1)
        answer = self._register(prefix, price)
        if isinstance(answer, str):
            raise ApiError(answer)
        return answer

    async def request_data(self, request_id: int) -> bool:
        await self._call(READ, 1)
        self.reads.append(request_id)
        return request_id % 2 == 0

    async def register_batch(self, items: Sequence[tuple[bytes, Decimal]]) -> list[int | str]:
        await self._call(REGISTER, len(items))
        return [self._register(prefix, price) for prefix, price in items]

    async def read_batch(self, ids: Sequence[int]) -> list[bool | str]:
        await self._call(READ, len(ids))
        self.reads.extend(ids)
        return [i % 2 == 0 for i in ids]


class ListSink:
    """Keeps every decision it accepts; ``arrived`` is set at each one."""

    def __init__(self) -> None:
        self.decisions: list[Decision] = []
        self.arrived = asyncio.Event()

    def accept(self, decision: Decision) -> None:
        self.decisions.append(decision)
        self.arrived.set()

    def keys(self) -> list[tuple[str, int]]:
        return sorted((d.book, d.tick) for d in self.decisions)
