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
from actors.algorithm.dispatch import Dispatcher
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
def test_a_closed_gate_starts_no_pair_and_the_tick_counts_them_as_overload() -> None:
    books = [f"B{i}" for i in range(30)]
    clock = fakes.FakeClock()
    pairs = fakes.table(books)
    api = fakes.FakeApi(clock)
    sink = fakes.ListSink()
    pipeline = Pipeline(pairs, fakes.FakeDataManager(), api, sink, dm_batch=10, api_batch=1)
    dispatcher = Dispatcher(pairs)
    gate = Switch()
    pool = Pool(dispatcher, pipeline, api, workers=4, api_batch=1, dm_batch=10, clock=clock, gate=gate)

    async def scenario() -> tuple[int, int]:
        async with asyncio.TaskGroup() as group:
            runner = group.create_task(pool.run())
            pool.new_tick(fakes.tick(0))
            await async_wait_for(lambda: gate.asked >= 1)
            for _ in range(5):  # asked again every GATE_RECHECK, never starting anything
                clock.advance(GATE_RECHECK)
                await asyncio.sleep(0.01)
            assert gate.asked >= 5 and not sink.decisions and dispatcher.busy == 0
            late = pool.new_tick(fakes.tick(1))  # tick 0 could start none of them: its overload
            gate.open = True
            clock.advance(GATE_RECHECK)
            await async_wait_for(lambda: len(sink.decisions) == len(books))
            runner.cancel()
            return late.unstarted, late.overruns

    unstarted, overruns = run_async(scenario(), timeout=20)
    assert (unstarted, overruns) == (len(books), 0)
    assert {d.tick for d in sink.decisions} == {1}  # they decide for the newest tick once let through
