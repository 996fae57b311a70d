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
from collections.abc import Callable, Sequence
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
                "rule_price", "guardrail", "run", "factor", "previous_price", "floor", "ceiling")  # as _rows unpacks


def in_read_order(declared: tuple[str, ...], read: tuple[str, ...] = _READ) -> Callable[[list[Any]], tuple[Any, ...]]:
    """The function that picks a decision's wire fields, declared in the order ``declared``, in the order
    ``read``; a TypeError if the two do not name the same fields."""
    if sorted(declared) != sorted(read):
        raise TypeError(f"transport.ledger_rows reads a Decision's fields {read}, but it declares {declared}: "
                        "teach _rows (and the Ledger's records.decision_row) the change")
    return itemgetter(*(declared.index(name) for name in read))


_FIELDS: Final = len(protocol.field_names(Decision))
_IN_READ_ORDER: Final = in_read_order(protocol.field_names(Decision))
_BATCH: Final = protocol.field_names(LedgerBatch)
_BATCH_ID: Final = _BATCH.index("batch_id")
_DECISIONS: Final = _BATCH.index("decisions")

# Each check below reads a whole column of the batch (one field of every decision) at once, with
# builtins that loop in C: its types as a set, its range as min and max, its texts joined by "\n" and
# matched by one regular expression (no money text holds a "\n": the count of separators proves the
# rows are the pieces matched). Checking decision by decision in Python cost ~6 us a decision on the
# Ledger's event loop, half of a bare SQLite insert (bench.pieces, 2026-12-05).
_INT_MAX: Final = 2**63 - 1  # the protocol's integers: 0..2^63-1
_INF: Final = float("inf")


def _decimal(integer_digits: int, decimals: int) -> str:
    """A decimal in the form ``str(Decimal)`` gives it: no sign, exponent or leading zero."""
    return rf"(?:0|[1-9][0-9]{{0,{integer_digits - 1}}}+)(?:\.[0-9]{{1,{decimals}}}+)?+"


def _column(pattern: str, separator: str = "\n") -> Callable[[str], re.Match[str] | None]:
    """The fullmatch of texts matching ``pattern``, joined by ``separator``. The quantifiers are
    possessive (never give back): a number ends where its separator begins, so nothing is to be
    found by backtracking, and matching a column is 5x faster without it (1.3 -> 0.26 us a window)."""
    return re.compile(f"(?:{pattern})(?:{re.escape(separator)}(?:{pattern}))*+", re.ASCII).fullmatch


_COMPETITOR_DIGITS: Final = len(str(int(limits.COMPETITOR_PRICE_MAX)))
_PRICE_DIGITS: Final = len(str(int(limits.PRICE_MAX)))  # the most integer digits a price may have
_COMPETITOR: Final = _decimal(_COMPETITOR_DIGITS, limits.PRICE_DECIMALS)
_WINDOWS: Final = _column(f'{_COMPETITOR}(?:","{_COMPETITOR})*+')  # each window's prices joined by '","'
_CENTS: Final = _column(_decimal(_PRICE_DIGITS, 2))
_AVGS: Final = _column(_decimal(_COMPETITOR_DIGITS, limits.MEAN_DECIMALS))
_FACTOR: Final = re.compile(_decimal(1, limits.FACTOR_DECIMALS), re.ASCII).fullmatch
# The usual column is matched once, by a pattern that admits only numbers plainly inside their limits:
# from 1 (no leading zero: each minimum is under 1) up to one integer digit fewer than the maximum's
# (each maximum is at least 10^that), prices in cents with their two decimals already. Any other
# column is matched by the full pattern and its range compared: as floats for prices (exact for these
# texts: at most 13 significant digits, distinct ones distinct doubles in the same order), as Decimal
# for the means (their 61 decimals).
if not (limits.COMPETITOR_PRICE_MIN <= 1 and limits.PRICE_MIN <= 1 and 10 ** (_COMPETITOR_DIGITS - 1)
        <= limits.COMPETITOR_PRICE_MAX and 10 ** (_PRICE_DIGITS - 1) <= limits.PRICE_MAX):
    raise ImportError("transport.ledger_rows: the patterns of numbers plainly inside assume other limits")
