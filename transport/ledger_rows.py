"""A LedgerBatch frame read straight into the Ledger's ``decisions`` rows: the fast path for the usual batch.

Reading batches is the Ledger's main work on its event loop. The protocol's decoder checks every
field in its own call and builds a frozen dataclass of Decimals per decision, and the Ledger's
``records.decision_row`` then checks each Decimal and turns it back into text: ~20 us per decision
on a loaded 2-core machine, as much as SQLite's insert, so the loop could not keep the database thread
fed. Here a decision's fields are checked as they arrive, the money as text: one regular expression
for the whole window of competitor prices (the canonical decimal form, the digits the limits allow),
its range compared as floats, which is exact for these texts (at most 13 significant digits, and the
limits too: distinct such decimals are distinct doubles, in the same order). Pure: no I/O.

It lives beside the protocol because it reads the protocol's frames: the frame's envelope (size,
version, type, number of fields) is checked by :func:`protocol.unpacked`, and where each field of a
LedgerBatch and of a Decision lies in the frame comes from their declarations
(:func:`protocol.field_names`), by name; importing this module fails if a Decision gains a field this
reader does not read. What it still knows of its own is how each field's codec writes it (the
money codecs' decimal strings, "" for no rule price, lists for tuples).

Only a frame of which every decision is plainly valid is read here: anything else (another kind of
message, a malformed frame, an int where a float is usual, money in exponent form, a decision the
limits refuse) answers None, and the caller decodes the frame with :mod:`transport.protocol` and the
Ledger's ``records.to_row``, which give the exact error or reason. So this reader never accepts what
they refuse, and what it accepts it turns into the very rows they make:
``tests/actors/ledger/test_rows.py`` proves both over generated and damaged frames.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable
from decimal import Decimal
from operator import itemgetter
from typing import Any, Final, NamedTuple

from transport import limits, protocol
from transport.protocol import MAX_GUARDRAILS, Decision, LedgerBatch, MessageType, ProtocolError


class DecisionRow(NamedTuple):
    """One row of the Ledger's ``decisions`` table, in column order (ready for ``executemany``)."""

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
    factor: str | None  # the rule's factor applied (None from an Algorithm before 2026-12-04)
    previous_price: str | None  # with guardrails: the price the step was measured from
    floor: str | None  # with guardrails: the book's floor and ceiling, where set
    ceiling: str | None


def in_cents(text: str) -> str:
    """A price text with at most two decimals, with exactly two ("16.1" -> "16.10")."""
    point = text.find(".")
    return text + ".00" if point < 0 else text + "0" * (2 - (len(text) - point - 1))


def is_name(text: str, max_len: int) -> bool:
    """A strategy's or guardrail's name as the Ledger keeps it: 1..max_len printable characters, no
    surrounding blanks."""
    return 0 < len(text) <= max_len and text.isprintable() and text == text.strip()


# Where the fields lie in a frame, from the declarations, by name.
_READ: Final = ("ts", "tick", "book", "strategy", "prices", "avg_comp_price", "request_id", "sold", "price",
                "rule_price", "guardrail", "run", "factor", "previous_price", "floor", "ceiling")  # as _row unpacks


def in_read_order(declared: tuple[str, ...], read: tuple[str, ...] = _READ) -> Callable[[list[Any]], tuple[Any, ...]]:
    """The function that picks a decision's wire fields, declared in the order ``declared``, in the order
    ``read``; a TypeError if the two do not name the same fields."""
    if sorted(declared) != sorted(read):
        raise TypeError(f"transport.ledger_rows reads a Decision's fields {read}, but it declares {declared}: "
                        "teach _row (and the Ledger's records.decision_row) the change")
    return itemgetter(*(declared.index(name) for name in read))


