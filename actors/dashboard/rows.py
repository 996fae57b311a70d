"""What the Dashboard reads from the Ledger, as typed rows, and their JSON and CSV forms (pure).

Money stays a decimal string from the database to the page (never a float); the columns the Ledger
stores as JSON (``prices``, ``guardrail``) are parsed defensively: a value that is not what the schema
says is shown as it is, never a crash.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, Final

from actors.csv_fields import csv_bool
from actors.dashboard.business import AlertRow
from actors.dashboard.params import BooksQuery, Cursor, last_page

# As in the Ledger's own export (``python -m actors.ledger history --format csv``, whose ``dispute`` the
# Dashboard does not read): the columns before ``run`` keep their places, what explains a price after it.
CSV_HEADER: Final = ("ts", "tick", "book", "strategy", "prices", "avg_comp_price", "request_id", "sold", "price",
                     "rule_price", "guardrail", "run", "factor", "previous_price", "floor", "ceiling")


def iso(ts: float) -> str:
    """Epoch seconds as ISO 8601 UTC with milliseconds (the decision lines' format)."""
    try:
        return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    except (OverflowError, OSError, ValueError):
        return str(ts)


def short_time(ts: float) -> str:
    """Epoch seconds as a short UTC time for a table cell: ``Dec 4 19:24:42``."""
    try:
        moment = datetime.fromtimestamp(ts, UTC)
    except (OverflowError, OSError, ValueError):
        return str(ts)
    return f"{moment:%b} {moment.day} {moment:%H:%M:%S}"


def _strings(text: str | None) -> tuple[str, ...]:
    """A JSON array of strings; anything else is kept as one raw string."""
    if text is None or text == "":
        return ()
    try:
        value = json.loads(text)
    except ValueError:
        return (text,)
    if isinstance(value, list):
        return tuple(str(v) for v in value)
    return (str(value),)


@dataclass(frozen=True, slots=True)
class PairRow:
    """A (book, strategy) pair and its newest decision (the ``pairs`` table)."""

    book: str
    strategy: str
    tick: int
    ts: float
    price: str
    avg_comp_price: str
    sold: bool
    guardrail: tuple[str, ...]
    decisions: int
    guardrail_hits: int
    run: float = 0.0  # the run of its newest decision

    @property
    def key(self) -> tuple[str, str]:
        return (self.book, self.strategy)

    @property
    def gap_pct(self) -> Decimal | None:
        """Our price against the competitor's average, in percent (+5.2: 5.2% above it), one decimal."""
        return gap_pct(self.price, self.avg_comp_price)

    def as_json(self) -> dict[str, Any]:
        gap = self.gap_pct
        return {"book": self.book, "strategy": self.strategy, "tick": self.tick, "ts": iso(self.ts),
                "price": self.price, "avg_comp_price": self.avg_comp_price, "sold": self.sold,
                "guardrail": list(self.guardrail) or None, "decisions": self.decisions,
                "guardrail_hits": self.guardrail_hits, "run": self.run, "gap_pct": None if gap is None else str(gap)}


@dataclass(frozen=True, slots=True)
class DecisionRow:
    """One decision, every field the Ledger keeps."""

    book: str
    strategy: str
    tick: int
    ts: float
    prices: tuple[str, ...]
    avg_comp_price: str
    request_id: int
    sold: bool
    price: str
    rule_price: str | None
    guardrail: tuple[str, ...]
    run: float  # the Scheduler run's t0 (0: kept before the Ledger recorded runs); with tick, its identity
    # What explains the price (None: not set, or kept before the Ledger recorded them): the guardrails in
    # force, the rule's factor, the price the step was measured from.
    floor: str | None = None
    ceiling: str | None = None
    factor: str | None = None
    previous_price: str | None = None

    @property
    def cursor(self) -> Cursor:
        """Its place in the pair's newest-first order (the next page starts below it)."""
        return Cursor(self.ts, self.run, self.tick)

    def as_json(self) -> dict[str, Any]:
        return {"ts": iso(self.ts), "tick": self.tick, "book": self.book, "strategy": self.strategy,
                "prices": list(self.prices), "avg_comp_price": self.avg_comp_price, "request_id": self.request_id,
                "sold": self.sold, "price": self.price, "rule_price": self.rule_price,
                "guardrail": list(self.guardrail) or None, "run": self.run, "floor": self.floor,
                "ceiling": self.ceiling, "factor": self.factor, "previous_price": self.previous_price}

    def as_csv(self) -> list[str]:
        return [iso(self.ts), str(self.tick), self.book, self.strategy, " ".join(self.prices), self.avg_comp_price,
                str(self.request_id), csv_bool(self.sold), self.price, self.rule_price or "",
                " ".join(self.guardrail), iso(self.run) if self.run else "", self.factor or "",
                self.previous_price or "", self.floor or "", self.ceiling or ""]


@dataclass(frozen=True, slots=True)
class BooksPage:
    rows: list[PairRow]
    total: int
    query: BooksQuery
    current_run: float | None = None  # the newest run: its pairs are the current catalogue
    trends: Mapping[tuple[str, str], tuple[str, ...]] = field(default_factory=dict)  # newest prices, oldest first
    alerts: Mapping[tuple[str, str], list[AlertRow]] = field(default_factory=dict)  # open, by pair (and strategy)
    scopes: Mapping[str, int] = field(default_factory=dict)  # pairs in each scope, without the search
    paused: frozenset[tuple[str, str]] = frozenset()  # pairs shown that the config's [pause] holds

    @property
    def last_page(self) -> int:
        return last_page(self.total, self.query.size)

    def is_current(self, row: PairRow) -> bool:
        return self.current_run is not None and row.run == self.current_run

    def as_json(self) -> dict[str, Any]:
        q = self.query
        rows = [{**r.as_json(), "current": self.is_current(r), "paused": r.key in self.paused,
                 "trend": list(self.trends.get(r.key, ())),
                 "alerts": [a.as_json() for a in self.alerts.get(r.key, ())]} for r in self.rows]
        return {"total": self.total, "page": q.page, "pages": self.last_page, "size": q.size, "sort": q.sort,
                "dir": "desc" if q.descending else "asc", "q": q.search, "scope": q.scope, "scopes": dict(self.scopes),
                "current_run": self.current_run, "rows": rows}


def configured_first(pairs: Sequence[PairRow], configured: Sequence[str] = ()) -> list[PairRow]:
    """A book's pairs in the order its page lists them, the first opened without a strategy: those the
    book's newest run decided first, in the config's order (``configured``: the book's strategies as
    the config lists them), then the strategy named ``default``, then by name."""
    newest = max((p.run for p in pairs), default=0.0)
    place = {name: i for i, name in enumerate(configured)}
    return sorted(pairs, key=lambda p: (p.run != newest, place.get(p.strategy, len(place)), p.strategy != "default",
                                        p.strategy))


def gap_pct(price: str, avg: str) -> Decimal | None:
    try:
        ours, theirs = Decimal(price), Decimal(avg)
    except ArithmeticError:
        return None
    if not (ours.is_finite() and theirs.is_finite()) or theirs <= 0:
        return None
    return ((ours / theirs - 1) * 100).quantize(Decimal("0.1"), rounding=ROUND_HALF_UP)


def change_pct(prices: Sequence[str]) -> Decimal | None:
    """From the first of ``prices`` to the last, in percent, one decimal (None for fewer than two)."""
    return gap_pct(prices[-1], prices[0]) if len(prices) >= 2 else None


def pair(r: Sequence[Any]) -> PairRow:
    """A pair of the Ledger's rows (:data:`actors.ledger_reads.columns.PAIR_COLUMNS`)."""
    return PairRow(str(r[0]), str(r[1]), int(r[2]), float(r[3]), str(r[4]), str(r[5]), bool(r[6]), _strings(r[7]),
                   int(r[8]), int(r[9]), float(r[10]))


def decision(r: Sequence[Any]) -> DecisionRow:
    """A decision of the Ledger's rows (:data:`actors.ledger_reads.columns.DECISION_COLUMNS`), then its
    floor, ceiling, factor and previous price (NULL: none, or not kept; the last two missing from an
    older Ledger's answer)."""
    explained = [None if v is None else str(v) for v in r[12:16]]
    explained += [None] * (4 - len(explained))
    return DecisionRow(str(r[0]), str(r[1]), int(r[2]), float(r[3]), _strings(r[4]), str(r[5]), int(r[6]),
                       bool(r[7]), str(r[8]), None if r[9] is None else str(r[9]), _strings(r[10]), float(r[11]),
                       *explained)


def csv_lines(decisions: Sequence[DecisionRow], header: bool = False) -> bytes:
    """CSV text of some decisions (RFC 4180 quoting, CRLF line ends), UTF-8. A field a spreadsheet would
    run as a formula (=, +, -, @ first) is prefixed with a quote: book ids come from a data file."""
    out = io.StringIO()
    writer = csv.writer(out)
    if header:
        writer.writerow(CSV_HEADER)
    for d in decisions:
        writer.writerow([_defuse(field) for field in d.as_csv()])
    return out.getvalue().encode()


def _defuse(field: str) -> str:
    if field[:1] in ("=", "+", "@", "\t", "\r") or (field[:1] == "-" and not _is_number(field)):
        return "'" + field
    return field


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True
