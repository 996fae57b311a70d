"""The dispatcher, pure: at most one decision in flight per pair, at most one per (pair, tick), a
pair freed late decides the newest tick, and overload serves every pair in turn."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from actors.algorithm import dispatch
from actors.algorithm.pairs import PairTable, Work
from actors.pricing.strategies import Pair, Strategy
from transport.protocol import Tick


class Dispatcher(dispatch.Dispatcher):
    """The dispatcher over ``count`` pairs, spoken to by pair index (what these tests check)."""

    def __init__(self, count: int) -> None:
        super().__init__(PairTable(Pair(f"B{i}", Strategy()) for i in range(count)))
        self._works: dict[int, Work] = {}

    def new_tick(self, seq: int) -> dispatch.NewTick:  # type: ignore[override]
        return super().new_tick(Tick(seq, float(seq), float(seq), 1.0))

    def take(self, limit: int) -> list[int]:  # type: ignore[override]
        works = super().take(limit)
        for work in works:
            assert work.tick is self.tick  # each decision carries the tick it serves: the newest
            self._works[work.record.index] = work
        return [work.record.index for work in works]

    def finish(self, index: int) -> None:  # type: ignore[override]
        super().finish(self._works.pop(index))


def test_a_tick_hands_out_every_pair_once() -> None:
    d = Dispatcher(10)
    d.new_tick(0)
    taken = d.take(4) + d.take(4) + d.take(4)
    assert sorted(taken) == list(range(10))
    assert d.take(4) == [] and not d.pending
    assert d.busy == 10


def test_a_pair_busy_at_a_new_tick_decides_it_when_it_frees_up() -> None:
    d = Dispatcher(3)
    d.new_tick(0)
    first = d.take(3)
    for index in first[1:]:
        d.finish(index)
    late = d.new_tick(1)
    assert late.overruns == 1 and late.unstarted == 0
    again = d.take(3)
    assert sorted(again) == sorted(first[1:])  # the busy one is skipped for now, not forgotten
    d.finish(first[0])  # frees up late...
    assert d.take(3) == [first[0]]  # ...and is started for tick 1 at once
    assert d.take(3) == []


def test_overload_continues_the_scan_so_every_pair_gets_its_turn() -> None:
    d = Dispatcher(10)
    served: list[int] = []
    for seq in range(5):
        d.new_tick(seq)
        batch = d.take(4)  # capacity: 4 pairs per tick
        served += batch
        for index in batch:
            d.finish(index)
    # 20 starts over 10 pairs: each pair twice, none three times (round robin, no starvation)
    assert sorted(served) == sorted(list(range(10)) * 2)


def test_unstarted_pairs_are_counted_at_the_next_tick() -> None:
    d = Dispatcher(10)
    d.new_tick(0)
    d.take(3)
    assert d.new_tick(1).unstarted == 7


operations = st.lists(st.one_of(st.tuples(st.just("tick")), st.tuples(st.just("take"), st.integers(1, 5)),
                                st.tuples(st.just("finish"), st.integers(0, 1000))), max_size=200)


@settings(max_examples=300, deadline=None)
@given(count=st.integers(1, 12), ops=operations)
def test_never_twice_per_tick_never_two_in_flight_and_late_pairs_get_the_newest(
        count: int, ops: list[tuple[object, ...]]) -> None:
    d = Dispatcher(count)
    busy: set[int] = set()
    started: set[tuple[int, int]] = set()  # (pair, generation)
    seq = 0
    for op in ops:
        if op[0] == "tick":
            gen = d.generation
            late = d.new_tick(seq)
            seq += 1
            if gen:  # the pairs that missed the previous tick: exactly those never started for it
                assert late.unstarted == count - len({i for i, g in started if g == gen})
            assert late.overruns == len(busy)
        elif op[0] == "take":
            assert isinstance(op[1], int)
            for index in d.take(op[1]):
                assert index not in busy  # at most one in flight per pair
                assert (index, d.generation) not in started  # at most once per (pair, tick)
                busy.add(index)
                started.add((index, d.generation))
        elif busy:
            assert isinstance(op[1], int)
            index = sorted(busy)[op[1] % len(busy)]
            busy.discard(index)
            d.finish(index)
        assert d.busy == len(busy)
    # Liveness: once everything in flight finishes, every pair is started for the newest tick.
    for index in sorted(busy):
        d.finish(index)
    if d.generation:
        while taken := d.take(3):
            for index in taken:
                started.add((index, d.generation))
        assert {i for i, gen in started if gen == d.generation} == set(range(count))
