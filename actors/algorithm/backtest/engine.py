"""The fast backtest: every decision of every (book, strategy) pair over a price file, in integer cents
with numpy, streaming the file a block at a time.

What a pair decides at tick ``t`` is what the live Algorithm decides there in replay mode: the mean of
its book's points ``t .. t+N-1`` (past the book's last point, its last N points: the DataManager's
clamp), priced by the strategy's rule and then its book's guardrails, the step limit taken from the
pair's last decided price; its first decision registers the mean in cents, guarded. A pair's
decisions depend on no other pair's, so the file is read once, in order, and each block's rows
complete windows for some pairs, decided at once:

* a pair whose decision does not depend on its previous one (no step limit, parity demand) decides
  all its new ticks in one vector operation;
* the others (a step limit, or a price-dependent demand) go tick by tick, but every such pair of
  the block at once ("lockstep"): one vector step per tick across pairs; when fewer than
  :data:`NARROW` pairs remain in a step, the rest of their ticks go one decision at a time through
  the live ``Guardrails.apply``.

Exactness: :mod:`actors.algorithm.backtest.cents` (property-tested against the Decimal rule), and the
whole engine against the plain reference loop (:mod:`actors.algorithm.backtest.reference`), which
calls the live functions for every decision.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from actors.algorithm.backtest import cents, demand
from actors.algorithm.backtest.cents import I64, Bools, GuardArrays, RuleArith
from actors.algorithm.backtest.job import Chart, Decisions, Job, Result, Sink
from actors.algorithm.backtest.reader import ALL_BOOKS, BLOCK_BYTES, BookIndex, PriceFile, Rows, read_header
from actors.algorithm.backtest.stats import GUARDRAILS, PairStats
from actors.pricing.config.backtest import Logistic
from actors.pricing.guardrails import NONE, Guardrails
from actors.pricing.rule import reprice_window
from transport import limits

NARROW: Final = 8  # below this many pairs in a lockstep step, a decision at a time is cheaper
ROUND_SLOTS: Final = 1 << 20  # decisions per batch after the end of the file (bounded memory)
_TICK_SPAN: Final = 1 << 41  # a pair's ticks in one sorted array: pair * span + tick
Index = npt.NDArray[np.intp]
WindowSums = Callable[[I64, I64, I64], I64]
_SUMS: Final = ("decisions", "skipped", "units", "revenue", "price_sum", "comp_high", "comp_low", "at_floor",
                "at_ceiling", "hits", *GUARDRAILS, "changes", "first_price")


def _exclusive(counts: I64) -> I64:
    starts = np.zeros(len(counts), dtype=np.int64)
    np.cumsum(counts[:-1], out=starts[1:])
    return starts


def _segments(counts: I64) -> tuple[I64, I64]:
    """For segments of ``counts`` elements: each element's segment and its rank within it."""
    owner = np.repeat(np.arange(len(counts), dtype=np.int64), counts)
    rank = np.arange(len(owner), dtype=np.int64) - np.repeat(_exclusive(counts), counts)
    return owner, rank


@dataclass(slots=True)
class _Batch:
    """Decisions to make: grouped by pair (contiguous), ticks increasing within a pair."""

    pair: I64
    tick: I64
    sums: I64
    ids: I64  # -1 without parity


