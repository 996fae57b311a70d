"""Waiting for a condition, with a deadline: the one poll loop of the tests and the benchmarks.

:func:`wait_for` blocks (between two looks it sleeps, or waits on a condition variable that is
notified when something changes); :func:`async_wait_for` yields to the event loop. Both look at the
condition once more at the deadline, then fail with an ``AssertionError`` naming what they waited for.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Callable
from typing import Literal, TypeVar

T = TypeVar("T")


class Deadline:
    """``timeout`` seconds from now, for a wait on ``what``; ``details()`` is added to the failure
    (a log tail, say)."""

    def __init__(self, timeout: float, what: str, details: Callable[[], str] | None = None) -> None:
        self.timeout = timeout
        self.what = what
        self._details = details
        self._end = time.monotonic() + timeout

    def pause(self, interval: float) -> float:
        """How long to wait before the next look: ``interval``, cut short by the deadline; once it has
        passed, AssertionError."""
        remaining = self._end - time.monotonic()
        if remaining <= 0:
            details = f"\n{self._details()}" if self._details is not None else ""
            raise AssertionError(f"timed out after {self.timeout}s waiting for {self.what}{details}")
        return min(interval, remaining)


def wait_for(predicate: Callable[[], T | Literal[False] | None], timeout: float = 5.0, interval: float = 0.005,
             what: str = "the condition", *, pause: Callable[[float], object] = time.sleep,
             details: Callable[[], str] | None = None) -> T:
    """Look at ``predicate`` until it is truthy; its value. Between two looks ``pause(seconds)``: a
    sleep, or a condition variable's ``wait`` (its lock held by the caller) so that a change is seen
    at once."""
    deadline = Deadline(timeout, what, details)
    while not (result := predicate()):
        pause(deadline.pause(interval))
    return result


async def async_wait_for(predicate: Callable[[], object], timeout: float = 5.0,  # noqa: ASYNC109 - the poll's deadline
                         interval: float = 0.005, what: str = "the condition") -> None:
    """Like :func:`wait_for`, yielding to the event loop between two looks; ``predicate`` may be a
    coroutine function (a probe that asks a peer)."""
    deadline = Deadline(timeout, what)
    while True:
        result = predicate()
        if inspect.isawaitable(result):
            result = await result
        if result:
            return
        await asyncio.sleep(deadline.pause(interval))
