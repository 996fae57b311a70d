"""The one poll-until of the tests and the benchmarks."""

from __future__ import annotations

import threading
import time

import pytest

from bench.polling import async_wait_for, wait_for
from tests.helpers import run_async


def test_wait_for_returns_the_first_truthy_value() -> None:
    values = iter([None, 0, "", "found", "later"])
    assert wait_for(lambda: next(values), interval=0) == "found"


def test_a_wait_that_times_out_names_what_it_waited_for_and_its_details() -> None:
    with pytest.raises(AssertionError, match=r"timed out after 0.01s waiting for the door\nit is shut"):
        wait_for(lambda: False, 0.01, 0.001, "the door", details=lambda: "it is shut")


def test_the_condition_is_looked_at_once_more_at_the_deadline() -> None:
    looks: list[int] = []
    pauses: list[float] = []

    def pause(seconds: float) -> None:
        pauses.append(seconds)
        time.sleep(seconds)

    with pytest.raises(AssertionError):
        wait_for(lambda: looks.append(1), 0.01, 60.0, pause=pause)
    assert len(pauses) == 1 and pauses[0] <= 0.01  # the pause is cut short by the deadline,
    assert len(looks) == 2  # then one more look before the failure


def test_a_condition_variable_wakes_the_wait_at_once() -> None:
    changed = threading.Condition()
    box: list[int] = []

    def later() -> None:
        with changed:
            box.append(1)
            changed.notify_all()

    with changed:
        threading.Timer(0.01, later).start()
        assert wait_for(lambda: box, 10, 10, "the box", pause=changed.wait) == [1]  # not after 10 s


def test_the_async_form_takes_plain_and_coroutine_predicates() -> None:
    async def body() -> None:
        calls: list[int] = []

        async def probe() -> bool:
            calls.append(1)
            return len(calls) >= 3

        await async_wait_for(probe, interval=0)
        await async_wait_for(lambda: len(calls) == 3)
        with pytest.raises(AssertionError, match="waiting for never"):
            await async_wait_for(lambda: False, 0.01, 0.001, "never")

    run_async(body())