_FIELDS: Final = len(protocol.field_names(Decision))
_IN_READ_ORDER: Final = in_read_order(protocol.field_names(Decision))
_BATCH: Final = protocol.field_names(LedgerBatch)
_BATCH_ID: Final = _BATCH.index("batch_id")
_DECISIONS: Final = _BATCH.index("decisions")
_INT_MAX: Final = 2**63 - 1  # the protocol's integers: 0..2^63-1


def _decimal(integer_digits: int, decimals: int) -> str:
    """A decimal in the form ``str(Decimal)`` gives it: no sign, exponent or leading zero."""
    return rf"(?:0|[1-9][0-9]{{0,{integer_digits - 1}}})(?:\.[0-9]{{1,{decimals}}})?"


_COMPETITOR: Final = _decimal(len(str(int(limits.COMPETITOR_PRICE_MAX))), limits.PRICE_DECIMALS)
_WINDOW: Final = re.compile(f'{_COMPETITOR}(?:","{_COMPETITOR})*', re.ASCII).fullmatch  # prices joined by '","'
_CENTS: Final = re.compile(_decimal(len(str(int(limits.PRICE_MAX))), 2), re.ASCII).fullmatch
_AVG: Final = re.compile(_decimal(len(str(int(limits.COMPETITOR_PRICE_MAX))), limits.MEAN_DECIMALS), re.ASCII).fullmatch
# The window's pattern bounds each price's digits (no leading zero, at most the maximum's integer
# digits), so only a price beginning with "0" can lie below the minimum (under 1) and only one with
# all of the maximum's integer digits above it: the range is compared (as floats) only for a window
# holding one of those, found by one search instead of two conversions of every price.
if not limits.COMPETITOR_PRICE_MIN < 1:
    raise ImportError("transport.ledger_rows: _EDGE assumes a competitor price minimum under 1")
_EDGE: Final = re.compile(f'(?:^|",")(?:0|[1-9][0-9]{{{len(str(int(limits.COMPETITOR_PRICE_MAX))) - 1}}})',
                          re.ASCII).search
_INF: Final = float("inf")
_COMPETITOR_MIN: Final = float(limits.COMPETITOR_PRICE_MIN)
_COMPETITOR_MAX: Final = float(limits.COMPETITOR_PRICE_MAX)
_PRICE_MIN: Final = float(limits.PRICE_MIN)
_PRICE_MAX: Final = float(limits.PRICE_MAX)
_PRICE_DIGITS: Final = len(str(int(limits.PRICE_MAX)))  # the most integer digits _CENTS lets through
if not limits.PRICE_MIN < 1:
    raise ImportError("transport.ledger_rows: _cents assumes a price minimum under 1")


def read_batch(frame: bytes) -> tuple[int, list[DecisionRow]] | None:
    """(batch id, the row of every decision) of a LedgerBatch frame whose decisions are all plainly
    valid; None for any other frame (decode it with the protocol for the exact reason)."""
    try:
        kind, values = protocol.unpacked(frame)
    except ProtocolError:
        return None
    if kind is not MessageType.LEDGER_BATCH:
        return None
    batch_id, items = values[_BATCH_ID], values[_DECISIONS]
    if (type(batch_id) is not int or not 0 <= batch_id <= _INT_MAX or type(items) is not list
            or not 1 <= len(items) <= limits.LEDGER_BATCH_MAX):
        return None
    rows: list[DecisionRow] = []
    for fields in items:
        row = _row(fields)
        if row is None:
            return None
        rows.append(row)
    return batch_id, rows


def _cents(text: str) -> str | None:
    """A price in cents within the limits, with exactly two decimals; None otherwise."""
    if not (type(text) is str and _CENTS(text)):
        return None
    point = text.find(".")
    # As for the window (_EDGE): only a price beginning with 0, or with all of the maximum's integer
    # digits, can lie outside the range.
    if ((text[0] == "0" or (point if point >= 0 else len(text)) == _PRICE_DIGITS)
            and not _PRICE_MIN <= float(text) <= _PRICE_MAX):
        return None
    return text + ".00" if point < 0 else text + "0" * (2 - (len(text) - point - 1))


