"""Requests waiting in the DataManager for rows to be read. Pure: no I/O (the replies are returned; the
actor sends them).

Each book of a request is a *slot*: answered at once from a window in memory, or registered with the
:class:`~actors.data_manager.book_store.BookStore` (which then knows what the scan must read) and
answered when the store reports its book ready, when the frontier passes the end of the file, or after
``wait_limit`` seconds. A request is replied to once all its slots are answered -- a ``WindowsRequest``
with one window (or error) per book, in order.

Bounded and fair: at most ``waiting_max`` slots wait in all and ``peer_max`` per client (over that, the
request's waiting slots get a "busy" error); a retry of a request still waiting (same client, book(s),
tick and count: the Algorithm's Lazy Pirate retry) adds no work -- the waiting request just answers
under the new request id.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from decimal import Decimal
from typing import Protocol

from actors.data_manager.book_store import BookStore
from actors.data_manager.csv_rows import Columns
from actors.data_manager.price_window import ALL_BOOKS, Answer, Failed, Ready, Wait
from transport import limits
from transport.protocol import LastPricesReply, LastPricesRequest, WindowsReply, WindowsRequest

Reply = LastPricesReply | WindowsReply
Outgoing = tuple[bytes, Reply]  # (client identity, reply)
WAIT_LIMIT = 10.0  # a client retries after ~1 s anyway; older waiters only hold memory
ERROR_MAX = 500  # characters of an error text in a reply (the protocol's bound)


class FileState(Protocol):
    """What the waiters read of the data file's state."""

    columns: Columns | None
    at_eof: bool
    eof_gen: int  # passes of the frontier over the end of the file
    unavailable: str | None


class Waiter:
    __slots__ = ("batch", "books", "count", "eof_gen", "errors", "identity", "key", "open", "request_id", "since",
                 "slots", "tick", "windows")

    def __init__(self, identity: bytes, request: LastPricesRequest | WindowsRequest, eof_gen: int, now: float) -> None:
        self.identity = identity
        self.request_id = request.request_id
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

    def reply(self) -> Reply:
        if self.batch:
            return WindowsReply(self.request_id, self.tick, tuple(self.windows), tuple(self.errors))
        return LastPricesReply(self.request_id, self.books[0], self.tick, self.windows[0], self.errors[0])


class Slot:
    """One book of a waiting request, registered in the store under ``key`` as ``wait``."""

    __slots__ = ("i", "key", "open", "wait", "waiter")

    def __init__(self, waiter: Waiter, i: int) -> None:
        self.waiter = waiter
        self.i = i
        self.open = True  # not answered yet
        self.key = ""
        self.wait: Wait | None = None


