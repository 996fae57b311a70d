"""Backpressure: whether the pool may start new decisions now. Pure: reads two small states.

New pairs wait their turn (the pool starts none; those in flight finish) while

* the spool is *paused*: full (the Ledger down or behind for as long as it holds), or its disk failing
  -- a decision that cannot be kept must not be made, since it could not be printed; or
* the Ledger is *behind*: it answers (its last answer acknowledged a batch, none is overdue) but more
  than ``backlog_max`` decisions wait for its acknowledgement -- alive but slower than the decisions, so
  the Algorithm slows to its pace instead of piling up a backlog.

A Ledger that does not answer (down, stopped, refusing: disk full, crash-looping) holds nothing back:
decisions go on into the spool, and are delivered when it returns. Pairs a tick could not start are
counted by the pool as overload of that tick (``unstarted``, ``missed``); here, the ticks during which
each cause held pairs back (``backpressure_ticks_spool``, ``backpressure_ticks_ledger``), with one
log line when a cause starts.
"""

from __future__ import annotations

import logging
from typing import Protocol

log = logging.getLogger("algorithm")

SPOOL = "spool"
LEDGER = "ledger"


class SpoolState(Protocol):
    @property
    def paused(self) -> bool: ...

    @property
    def backlog(self) -> int: ...


class LedgerState(Protocol):
    @property
    def answering(self) -> bool: ...


class Admission:
    def __init__(self, spool: SpoolState, ledger: LedgerState, backlog_max: int) -> None:
        if backlog_max < 1:
            raise ValueError("backlog_max must be at least 1")
        self._spool = spool
        self._ledger = ledger
        self._backlog_max = backlog_max
        self._held: set[str] = set()  # causes that held pairs back during the current tick
        self._cause = ""  # the cause now ("" none)
        self.counters: dict[str, int] = {"backpressure_ticks_spool": 0, "backpressure_ticks_ledger": 0,
                                         "ledger_behind": 0}

    def admits(self) -> bool:
        """Whether a new decision may start now (the pool asks before each one it starts)."""
        spool = self._spool
        if spool.paused:
            cause = SPOOL  # the spool logs its own pause
        elif spool.backlog >= self._backlog_max and self._ledger.answering:
            cause = LEDGER
        else:
            cause = ""
        if cause != self._cause:
            if cause == LEDGER:
                log.warning("the Ledger is behind (%d decisions not acknowledged, --ledger-backlog %d): new pairs "
                            "wait their turn", spool.backlog, self._backlog_max)
            elif self._cause == LEDGER:
                log.info("the Ledger caught up (%d decisions not acknowledged): pairs start again", spool.backlog)
            self._cause = cause
            self.counters["ledger_behind"] = int(cause == LEDGER)
        if cause:
            self._held.add(cause)
            return False
        return True

    def new_tick(self) -> None:
        """A tick arrived: count the causes that held pairs back during the one before."""
        for cause in self._held:
            self.counters[f"backpressure_ticks_{cause}"] += 1
        self._held.clear()
