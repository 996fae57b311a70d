"""Backpressure (pure): new decisions wait while the spool is paused, or while a Ledger that answers is
more than ``backlog_max`` behind; a Ledger that does not answer holds nothing back. Then the pool over
the real pipeline: a closed gate starts no pair (those in flight finish), an open one starts them all,
and the pairs a tick could not start are counted as its overload."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

import pytest

from actors.algorithm.admission import Admission
from actors.algorithm.dispatch import MAX_CARRIED, Dispatcher, NewTick
from actors.algorithm.pipeline import Pipeline
from actors.algorithm.pool import GATE_RECHECK, Pool
from tests.actors.algorithm import fakes
from tests.helpers import async_wait_for, run_async


@dataclass
class FakeSpool:
    paused: bool = False
    backlog: int = 0


@dataclass
class FakeLedger:
    answering: bool = True


def test_the_gate_holds_for_a_paused_spool_or_a_ledger_behind_that_answers(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    spool, ledger = FakeSpool(), FakeLedger()
    gate = Admission(spool, ledger, backlog_max=100)
    assert gate.admits()
    spool.backlog = 100
    assert not gate.admits() and gate.counters["ledger_behind"] == 1
    ledger.answering = False  # down, stopped, refusing: decisions go on into the spool
    assert gate.admits() and gate.counters["ledger_behind"] == 0
    spool.paused = True  # full: nothing may be decided that could not be kept
    assert not gate.admits()
    gate.new_tick()
    spool.paused, ledger.answering = False, True
    assert not gate.admits()
    spool.backlog = 99
    assert gate.admits()
    gate.new_tick()
    gate.new_tick()  # a tick with nothing held counts nothing
    assert gate.counters["backpressure_ticks_spool"] == 1 and gate.counters["backpressure_ticks_ledger"] == 2
    assert caplog.text.count("the Ledger is behind (100 decisions not acknowledged, --ledger-backlog 100)") == 2
    assert "the Ledger caught up" in caplog.text


class Switch:
    def __init__(self) -> None:
        self.open = False
        self.asked = 0

    def admits(self) -> bool:
        self.asked += 1
        return self.open


@pytest.mark.both_loops
@pytest.mark.parametrize("held", [1, MAX_CARRIED, MAX_CARRIED + 1])
def test_a_closed_gate_starts_no_pair_then_the_ticks_it_held_are_carried_or_counted_as_overload(held: int) -> None:
    books = [f"B{i}" for i in range(30)]
    clock = fakes.FakeClock()
    pairs = fakes.table(books)
    api = fakes.FakeApi(clock)
    sink = fakes.ListSink()
    pipeline = Pipeline(pairs, fakes.FakeDataManager(), api, sink, dm_batch=10, api_batch=1)
    dispatcher = Dispatcher(pairs)
    gate = Switch()
    pool = Pool(dispatcher, pipeline, api, workers=4, api_batch=1, dm_batch=10, clock=clock, gate=gate)
    news: list[NewTick] = []

    async def scenario() -> None:
        async with asyncio.TaskGroup() as group:
            runner = group.create_task(pool.run())
            for seq in range(held):  # the gate stays closed for ``held`` whole ticks
                late = pool.new_tick(fakes.tick(seq))
                if seq:
                    news.append(late)
                asked = gate.asked
                await async_wait_for(lambda asked=asked: gate.asked > asked)  # type: ignore[misc]
                for _ in range(5):  # asked again every GATE_RECHECK, never starting anything
                    clock.advance(GATE_RECHECK)
                    await asyncio.sleep(0.01)
                assert not sink.decisions and dispatcher.busy == 0
            news.append(pool.new_tick(fakes.tick(held)))
            gate.open = True
            clock.advance(GATE_RECHECK)
            wanted = (held + 1) * len(books) if held <= MAX_CARRIED else len(books)
            await async_wait_for(lambda: len(sink.decisions) == wanted)
            runner.cancel()

    run_async(scenario(), timeout=20)
    decided = sorted((d.book, d.tick) for d in sink.decisions)
    if held <= MAX_CARRIED:  # a hiccup: the ticks held are carried, decided in order once let through; none missed
        assert [(n.unstarted, n.overruns, n.carried) for n in news] == [(0, 0, len(books))] * held
        assert decided == sorted((b, t) for b in books for t in range(held + 1))
    else:  # a tick more: overload; every tick held (carried or not) is missed, counted once each
        assert [(n.unstarted, n.carried) for n in news] == [(0, len(books))] * (held - 1) + [(held * len(books), 0)]
        assert decided == sorted((b, held) for b in books)  # they decide for the newest tick once let through