_FACTOR: Final = re.compile(_decimal(1, limits.FACTOR_DECIMALS), re.ASCII).fullmatch


def _factor(text: object) -> str | None:
    """A factor within the limits, as written; None otherwise."""
    if type(text) is not str or len(text) > _FACTOR_TEXT_MAX or not _factor_ok(text):
        return None
    return text


_FACTOR_TEXT_MAX: Final = 2 + limits.FACTOR_DECIMALS  # "1." and the decimals: the cache's keys stay short


@functools.lru_cache(maxsize=256)
def _factor_ok(text: str) -> bool:
    """Every decision carries its strategy's factor, and a run has a few: each text is checked once
    (its exact bounds need a Decimal), not once per decision."""
    return bool(_FACTOR(text)) and limits.FACTOR_MIN <= Decimal(text) <= limits.FACTOR_MAX


def _row(fields: object) -> DecisionRow | None:
    if type(fields) is not list or len(fields) != _FIELDS:
        return None
    (ts, tick, book, strategy, prices, avg, request_id, sold, price, rule, guardrail, run,
     factor, previous, floor, ceiling) = _IN_READ_ORDER(fields)
    if not (type(ts) is float and 0.0 < ts < _INF and type(run) is float and 0.0 <= run < _INF
            and type(tick) is int and 0 <= tick <= _INT_MAX and type(request_id) is int and 0 <= request_id <= _INT_MAX
            and type(sold) is bool and type(book) is str and type(strategy) is str
            and limits.is_valid_book_id(book)
            and is_name(strategy, limits.STRATEGY_NAME_MAX_LEN)
            and type(prices) is list and 1 <= len(prices) <= limits.WINDOW_MAX
            and type(avg) is str and len(avg) <= limits.MEAN_TEXT_MAX and _AVG(avg)
            and type(guardrail) is list and len(guardrail) <= MAX_GUARDRAILS):
        return None
    try:
        window = '","'.join(prices)
    except TypeError:  # not all strings
        return None
    if not _WINDOW(window) or (_EDGE(window) and not _COMPETITOR_MIN <= min(map(float, prices))
                               <= max(map(float, prices)) <= _COMPETITOR_MAX):
        return None
    # The mean has many digits: exact bounds as Decimal, but only near the top (rare).
    if avg.strip("0.") == "" or (float(avg) >= _COMPETITOR_MAX * 0.999 and Decimal(avg) > limits.COMPETITOR_PRICE_MAX):
        return None
    price_text = _cents(price)
    rule_text = None if rule == "" else _cents(rule)
    if price_text is None or (rule != "" and rule_text is None):
        return None
    factor_text = None if factor == "" else _factor(factor)
    if factor != "" and factor_text is None:
        return None
    bounds: tuple[str | None, ...] = _NO_BOUNDS  # no guardrails configured: the usual decision
    if not previous == floor == ceiling == "":
        texts: list[str | None] = []
        for money in (previous, floor, ceiling):
            text = None if money == "" else _cents(money)
            if money != "" and text is None:
                return None
            texts.append(text)
        bounds = tuple(texts)
    names = None
    if guardrail:
        if not all(type(name) is str and is_name(name, limits.GUARDRAIL_NAME_MAX_LEN) for name in guardrail):
            return None
        names = json.dumps(guardrail, separators=(",", ":"))
    # Made without the Python call of DecisionRow.__new__ (this runs for every decision kept).
    row: DecisionRow = _TUPLE_NEW(DecisionRow, (book, strategy, run, tick, ts, '["' + window + '"]', avg, request_id,
                                                int(sold), price_text, rule_text, names, factor_text, *bounds))
    return row


_NO_BOUNDS: Final = (None, None, None)
_TUPLE_NEW: Final = tuple.__new__