class FastEngine:
    def __init__(self, job: Job, sink: Sink | None = None, block_bytes: int = BLOCK_BYTES) -> None:
        self.job = job
        self.sink = sink
        self.block_bytes = block_bytes
        pairs = job.pairs
        self.count_pairs = len(pairs)
        self.books = BookIndex(limits.BOOKS_MAX + len({p.book for p in pairs}))
        self.window = np.array([p.strategy.rule.window for p in pairs], dtype=np.int64)
        self.span = int(self.window.max(initial=1))  # points kept per book: the largest window
        arith = [RuleArith.of(p.strategy.rule) for p in pairs]
        self.exact = np.array([a.exact for a in arith], dtype=np.bool_)
        fits = all(max(a.sold_num, a.unsold_num, 2 * a.q) <= cents.INT64_MAX for a in arith)
        kind: type = np.int64 if fits else object  # Python ints when a factor's integers outgrow int64
        self.sold_num: npt.NDArray[Any] = np.array([a.sold_num for a in arith], dtype=kind)
        self.unsold_num: npt.NDArray[Any] = np.array([a.unsold_num for a in arith], dtype=kind)
        self.q: npt.NDArray[Any] = np.array([a.q for a in arith], dtype=kind)
        config = job.config
        self.guardrails: list[Guardrails] = [config.guardrails_for(p.book) if config.has_guardrails else NONE
                                             for p in pairs]
        self.guard = GuardArrays.of(self.guardrails)
        self.guarded = bool(self.guard.configured.any())
        self.model = job.demand
        logistic = isinstance(self.model, Logistic)
        self.chained = (self.guard.configured & self.guard.step_set) | ~self.exact | logistic
        self.rank = np.array(job.ranks(), dtype=np.int64)
        self.keys = np.array([demand.book_key(p.book) for p in pairs], dtype=np.int64)
        # state
        self.last = np.zeros(len(pairs), dtype=np.int64)
        self.has_last = np.zeros(len(pairs), dtype=np.bool_)
        self.next_tick = np.zeros(len(pairs), dtype=np.int64)  # every tick: the next one to decide
        self.sums = {name: np.zeros(len(pairs), dtype=np.int64) for name in _SUMS}
        self.sums["first_price"][:] = -1
        self.charts = {i: Chart() for i in range(min(job.chart_pairs, len(pairs)))}
        self._plan(job)

    def _plan(self, job: Job) -> None:
        """With ``--ids``: each pair's ticks and ids, as one array sorted by (pair, tick)."""
        self.explicit = job.ids is not None
        if job.ids is None:
            return
        ticks, ids, counts = [], [], []
        for pair in job.pairs:
            found = job.ids.pairs.get(pair.key)
            counts.append(0 if found is None else len(found.ticks))
            if found is not None:
                ticks.append(found.ticks)
                ids.append(found.ids)
        self.plan_count = np.array(counts, dtype=np.int64)
        self.plan_start = _exclusive(self.plan_count)
        self.plan_ticks = np.concatenate(ticks) if ticks else np.zeros(0, dtype=np.int64)
        self.plan_ids = np.concatenate(ids) if ids else np.zeros(0, dtype=np.int64)
        owner, _ = _segments(self.plan_count)
        self.plan_keyed = owner * _TICK_SPAN + self.plan_ticks

    # --- the books ---------------------------------------------------------------------------

    def _map_books(self, single_series: bool) -> None:
        """Every priced book gets its index before the file is read (the one series of a file
        without book_id column serves them all), so rows of other books are dropped at once."""
        if single_series:
            index = self.books.add(ALL_BOOKS)
            self.pair_book = np.full(self.count_pairs, index, dtype=np.int64)
        else:
            self.pair_book = np.array([self.books.add(p.book) for p in self.job.pairs], dtype=np.int64)
        self.books.flush()
        self.priced = len(self.books.ids)
        self.count = np.zeros(self.priced, dtype=np.int64)
        self.tail = np.zeros((self.priced, self.span), dtype=np.int64)  # each book's last points, newest last
        order = np.argsort(self.pair_book, kind="stable")
        self.by_book = order  # pairs grouped by book
        self.book_pairs = np.bincount(self.pair_book, minlength=self.priced).astype(np.int64)
        self.book_first = _exclusive(self.book_pairs)

    # --- the run -----------------------------------------------------------------------------

    def run(self, path: str) -> Result:
        """Replay ``path``; CsvFormatError when its header is unusable."""
        started = time.perf_counter()
        self._map_books(read_header(path).book_id is None)
        reader = PriceFile(path, self.books, self.block_bytes)
        for rows in reader.blocks():
            self._rows(rows)
        last_tick = self._finish()
        return Result(self._stats(), self.charts, dict(reader.counters), list(reader.examples), last_tick,
                      time.perf_counter() - started)

    def _rows(self, rows: Rows) -> None:
        keep = rows.book < self.priced
        book = rows.book[keep].astype(np.int64)
        if not len(book):
            return
        price = rows.price[keep]
        order = np.argsort(book, kind="stable")
        book, price = book[order], price[order]
        cut = np.flatnonzero(book[1:] != book[:-1]) + 1
        first = np.concatenate([[0], cut])
        present = book[first]
        new = np.diff(np.concatenate([first, [len(book)]]))
        span = self.span
        # Each present book's segment: its last ``span`` points, then the block's; prefix sums over all.
        seg_start = _exclusive(span + new)
        points = np.empty(int((span + new).sum()), dtype=np.int64)
        columns = np.arange(span, dtype=np.int64)
        points[seg_start[:, None] + columns] = self.tail[present]
        points[np.arange(len(price)) + np.repeat(seg_start + span - first, new)] = price
        prefix = np.zeros(len(points) + 1, dtype=np.int64)
        np.cumsum(points, out=prefix[1:])  # may wrap: differences of windows stay exact
        before = self.count[present]
        self.count[present] = before + new
        self.tail[present] = points[(seg_start + new)[:, None] + columns]
        # The pairs of those books, and the ticks whose windows are now complete.
        owner, rank = _segments(self.book_pairs[present])
        pairs = self.by_book[self.book_first[present][owner] + rank]
        window = self.window[pairs]
        limit = self.count[self.pair_book[pairs]] - window
        if self.job.ticks is not None:
            limit = np.minimum(limit, self.job.ticks - 1)
        offset = (seg_start + span - before)[owner]  # point g of the pair's book is at prefix[offset + g]
        self._decide_upto(pairs, limit, lambda slot_pair, tick, at: prefix[offset[at] + tick + window[at]]
                          - prefix[offset[at] + tick])

    def _decide_upto(self, pairs: I64, limit: I64, window_sums: WindowSums) -> None:
        """Decide each of ``pairs``' planned ticks up to ``limit`` (its own), not decided yet;
        ``window_sums(slot pairs, ticks, their index in pairs)`` gives each decision's window sum."""
        if self.explicit:
            done = np.searchsorted(self.plan_keyed, pairs * _TICK_SPAN + limit, side="right") - self.plan_start[pairs]
            taken = self.next_tick[pairs]  # with a plan: how many of its ticks are decided
            count = np.maximum(done - taken, 0)
        else:
            count = np.maximum(limit - self.next_tick[pairs] + 1, 0)
        if not count.any():
            return
        at, rank = _segments(count)
        slot_pair = pairs[at]
        if self.explicit:
            where = self.plan_start[slot_pair] + self.next_tick[slot_pair] + rank
            tick, ids = self.plan_ticks[where], self.plan_ids[where]
        else:
            tick = self.next_tick[slot_pair] + rank
            ids = self._generated(slot_pair, tick)
        sums = window_sums(slot_pair, tick, at)
        self.next_tick[pairs] += count
        self._decide(_Batch(slot_pair, tick, sums, ids))

    def _generated(self, pair: I64, tick: I64) -> I64:
        if isinstance(self.model, Logistic):
            return np.full(len(pair), -1, dtype=np.int64)
        return demand.generated_ids(self.model.first_id, tick, self.job.ids_per_tick(), self.rank[pair])

    def _finish(self) -> int:
        """After the end of the file: the ticks left, on each book's last window (the clamp); the
        pairs whose book has fewer points than their window skip them. Returns the last tick."""
        book = self.pair_book
        enough = self.count[book] >= self.window
        if self.job.ticks is not None:
            last_tick = self.job.ticks - 1
        elif self.explicit:
            last_tick = int(self.plan_ticks.max(initial=-1))
        else:
            horizon = self.window if self.job.horizon_window is None else self.job.horizon_window
            last_tick = int((self.count[book] - horizon)[enough].max(initial=-1))
        left = self.plan_count - self.next_tick if self.explicit else np.maximum(last_tick - self.next_tick + 1, 0)
        skipping = ~enough & (left > 0)
        self.sums["skipped"][skipping] += left[skipping]
        prefix = np.zeros((len(self.tail), self.span + 1), dtype=np.int64)
        np.cumsum(self.tail, axis=1, out=prefix[:, 1:])
        final = prefix[book, self.span] - prefix[book, self.span - self.window]  # each pair's last window
        pairs = np.flatnonzero(enough & (left > 0)).astype(np.int64)
        while len(pairs):
            step = max(1, ROUND_SLOTS // len(pairs))
            if self.explicit:
                upto = self.plan_ticks[np.minimum(self.plan_start[pairs] + self.next_tick[pairs] + step - 1,
                                                  self.plan_start[pairs] + self.plan_count[pairs] - 1)]
            else:
                upto = np.minimum(self.next_tick[pairs] + step - 1, last_tick)
            self._decide_upto(pairs, upto, lambda slot_pair, tick, at: final[slot_pair])
            if self.explicit:
                pairs = pairs[self.next_tick[pairs] < self.plan_count[pairs]]
            else:
                pairs = pairs[self.next_tick[pairs] <= last_tick]
        return last_tick

    # --- deciding ----------------------------------------------------------------------------

    def _decide(self, batch: _Batch) -> None:
        n = len(batch.pair)
        price = np.empty(n, dtype=np.int64)
        rule = np.empty(n, dtype=np.int64)
        sent = np.empty(n, dtype=np.int64)
        bits = np.zeros(n, dtype=np.uint8)
        sold = np.empty(n, dtype=np.bool_)
        chained = self.chained[batch.pair]
        prior_last, prior_has = self.last.copy(), self.has_last.copy()  # before this batch, for the stats
        for mask, kernel in ((~chained, self._free), (chained, self._lockstep)):
            part = np.flatnonzero(mask) if not mask.all() else None
            if part is not None and not len(part):
                continue
            sub = batch if part is None else _Batch(batch.pair[part], batch.tick[part], batch.sums[part],
                                                    batch.ids[part])
            out = kernel(sub)
            target = slice(None) if part is None else part
            price[target], rule[target], sent[target], bits[target], sold[target] = out
        decisions = Decisions(batch.pair, batch.tick, batch.ids, sold, sent, price, rule, bits, batch.sums)
        self._account(decisions, prior_last, prior_has)
        if self.sink is not None:
            self.sink(decisions)

    def _first_sent(self, pair: I64, sums: I64) -> I64:
        """What a pair's first decision registers: the mean in cents, within the guardrails."""
        mean = cents.mean_cents(sums, self.window[pair])
        if not self.guarded:
            return mean
        price, _ = cents.guard_cents(mean, np.zeros(len(pair), dtype=np.int64), np.zeros(len(pair), dtype=np.bool_),
                                     self.guard.take(pair))
        return price

    def _rule(self, pair: I64, sums: I64, sold: Bools) -> I64:
        return cents.rule_cents(sums, sold, self.sold_num[pair], self.unsold_num[pair], self.q[pair])

    def _free(self, b: _Batch) -> tuple[I64, I64, I64, npt.NDArray[np.uint8], Bools]:
        """Pairs whose decisions do not depend on their previous one: all ticks at once."""
        sold = demand.parity_sold(b.ids)
        rule = self._rule(b.pair, b.sums, sold)
        if self.guarded:
            zeros = np.zeros(len(rule), dtype=np.int64)
            price, bits = cents.guard_cents(rule, zeros, zeros.astype(np.bool_), self.guard.take(b.pair))
        else:
            price, bits = rule, np.zeros(len(rule), dtype=np.uint8)
        sent = np.empty_like(price)
        sent[1:] = price[:-1]
        starts = np.flatnonzero(np.concatenate([[True], b.pair[1:] != b.pair[:-1]]))
        pair = b.pair[starts]
        sent[starts] = np.where(self.has_last[pair], self.last[pair], 0)
        fresh = starts[~self.has_last[pair]]
        if len(fresh):
            sent[fresh] = self._first_sent(b.pair[fresh], b.sums[fresh])
        ends = np.concatenate([starts[1:], [len(price)]]) - 1
        self.last[pair], self.has_last[pair] = price[ends], True
        return price, rule, sent, bits, sold

    def _lockstep(self, b: _Batch) -> tuple[I64, I64, I64, npt.NDArray[np.uint8], Bools]:
        """Pairs whose decision depends on their previous one: a tick at a time, all pairs at once."""
        n = len(b.pair)
        price, rule, sent = (np.empty(n, dtype=np.int64) for _ in range(3))
        bits = np.zeros(n, dtype=np.uint8)
        sold = np.zeros(n, dtype=np.bool_)
        starts = np.flatnonzero(np.concatenate([[True], b.pair[1:] != b.pair[:-1]]))
        lengths = np.diff(np.concatenate([starts, [n]]))
        order = np.argsort(-lengths, kind="stable")
        starts, lengths = starts[order], lengths[order]
        pair = b.pair[starts]
        last, has_last = self.last[pair].copy(), self.has_last[pair].copy()
        window, keys = self.window[pair], self.keys[pair]
        sold_num, unsold_num, q = self.sold_num[pair], self.unsold_num[pair], self.q[pair]
        guard = self.guard.take(pair)
        parity = not isinstance(self.model, Logistic)
        vector = self.exact[pair]  # a rule beyond integer exactness goes one decision at a time
        width = int(np.count_nonzero(vector))
        if width < len(pair):  # put them last: the vector steps take a prefix of the pairs
            move = np.argsort(~vector, kind="stable")
            starts, lengths, pair, last, has_last = starts[move], lengths[move], pair[move], last[move], has_last[move]
            window, keys, sold_num, unsold_num, q = window[move], keys[move], sold_num[move], unsold_num[move], q[move]
            guard = guard.take(move)
        step = 0
        while width:
            while width and lengths[width - 1] <= step:
                width -= 1
            if width < NARROW:
                break
            at = starts[:width] + step
            sums = b.sums[at]
            head = guard.head(width)
            sending = np.where(has_last[:width], last[:width], 0)
            if not has_last[:width].all():
                first = cents.mean_cents(sums, window[:width])
                if self.guarded:
                    first = cents.guard_cents(first, last[:width], np.zeros(width, dtype=np.bool_), head)[0]
                sending = np.where(has_last[:width], sending, first)
            if parity:
                now_sold = demand.parity_sold(b.ids[at])
            else:
                assert isinstance(self.model, Logistic)
                now_sold = demand.logistic_sold(self.model, sending, sums, window[:width], keys[:width], b.tick[at])
            ruled = cents.rule_cents(sums, now_sold, sold_num[:width], unsold_num[:width], q[:width])
            if self.guarded:
                decided, moved = cents.guard_cents(ruled, last[:width], has_last[:width], head)
                bits[at] = moved
            else:
                decided = ruled
            price[at], rule[at], sent[at], sold[at] = decided, ruled, sending, now_sold
            last[:width], has_last[:width] = decided, True
            step += 1
        for i in range(len(pair)):  # what is left: narrow steps, and rules beyond integer exactness
            if lengths[i] > step:
                last[i], has_last[i] = self._one_by_one(b, int(pair[i]), int(starts[i]) + step,
                                                        int(starts[i] + lengths[i]), int(last[i]), bool(has_last[i]),
                                                        (price, rule, sent, bits, sold))
        self.last[pair], self.has_last[pair] = last, has_last
        return price, rule, sent, bits, sold

    def _one_by_one(self, b: _Batch, pair: int, begin: int, end: int, last: int, has_last: bool,
                    out: tuple[I64, I64, I64, npt.NDArray[np.uint8], Bools]) -> tuple[int, bool]:
        """Decisions ``begin..end-1`` of one pair, each through the live Guardrails.apply."""
        price, rule, sent, bits, sold = out
        strategy = self.job.pairs[pair].strategy
        guardrails = self.guardrails[pair]
        window = strategy.rule.window
        for at in range(begin, end):
            sums = int(b.sums[at])
            if has_last:
                sending = last
            else:
                mean = cents.mean_cents(np.array([sums], dtype=np.int64), window)
                sending = cents.cents(guardrails.apply(cents.to_decimal(int(mean[0])), None)[0])
            if isinstance(self.model, Logistic):
                now_sold = bool(demand.logistic_sold(self.model, np.array([sending], dtype=np.int64),
                                                     np.array([sums], dtype=np.int64), window,
                                                     self.keys[pair:pair + 1], b.tick[at:at + 1])[0])
            else:
                now_sold = int(b.ids[at]) % 2 == 0
            if self.exact[pair]:
                arith = RuleArith.of(strategy.rule)
                num = arith.sold_num if now_sold else arith.unsold_num
                ruled = (2 * sums * num + arith.q) // (2 * arith.q)
            else:  # the live rule on the window's sum (the rule needs only the sum and N)
                same_sum = [Decimal(sums).scaleb(-6), *([Decimal(0)] * (window - 1))]
                ruled = cents.cents(reprice_window(same_sum, now_sold, strategy.rule))
            decided, moved = guardrails.apply(cents.to_decimal(ruled), cents.to_decimal(last) if has_last else None)
            price[at], rule[at], sent[at], sold[at] = cents.cents(decided), ruled, sending, now_sold
            bits[at] = sum(bit for bit, name in cents.BIT_NAMES if name in moved)
            last, has_last = int(price[at]), True
        return last, has_last

    # --- what is kept -------------------------------------------------------------------------

    def _account(self, d: Decisions, prior_last: I64, prior_has: Bools) -> None:
        """Add a batch's decisions to each pair's sums (the batch is grouped by pair)."""
        starts = np.flatnonzero(np.concatenate([[True], d.pair[1:] != d.pair[:-1]]))
        pair = d.pair[starts]
        sums = self.sums

        def add(name: str, values: npt.NDArray[np.int64] | npt.NDArray[np.bool_]) -> None:
            sums[name][pair] += np.add.reduceat(values.astype(np.int64), starts)

        sums["decisions"][pair] += np.diff(np.concatenate([starts, [len(d.pair)]]))
        add("units", d.sold)
        add("revenue", np.where(d.sold, d.sent, 0))
        add("price_sum", d.price)
        high = d.sums >> 24  # the windows' sums overflow int64 when summed: in two halves
        add("comp_high", high)
        add("comp_low", d.sums - (high << 24))
        carry = sums["comp_low"][pair] >> 24
        sums["comp_high"][pair] += carry
        sums["comp_low"][pair] -= carry << 24
        if self.guarded:
            guard = self.guard.take(d.pair)
            add("at_floor", guard.floor_set & guard.configured & (d.price == guard.floor))
            add("at_ceiling", guard.ceiling_set & guard.configured & (d.price == guard.ceiling))
            add("hits", d.bits != 0)
            for bit, name in cents.BIT_NAMES:
                add(name, (d.bits & bit) != 0)
        previous = np.empty_like(d.price)
        previous[1:] = d.price[:-1]
        previous[starts] = prior_last[pair]
        changed = d.price != previous
        changed[starts] &= prior_has[pair]
        add("changes", changed)
        fresh = sums["first_price"][pair] < 0
        sums["first_price"][pair[fresh]] = d.price[starts[fresh]]
        for i in np.flatnonzero(pair < len(self.charts)).tolist():
            chart = self.charts[int(pair[i])]
            part = slice(int(starts[i]), int(starts[i + 1]) if i + 1 < len(starts) else len(d.pair))
            chart.add(d.tick[part], d.price[part], d.sums[part], self.job.chart_points)

    def _stats(self) -> list[PairStats]:
        sums = {name: values.tolist() for name, values in self.sums.items()}
        out = []
        for i, pair in enumerate(self.job.pairs):
            stats = PairStats(pair.book, pair.strategy.name, pair.strategy.rule.window, self.job.costs.get(pair.book),
                              decisions=sums["decisions"][i], skipped=sums["skipped"][i], units=sums["units"][i],
                              revenue=sums["revenue"][i], price_sum=sums["price_sum"][i],
                              comp_sum=(sums["comp_high"][i] << 24) + sums["comp_low"][i],
                              at_floor=sums["at_floor"][i], at_ceiling=sums["at_ceiling"][i], hits=sums["hits"][i],
                              by_guardrail={name: sums[name][i] for name in GUARDRAILS}, changes=sums["changes"][i],
                              first_price=sums["first_price"][i] if sums["first_price"][i] >= 0 else None,
                              last_price=int(self.last[i]) if self.has_last[i] else None)
            out.append(stats)
        return out


def run(job: Job, path: str, sink: Sink | None = None) -> Result:
    return FastEngine(job, sink).run(path)
