"""A backtest's results as text: ``table`` (for a person), ``csv`` and ``json`` (for programs), and every
decision as CSV (``--decisions``). Pure: results in, text out. Money is decimal text (``12.34``)."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Sequence
from decimal import Decimal
from typing import Any, Final, TextIO

from actors.algorithm.backtest.cents import names, to_decimal
from actors.algorithm.backtest.job import Decisions, Job, Result
from actors.algorithm.backtest.stats import GUARDRAILS, PairStats, StrategyTotals, money, share
from actors.csv_fields import csv_bool
from actors.pricing.rule import avg_comp_price
from transport.logs import printable

FORMATS: Final = ("table", "csv", "json")
_ZERO: Final = Decimal(0)
TABLE_PAIRS: Final = 100  # pairs a table shows; csv and json show all
PAIR_COLUMNS: Final = ("book", "strategy", "decisions", "skipped", "units", "revenue", "unit_cost", "margin",
                       "mean_price", "mean_competitor", "vs_competitor", "at_floor", "at_ceiling", "guardrail_hits",
                       *GUARDRAILS, "price_changes", "first_price", "last_price")
STRATEGY_COLUMNS: Final = ("rank", "strategy", "pairs", "decisions", "skipped", "units", "revenue", "margin",
                           "mean_price", "vs_competitor", "at_floor", "at_ceiling", "guardrail_hits",
                           "price_changes")
DECISION_COLUMNS: Final = ("book", "strategy", "tick", "request_id", "sold", "sent", "avg_comp_price", "rule_price",
                           "price", "guardrail")


def _text(value: object) -> str:
    return "" if value is None else str(value)


def plain(value: Decimal) -> str:
    """A decimal without exponent or trailing zeros (``18.020000`` is ``18.02``)."""
    text = format(value, "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def pair_row(p: PairStats) -> dict[str, object]:
    return {"book": p.book, "strategy": p.strategy, "decisions": p.decisions, "skipped": p.skipped, "units": p.units,
            "revenue": money(p.revenue), "unit_cost": money(p.cost), "margin": money(p.margin),
            "mean_price": _text(p.mean_price), "mean_competitor": _text(p.mean_competitor),
            "vs_competitor": _text(p.vs_competitor), "at_floor": p.at_floor, "at_ceiling": p.at_ceiling,
            "guardrail_hits": p.hits, **p.by_guardrail, "price_changes": p.changes,
            "first_price": money(p.first_price), "last_price": money(p.last_price)}


def strategy_row(t: StrategyTotals) -> dict[str, object]:
    return {"rank": t.rank, "strategy": t.strategy, "pairs": t.pairs, "decisions": t.decisions, "skipped": t.skipped,
            "units": t.units, "revenue": money(t.revenue), "margin": money(t.margin),
            "mean_price": _text(t.mean_price), "vs_competitor": _text(t.vs_competitor), "at_floor": t.at_floor,
            "at_ceiling": t.at_ceiling, "guardrail_hits": t.hits, "price_changes": t.changes}


def _grid(rows: Sequence[Sequence[str]]) -> list[str]:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return ["  ".join(cell.rjust(w) if i > 1 else cell.ljust(w) for i, (cell, w) in enumerate(zip(row, widths,
                                                                                                 strict=True))).rstrip()
            for row in rows]


def table(result: Result, totals: list[StrategyTotals], objective: str) -> str:
    ranked = sorted(totals, key=lambda t: (t.rank, t.strategy))
    lines = [f"Strategies, ranked by {objective}:"]
    lines += _grid([STRATEGY_COLUMNS, *[[printable(_text(v)) for v in strategy_row(t).values()] for t in ranked]])
    shown = result.pairs[:TABLE_PAIRS]
    columns = ("book", "strategy", "decisions", "units", "revenue", "margin", "mean_price", "mean_competitor",
               "vs_competitor", "floor/ceiling", "guardrail_hits", "price_changes")
    rows = [[printable(p.book, 40), p.strategy, str(p.decisions), str(p.units), money(p.revenue), money(p.margin),
             _text(p.mean_price), _text(p.mean_competitor), _text(p.vs_competitor),
             f"{share(p.at_floor, p.decisions)}/{share(p.at_ceiling, p.decisions)}", str(p.hits), str(p.changes)]
            for p in shown]
    lines += ["", "Pairs (floor/ceiling: share of decisions at the floor / at the ceiling):", *_grid([columns, *rows])]
    if len(result.pairs) > len(shown):
        lines.append(f"... {len(result.pairs) - len(shown)} more pairs (--format csv or json lists them all)")
    return "\n".join(lines) + "\n"


def csv_text(result: Result, totals: list[StrategyTotals]) -> str:
    """One table: a ``scope`` column says ``strategy`` (the totals, with their rank) or ``pair``."""
    out = io.StringIO()
    columns = ("scope", *dict.fromkeys((*STRATEGY_COLUMNS, *PAIR_COLUMNS)))
    writer = csv.DictWriter(out, columns, lineterminator="\n")
    writer.writeheader()
    for t in sorted(totals, key=lambda t: (t.rank, t.strategy)):
        writer.writerow({"scope": "strategy", **strategy_row(t)})
    for p in result.pairs:
        writer.writerow({"scope": "pair", **pair_row(p)})
    return out.getvalue()


def json_text(result: Result, totals: list[StrategyTotals], about: dict[str, Any]) -> str:
    document = {**about, "last_tick": result.last_tick, "decisions": result.decisions, "file": result.counters,
                "strategies": [strategy_row(t) for t in sorted(totals, key=lambda t: (t.rank, t.strategy))],
                "pairs": [pair_row(p) for p in result.pairs]}
    return json.dumps(document, indent=1) + "\n"


class DecisionWriter:
    """Every decision as a CSV line, in the order decided (grouped by pair within a batch)."""

    def __init__(self, out: TextIO, job: Job) -> None:
        self._out = out
        self._job = job
        self._writer = csv.writer(out, lineterminator="\n")
        self._writer.writerow(DECISION_COLUMNS)

    def __call__(self, d: Decisions) -> None:
        pairs = self._job.pairs
        self._writer.writerows(self._rows(d, pairs))

    @staticmethod
    def _rows(d: Decisions, pairs: Sequence[Any]) -> Iterable[list[object]]:
        for i in range(len(d.pair)):
            pair = pairs[int(d.pair[i])]
            window = pair.strategy.rule.window
            request_id = int(d.request_id[i])
            yield [pair.book, pair.strategy.name, int(d.tick[i]), "" if request_id < 0 else request_id,
                   csv_bool(bool(d.sold[i])), to_decimal(int(d.sent[i])),
                   plain(avg_comp_price([Decimal(int(d.sums[i])).scaleb(-6), *[_ZERO] * (window - 1)])),
                   to_decimal(int(d.rule[i])),
                   to_decimal(int(d.price[i])), " ".join(names(int(d.bits[i])))]
