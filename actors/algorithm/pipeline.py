"""The steps of a decision, for one pair or a batch of pairs: fetch the competitor's window, register
the price being set, read whether the book sold, price it, check the price, emit the decision.

The price is the strategy's rule, then the config's guardrails (:meth:`Config.guard`: step limit,
ending, floor/ceiling, each reported in the decision); the first decision of a pair registers the
average in cents, guarded the same way. A decision leaves through the sink
(:class:`actors.algorithm.sink.DecisionSink`). Each step moves a :class:`Work` from one
:class:`State` to the next (``actors.algorithm.pairs``); the caller, the pool, frees the pair of a
work that is over. A price outside ``transport.limits`` is refused before it is sent or printed. Every failure
skips that decision with a counter per reason; a book-specific failure (refused price, a book the
DataManager or the API refuses) is also logged the first time each pair fails, so a book failing
every tick can be found even when the general log is rate-limited.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from decimal import Decimal
from typing import Protocol, TypeVar

from actors.algorithm.clients.api import ApiError, RateLimited
from actors.algorithm.clients.data_manager import BatchesUnsupported, Refused, RequestFailed
from actors.algorithm.pairs import DECIDED, DECIDED_BEFORE, FETCHING, READING, REGISTERING, SKIPPED, PairTable, Work
from actors.algorithm.sink import DecisionSink
from actors.pricing.config import Config
from actors.pricing.rule import mean_of_total, refusal, reprice_total, to_cents, window_total
from actors.pricing.strategies import Pair
from transport import limits
from transport.logs import RateLimitedLog, printable
from transport.protocol import Decision, LastPricesReply, WindowsReply, is_data_file_unavailable

log = logging.getLogger("algorithm")
T = TypeVar("T")

RATE_LIMIT_ATTEMPTS = 3  # a call answered 429 is tried again after the pause at most this often in all
SKIP_REASONS = ("dm", "dm_book", "window", "api", "api_item", "rate_limited", "stopping")
# A peer that did not answer (not yet up at a start, restarting): worth another try within the tick.
RETRIED_REASONS = frozenset({"dm", "api"})
REFUSAL_REASONS = ("price_below_min", "price_above_max", "price_not_finite", "price_not_cents")


class Windows(Protocol):
    """The DataManager's side (:class:`LastPricesClient`)."""

    batches: bool | None  # whether it answers WindowsRequest (None: not known yet)

    async def last_prices(self, book: str, tick: int, count: int) -> LastPricesReply: ...

    async def windows(self, tick: int, count: int, books: Sequence[str]) -> WindowsReply: ...


class Api(Protocol):
    """The APIServer's side (:class:`ApiClient`): raises ApiError (RateLimited on a 429)."""

    async def register_request(self, prefix: bytes, price: Decimal) -> int: ...

    async def request_data(self, request_id: int) -> bool: ...

    async def register_batch(self, items: Sequence[tuple[bytes, Decimal]]) -> list[int | str]: ...

    async def read_batch(self, ids: Sequence[int]) -> list[bool | str]: ...


