"""A window's mean crosses the system unchanged: for every window of 1..10 prices, the decision the
Algorithm's pipeline makes (its pricing code, against fakes of the DataManager and the APIServer) is
encoded, decoded and kept by the Ledger with the very mean the price was computed from, however many
digits it has (a window of 3, 6, 7 or 9 prices gives limits.MEAN_DIGITS of them)."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from actors.algorithm.pairs import PairTable, State, Work
from actors.algorithm.pipeline import Pipeline
from actors.ledger.records import to_row
from actors.pricing.rule import PricingRule, avg_comp_price, reprice_window
from actors.pricing.strategies import Pair, Strategy
from tests.actors.algorithm.fakes import FakeApi, FakeDataManager, ListSink, tick
from tests.helpers import run_async
from transport import ledger_rows, limits, protocol
from transport.protocol import Decision, LedgerBatch

pytestmark = pytest.mark.both_loops
WINDOWS = range(1, 11)
D = Decimal


@dataclass
class GivenWindows(FakeDataManager):
    """Answers every book with the first ``count`` of ``prices``."""

    prices: tuple[Decimal, ...] = field(default_factory=tuple)

    def _window(self, book: str, seq: int, count: int) -> tuple[Decimal, ...]:
        return self.prices[:count]


def decisions(prices: tuple[Decimal, ...]) -> list[Decision]:
    """One decision per window size, by the pipeline: book ``W<n>`` priced over the first n prices."""
    pairs = PairTable(Pair(f"W{n}", Strategy(f"w{n}", PricingRule(window=n), D(0))) for n in WINDOWS)
    sink = ListSink()
    pipeline = Pipeline(pairs, GivenWindows(prices=prices), FakeApi(), sink, dm_batch=100, api_batch=1)
    todo = []
    for record in pairs:
        record.work = Work(record, tick(0))
        todo.append(record.work)

    async def decide() -> None:
        ready = await pipeline.fetch(todo)
        await pipeline.register(ready)
        await pipeline.read([w for w in ready if w.state is State.READING])

    run_async(decide())
    assert len(sink.decisions) == len(WINDOWS), pipeline.counters
    return sink.decisions


competitor = st.one_of(
    st.decimals(min_value=limits.COMPETITOR_PRICE_MIN, max_value=limits.COMPETITOR_PRICE_MAX,
                places=limits.PRICE_DECIMALS),
    st.sampled_from([limits.COMPETITOR_PRICE_MIN, limits.COMPETITOR_PRICE_MAX, D("0.02"), D("0.010001"),
                     D("4999999.999999"), D("1234567.891234"), D("3"), D("6"), D("7"), D("9")]))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(competitor, min_size=10, max_size=10).map(tuple))
@example(tuple(D(p) for p in ("3", "6", "7", "9", "3", "6", "7", "9", "3", "6")))
@example((limits.COMPETITOR_PRICE_MIN,) * 2 + (D("0.02"),) * 8)  # a mean under 0.1: the longest text
@example((limits.COMPETITOR_PRICE_MAX,) * 9 + (D("4999999.999999"),))
def test_a_decision_of_any_window_is_sent_and_kept_with_its_mean_unchanged(prices: tuple[Decimal, ...]) -> None:
    made = decisions(prices)
    for d in made:
        n = int(d.book[1:])
        assert d.avg_comp_price == avg_comp_price(prices[:n]) and str(d.avg_comp_price).count(".") <= 1
        assert d.rule_price is None and d.price == reprice_window(d.prices, d.sold, PricingRule(window=n))
        assert protocol.decode(protocol.encode(d)) == d
    frame = protocol.encode(LedgerBatch(1, tuple(made)))
    batch = protocol.decode_as(frame, LedgerBatch)
    assert batch.decisions == tuple(made)
    kept = ledger_rows.read_batch(frame)  # the Ledger's fast path; the decoded one must agree
    assert kept is not None and kept[1] == [to_row(d) for d in batch.decisions]
    for d, row in zip(made, kept[1], strict=True):
        assert row.avg_comp_price == str(d.avg_comp_price) and D(row.avg_comp_price) == d.avg_comp_price
        assert row.price == str(d.price) and row.prices == '["' + '","'.join(map(str, d.prices)) + '"]'


def test_the_longest_mean_text_is_the_bound_the_codec_and_the_ledger_derive_from_the_precision() -> None:
    longest = avg_comp_price([limits.COMPETITOR_PRICE_MIN] * 2 + [D("0.02")])  # 0.01333..., 60 digits
    text = str(longest)
    assert len(longest.as_tuple().digits) == limits.MEAN_DIGITS
    assert len(text) == limits.MEAN_TEXT_MAX and len(text.split(".")[1]) == limits.MEAN_DECIMALS
    assert len(str(avg_comp_price([limits.COMPETITOR_PRICE_MAX] * 2 + [D("4999999.999999")]))) <= limits.MEAN_TEXT_MAX
