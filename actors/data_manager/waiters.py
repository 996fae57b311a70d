"""Requests waiting in the DataManager for rows to be read. Pure: no I/O (the replies are returned; the
actor sends them).

Each book of a request is a *slot*: answered at once from a window in memory, or registered with the
:class:`~actors.data_manager.book_store.BookStore` (which then knows what the scan must read) and
answered when the store reports its book ready, when the frontier passes the end of the file, or after
``wait_limit`` seconds. A request is replied to once all its slots are answered -- a ``WindowsRequest``
with one window (or error) per book, in order.

Bounded and fair: at most ``waiting_max`` slots wait in all, ``peer_max`` per client, and per client
and book at most ``peer_book_ticks`` distinct ticks (a book has one window: a client asking many ticks
of it would make the others wait) -- over that, the slot gets a "busy" error; and the reader serves
clients in turns (:meth:`Waiters.next_need`), the clients stepping through the ticks first. A request
equal to one still waiting (same client, book(s), tick and count: the Algorithm's Lazy Pirate retry, or
two strategies with the same window) adds no work: the waiting request answers under both request ids.
"""

from __future__ import annotations

import itertools
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Protocol

from actors.csv_rows import Columns
from actors.data_manager.bad_books import BadBooks
from actors.data_manager.book_store import BookStore
from actors.data_manager.price_window import ALL_BOOKS, Answer, Failed, Ready, Wait
from transport import limits
from transport.protocol import LastPricesReply, LastPricesRequest, WindowsReply, WindowsRequest, data_file_unavailable

Reply = LastPricesReply | WindowsReply
Outgoing = tuple[bytes, Reply]  # (client identity, reply)
WAIT_LIMIT = 10.0  # a client retries after ~1 s anyway; older waiters only hold memory
SAME_REQUEST_MAX = 16  # request ids one waiting request answers (retries, or pairs asking the same)
ERROR_MAX = 500  # characters of an error text in a reply (the protocol's bound)


class FileState(Protocol):
    """What the waiters read of the data file's state."""

    columns: Columns | None
    at_eof: bool
    eof_gen: int  # passes of the frontier over the end of the file
    unavailable: str | None


class Waiter:
    __slots__ = ("batch", "books", "count", "eof_gen", "errors", "identity", "key", "open", "request_ids", "since",
                 "slots", "tick", "windows")

    def __init__(self, identity: bytes, request: LastPricesRequest | WindowsRequest, eof_gen: int, now: float) -> None:
        self.identity = identity
        self.request_ids = [request.request_id]  # one reply each: a retry, or another pair's same request
        self.tick = request.tick
        self.count = request.count
        self.batch = isinstance(request, WindowsRequest)
        self.books: tuple[str, ...] = request.books if isinstance(request, WindowsRequest) else (request.book,)
        self.key = (identity, self.batch, self.tick, self.count, self.books)  # what a retry repeats
        self.eof_gen = eof_gen
        self.since = now
        self.windows: list[tuple[Decimal, ...]] = [()] * len(self.books)
        self.errors: list[str] = [""] * len(self.books)
        self.open = len(self.books)
        self.slots: list[Slot] = []

    def replies(self) -> list[Reply]:
        if self.batch:
            windows, errors = tuple(self.windows), tuple(self.errors)
            return [WindowsReply(request_id, self.tick, windows, errors) for request_id in self.request_ids]
        return [LastPricesReply(request_id, self.books[0], self.tick, self.windows[0], self.errors[0])
                for request_id in self.request_ids]


class Slot:
    """One book of a waiting request, registered in the store under ``key`` as ``wait``."""

    __slots__ = ("i", "key", "open", "wait", "waiter")

    def __init__(self, waiter: Waiter, i: int) -> None:
        self.waiter = waiter
        self.i = i
        self.open = True  # not answered yet
        self.key = ""
        self.wait: Wait | None = None


