"""The dispatcher, pure: at most one decision in flight per pair, at most one per (pair, tick), a
pair's ticks in order, a pair freed late decides the oldest tick it owes, ticks are carried over a
hiccup of up to MAX_CARRIED ticks, and overload serves every pair in turn."""

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
            assert self.tick is not None and self.tick.seq - dispatch.MAX_CARRIED <= work.tick.seq <= self.tick.seq
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
    ticks = 5 + dispatch.MAX_CARRIED
    for seq in range(ticks):
        d.new_tick(seq)
        batch = d.take(4)  # capacity: 4 pairs per tick, never enough: carries, then overload
        served += batch
        for index in batch:
            d.finish(index)
    # Over 10 pairs each is started once or twice more than another at most (round robin, no
    # starvation), and the Dispatcher is behind: it serves the newest tick, carrying nothing.
    counts = [served.count(index) for index in range(10)]
    assert sum(counts) <= 4 * ticks and max(counts) - min(counts) <= 1
    assert d.new_tick(ticks).carried == 0 and d.take(4) and set(d.served) == {ticks}


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


def test_a_hiccup_of_several_ticks_is_carried_and_every_pair_decides_every_tick() -> None:
    d = Dispatcher(10)
    d.new_tick(0)
    first = d.take(6)  # a peer held up: nothing moves for MAX_CARRIED ticks
    for seq in range(1, dispatch.MAX_CARRIED + 1):
        late = d.new_tick(seq)
        assert late.unstarted == 0 and late.carried == (4 if seq == 1 else 10)
    for index in first:  # the peer is back: the decisions of tick 0 in flight end
        d.finish(index)
    served: dict[int, list[int]] = {}
    while taken := d.take(10):
        for index, seq in zip(taken, d.served, strict=True):
            served.setdefault(seq, []).append(index)
            d.finish(index)
    # every pair decided every tick, each tick once, late (the oldest first), and nothing missed
    every = {seq: list(range(10)) for seq in range(1, dispatch.MAX_CARRIED + 1)}
    assert {seq: sorted(pairs) for seq, pairs in served.items()} == {0: [i for i in range(10) if i not in first],
                                                                     **every}
    assert d.new_tick(dispatch.MAX_CARRIED + 1) == dispatch.NewTick(0, 0, 0)


def test_a_pair_busy_through_a_carried_tick_decides_it_once_free() -> None:
    d = Dispatcher(3)
    d.new_tick(0)
    first = d.take(3)
    assert d.new_tick(1).carried == 0  # tick 0: every pair started
    d.finish(first[1])
    d.finish(first[2])
    assert sorted(d.take(3)) == sorted(first[1:])  # tick 1: the pair still busy with tick 0 is wanted
    assert d.new_tick(2).carried == 1  # tick 1 waits for it: carried
    d.finish(first[0])  # free at last (a slow answer): it decides tick 1 first, then tick 2
    assert d.take(3) == [first[0]] and d.served == [1]
    d.finish(first[0])
    assert d.take(3) == [first[0]] and d.served == [2]
    assert d.new_tick(3).unstarted == 0


def test_a_carry_unscanned_past_max_carried_ticks_is_overload_its_rest_missed_and_counted_once() -> None:
    d = Dispatcher(10)
    d.new_tick(0)
    d.take(3)
    assert d.new_tick(1) == dispatch.NewTick(3, 0, 7)  # 7 pairs carried
    d.take(2)  # of the carry
    for seq in range(2, dispatch.MAX_CARRIED + 1):  # each tick carried in turn, none started
        assert d.new_tick(seq) == dispatch.NewTick(5, 0, 10)
    # One more tick: tick 0 is past MAX_CARRIED ticks with its scan unfinished: overload. Tick 0's 5
    # pairs never started are missed, and every carried tick's 10, and the last tick's 10; no carry
    # now, the scan goes on where tick 0's stopped.
    carried = dispatch.MAX_CARRIED - 1
    assert d.new_tick(dispatch.MAX_CARRIED + 1) == dispatch.NewTick(5, 5 + 10 * carried + 10, 0)
    taken = d.take(5)
    assert d.served == [dispatch.MAX_CARRIED + 1] * 5 and taken == [5, 6, 7, 8, 9]  # tick 0's unreached first


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
    last: dict[int, int] = {}  # each pair's newest tick started
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
                assert served > last.get(index, -1)  # a pair's ticks in order: its prices never go back
                last[index] = served
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
