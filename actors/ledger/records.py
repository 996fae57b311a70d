"""What the Ledger stores, as pure functions (no I/O): a decision checked and turned into a row of the
``decisions`` table, a batch's rows folded into one ``pairs`` row per pair, and the retention rule.

Money stays exact: decimal strings in fixed-point notation (never ``1E+1``), ``price_cents`` an
integer; ``avg_sort`` is the one float, kept only to sort by.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Final, NamedTuple

import msgpack

from transport import limits
from transport.ledger_rows import DecisionRow, in_cents, is_name
from transport.protocol import Decision

SECONDS_PER_DAY: Final = 86_400.0
SYNCHRONOUS_MODES: Final = ("full", "normal")  # SQLite's PRAGMA synchronous in WAL mode, as --synchronous
_COMPETITOR: Final = (limits.COMPETITOR_PRICE_MIN, limits.COMPETITOR_PRICE_MAX, limits.PRICE_DECIMALS)
# The mean of a window as the Algorithm computed it: any positive value up to the largest price, with
# as many decimals as its precision gives (limits.MEAN_DIGITS: 61 decimals for a mean under 0.1).
_AVG_MIN: Final = Decimal("1E-40")
_AVG_DECIMALS: Final = limits.MEAN_DECIMALS


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


def to_row(decision: Decision) -> DecisionRow | str:
    """The ``decisions`` row of ``decision``, or why it cannot be kept (see :func:`decision_row`)."""
    d = decision
    return decision_row(d.ts, d.tick, d.book, d.strategy, d.prices, d.avg_comp_price, d.request_id, d.sold, d.price,
                        d.rule_price, d.guardrail, d.run, d.factor, d.previous_price, d.floor, d.ceiling)


def decision_row(ts: float, tick: int, book: str, strategy: str, window: Sequence[Decimal], avg_comp_price: Decimal,
                 request_id: int, sold: bool, price: Decimal, rule_price: Decimal | None, guardrail: Sequence[str],
                 run: float, factor: Decimal | None = None, previous_price: Decimal | None = None,
                 floor: Decimal | None = None, ceiling: Decimal | None = None) -> DecisionRow | str:
    """The row of one decision given as its fields (those of :class:`~transport.protocol.Decision`, in
    order), or why it cannot be kept. The codec checked the types; this checks the values against the
    limits the rest of the system uses, so nothing the Algorithm could never have decided ends up in
    the ledger. Money is kept exact, in fixed-point notation. Both readers of a batch, the protocol's
    :class:`Decision` and :func:`transport.ledger_rows.read_batch`, agree (tests/actors/ledger/test_rows.py)."""
    if not limits.is_valid_book_id(book):
        return "book: not a valid book id"
    if not is_name(strategy, limits.STRATEGY_NAME_MAX_LEN):
        return "strategy: not a valid strategy name"
    if not (math.isfinite(ts) and ts > 0):
        return "ts: not a positive time"
    if not (math.isfinite(run) and run >= 0):
        return "run: not a run start time (epoch seconds, or 0 when unknown)"
    if not 1 <= len(window) <= limits.WINDOW_MAX:
        return f"prices: expected 1..{limits.WINDOW_MAX} prices"
    prices: list[str] = []
    for competitor in window:
        text = _money_text(competitor, *_COMPETITOR)
        if text is None:
            return "prices: a price outside the competitor price limits"
        prices.append(text)
    avg = _money_text(avg_comp_price, _AVG_MIN, limits.COMPETITOR_PRICE_MAX, _AVG_DECIMALS)
    if avg is None:
        return "avg_comp_price: outside the competitor price limits"
    price_text = _money_text(price, limits.PRICE_MIN, limits.PRICE_MAX, 2)
    if price_text is None:
        return "price: not a price in cents within the price limits"
    rule_text = None if rule_price is None else _money_text(rule_price, limits.PRICE_MIN, limits.PRICE_MAX, 2)
    if rule_price is not None and rule_text is None:
        return "rule_price: not a price in cents within the price limits"
    if not all(is_name(name, limits.GUARDRAIL_NAME_MAX_LEN) for name in guardrail):
        return "guardrail: not a list of guardrail names"
    factor_text = None if factor is None else _money_text(factor, limits.FACTOR_MIN, limits.FACTOR_MAX,
                                                          limits.FACTOR_DECIMALS)
    if factor is not None and factor_text is None:
        return "factor: not a factor within the limits"
    bounds: list[str | None] = []
    for name, money in (("previous_price", previous_price), ("floor", floor), ("ceiling", ceiling)):
        text = None if money is None else _money_text(money, limits.PRICE_MIN, limits.PRICE_MAX, 2)
        if money is not None and text is None:
            return f"{name}: not a price in cents within the price limits"
        bounds.append(None if text is None else in_cents(text))
    # Decimal strings need no JSON escaping: join them directly (json.dumps costs more, per decision).
    prices_json = '["' + '","'.join(prices) + '"]'
    guardrail_json = json.dumps(list(guardrail), separators=(",", ":")) if guardrail else None
    return DecisionRow(book, strategy, run, tick, ts, prices_json, avg, request_id, int(sold), in_cents(price_text),
                       None if rule_text is None else in_cents(rule_text), guardrail_json, factor_text, *bounds)


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
    # By position, not by name, and PairRows made without their Python __new__: this runs for every
    # decision on the Ledger's database thread (measured: 2.2 -> 1.9 us per decision with merge_pairs'
    # 1.9 -> 1.0 us, bench.ledger's rows, 2026-12-05).
    folded: dict[tuple[str, ...], list[Any]] = {}  # pair -> [newest row, decisions, guardrail hits]
    for row in rows:
        key = row[:2]
        fold = folded.get(key)
        if fold is None:
            folded[key] = [row, 1, row[_GUARDRAIL] is not None]
            continue
        fold[1] += 1
        fold[2] += row[_GUARDRAIL] is not None
        newest = fold[0]
        if (row[4], row[2], row[3]) > (newest[4], newest[2], newest[3]):  # newest_key(row) > newest_key(newest)
            fold[0] = row
    # price_cents: exact, from the text (a stored price has exactly two decimals: "16.10" -> 1610).
    return [_pair_row((r[0], r[1], r[2], r[3], r[4], r[9], int(r[9].replace(".", "")), r[6], float(r[6]), r[8],
                       r[_GUARDRAIL], decisions, int(hits))) for r, decisions, hits in folded.values()]


def merge_pairs(into: dict[tuple[str, str], PairRow], pairs: Iterable[PairRow]) -> None:
    """Fold ``pairs`` (rows of :func:`pair_rows`) into ``into``, one entry per pair: counts added, the
    newest decision's fields kept (newest as :func:`newest_key`, the rule of the ``pairs`` upsert)."""
    get = into.get
    for pair in pairs:
        key = (pair[0], pair[1])
        old = get(key)
        if old is None:
            into[key] = pair
            continue
        newest = pair if (pair[4], pair[2], pair[3]) > (old[4], old[2], old[3]) else old
        into[key] = _pair_row((*newest[:11], old[11] + pair[11], old[12] + pair[12]))