class Pipeline:
    """The steps; each takes works in one state and leaves each in the next one, or SKIPPED/DECIDED
    (the caller frees the pairs of works that are over). Decisions go to ``sink``."""

    def __init__(self, table: PairTable, dm: Windows, api: Api, sink: DecisionSink, *,
                 dm_batch: int, api_batch: int, config: Config | None = None) -> None:
        self._table = table
        self._dm = dm
        self._api = api
        self._sink = sink
        self.config = config or Config({}, table.pairs)  # its guardrails; swapped whole by a reload
        self._dm_batch = dm_batch
        self._api_batch = api_batch
        self._log = RateLimitedLog(log)
        self.counters: dict[str, int] = {"decisions": 0, "skipped": 0, "refused": 0, "rate_limited": 0,
                                         "decided_before": 0}
        self.counters.update({f"skipped_{reason}": 0 for reason in SKIP_REASONS})
        self.counters.update({f"refused_{reason}": 0 for reason in REFUSAL_REASONS})

    @property
    def pairs(self) -> list[Pair]:
        return self._table.pairs

    def remember(self, key: tuple[str, str], price: Decimal) -> bool:
        """Take ``price`` as the last decided price of pair ``key`` (see :meth:`PairTable.remember`)."""
        return self._table.remember(key, price)

    # --- windows -------------------------------------------------------------------------------

    @property
    def batching(self) -> bool:
        """Whether windows are fetched many books per request (else one request per book)."""
        return self._dm_batch > 1 and self._dm.batches is not False

    async def fetch(self, works: list[Work]) -> list[Work]:
        """FETCHING: the window of each work at its tick; returns those that got a usable one, now
        REGISTERING with their average and the price to register (the others are SKIPPED)."""
        if self.batching:
            try:
                return await self._fetch_batches(works)
            except BatchesUnsupported:
                pass  # a DataManager before WindowsRequest: one request per book below
        for work in works:
            if work.state is not FETCHING:
                continue  # skipped by a batch before the DataManager turned out to refuse batches
            pair = work.pair
            try:
                reply = await self._dm.last_prices(pair.book, work.tick.seq, pair.strategy.rule.window)
            except RequestFailed as exc:
                self.skip(work, "dm_book" if isinstance(exc, Refused) else "dm", str(exc))  # FileUnavailable: dm
                continue
            work.prices = reply.prices
        return [w for w in works if self._windowed(w)]

    async def _fetch_batches(self, works: list[Work]) -> list[Work]:
        seq = works[0].tick.seq if works else 0
        if any(work.tick.seq != seq for work in works):  # never from one take() of the dispatcher
            for seq in dict.fromkeys(work.tick.seq for work in works):
                await self._fetch_batches([work for work in works if work.tick.seq == seq])
            return [w for w in works if w.state is REGISTERING]
        by_count: dict[int, list[Work]] = {}  # one request per window length (per batch of books)
        for work in works:
            by_count.setdefault(work.pair.strategy.rule.window, []).append(work)
        for count, group in by_count.items():
            books = list(dict.fromkeys(w.pair.book for w in group))
            per_request = max(1, min(limits.BATCH_BOOKS_MAX, limits.BATCH_PRICES_MAX // count))
            for start in range(0, len(books), per_request):
                await self._fetch_batch(group[0].tick.seq, count, books[start:start + per_request], group)
        return [w for w in works if self._windowed(w)]

    async def _fetch_batch(self, seq: int, count: int, books: list[str], group: list[Work]) -> None:
        wanted = set(books)
        members = [w for w in group if w.pair.book in wanted]
        try:
            reply = await self._dm.windows(seq, count, books)
        except BatchesUnsupported:
            raise
        except RequestFailed as exc:
            for work in members:
                self.skip(work, "dm", str(exc))
            return
        found = {book: (window, error) for book, window, error in zip(books, reply.windows, reply.errors, strict=True)}
        for work in members:
            window, error = found[work.pair.book]
            if error:  # a file every book fails on is the DataManager's failure, logged once, not per pair
                self.skip(work, "dm" if is_data_file_unavailable(error) else "dm_book",
                          f"DataManager refused {work.pair.book}@{seq}: {error}")
            else:
                work.prices = window

    def _windowed(self, work: Work) -> bool:
        """Average the window and choose the price to register (the work is then REGISTERING); False
        (SKIPPED) when unusable."""
        if work.state is not FETCHING:  # skipped already
            return False
        window = work.pair.strategy.rule.window
        if len(work.prices) != window:
            self.skip(work, "window", f"expected {window} prices, got {len(work.prices)}")
            return False
        work.total = window_total(work.prices)
        work.avg = mean_of_total(work.total, window)
        work.state = REGISTERING
        return self._choose_price(work)

    def _choose_price(self, work: Work) -> bool:
        """The price to register: the pair's last decided price; on its first decision the average, in
        cents and within the guardrails like every price sent. False (SKIPPED) if the API would refuse it."""
        last = work.record.last
        work.sent = self.config.guard(work.pair.book, to_cents(work.avg), None).price if last is None else last
        reason = refusal(work.sent)
        if reason is not None:
            self.refuse(work, reason, work.sent)
            return False
        return True

    def resumed(self, work: Work) -> bool:
        """A REGISTERING work that waited for the Ledger to say its pair's last decision (a restart):
        True if it goes on to register (its price chosen again, from what the Ledger said); False if it
        is over: DECIDED_BEFORE when the Ledger has its pair's decision for this very tick (a restarted
        worker never decides a (pair, run, tick) twice), else SKIPPED (a refused price)."""
        record = work.record
        decided_for, record.decided_for = record.decided_for, None
        if decided_for == (work.tick.t0, work.tick.seq):
            work.state = DECIDED_BEFORE
            self.counters["decided_before"] += 1
            return False
        return self._choose_price(work)

    # --- the API -------------------------------------------------------------------------------

    async def register(self, works: list[Work]) -> list[Work]:
        """REGISTERING: register each work's price (those registered are then READING); return those
        to try again after a 429 pause (still REGISTERING; the others are SKIPPED)."""
        retry, answers = await self._call_api(
            works, lambda work: self._api.register_request(work.record.prefix, work.sent),
            lambda batch: self._api.register_batch([(w.record.prefix, w.sent) for w in batch]))
        for work, request_id in self._answered(answers):
            work.request_id = request_id
            work.state = READING
        return retry

    async def read(self, works: list[Work]) -> list[Work]:
        """READING: read whether each registered book sold and decide it (DECIDED, or SKIPPED if the
        price is refused); return those to try again after a 429 pause (still READING)."""
        retry, answers = await self._call_api(works, lambda work: self._api.request_data(work.request_id),
                                              lambda batch: self._api.read_batch([w.request_id for w in batch]))
        now = time.time()  # a batch is decided at one moment: one timestamp (and one ISO text) for all
        for work, sold in self._answered(answers):
            self._decide(work, sold, now)
        return retry

    async def _call_api(self, works: list[Work], one: Callable[[Work], Awaitable[T]],
                        many: Callable[[list[Work]], Awaitable[Sequence[T | str]]]
                        ) -> tuple[list[Work], list[tuple[Work, T | str]]]:
        """One API call for ``works``: ``one`` for a lone work when calls are not batched, else ``many``.
        Returns the works to try again after a 429 pause, and each work with its answer (an error text
        where the API refused that item); a call that fails skips its works and answers none."""
        try:
            if len(works) == 1 and self._api_batch <= 1:
                results: Sequence[T | str] = [await one(works[0])]
            else:
                results = await many(works)
        except RateLimited as exc:
            return self._rate_limited(works, exc), []
        except ApiError as exc:
            for work in works:
                self.skip(work, "api", str(exc))
            return [], []
        return [], list(zip(works, results, strict=True))

    def _answered(self, answers: list[tuple[Work, T | str]]) -> Iterator[tuple[Work, T]]:
        """The works the API answered, with their answers, in order; each work whose item it refused
        is skipped on the way (so skips and decisions keep the order of the call)."""
        for work, answer in answers:
            if isinstance(answer, str):
                self.skip(work, "api_item", answer)
            else:
                yield work, answer

    def _rate_limited(self, works: list[Work], exc: RateLimited) -> list[Work]:
        self.counters["rate_limited"] += 1
        self._log.warning("rate_limited", "%s", exc)
        retry = []
        for work in works:
            work.attempts += 1
            if work.attempts >= RATE_LIMIT_ATTEMPTS:
                self.skip(work, "rate_limited", str(exc))
            else:
                retry.append(work)
        return retry

    # --- the decision --------------------------------------------------------------------------

    def _decide(self, work: Work, sold: bool, now: float) -> None:
        pair, record = work.pair, work.record
        rule_price = reprice_total(work.total, len(work.prices), sold, pair.strategy.rule)
        priced = self.config.guard(pair.book, rule_price, record.last)
        reason = refusal(priced.price)
        if reason is not None:
            self.refuse(work, reason, priced.price)
            return
        record.last = priced.price
        work.state = DECIDED
        self.counters["decisions"] += 1
        self._sink.accept(Decision(now, work.tick.seq, pair.book, pair.strategy.name, work.prices, work.avg,
                                   work.request_id, sold, priced.price, priced.rule_price, priced.guardrail,
                                   work.tick.t0, pair.strategy.rule.factor(sold), priced.previous_price,
                                   priced.floor, priced.ceiling))

    def refuse(self, work: Work, reason: str, price: Decimal) -> None:
        self.counters["refused"] += 1
        self.counters[f"refused_{reason}"] += 1
        self.skip(work, None, f"refused price {price}: {reason.replace('_', ' ')} "
                  f"(the API takes {limits.PRICE_MIN}..{limits.PRICE_MAX} in cents)")

    def skip(self, work: Work, reason: str | None, detail: str) -> None:
        """The decision of ``work`` is given up for this tick (``reason`` None: a refused price)."""
        self.counters["skipped"] += 1
        if reason is not None:
            self.counters[f"skipped_{reason}"] += 1
        work.state = SKIPPED
        work.retry = reason in RETRIED_REASONS
        pair, record = work.pair, work.record
        if reason in (None, "dm_book", "api_item") and not record.failure_logged:
            record.failure_logged = True  # once per pair: bounded by the number of pairs
            log.warning("first failure of book=%s strategy=%s tick=%d: %s (later failures of this pair are "
                        "only counted)", printable(pair.book), pair.strategy.name, work.tick.seq, printable(detail))
        self._log.warning("skipped", "skipped book=%s strategy=%s tick=%d: %s (tried again %s)",
                          pair.book, pair.strategy.name, work.tick.seq, detail,
                          "when the tick is repeated" if work.retry else "next tick")