class Waiters:
    def __init__(self, store: BookStore, file: FileState, counters: dict[str, int], *,
                 waiting_max: int = limits.DM_WAITING_MAX, peer_max: int = limits.DM_PEER_WAITING_MAX,
                 wait_limit: float = WAIT_LIMIT, clock: Callable[[], float] = time.monotonic) -> None:
        self._store = store
        self._file = file
        self._counters = counters
        self._waiting_max = waiting_max
        self._peer_max = peer_max
        self.wait_limit = wait_limit
        self._clock = clock
        self._open: dict[Waiter, None] = {}  # waiters with open slots, oldest first
        self._retries: dict[tuple[object, ...], Waiter] = {}
        self._by_key: dict[str, dict[Slot, None]] = {}  # registered slots by store key
        self._peers: dict[bytes, int] = {}  # registered slots by client
        self.waiting = 0  # registered slots
        self._out: list[Outgoing] = []

    def add(self, identity: bytes, request: LastPricesRequest | WindowsRequest) -> list[Outgoing]:
        """A new request: the replies that can go now (its own, unless it must wait)."""
        waiter = Waiter(identity, request, self._file.eof_gen, self._clock())
        known = self._retries.get(waiter.key)
        if known is not None:
            known.request_id = request.request_id  # the client now waits for this id
            self._counters["deduped"] += 1
            return []
        waits: list[tuple[Slot, str, Wait]] = []
        for i in range(len(waiter.books)):
            slot = Slot(waiter, i)
            waiter.slots.append(slot)
            key, answer = self._answer(slot)
            if isinstance(answer, Wait):
                waits.append((slot, key, answer))
            else:
                self._finish(slot, answer)
        if waits:
            peer = self._peers.get(identity, 0)
            if self.waiting + len(waits) > self._waiting_max or peer + len(waits) > self._peer_max:
                self._counters["busy"] += 1
                busy = Failed(f"busy: {self.waiting} requests wait for rows ({peer} of them yours); retry later")
                for slot, _, _ in waits:
                    self._finish(slot, busy)
            else:
                self._open[waiter] = None
                self._retries[waiter.key] = waiter
                for slot, key, wait in waits:
                    self._register(slot, key, wait)
        return self._flush()

    def serve(self, keys: Iterable[str]) -> list[Outgoing]:
        """Answer what can be answered among the requests for the books ``keys``."""
        for key in keys:
            for slot in list(self._by_key.get(key, ())):
                self._update(slot)
        return self._flush()

    def serve_all(self) -> list[Outgoing]:
        """Look at every waiting request again (the end of the file was passed, the header read...)."""
        for waiter in list(self._open):
            for slot in waiter.slots:
                if slot.wait is not None:
                    self._update(slot)
        return self._flush()

    def fail_all(self, error: str) -> list[Outgoing]:
        for waiter in list(self._open):
            for slot in waiter.slots:
                if slot.wait is not None:
                    self._unregister(slot)
                    self._finish(slot, Failed(error))
        return self._flush()

    def expire(self) -> list[Outgoing]:
        """Answer requests that waited longer than ``wait_limit`` with an error (the client retries)."""
        deadline = self._clock() - self.wait_limit
        while self._open:
            waiter = next(iter(self._open))  # the oldest
            if waiter.since > deadline:
                break
            self._counters["expired"] += 1
            for slot in waiter.slots:
                if slot.wait is not None:
                    self._unregister(slot)
                    self._finish(slot, Failed(f"no answer within {self.wait_limit:.0f}s: the data file is "
                                              "still being read"))
        return self._flush()

    def reregister(self) -> list[Outgoing]:
        """The store forgot everything (the file was truncated or replaced): register every waiting
        request again."""
        self._by_key.clear()
        for waiter in self._open:
            for slot in waiter.slots:
                slot.wait = None  # the store holds nothing for it any more
        self._peers.clear()
        self.waiting = 0
        for waiter in list(self._open):
            for slot in waiter.slots:
                if slot.open:
                    self._update(slot)
        return self._flush()

    # --- one slot ------------------------------------------------------------------------------

    def _answer(self, slot: Slot) -> tuple[str, Answer]:
        waiter, file = slot.waiter, self._file
        if file.unavailable is not None:
            return "", Failed(f"data file unavailable: {file.unavailable}")
        book = waiter.books[slot.i]
        final = file.at_eof and file.eof_gen > waiter.eof_gen
        if file.columns is None:  # the frontier reads the header first
            return "", Failed(f"unknown book {book}: the data file has no rows yet") if final else Wait(waiter.tick, 0)
        key = ALL_BOOKS if file.columns.book_id is None else book
        return key, self._store.answer(key, waiter.tick, waiter.count, final, book)

    def _update(self, slot: Slot) -> None:
        key, answer = self._answer(slot)
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
        self._by_key.setdefault(key, {})[slot] = None
        identity = slot.waiter.identity
        self._peers[identity] = self._peers.get(identity, 0) + 1
        self.waiting += 1

    def _unregister(self, slot: Slot) -> None:
        if slot.wait is None:
            return
        self._store.unwant(slot.key, slot.wait)
        slot.wait = None
        registered = self._by_key.get(slot.key)
        if registered is not None:
            registered.pop(slot, None)
            if not registered:
                del self._by_key[slot.key]
        identity = slot.waiter.identity
        left = self._peers.get(identity, 1) - 1
        if left > 0:
            self._peers[identity] = left
        else:
            self._peers.pop(identity, None)
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
            self._out.append((waiter.identity, waiter.reply()))

    def _flush(self) -> list[Outgoing]:
        out, self._out = self._out, []
        return out
