"""Unit costs for margins: ``[backtest] unit_cost`` for every book, and a ``cost`` column in the guardrail
catalog for each (the running system ignores that column: the catalog's "other columns are ignored").

A bad cost cell is skipped with its line and counted (that book then takes the default), like a bad
guardrail cell; a row for a book not priced is ignored."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from actors.algorithm.backtest.cents import cents
from actors.csv_fields import BadRow, split_fields
from actors.pricing.config import Config
from actors.pricing.config.catalog import CatalogColumns, split_catalog_row
from actors.pricing.config.files import FileRefused, lines
from actors.pricing.guardrails import parse_money
from transport import limits
from transport.logs import printable

EXAMPLES_MAX: Final = 10


@dataclass(slots=True)
class Costs:
    by_book: dict[str, int] = field(default_factory=dict)  # cents
    warnings: list[str] = field(default_factory=list)
    bad: int = 0


def unit_costs(config: Config, config_path: str | None, books: Collection[str]) -> Costs:
    """Each priced book's unit cost in cents (books without one are left out)."""
    costs = Costs()
    default = config.backtest.unit_cost
    if default is not None:
        costs.by_book = dict.fromkeys(books, cents(default))
    if config.catalog is None or config_path is None:
        return costs
    path = Path(config_path).parent / config.catalog  # load_config checked it lies where it may
    columns: CatalogColumns | None = None
    cost_at = -1
    seen: set[str] = set()  # the first row of a book stays, as for its guardrails
    try:
        for line in lines(path, limits.CATALOG_MAX_BYTES):
            if line.text is None:
                continue  # the config's catalog loader reported it already
            if columns is None:
                names = [n.strip().lower() for n in (split_fields(line.text.lstrip("\ufeff").strip()) or [])]
                if not any(names):
                    continue
                if "cost" not in names:
                    return costs
                cost_at = names.index("cost")
                columns = CatalogColumns(names.index("book_id"), (), len(names))
                continue
            split = split_catalog_row(line.text, columns, line.no)
            if split is None or isinstance(split, BadRow):
                continue
            book, fields = split
            cell = fields[cost_at].strip()
            if book not in books or not cell or book in seen:
                continue
            seen.add(book)
            value = parse_money(cell)
            if isinstance(value, str):
                costs.bad += 1
                if len(costs.warnings) < EXAMPLES_MAX:
                    costs.warnings.append(f"{printable(config.catalog)} line {line.no}: cost {printable(cell, 40)}: "
                                          f"{value} (the default cost applies)")
                continue
            costs.by_book[book] = cents(value)
    except FileRefused as exc:
        costs.warnings.append(f"{printable(config.catalog)}: costs not read: {exc}")
    return costs
