"""The plain backtest: the file read line by line with the DataManager's row parser, and every decision
made by the live code -- ``avg_comp_price``, ``to_cents``, ``reprice`` and ``Config.guard`` on
``Decimal`` -- in a plain loop. The fast engine must give exactly its results (tested), and the
benchmark measures the fast engine against it (``bench/backtest.py``). Streaming too: a book keeps its
last ``window`` prices.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Iterator
from decimal import Decimal
from typing import Final

import numpy as np

from actors.algorithm.backtest import cents, demand
from actors.algorithm.backtest.job import Chart, Decisions, Job, Result, Sink
from actors.algorithm.backtest.reader import ALL_BOOKS, LINE_MAX, read_header
from actors.algorithm.backtest.stats import PairStats
from actors.csv_fields import BadRow
from actors.csv_rows import PriceCache, header_columns, line_row
from actors.pricing.config.backtest import Logistic
from actors.pricing.rule import avg_comp_price, reprice_window, to_cents
from transport import files

_FLUSH: Final = 4096  # decisions handed to the sink at once


class ReferenceEngine:
    def __init__(self, job: Job, sink: Sink | None = None) -> None:
        self.job = job
        self.sink = sink
        self.stats = [PairStats(p.book, p.strategy.name, p.strategy.rule.window, job.costs.get(p.book))
                      for p in job.pairs]
        self.last: list[Decimal | None] = [None] * len(job.pairs)
        self.next: list[int] = [0] * len(job.pairs)  # next tick (or, with a plan, next planned tick's place)
        self.ranks = job.ranks()
        self.charts = {i: Chart() for i in range(min(job.chart_pairs, len(job.pairs)))}
        self.counters = {"lines_read": 0, "rows_read": 0, "bad_rows": 0, "books_over_limit": 0}
        self.examples: list[str] = []
        self._pending: list[tuple[int, int, int, bool, int, int, int, int, int]] = []

    def run(self, path: str) -> Result:
        started = time.perf_counter()
        single = read_header(path).book_id is None
        by_book: dict[str, list[int]] = {}
        for i, pair in enumerate(self.job.pairs):
            by_book.setdefault(ALL_BOOKS if single else pair.book, []).append(i)
        span = max((p.strategy.rule.window for p in self.job.pairs), default=1)
        windows: dict[str, deque[Decimal]] = {book: deque(maxlen=span) for book in by_book}
        counts = dict.fromkeys(by_book, 0)
        for book, price in self._rows(path):
            mine = by_book.get(book)
            if mine is None:
                continue
            window = windows[book]
            window.append(price)
            counts[book] += 1
            for i in mine:
                size = self.job.pairs[i].strategy.rule.window
                if counts[book] >= size:
                    self._tick(i, counts[book] - size, list(window)[-size:])
        last_tick = self._finish(by_book, windows, counts)
        self._flush()
        for i, s in enumerate(self.stats):
            s.last_price = cents.cents(self.last[i]) if self.last[i] is not None else None  # type: ignore[arg-type]
        return Result(self.stats, self.charts, self.counters, self.examples, last_tick, time.perf_counter() - started)

    def _rows(self, path: str) -> Iterator[tuple[str, Decimal]]:
        """(book, price) of every valid row, as the DataManager reads them."""
        columns = None
        prices = PriceCache()
        with files.open_bytes(path) as f:  # never waits on a FIFO; refuses one
            for line_no, raw in enumerate(f, start=1):
                self.counters["lines_read"] += 1
                line = raw[:-1] if raw.endswith(b"\n") else raw
                if len(line) >= LINE_MAX:
                    self._bad(BadRow(line_no, "line_too_long", ""))
                    continue
                if columns is None:
                    columns = header_columns(line)
                    continue
                row = line_row(line, columns, line_no, prices)
                if isinstance(row, BadRow):
                    self._bad(row)
                elif row is not None:
                    self.counters["rows_read"] += 1
                    yield ALL_BOOKS if row.book_id is None else row.book_id, row.price

    def _bad(self, bad: BadRow) -> None:
        self.counters["bad_rows"] += 1
        key = f"bad_rows_{bad.reason}"
        self.counters[key] = self.counters.get(key, 0) + 1

    def _planned(self, i: int, tick: int) -> int | None:
        """The request id of pair ``i`` at ``tick`` if the plan decides it there (-1 without parity),
        else None."""
        job = self.job
        if job.ids is None:
            if tick != self.next[i] or (job.ticks is not None and tick >= job.ticks):
                return None
            model = job.demand
            return -1 if isinstance(model, Logistic) else model.first_id + tick * job.ids_per_tick() + self.ranks[i]
        found = job.ids.pairs.get(job.pairs[i].key)
        if found is None or self.next[i] >= len(found.ticks) or int(found.ticks[self.next[i]]) != tick:
            return None
        return int(found.ids[self.next[i]])

    def _tick(self, i: int, tick: int, window: list[Decimal]) -> None:
        request_id = self._planned(i, tick)
        if request_id is not None:
            self.next[i] += 1
            self._decide(i, tick, window, request_id)

    def _finish(self, by_book: dict[str, list[int]], windows: dict[str, deque[Decimal]], counts: dict[str, int]) -> int:
        job = self.job
        enough = {}
        for book, mine in by_book.items():
            for i in mine:
                enough[i] = counts[book] >= job.pairs[i].strategy.rule.window
        if job.ticks is not None:
            last_tick = job.ticks - 1
        elif job.ids is not None:
            last_tick = max((int(f.ticks.max()) for f in job.ids.pairs.values() if len(f.ticks)), default=-1)
        else:
            last_tick = max((counts[b] - (job.horizon_window or job.pairs[i].strategy.rule.window)
                             for b, mine in by_book.items() for i in mine if enough[i]), default=-1)
        for book, mine in by_book.items():
            for i in mine:
                size = job.pairs[i].strategy.rule.window
                ticks = self._left(i, last_tick)
                if not enough[i]:
                    self.stats[i].skipped += len(ticks)
                    continue
                window = list(windows[book])[-size:]
                for tick in ticks:
                    self._tick(i, tick, window)
        return last_tick

    def _left(self, i: int, last_tick: int) -> list[int]:
        if self.job.ids is None:
            return list(range(self.next[i], last_tick + 1))
        found = self.job.ids.pairs.get(self.job.pairs[i].key)
        return [] if found is None else [int(t) for t in found.ticks[self.next[i]:]]

    def _decide(self, i: int, tick: int, window: list[Decimal], request_id: int) -> None:
        pair = self.job.pairs[i]
        config = self.job.config
        avg = avg_comp_price(window)
        last = self.last[i]
        sent = config.guard(pair.book, to_cents(avg), None).price if last is None else last
        window_sum = sum(cents.micro(p) for p in window)
        model = self.job.demand
        if isinstance(model, Logistic):
            sold = bool(demand.logistic_sold(model, np.array([cents.cents(sent)]), np.array([window_sum]),
                                             len(window), np.array([demand.book_key(pair.book)]),
                                             np.array([tick]))[0])
        else:
            sold = request_id % 2 == 0
        rule_price = reprice_window(window, sold, pair.strategy.rule)
        guarded = config.guard(pair.book, rule_price, last)
        price = guarded.price
        s = self.stats[i]
        s.decisions += 1
        s.units += sold
        s.revenue += cents.cents(sent) if sold else 0
        s.price_sum += cents.cents(price)
        s.comp_sum += window_sum
        guardrails = config.guardrails_for(pair.book) if config.has_guardrails else None
        if guardrails is not None and guardrails.configured:
            s.at_floor += guardrails.floor is not None and price == guardrails.floor
            s.at_ceiling += guardrails.ceiling is not None and price == guardrails.ceiling
        if guarded.guardrail:
            s.hits += 1
            for name in guarded.guardrail:
                s.by_guardrail[name] += 1
        if last is not None and price != last:
            s.changes += 1
        if s.first_price is None:
            s.first_price = cents.cents(price)
        self.last[i] = price
        bits = sum(bit for bit, name in cents.BIT_NAMES if name in guarded.guardrail)
        self._pending.append((i, tick, request_id, sold, cents.cents(sent), cents.cents(price),
                              cents.cents(rule_price), bits, window_sum))
        if len(self._pending) >= _FLUSH:
            self._flush()

    def _flush(self) -> None:
        if not self._pending:
            return
        columns = list(zip(*self._pending, strict=True))
        self._pending = []
        d = Decisions(*(np.array(c, dtype=t) for c, t in zip(
            columns, (np.int64, np.int64, np.int64, np.bool_, np.int64, np.int64, np.int64, np.uint8, np.int64),
            strict=True)))
        for p in sorted(set(d.pair.tolist()) & set(self.charts)):
            mine = d.pair == p
            self.charts[p].add(d.tick[mine], d.price[mine], d.sums[mine], self.job.chart_points)
        if self.sink is not None:
            self.sink(d)


def run(job: Job, path: str, sink: Sink | None = None) -> Result:
    return ReferenceEngine(job, sink).run(path)
