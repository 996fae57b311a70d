"""The config's ``[guardrails]``, ``[pause]`` and ``[alerts]`` tables. Pure: the catalog's lines come through the
``files`` reader the config was given.

Precedence, field by field: the ``[guardrails]`` defaults, then the book's catalog row, then the
book's ``[guardrails.books."ID"]`` table. A book named in the TOML that the config does not price is
an error (a typo there would silently leave a book unguarded or unpaused); one in the catalog is a
warning (a catalog may serve several configs).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from decimal import Decimal
from typing import Any, Final

from actors.alert_rules import KEYS as ALERT_KEYS
from actors.alert_rules import Thresholds, parse
from actors.pricing.config.catalog import Catalog, CatalogFormatError, CatalogLoader
from actors.pricing.config.files import ConfigFiles, FileRefused
from actors.pricing.config.values import Path, ValueReader, show
from actors.pricing.guardrails import FIELDS, PARSERS, Guardrails
from transport import limits
from transport.logs import printable

_GUARDRAILS_KEYS: Final = frozenset({*FIELDS, "catalog", "books"})
_BOOK_KEYS: Final = frozenset(FIELDS)
_PAUSE_KEYS: Final = frozenset({"books", "strategies"})
_NAMED_BOOKS: Final = 3  # books (and step/ending pairs) a warning names; the count says the rest


def _fields(reader: ValueReader, where: Path, table: dict[str, Any]) -> Guardrails:
    return Guardrails(**{name: reader.parsed(where, name, table[name], PARSERS[name])
                         for name in FIELDS if name in table})


def _check(reader: ValueReader, where: Path, guardrails: Guardrails, own: Mapping[str, Any]) -> None:
    problem = guardrails.problem()
    if problem is not None:
        key, reason = problem
        if key == "floor" and "floor" not in own and "ceiling" in own:
            key = "ceiling"  # the ceiling set here is below an inherited floor: point at it
        raise reader.error(where, key, reason)


def _catalog(reader: ValueReader, ref: str, known: Collection[str], defaults: Guardrails,
             files: ConfigFiles | None, allow_outside: bool) -> Catalog:
    where = ("guardrails",)
    if files is None:
        raise reader.error(where, "catalog", "catalog files are not supported here")
    loader = CatalogLoader(ref, known, defaults)
    try:
        for line in files.catalog_lines(ref, allow_outside):
            loader.feed(line.no, line.text, line.problem)
        catalog = loader.finish()
    except (FileRefused, CatalogFormatError) as exc:
        raise reader.error(where, "catalog", f"{show(ref)}: {exc}") from None
    return catalog


def read_guardrails(reader: ValueReader, value: Any, known: Collection[str], files: ConfigFiles | None,
                    allow_outside: bool) -> tuple[Guardrails, dict[str, Guardrails], Catalog | None]:
    """The defaults, the per-book guardrails (merged with the defaults) and the catalog as loaded (its
    counts and warnings), None without one."""
    where = ("guardrails",)
    table = reader.table((), "guardrails", value, _GUARDRAILS_KEYS)
    defaults = _fields(reader, where, table)
    _check(reader, where, defaults, table)
    overrides: dict[str, Guardrails] = {}
    catalog: Catalog | None = None
    if "catalog" in table:
        ref = reader.string(where, "catalog", table["catalog"])
        catalog = _catalog(reader, ref, known, defaults, files, allow_outside)
        overrides = catalog.overrides
    books = reader.table(where, "books", table.get("books", {}))
    for book, own in books.items():
        here = ("guardrails", "books", book)
        if not limits.is_valid_book_id(book):
            raise reader.error(here, None, "not a valid book id")
        if book not in known:
            raise reader.error(here, None, "not a book this config prices")
        own_table = reader.table(here, None, own, _BOOK_KEYS)
        merged = overrides.get(book, defaults).override(_fields(reader, here, own_table))
        _check(reader, here, merged, own_table)
        overrides[book] = merged
    return defaults, overrides, catalog


def narrow_step_warning(books: Iterable[str], defaults: Guardrails, overrides: Mapping[str, Guardrails]) -> str | None:
    """One warning for every book whose step limit is narrower than the 1.00 between two prices with
    its ending at some price its floor allows (:meth:`Guardrails.narrow_below`): there a price steps
    off its ending on its way to the rule's (``ending_deferred``). None when no book is concerned."""
    below: dict[Guardrails, Decimal | None] = {}
    named: list[str] = []
    count = 0
    thresholds: set[tuple[Decimal, Decimal, Decimal]] = set()
    for book in books:
        guardrails = overrides.get(book, defaults)
        if guardrails not in below:
            below[guardrails] = guardrails.narrow_below()
        price = below[guardrails]
        if price is None:
            continue
        assert guardrails.max_step_pct is not None and guardrails.ending is not None
        count += 1
        if len(named) < _NAMED_BOOKS:
            named.append(printable(book, 40))
        if len(thresholds) < _NAMED_BOOKS:
            thresholds.add((price, guardrails.max_step_pct, guardrails.ending))
    if not count:
        return None
    shown = ", ".join(named) + (", ..." if count > len(named) else "")
    why = "; ".join(f"max_step_pct {pct}, ending {ending}: below {price}" for price, pct, ending in sorted(thresholds))
    return (f"guardrails: {count} book(s) ({shown}) have a step narrower than the 1.00 between two prices with "
            f"their ending ({why}): there a price steps off its ending toward the rule's price "
            "(guardrail=step,ending_deferred) and takes it again once within a step (docs/configuration.md#guardrails)")


def read_pause(reader: ValueReader, value: Any, known: Collection[str],
               strategies: Collection[str]) -> tuple[frozenset[str], frozenset[str]]:
    """``[pause]``: ``books = [...]`` and ``strategies = [...]`` not decided (each must exist)."""
    where = ("pause",)
    table = reader.table((), "pause", value, _PAUSE_KEYS)
    books = reader.strings(where, "books", table.get("books", []), limits.is_valid_book_id, "book id")
    for book in books:
        if book not in known:
            raise reader.error(where, "books", f"{show(book)} is not a book this config prices")
    names = reader.strings(where, "strategies", table.get("strategies", []), lambda name: len(name) < 100,
                           "strategy name", max_items=1000)
    for name in names:
        if name not in strategies:
            raise reader.error(where, "strategies", f"no strategy named {show(name)}")
    return frozenset(books), frozenset(names)


def read_alerts(reader: ValueReader, value: Any) -> Thresholds:
    """``[alerts]``: the thresholds of the alerts the Ledger raises (:mod:`actors.alert_rules`)."""
    table = reader.table((), "alerts", value, ALERT_KEYS)
    parsed = parse(table)
    if isinstance(parsed, tuple):
        key, why = parsed
        raise reader.error(("alerts",), key, why)
    return parsed
