"""What the Ledger stores, as pure functions (no I/O): a decision checked and turned into a row of the
``decisions`` table, a batch's rows folded into one ``pairs`` row per pair, and the retention rule.

Money stays exact: decimal strings in fixed-point notation (never ``1E+1``), ``price_cents`` an
integer; ``avg_sort`` is the one float, kept only to sort by.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import Final, NamedTuple

from transport import limits
from transport.protocol import Decision

SECONDS_PER_DAY: Final = 86_400.0
SYNCHRONOUS_MODES: Final = ("full", "normal")  # SQLite's PRAGMA synchronous in WAL mode, as --synchronous


class DecisionRow(NamedTuple):
    """One row of ``decisions``, in column order (ready for ``executemany``)."""

    book: str
    strategy: str
    tick: int
    ts: float
    prices: str  # JSON array of decimal strings, oldest first
    avg_comp_price: str
    request_id: int
    sold: int
    price: str
    rule_price: str | None
    guardrail: str | None  # JSON array of names, None when no guardrail moved the price


class PairRow(NamedTuple):
    """One row of ``pairs`` for an upsert: the newest of a batch's decisions of one pair, and how many
    of them there were (added to the stored counts)."""

    book: str
    strategy: str
    tick: int
    ts: float
    price: str
    price_cents: int
    avg_comp_price: str
    avg_sort: float
    sold: int
    guardrail: str | None
    decisions: int
    guardrail_hits: int


CENT: Final = Decimal("0.01")


def _fixed(value: Decimal) -> str:
    return format(value, "f")


def _cents(value: Decimal) -> str:
    return format(value.quantize(CENT), "f")  # exact: check() allowed at most two decimals


def _is_money(value: Decimal, low: Decimal, high: Decimal, decimals: int) -> bool:
    exponent = value.as_tuple().exponent
    return isinstance(exponent, int) and -exponent <= decimals and low <= value <= high


def _is_name(text: str, max_len: int) -> bool:
    return 0 < len(text) <= max_len and text.isprintable() and text == text.strip()


def check(decision: Decision) -> str | None:
    """Why ``decision`` cannot be kept, or None. The codec checked the types; this checks the values
    against the same limits the rest of the system uses, so nothing the Algorithm could never have
    decided ends up in the ledger."""
    d = decision
    if not limits.is_valid_book_id(d.book):
        return "book: not a valid book id"
    if not _is_name(d.strategy, limits.STRATEGY_NAME_MAX_LEN):
        return "strategy: not a valid strategy name"
    if not (math.isfinite(d.ts) and d.ts > 0):
        return "ts: not a positive time"
    if not 1 <= len(d.prices) <= limits.WINDOW_MAX:
        return f"prices: expected 1..{limits.WINDOW_MAX} prices"
    competitor = (limits.COMPETITOR_PRICE_MIN, limits.COMPETITOR_PRICE_MAX, limits.PRICE_DECIMALS)
    if not all(_is_money(p, *competitor) for p in d.prices):
        return "prices: a price outside the competitor price limits"
    if not (d.avg_comp_price.is_finite() and 0 < d.avg_comp_price <= limits.COMPETITOR_PRICE_MAX):
        return "avg_comp_price: outside the competitor price limits"
    if not _is_money(d.price, limits.PRICE_MIN, limits.PRICE_MAX, 2):
        return "price: not a price in cents within the price limits"
    if d.rule_price is not None and not _is_money(d.rule_price, limits.PRICE_MIN, limits.PRICE_MAX, 2):
        return "rule_price: not a price in cents within the price limits"
    if not all(_is_name(name, 32) for name in d.guardrail):
        return "guardrail: not a list of guardrail names"
    return None


def to_row(d: Decision) -> DecisionRow:
    """The ``decisions`` row of a decision that passed :func:`check`."""
    prices = json.dumps([_fixed(p) for p in d.prices], separators=(",", ":"))
    guardrail = json.dumps(list(d.guardrail), separators=(",", ":")) if d.guardrail else None
    rule_price = None if d.rule_price is None else _cents(d.rule_price)
    return DecisionRow(d.book, d.strategy, d.tick, d.ts, prices, _fixed(d.avg_comp_price), d.request_id,
                       int(d.sold), _cents(d.price), rule_price, guardrail)


def _newer(a: DecisionRow, b: DecisionRow) -> bool:
    """``a`` was decided after ``b``. By time, then tick: ticks restart at 0 with every launcher run, the
    decision time does not."""
    return (a.ts, a.tick) > (b.ts, b.tick)


def pair_rows(rows: Iterable[DecisionRow]) -> list[PairRow]:
    """One ``pairs`` row per pair among ``rows`` (newly inserted decisions): the newest decision's
    fields, the number of decisions, and how many of them a guardrail moved."""
    newest: dict[tuple[str, str], DecisionRow] = {}
    counts: dict[tuple[str, str], list[int]] = {}
    for row in rows:
        key = (row.book, row.strategy)
        count = counts.setdefault(key, [0, 0])
        count[0] += 1
        count[1] += row.guardrail is not None
        if key not in newest or _newer(row, newest[key]):
            newest[key] = row
    out = []
    for key, row in newest.items():
        decisions, hits = counts[key]
        cents = int(Decimal(row.price).scaleb(2))  # exact: a price has at most two decimals
        out.append(PairRow(row.book, row.strategy, row.tick, row.ts, row.price, cents, row.avg_comp_price,
                           float(row.avg_comp_price), row.sold, row.guardrail, decisions, hits))
    return out


# --- retention --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Retention:
    """How much history to keep: decisions younger than ``max_age_days`` (0: any age) and at most
    ``max_rows`` of them (0: any number). Applied ``step`` rows per transaction, so a big backlog is
    removed in small deletes between inserts, never in one long transaction."""

    max_age_days: float = 0.0
    max_rows: int = 0
    step: int = 2000

    @property
    def enabled(self) -> bool:
        return self.max_age_days > 0 or self.max_rows > 0

    def cutoff(self, now: float) -> float | None:
        """Decisions older than this (epoch seconds) are due for deletion; None: no age limit."""
        return now - self.max_age_days * SECONDS_PER_DAY if self.max_age_days > 0 else None

    def excess(self, rows: int) -> int:
        """How many of ``rows`` decisions are over the row limit."""
        return max(0, rows - self.max_rows) if self.max_rows > 0 else 0
