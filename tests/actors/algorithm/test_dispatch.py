"""The dispatcher, pure: at most one decision in flight per pair, at most one per (pair, tick), a
pair freed late decides the newest tick, a tick's rest is carried over a moment's delay, and overload
serves every pair in turn."""

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
        self.served: list[int] = []  # the seq each pair of the last take() was started for

    def new_tick(self, seq: int) -> dispatch.NewTick:  # type: ignore[override]
        return super().new_tick(Tick(seq, 0.0, float(seq), 1.0))

    def take(self, limit: int) -> list[int]:  # type: ignore[override]
        works = super().take(limit)
        assert len({work.tick.seq for work in works}) <= 1  # one tick per call: one batch request
        for work in works:
            assert self.tick is not None and work.tick.seq in (self.tick.seq, self.tick.seq - 1)
            self._works[work.record.index] = work
        self.served = [work.tick.seq for work in works]
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


def test_a_tick_late_by_a_moment_is_carried_and_every_pair_decides_it() -> None:
    d = Dispatcher(10)
    d.new_tick(0)
    first = d.take(6)  # a hiccup: tick 1 comes before tick 0's scan is over
    late = d.new_tick(1)
    assert (late.unstarted, late.carried) == (0, 4)
    rest = d.take(10)
    assert d.served == [0] * 4 and sorted(first + rest) == list(range(10))  # tick 0's rest, for tick 0
    for index in first + rest:
        d.finish(index)
    again = d.take(10)
    assert d.served == [1] * 10 and sorted(again) == list(range(10))  # then all of tick 1
    for index in again:
        d.finish(index)
    assert d.new_tick(2) == dispatch.NewTick(0, 0, 0)  # nothing missed


def test_a_carry_unfinished_within_a_tick_is_overload_its_rest_missed_and_counted_once() -> None:
    d = Dispatcher(10)
    d.new_tick(0)
    d.take(3)
    assert d.new_tick(1) == dispatch.NewTick(3, 0, 7)  # 7 places carried
    d.take(2)  # of the carry
    # Tick 2: tick 0's 5 pairs never started are missed, and all of tick 1 (none started): overload,
    # so no carry now; the scan goes on where the carry stopped.
    assert d.new_tick(2) == dispatch.NewTick(5, 5 + 10, 0)
    taken = d.take(5)
    assert d.served == [2] * 5 and taken == [5, 6, 7, 8, 9]  # tick 0's unreached pairs come first


def test_no_carry_across_lost_ticks_or_a_new_run() -> None:
    d = Dispatcher(10)
    d.new_tick(0)
    d.take(3)
    assert d.new_tick(2) == dispatch.NewTick(3, 7, 0)  # tick 1 lost: tick 0 is long past
    d.take(4)
    assert dispatch.Dispatcher.new_tick(d, Tick(0, 9.0, 9.0, 1.0)).carried == 0  # another run


def test_unstarted_pairs_are_counted_at_the_next_tick() -> None:
    d = Dispatcher(10)
    d.new_tick(0)
    d.take(3)
    assert d.new_tick(2).unstarted == 7


operations = st.lists(st.one_of(st.tuples(st.just("tick")), st.tuples(st.just("take"), st.integers(1, 5)),
                                st.tuples(st.just("finish"), st.integers(0, 1000))), max_size=200)


@settings(max_examples=300, deadline=None)
@given(count=st.integers(1, 12), ops=operations)
def test_never_twice_per_tick_never_two_in_flight_and_late_pairs_get_the_newest(
        count: int, ops: list[tuple[object, ...]]) -> None:
    d = Dispatcher(count)
    busy: set[int] = set()
    started: set[tuple[int, int]] = set()  # (pair, seq)
    seq = 0
    reported = 0  # pair-ticks missed, as the ticks reported them
    for op in ops:
        if op[0] == "tick":
            late = d.new_tick(seq)
            seq += 1
            reported += late.unstarted
            assert late.overruns == len(busy)
        elif op[0] == "take":
            assert isinstance(op[1], int)
            for index, served in zip(d.take(op[1]), d.served, strict=True):
                assert index not in busy  # at most one in flight per pair
                assert (index, served) not in started  # at most once per (pair, tick)
                busy.add(index)
                started.add((index, served))
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
            for index, served in zip(taken, d.served, strict=True):
                assert (index, served) not in started
                started.add((index, served))
                d.finish(index)
        assert {i for i, s in started if s == seq - 1} == set(range(count))
        # Every pair-tick missed is reported exactly once: one more tick, then one after a lost tick
        # (never carried), end every tick so far.
        reported += d.new_tick(seq).unstarted + d.new_tick(seq + 2).unstarted
        assert reported == sum(count - len({i for i, s in started if s == t}) for t in range(seq + 1))