class Clients:
    """Registered slots by client: how many each has waiting, which ticks of each book, and whose turn
    it is at the reader."""

    def __init__(self) -> None:
        self.slots: dict[bytes, dict[Slot, None]] = {}  # oldest first; the dict's order is the turn
        self._ticks: dict[tuple[bytes, str], dict[int, int]] = {}  # (client, key) -> waiting ticks

    def clear(self) -> None:
        self.slots.clear()
        self._ticks.clear()

    def waiting(self, identity: bytes) -> int:
        return len(self.slots.get(identity, ()))

    def other_ticks(self, identity: bytes, key: str, tick: int) -> int:
        """How many other ticks of book ``key`` the client has waiting."""
        ticks = self._ticks.get((identity, key))
        return 0 if ticks is None else len(ticks) - (tick in ticks)

    def add(self, slot: Slot) -> None:
        identity, tick = slot.waiter.identity, slot.waiter.tick
        self.slots.setdefault(identity, {})[slot] = None
        ticks = self._ticks.setdefault((identity, slot.key), {})
        ticks[tick] = ticks.get(tick, 0) + 1

    def remove(self, slot: Slot) -> None:
        identity, tick = slot.waiter.identity, slot.waiter.tick
        mine = self.slots.get(identity)
        if mine is not None:
            mine.pop(slot, None)
            if not mine:
                del self.slots[identity]
        ticks = self._ticks.get((identity, slot.key))
        if ticks is not None and tick in ticks:
            ticks[tick] -= 1
            if not ticks[tick]:
                del ticks[tick]
                if not ticks:
                    del self._ticks[(identity, slot.key)]

    def of(self, identities: Iterable[bytes]) -> Iterator[dict[Slot, None]]:
        """The waiting slots of each of ``identities`` that has some."""
        for identity in identities:
            slots = self.slots.get(identity)
            if slots:
                yield slots

    def compact(self) -> None:
        """Rebuild the tables at their size now: a dict keeps the room it grew to (one entry per
        identity of a flood) after its entries are gone."""
        self.slots = dict(self.slots)
        self._ticks = dict(self._ticks)

    def turns(self) -> Iterator[dict[Slot, None]]:
        """Each client's waiting slots once, starting with the one whose turn it is (who then goes to
        the back)."""
        for _ in range(len(self.slots)):
            identity = next(iter(self.slots))
            slots = self.slots.pop(identity)
            self.slots[identity] = slots
            yield slots


@dataclass(frozen=True, slots=True)
class WaitLimits:
    """How much may wait for rows: in all, per client, distinct ticks per client and book, and how long."""

    waiting_max: int = limits.DM_WAITING_MAX
    peer_max: int = limits.DM_PEER_WAITING_MAX
    peer_book_ticks: int = limits.DM_PEER_BOOK_TICKS_MAX
    wait_limit: float = WAIT_LIMIT