_GUARDRAIL: Final = DecisionRow._fields.index("guardrail")
if (DecisionRow._fields[:5] != ("book", "strategy", "run", "tick", "ts")
        or DecisionRow._fields[6:10:2] != ("avg_comp_price", "sold") or DecisionRow._fields[9] != "price"
        or PairRow._fields[:5] != ("book", "strategy", "run", "tick", "ts")
        or PairRow._fields[11:] != ("decisions", "guardrail_hits")):
    raise ImportError("actors.ledger.records: pair_rows and merge_pairs read rows by position: teach them the change")


def _pair_row(fields: tuple[Any, ...]) -> PairRow:
    """A PairRow of its fields in order, without the Python call of its ``__new__``."""
    row: PairRow = tuple.__new__(PairRow, fields)
    return row


# --- the pairs journal (``pairs_pending``) -----------------------------------------------------------

_PAIR_TYPES: Final[tuple[type | tuple[type, ...], ...]] = (  # of each field of a PairRow, in order
    str, str, (int, float), int, (int, float), str, int, str, float, int, (str, type(None)), int, int)


def journal_entry(pairs: Sequence[PairRow]) -> bytes:
    """A write's fold of ``pairs`` as one ``pairs_pending`` row (msgpack: small, and quick to pack)."""
    packed: bytes = msgpack.packb(pairs, use_bin_type=True)
    return packed


def journal_pairs(entry: object) -> list[PairRow] | None:
    """The pair rows of a ``pairs_pending`` row, or None if it is not one this Ledger wrote (the file may
    have been edited by hand: such a row is skipped, never let into ``pairs``)."""
    if not isinstance(entry, bytes):
        return None
    try:
        items = msgpack.unpackb(entry, raw=False)
    except Exception:  # msgpack raises several unrelated types for garbage
        return None
    if type(items) is not list:
        return None
    out = []
    for item in items:
        if (type(item) is not list or len(item) != len(_PAIR_TYPES)
                or not all(isinstance(v, t) and type(v) is not bool for v, t in zip(item, _PAIR_TYPES, strict=True))):
            return None
        out.append(PairRow(*item))
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
