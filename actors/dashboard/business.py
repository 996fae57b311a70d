"""The business as the Ledger's database tells it: which pairs are in the current catalogue, how many
decisions and guardrail hits each strategy has, which pairs sit at their floor or ceiling now.

Read by the Dashboard's reader (:mod:`actors.dashboard.ledger`: from the file, or over the Ledger's
socket) with :mod:`actors.ledger_reads.business` (one query over ``pairs``, one row per pair: a scan
of it, ~10 ms at 100,000 pairs), every :data:`REFRESH_EVERY` seconds, and at once when
an alert was raised or cleared (the alerts table is looked at every :data:`ALERTS_EVERY` second: two
index look-ups); kept: the overview and ``/metrics`` show the newest reading, never wait for one.

"Current": decided in the newest Scheduler run the Ledger has seen (``pairs.run``, the run of each
pair's newest decision). A pair only earlier runs decided (a book dropped from the config since, a
run of other books) is "earlier", shown on the books page behind a filter.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

from actors.alert_rules import ALERTS
from actors.ledger_reads import alerts
from actors.ledger_reads import business as ledger_business

REFRESH_EVERY: Final = 5.0
ALERTS_EVERY: Final = 1.0  # the alerts table is looked at this often: a change is read at once


@dataclass(frozen=True, slots=True)
class AlertRow:
    """One alert the Ledger raised (its ``alerts`` table): open while ``cleared_at`` is None."""

    alert: str
    book: str
    strategy: str
    since: float
    raised_at: float
    detail: str
    cleared_at: float | None = None
    cleared_detail: str | None = None

    @property
    def title(self) -> str:
        known = ALERTS.get(self.alert)
        return known.title if known else self.alert.replace("_", " ")

    def as_json(self) -> dict[str, Any]:
        known = ALERTS.get(self.alert)
        return {"alert": self.alert, "title": self.title, "advice": known.advice if known else "",
                "book": self.book or None, "strategy": self.strategy or None, "since": self.since,
                "raised_at": self.raised_at, "detail": self.detail, "cleared_at": self.cleared_at,
                "cleared_detail": self.cleared_detail}


@dataclass(frozen=True, slots=True)
class StrategyStats:
    strategy: str
    pairs: int
    current: int  # of them, in the current catalogue
    decisions: int
    guardrail_hits: int
    at_floor: int  # current pairs whose newest price the floor set
    at_ceiling: int

    def as_json(self) -> dict[str, Any]:
        return {"strategy": self.strategy, "pairs": self.pairs, "current": self.current, "decisions": self.decisions,
                "guardrail_hits": self.guardrail_hits, "at_floor": self.at_floor, "at_ceiling": self.at_ceiling}


@dataclass(frozen=True, slots=True)
class Business:
    read_at: float  # epoch seconds
    current_run: float | None  # the newest run's t0 (None: no decision yet)
    books: int  # distinct books in the current catalogue
    strategies: tuple[StrategyStats, ...]
    alerts: tuple[AlertRow, ...] = ()  # open, newest first (at most ledger_reads.business.ALERTS_SHOWN)
    alerts_open: int = 0  # all of them
    cleared: tuple[AlertRow, ...] = ()  # the newest cleared
    alerts_kept: bool = False  # the database has the alerts table (a Ledger of schema version 7 or later)
    alerts_mark: tuple[int, float] | None = None  # see alerts_mark(): a raise or a clear since changes it

    @property
    def pairs(self) -> int:
        return sum(s.current for s in self.strategies)

    @property
    def earlier(self) -> int:
        return sum(s.pairs - s.current for s in self.strategies)

    @property
    def at_floor(self) -> int:
        return sum(s.at_floor for s in self.strategies)

    @property
    def at_ceiling(self) -> int:
        return sum(s.at_ceiling for s in self.strategies)

    def as_json(self) -> dict[str, Any]:
        return {"read_at": self.read_at, "current_run": self.current_run, "books": self.books, "pairs": self.pairs,
                "earlier": self.earlier, "at_floor": self.at_floor, "at_ceiling": self.at_ceiling,
                "strategies": [s.as_json() for s in self.strategies], "alerts_kept": self.alerts_kept,
                "alerts_open": self.alerts_open, "alerts": [a.as_json() for a in self.alerts],
                "cleared": [a.as_json() for a in self.cleared]}


def alert_row(r: Sequence[Any]) -> AlertRow:
    """One alert of the Ledger's rows (:data:`actors.ledger_reads.columns.ALERT_COLUMNS`)."""
    return AlertRow(str(r[0]), str(r[1]), str(r[2]), float(r[3]), float(r[4]), str(r[5]),
                    None if r[6] is None else float(r[6]), None if r[7] is None else str(r[7]))


def mark(plain: Any) -> tuple[int, float] | None:
    """The alerts' mark of a read (see :func:`actors.ledger_reads.alerts.mark`)."""
    return None if plain is None else (int(plain[0]), float(plain[1]))


def reading(plain: Any, now: float) -> Business:
    """The Dashboard's reading of a ``business`` read (:mod:`actors.ledger_reads.business`)."""
    run = plain["run"]
    strategies = tuple(StrategyStats(str(r[0]), int(r[1]), int(r[2]), int(r[3]), int(r[4]), int(r[5]), int(r[6]))
                       for r in plain["strategies"])
    return Business(now, None if run is None else float(run), int(plain["books"]), strategies,
                    tuple(map(alert_row, plain["alerts"])), int(plain["open"]), tuple(map(alert_row, plain["cleared"])),
                    bool(plain["kept"]), mark(plain["mark"]))


def read(conn: sqlite3.Connection, now: float) -> Business:
    """Read on ``conn`` (the tests' way in; the Dashboard reads through its reader)."""
    return reading(ledger_business.read(conn), now)


def alerts_mark(conn: sqlite3.Connection) -> tuple[int, float] | None:
    return mark(alerts.mark(conn))


def pair_alerts_of(plain: Any) -> dict[tuple[str, str], list[AlertRow]]:
    """The open alerts of a ``pair_alerts`` read, by pair (and by strategy, book "")."""
    found: dict[tuple[str, str], list[AlertRow]] = {}
    for alert in map(alert_row, plain):
        found.setdefault((alert.book, alert.strategy), []).append(alert)
    return found