class Waiters:
    def __init__(self, store: BookStore, file: FileState, counters: dict[str, int],
                 bounds: WaitLimits = WaitLimits(), clock: Callable[[], float] = time.monotonic,
                 bad_books: BadBooks | None = None) -> None:
        self._store = store
        self._bad_books = bad_books or BadBooks()
        self._file = file
        self._counters = counters
        self._waiting_max = bounds.waiting_max
        self._peer_max = bounds.peer_max
        self.wait_limit = bounds.wait_limit
        self._clock = clock
        self._open: dict[Waiter, None] = {}  # waiters with open slots, oldest first
        self._retries: dict[tuple[object, ...], Waiter] = {}
        self._by_key: dict[str, dict[Slot, None]] = {}  # registered slots by store key
        self._clients = Clients()
        self._peer_book_ticks = bounds.peer_book_ticks
        self.waiting = 0  # registered slots
        self._revisit: deque[Waiter | Slot] = deque()
        self._at_end: dict[Slot, None] = {}  # registered slots an end-of-file pass may answer
        self._out: list[Outgoing] = []

    def add(self, identity: bytes, request: LastPricesRequest | WindowsRequest) -> list[Outgoing]:
        """A new request: the replies that can go now (its own, unless it must wait)."""
        if isinstance(request, LastPricesRequest):  # the common case, answered from memory: no waiter
            _, answer = self._answer(identity, request.book, request.tick, request.count, self._file.eof_gen,
                                     charge=False)  # only a Ready is taken here: charged below if it waits
            if isinstance(answer, Ready):
                return [(identity, LastPricesReply(request.request_id, request.book, request.tick, answer.prices))]
        waiter = Waiter(identity, request, self._file.eof_gen, self._clock())
        known = self._retries.get(waiter.key)
        if known is not None and len(known.request_ids) < SAME_REQUEST_MAX:
            known.request_ids.append(request.request_id)  # no new work: answered with the one waiting
            self._counters["deduped"] += 1
            return []
        waits: list[tuple[Slot, str, Wait]] = []
        for i in range(len(waiter.books)):
            slot = Slot(waiter, i)
            waiter.slots.append(slot)
            key, answer = self._slot_answer(slot)
            if isinstance(answer, Wait):
                waits.append((slot, key, answer))
            else:
                self._finish(slot, answer)
        if waits:
            peer = self._clients.waiting(identity)
            crowded = [(slot, key) for slot, key, _ in waits
                       if self._clients.other_ticks(identity, key, waiter.tick) >= self._peer_book_ticks]
            if self.waiting + len(waits) > self._waiting_max or peer + len(waits) > self._peer_max:
                self._counters["busy"] += 1
                busy = Failed(f"busy: {self.waiting} requests wait for rows ({peer} of them yours); retry later")
                for slot, _, _ in waits:
                    self._finish(slot, busy)
                waits = []
            elif crowded:  # this client keeps a book's window busy with other ticks already
                self._counters["busy"] += 1
                for slot, key in crowded:
                    self._finish(slot, Failed(f"busy: {self._peer_book_ticks} of your requests for book {key} wait "
                                              "for other ticks; retry later"))
                waits = [wait for wait in waits if wait[0].open]
            if waits:
                self._open[waiter] = None
                self._retries[waiter.key] = waiter
                for slot, key, wait in waits:
                    self._register(slot, key, wait)
        return self._flush()

    def compact(self) -> None:
        """After a flood: the tables rebuilt at their size now (see :meth:`Clients.compact`)."""
        self._clients.compact()
        self._open, self._retries, self._at_end = dict(self._open), dict(self._retries), dict(self._at_end)
        self._by_key = dict(self._by_key)
        self._revisit = deque(self._revisit)

    def serve(self, keys: Iterable[str]) -> list[Outgoing]:
        """Answer what can be answered among the requests for the books ``keys``."""
        for key in keys:
            for slot in list(self._by_key.get(key, ())):
                self._update(slot)
        return self._flush()

    def revisit_all(self) -> None:
        """Queue every waiting request to be looked at again (the header was read, the file was
        forgotten); :meth:`revisit` does it in slices, so a flood of waiting requests never stalls the
        event loop."""
        self._revisit.extend(self._open)

    def revisit_at_end(self) -> None:
        """The frontier passed the end of the file: queue the requests that asked for more than the
        file held when they registered (an unknown book, a tick past the end, follow mode) -- the
        others can only be answered by rows, and are when their book is ready."""
        self._revisit.extend(self._at_end)  # they leave it when answered (_unregister)

    @property
    def revisiting(self) -> bool:
        return bool(self._revisit)

    def revisit(self, budget: int = 2000) -> list[Outgoing]:
        """Look again at queued waiting requests, about ``budget`` books of them."""
        while self._revisit and budget > 0:
            queued = self._revisit.popleft()
            for slot in queued.slots if isinstance(queued, Waiter) else (queued,):
                if slot.open:
                    budget -= 1
                    self._update(slot)
        return self._flush()

    def expire(self, budget: int = 2000) -> list[Outgoing]:
        """Answer requests that waited longer than ``wait_limit`` with an error (the client retries),
        about ``budget`` books of them."""
        deadline = self._clock() - self.wait_limit
        while self._open and budget > 0:
            waiter = next(iter(self._open))  # the oldest
            if waiter.since > deadline:
                break
            self._counters["expired"] += 1
            for slot in waiter.slots:
                budget -= 1
                if slot.wait is not None:
                    self._unregister(slot)
                    self._finish(slot, Failed(f"no answer within {self.wait_limit:.0f}s: the data file is "
                                              "still being read"))
        return self._flush()

    def forget_all(self) -> None:
        """The store forgot everything (the file was truncated, replaced or failed): every waiting
        request is registered again (or answered) by :meth:`revisit`."""
        self._by_key.clear()
        self._clients.clear()
        self._at_end.clear()
        self.waiting = 0
        for waiter in self._open:
            for slot in waiter.slots:
                slot.wait = None  # the store holds nothing for it any more
        self.revisit_all()

    def next_need(self, look: int = 8) -> tuple[str, Wait] | None:
        """What to read for next, clients taking turns: the (key, wait) of the oldest of a client's
        waiting requests that the scan can serve now, for the client whose turn it is. So a client
        flooding requests that cost reading gets its share of the reader, no more."""
        # The clients stepping through the ticks first (the Algorithm): a client cycling through
        # identities is hundreds of clients taking turns (issue 20).
        steppers = self._store.steppers.active(self._clock())
        for slots in itertools.chain(self._clients.of(steppers), self._clients.turns()):
            for slot in itertools.islice(slots, look):
                if slot.wait is not None and self._store.cursor_for(slot.key, slot.wait) is not None:
                    return slot.key, slot.wait
        return None

    # --- one slot ------------------------------------------------------------------------------

    def _answer(self, identity: bytes, book: str, tick: int, count: int, eof_gen: int,
                charge: bool = True) -> tuple[str, Answer]:
        """The store key of ``book`` and what answers it now, for a request that arrived at the
        frontier's end-of-file pass ``eof_gen``."""
        file = self._file
        if file.unavailable is not None:
            return "", Failed(data_file_unavailable(file.unavailable))
        final = file.at_eof and file.eof_gen > eof_gen
        if file.columns is None:  # the frontier reads the header first
            return "", Failed(f"unknown book {book}: the data file has no rows yet") if final else Wait(tick, 0)
        key = ALL_BOOKS if file.columns.book_id is None else book
        answer = self._store.answer(key, tick, count, final, book, identity, self._clock(), charge)
        if isinstance(answer, Failed) and final and self._unknown(key):
            answer = Failed(self._bad_books.unknown(book))
        return key, answer

    def _unknown(self, key: str) -> bool:
        known = self._store.books.get(key)
        return known is None or not known.total

    def _slot_answer(self, slot: Slot, charge: bool = True) -> tuple[str, Answer]:
        waiter = slot.waiter
        return self._answer(waiter.identity, waiter.books[slot.i], waiter.tick, waiter.count, waiter.eof_gen,
                            charge)

    def _update(self, slot: Slot) -> None:
        key, answer = self._slot_answer(slot, charge=False)  # a second look: charged when it arrived
        if isinstance(answer, Wait):
            if slot.wait is None or (key, answer) != (slot.key, slot.wait):
                self._unregister(slot)
                self._register(slot, key, answer)
            return
        self._unregister(slot)
        self._finish(slot, answer)

    def _register(self, slot: Slot, key: str, wait: Wait) -> None:
        slot.key = key
        slot.wait = self._store.want(key, wait)
        if self._store.beyond_read(key, slot.wait):
            self._at_end[slot] = None
        self._by_key.setdefault(key, {})[slot] = None
        self._clients.add(slot)
        self.waiting += 1

    def _unregister(self, slot: Slot) -> None:
        if slot.wait is None:
            return
        self._store.unwant(slot.key, slot.wait)
        slot.wait = None
        self._at_end.pop(slot, None)
        registered = self._by_key.get(slot.key)
        if registered is not None:
            registered.pop(slot, None)
            if not registered:
                del self._by_key[slot.key]
        self._clients.remove(slot)
        self.waiting -= 1

    def _finish(self, slot: Slot, answer: Ready | Failed) -> None:
        waiter = slot.waiter
        slot.open = False
        if isinstance(answer, Ready):
            waiter.windows[slot.i] = answer.prices
        else:
            waiter.errors[slot.i] = answer.error[:ERROR_MAX] or "failed"
        waiter.open -= 1
        if waiter.open == 0:
            self._open.pop(waiter, None)
            if self._retries.get(waiter.key) is waiter:
                del self._retries[waiter.key]
            waiter.slots = []
            self._out.extend((waiter.identity, reply) for reply in waiter.replies())

    def _flush(self) -> list[Outgoing]:
        out, self._out = self._out, []
        return out