_INSIDE_COMPETITOR: Final = rf"[1-9][0-9]{{0,{_COMPETITOR_DIGITS - 2}}}+(?:\.[0-9]{{1,{limits.PRICE_DECIMALS}}}+)?+"
_INSIDE_WINDOWS: Final = _column(f'{_INSIDE_COMPETITOR}(?:","{_INSIDE_COMPETITOR})*+')
_INSIDE_CENTS: Final = _column(rf"[1-9][0-9]{{0,{_PRICE_DIGITS - 2}}}+\.[0-9]{{2}}")
_INSIDE_AVGS: Final = _column(rf"[1-9][0-9]{{0,{_COMPETITOR_DIGITS - 2}}}+(?:\.[0-9]{{1,{limits.MEAN_DECIMALS}}}+)?+")
_AVG_MIN: Final = Decimal("1E-40")
_COMPETITOR_MIN: Final = float(limits.COMPETITOR_PRICE_MIN)
_COMPETITOR_MAX: Final = float(limits.COMPETITOR_PRICE_MAX)
_PRICE_MIN: Final = float(limits.PRICE_MIN)
_PRICE_MAX: Final = float(limits.PRICE_MAX)
_MAKE_ROW: Final[Callable[[tuple[Any, ...]], DecisionRow]] = functools.partial(tuple.__new__, DecisionRow)  # in C
Column = tuple[Any, ...]


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
            or not 1 <= len(items) <= limits.LEDGER_BATCH_MAX
            or set(map(type, items)) != {list} or set(map(len, items)) != {_FIELDS}):
        return None
    rows = _rows(_IN_READ_ORDER(list(zip(*items, strict=True))), len(items))
    return None if rows is None else (batch_id, rows)


def _rows(columns: tuple[Column, ...], n: int) -> list[DecisionRow] | None:
    (ts, tick, book, strategy, prices, avg, request_id, sold, price, rule, guardrail, run,
     factor, previous, floor, ceiling) = columns
    if not (_only(float, ts) and min(ts) > 0.0 and sum(ts) < _INF  # a NaN or inf makes the sum one
            and _only(float, run) and min(run) >= 0.0 and sum(run) < _INF
            and _only(int, tick) and min(tick) >= 0 and max(tick) <= _INT_MAX
            and _only(int, request_id) and min(request_id) >= 0 and max(request_id) <= _INT_MAX
            and _only(bool, sold)
            and _names(book, limits.BOOK_ID_MAX_LEN) and _names(strategy, limits.STRATEGY_NAME_MAX_LEN)):
        return None
    windows = _windows(prices, n)
    if windows is None or not _avgs(avg, n):
        return None
    price_texts = _cents_column(price, n)
    rule_texts, previous_texts, floor_texts, ceiling_texts = (_cents_column(c, n, optional=True)
                                                              for c in (rule, previous, floor, ceiling))
    factor_texts = _factors(factor, n)
    names = _guardrails(guardrail, n)
    if (price_texts is None or rule_texts is None or previous_texts is None or floor_texts is None
            or ceiling_texts is None or factor_texts is None or names is None):
        return None
    return list(map(_MAKE_ROW, zip(book, strategy, run, tick, ts, windows, avg, request_id, map(int, sold),
                                   price_texts, rule_texts, names, factor_texts, previous_texts, floor_texts,
                                   ceiling_texts, strict=True)))


def _only(kind: type, column: Column) -> bool:
    """Every value of ``column`` is of exactly type ``kind`` (not a subclass: True is no int here)."""
    return set(map(type, column)) == {kind}


def _names(column: Column, max_len: int) -> bool:
    """Every value is a name as :func:`is_name` (and ``limits.is_valid_book_id``) accept it: 1..max_len
    printable characters, no surrounding blanks."""
    return (_only(str, column) and min(map(len, column)) > 0 and max(map(len, column)) <= max_len
            and "".join(column).isprintable() and tuple(map(str.strip, column)) == column)


def _joined(column: Column, n: int) -> str | None:
    """The texts of ``column`` joined by "\n", if it holds only texts none of which holds a "\n"."""
    if not _only(str, column):
        return None
    text = "\n".join(column)
    return text if text.count("\n") == n - 1 else None


