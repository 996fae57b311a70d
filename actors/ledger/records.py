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
_COMPETITOR: Final = (limits.COMPETITOR_PRICE_MIN, limits.COMPETITOR_PRICE_MAX, limits.PRICE_DECIMALS)
# The exact mean of a window: any positive value up to the largest price, with as many digits as the
# codec lets through (a mean of prices with 6 decimals may have many more).
_AVG_MIN: Final = Decimal("1E-40")
_AVG_DECIMALS: Final = 40
_GUARDRAIL_NAME_MAX: Final = 32


class DecisionRow(NamedTuple):
    """One row of ``decisions``, in column order (ready for ``executemany``)."""

    book: str
    strategy: str
    run: float  # the Scheduler run's t0: with ``tick``, which tick of which run (0: before v3 recorded runs)
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
    run: float
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


def _money_text(value: Decimal, low: Decimal, high: Decimal, decimals: int) -> str | None:
    """``value`` in fixed-point notation if it lies in [low, high] with at most ``decimals`` digits after
    the point, else None. Works on the text (``as_tuple`` and ``quantize`` cost several times more: this
    runs for every price of every decision, on the event loop)."""
    if not value.is_finite() or not low <= value <= high:
        return None
    text = str(value)
    if "E" in text:  # exponent notation (1E+1): write it out
        text = format(value, "f")
    point = text.find(".")
    return None if point >= 0 and len(text) - point - 1 > decimals else text


def _in_cents(text: str) -> str:
    """A price text with at most two decimals, with exactly two ("16.1" -> "16.10")."""
    point = text.find(".")
    return text + ".00" if point < 0 else text + "0" * (2 - (len(text) - point - 1))


def _is_name(text: str, max_len: int) -> bool:
    return 0 < len(text) <= max_len and text.isprintable() and text == text.strip()


def to_row(decision: Decision) -> DecisionRow | str:
    """The ``decisions`` row of ``decision``, or why it cannot be kept. The codec checked the types;
    this checks the values against the limits the rest of the system uses, so nothing the Algorithm
    could never have decided ends up in the ledger. Money is kept exact, in fixed-point notation."""
    d = decision
    if not limits.is_valid_book_id(d.book):
        return "book: not a valid book id"
    if not _is_name(d.strategy, limits.STRATEGY_NAME_MAX_LEN):
        return "strategy: not a valid strategy name"
    if not (math.isfinite(d.ts) and d.ts > 0):
        return "ts: not a positive time"
    if not (math.isfinite(d.run) and d.run >= 0):
        return "run: not a run start time (epoch seconds, or 0 when unknown)"
    if not 1 <= len(d.prices) <= limits.WINDOW_MAX:
        return f"prices: expected 1..{limits.WINDOW_MAX} prices"
    prices: list[str] = []
    for competitor in d.prices:
        text = _money_text(competitor, *_COMPETITOR)
        if text is None:
            return "prices: a price outside the competitor price limits"
        prices.append(text)
    avg = _money_text(d.avg_comp_price, _AVG_MIN, limits.COMPETITOR_PRICE_MAX, _AVG_DECIMALS)
    if avg is None:
        return "avg_comp_price: outside the competitor price limits"
    price = _money_text(d.price, limits.PRICE_MIN, limits.PRICE_MAX, 2)
    if price is None:
        return "price: not a price in cents within the price limits"
    rule_price = None if d.rule_price is None else _money_text(d.rule_price, limits.PRICE_MIN, limits.PRICE_MAX, 2)
    if d.rule_price is not None and rule_price is None:
        return "rule_price: not a price in cents within the price limits"
    if not all(_is_name(name, _GUARDRAIL_NAME_MAX) for name in d.guardrail):
        return "guardrail: not a list of guardrail names"
    # Decimal strings need no JSON escaping: join them directly (json.dumps costs more, per decision).
    prices_json = '["' + '","'.join(prices) + '"]'
    guardrail = json.dumps(list(d.guardrail), separators=(",", ":")) if d.guardrail else None
    return DecisionRow(d.book, d.strategy, d.run, d.tick, d.ts, prices_json, avg, d.request_id, int(d.sold),
                       _in_cents(price), None if rule_price is None else _in_cents(rule_price), guardrail)


def stored_price(text: object) -> Decimal | None:
    """A price read back from the database, or None if it is not one the system could have set (the
    file may have been edited by hand: never let that reach a client)."""
    if not isinstance(text, str) or len(text) > 40:
        return None
    try:
        price = Decimal(text)
    except ArithmeticError:
        return None
    return price if _money_text(price, limits.PRICE_MIN, limits.PRICE_MAX, 2) is not None else None


def newest_key(row: DecisionRow) -> tuple[float, float, int]:
    """What "newest" sorts by: the decision time (ticks restart at 0 with every launcher run, the time
    does not), then run and tick, so the order is total (the Ledger's upsert of ``pairs`` compares the
    same three columns)."""
    return (row.ts, row.run, row.tick)


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
        if key not in newest or newest_key(row) > newest_key(newest[key]):
            newest[key] = row
    out = []
    for key, row in newest.items():
        decisions, hits = counts[key]
        cents = int(Decimal(row.price).scaleb(2))  # exact: a price has at most two decimals
        out.append(PairRow(row.book, row.strategy, row.run, row.tick, row.ts, row.price, cents, row.avg_comp_price,
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