def _windows(prices: Column, n: int) -> list[str] | None:
    """Each window as its JSON array, if every window holds 1..WINDOW_MAX competitor prices within
    the limits, as decimal texts."""
    if not _only(list, prices) or min(map(len, prices)) < 1 or max(map(len, prices)) > limits.WINDOW_MAX:
        return None
    try:
        text = "\n".join(map('","'.join, prices))
    except TypeError:  # not all texts
        return None
    # Every separator counted is one of the joins: no price holds a '","' or a "\n".
    if text.count("\n") != n - 1 or text.count('","') != sum(map(len, prices)) - n:
        return None
    if not _INSIDE_WINDOWS(text) and not (_WINDOWS(text) and _COMPETITOR_MIN <= min(map(float, _all(prices)))
                                          <= max(map(float, _all(prices))) <= _COMPETITOR_MAX):
        return None
    return ('["' + text.replace("\n", '"]\n["') + '"]').split("\n")


def _all(prices: Column) -> list[str]:
    return [p for window in prices for p in window]


def _avgs(avg: Column, n: int) -> bool:
    """Every mean is a decimal text within the competitor price limits."""
    text = _joined(avg, n)
    if text is None or max(map(len, avg)) > limits.MEAN_TEXT_MAX:
        return False
    return bool(_INSIDE_AVGS(text)) or (bool(_AVGS(text)) and min(map(Decimal, avg)) >= _AVG_MIN
                                        and max(map(Decimal, avg)) <= limits.COMPETITOR_PRICE_MAX)


def _cents_column(column: Column, n: int, optional: bool = False) -> Sequence[str | None] | None:
    """Each price with exactly two decimals (None for an optional price left out: ""), if every one is
    a price in cents within the limits; None otherwise."""
    if optional and _only(str, column):
        present = set(column)
        if present == {""}:
            return (None,) * n
        if "" in present:  # some set, some not: one by one
            out = [None if text == "" else _cents(text) for text in column]
            return None if sum(text is None for text in out) != sum(text == "" for text in column) else out
    text = _joined(column, n)
    if text is None:
        return None
    if _INSIDE_CENTS(text):
        return column
    if not (_CENTS(text) and _PRICE_MIN <= min(map(float, column)) <= max(map(float, column)) <= _PRICE_MAX):
        return None
    return list(map(in_cents, column))


def _cents(text: str) -> str | None:
    """One price in cents within the limits, with exactly two decimals; None otherwise."""
    column = _cents_column((text,), 1)
    return None if column is None else column[0]


def _factors(factor: Column, n: int) -> Sequence[str | None] | None:
    """Each factor as written (None where left out: ""), if each is within the limits."""
    if not _only(str, factor):
        return None
    present = set(factor)  # a run has a few: each text is checked once
    if not all(text == "" or (len(text) <= _FACTOR_TEXT_MAX and _factor_ok(text)) for text in present):
        return None
    if "" not in present:
        return factor
    return (None,) * n if len(present) == 1 else [text or None for text in factor]


@functools.lru_cache(maxsize=256)
def _factor_ok(text: str) -> bool:
    """A factor's exact bounds need a Decimal: each (short) text is checked once, not once per decision."""
    return bool(_FACTOR(text)) and limits.FACTOR_MIN <= Decimal(text) <= limits.FACTOR_MAX


_FACTOR_TEXT_MAX: Final = 2 + limits.FACTOR_DECIMALS  # "1." and the decimals: the cache's keys stay short


def _guardrails(guardrail: Column, n: int) -> Sequence[str | None] | None:
    """Each decision's guardrail names as a JSON array (None when none moved its price), if each is a
    list of at most MAX_GUARDRAILS names."""
    if not _only(list, guardrail):
        return None
    if not any(guardrail):  # the usual batch: no guardrail moved any price
        return (None,) * n
    out: list[str | None] = []
    for names in guardrail:
        if len(names) > MAX_GUARDRAILS or not all(type(name) is str and is_name(name, limits.GUARDRAIL_NAME_MAX_LEN)
                                                  for name in names):
            return None
        out.append(json.dumps(names, separators=(",", ":")) if names else None)
    return out
