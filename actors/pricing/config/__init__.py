"""The TOML config: which books are priced, by which strategies, within which guardrails, and what is
paused (see ``repricer.example.toml`` and the README's *Config* section).

Parsing is pure (``parse_config(text, name, files)``: the files a config names are read through
``files``); ``load_config(path)`` reads them from disk, bounded (``files``). Any config that
cannot run raises :class:`ConfigError` naming the file, the line and the key
(``repricer.toml:7: strategies.fast.window: expected an integer 1..64, got 0``), never another
exception, whatever the file holds.
"""

from __future__ import annotations

import dataclasses
import math
import re
import tomllib
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any, Final

from actors.alert_rules import Thresholds
from actors.pricing.config.backtest import DEFAULT as BACKTEST_DEFAULT
from actors.pricing.config.backtest import BacktestSettings, read_backtest
from actors.pricing.config.files import CancelFlag, Cancelled, ConfigFiles, FileRefused, LocalFiles, read_text
from actors.pricing.config.tables import narrow_step_warning, read_alerts, read_guardrails, read_pause
from actors.pricing.config.values import ConfigError, ValueReader, show
from actors.pricing.guardrails import NONE, Guarded, Guardrails
from actors.pricing.rule import PricingRule
from actors.pricing.strategies import DEFAULT_DELAY, Pair, Strategy, pairs_for
from transport import limits

__all__ = ("Config", "ConfigError", "ConfigFiles", "load_config", "parse_config")

KINDS: Final = ("window-average",)  # the task's rule; the only kind so far
TOP_KEYS: Final = frozenset({"strategies", "books", "guardrails", "pause", "alerts", "allow_outside_paths",
                             "backtest"})
_STRATEGY_KEYS: Final = frozenset({"kind", "delay", "window", "sold_factor", "unsold_factor"})
_BOOKS_KEYS: Final = frozenset({"ids", "file", "strategies"})
_NAME: Final = re.compile(rf"[A-Za-z0-9_.-]{{1,{limits.STRATEGY_NAME_MAX_LEN}}}")
_TOML_LINE: Final = re.compile(r"at line (\d+)")
_STRATEGIES_LISTED_MAX: Final = 1024  # names in one [[books]].strategies (a config holds few strategies)


@dataclass(frozen=True, slots=True)
class Config:
    """A whole, validated config. Immutable: a reload builds a new one."""

    strategies: dict[str, Strategy]
    pairs: list[Pair]
    guardrail_defaults: Guardrails = NONE
    guardrail_overrides: Mapping[str, Guardrails] = field(default_factory=dict)  # per book
    paused_books: frozenset[str] = frozenset()
    paused_strategies: frozenset[str] = frozenset()
    warnings: tuple[str, ...] = ()  # to log once loaded (catalog rows skipped, ...), bounded
    files: tuple[str, ...] = ()  # every file read, the config first: what a reload watches
    catalog_counts: Mapping[str, int] = field(default_factory=dict)  # the guardrail catalog's (catalog.py)
    catalog: str | None = None  # the guardrail catalog's path, as the config names it (relative to it)
    backtest: BacktestSettings = BACKTEST_DEFAULT  # [backtest]: read by the backtest only
    alerts: Thresholds = field(default_factory=Thresholds)  # [alerts]: checked here, used by the Ledger
    has_guardrails: bool = field(init=False, default=False)

    def __post_init__(self) -> None:
        configured = self.guardrail_defaults.configured or any(
            g.configured for g in self.guardrail_overrides.values())
        object.__setattr__(self, "has_guardrails", configured)

    @classmethod
    def simple(cls, books: Iterable[str], delay: Decimal = DEFAULT_DELAY) -> Config:
        """The config of the command line without ``--config``: every book, the default rule."""
        strategy = Strategy("default", PricingRule(), delay)
        return cls({strategy.name: strategy}, pairs_for(books, [strategy]))

    @property
    def books(self) -> list[str]:
        return list(dict.fromkeys(pair.book for pair in self.pairs))

    def guardrails_for(self, book: str) -> Guardrails:
        return self.guardrail_overrides.get(book, self.guardrail_defaults)

    def guard(self, book: str, rule_price: Decimal, last_price: Decimal | None) -> Guarded:
        """The decision's ``price``, ``rule_price`` and ``guardrail`` for the rule's price and the
        pair's last decided price (None on its first decision)."""
        if not self.has_guardrails:
            return Guarded(rule_price, None, ())
        guardrails = self.guardrails_for(book)
        price, moved = guardrails.apply(rule_price, last_price)
        return Guarded(price, rule_price, moved, last_price, guardrails.floor, guardrails.ceiling)

    def catalog_counters(self) -> dict[str, int]:
        """The guardrail catalog's counts as the Algorithm's counters: ``catalog_rows`` (used),
        ``catalog_bad_rows`` (skipped, and ``catalog_bad_rows_<reason>`` per reason seen) and
        ``catalog_unknown_books`` (rows for books this config does not price). They describe the
        config running now (a reload replaces them); zero without a catalog."""
        counts = self.catalog_counts
        out = {"catalog_rows": counts.get("rows", 0), "catalog_bad_rows": counts.get("bad_rows", 0),
               "catalog_unknown_books": counts.get("unknown_books", 0)}
        out.update((f"catalog_{key}", count) for key, count in counts.items() if key.startswith("bad_rows_"))
        return out

    def is_paused(self, book: str, strategy: str) -> bool:
        return book in self.paused_books or strategy in self.paused_strategies


def _strategy(reader: ValueReader, name: str, value: Any, tick: float | None) -> Strategy:
    where = ("strategies", name)
    if not _NAME.fullmatch(name):
        raise reader.error(where, None, f"a strategy name is 1-{limits.STRATEGY_NAME_MAX_LEN} letters, digits, "
                           "'_', '.', '-'")
    table = reader.table(where, None, value, _STRATEGY_KEYS)
    kind = table.get("kind", KINDS[0])
    if kind not in KINDS:
        raise reader.error(where, "kind", f"unknown kind {show(kind)} (known: {', '.join(KINDS)})")
    window = reader.integer(where, "window", table.get("window", limits.WINDOW_DEFAULT), 1, limits.WINDOW_MAX)
    defaults = PricingRule()
    sold = reader.decimal(where, "sold_factor", table.get("sold_factor", str(defaults.sold_factor)),
                          limits.FACTOR_MIN, limits.FACTOR_MAX)
    unsold = reader.decimal(where, "unsold_factor", table.get("unsold_factor", str(defaults.unsold_factor)),
                            limits.FACTOR_MIN, limits.FACTOR_MAX)
    delay = reader.decimal(where, "delay", table.get("delay", str(DEFAULT_DELAY)), Decimal(0), limits.DELAY_MAX)
    if tick is not None and delay >= Decimal(str(tick)):
        raise reader.error(where, "delay", f"{delay} s is not shorter than the tick ({tick} s): every decision "
                           "would overrun its tick and none would ever be made")
    for key, factor in (("sold_factor", sold), ("unsold_factor", unsold)):
        if -int(factor.as_tuple().exponent) > limits.FACTOR_DECIMALS:
            raise reader.error(where, key, f"at most {limits.FACTOR_DECIMALS} decimals (every decision carries it), "
                               f"got {factor}")
    return Strategy(name, PricingRule(window, sold, unsold), delay)


def _pairs(reader: ValueReader, groups: Any, strategies: dict[str, Strategy], files: ConfigFiles | None,
           allow_outside: bool) -> list[Pair]:
    if not isinstance(groups, list) or not groups:
        raise reader.error((), "books", "at least one [[books]] table is required")
    pairs: dict[tuple[str, str], Pair] = {}
    for index, group in enumerate(groups, start=1):
        where = ("books", index)
        table = reader.table(where, None, group, _BOOKS_KEYS)
        ids = [book.strip() for book in reader.strings(where, "ids", table.get("ids", []),
                                                       lambda b: limits.is_valid_book_id(b.strip()), "book id")]
        if "file" in table:
            ref = reader.string(where, "file", table["file"])
            if files is None:
                raise reader.error(where, "file", "book files are not supported here")
            try:
                ids += files.book_list(ref, allow_outside)
            except FileRefused as exc:
                raise reader.error(where, "file", f"{show(ref)}: {exc}") from None
        if not ids:
            raise reader.error(where, None, "no books: give ids or file")
        names = table.get("strategies", list(strategies) if len(strategies) == 1 else None)
        if names is None:
            raise reader.error(where, "strategies", "required when there are several strategies")
        names = reader.strings(where, "strategies", names, lambda n: bool(_NAME.fullmatch(n)), "strategy name",
                               max_items=_STRATEGIES_LISTED_MAX)
        if not names:
            raise reader.error(where, "strategies", "expected a non-empty list of strategy names")
        for name in names:
            if name not in strategies:
                raise reader.error(where, "strategies", f"no strategy named {show(name)}")
        for book in ids:
            for name in names:
                pairs.setdefault((book, name), Pair(book, strategies[name]))
            if len(pairs) > limits.BOOKS_MAX:
                raise reader.error(where, None, f"more than {limits.BOOKS_MAX} (book, strategy) pairs")
    return list(pairs.values())


def _document(text: str, name: str) -> dict[str, Any]:
    if len(text) > limits.CONFIG_MAX_BYTES or len(text.encode("utf-8", "surrogatepass")) > limits.CONFIG_MAX_BYTES:
        raise ConfigError(f"{name}: over the limit of {limits.CONFIG_MAX_BYTES} bytes")
    try:
        return tomllib.loads(text)
    except RecursionError:
        raise ConfigError(f"{name}: not valid TOML: nested too deeply") from None
    except ValueError as exc:  # TOMLDecodeError, and int() refusing a huge number
        match = _TOML_LINE.search(str(exc))
        where = f"{name}:{match.group(1)}" if match else name
        raise ConfigError(f"{where}: not valid TOML: {exc}") from None


def parse_config(text: str, name: str = "<config>", files: ConfigFiles | None = None, *,
                 tick: float | None = None) -> Config:
    """Parse a config's text; ``files`` reads the files it names (without it, naming one is an
    error). With ``tick``, every strategy's delay must be shorter than it."""
    if tick is not None and not (math.isfinite(tick) and tick > 0):
        raise ValueError(f"tick must be a positive number of seconds, got {tick!r}")
    document = _document(text, name)
    reader = ValueReader(text, name)
    reader.table((), None, document, TOP_KEYS)
    allow_outside = reader.boolean((), "allow_outside_paths", document.get("allow_outside_paths", False))
    raw = reader.table((), "strategies", document.get("strategies", {"default": {}}))
    if not raw:
        raise reader.error((), "strategies", "[strategies.NAME] tables expected")
    strategies = {key: _strategy(reader, key, value, tick) for key, value in raw.items()}
    pairs = _pairs(reader, document.get("books"), strategies, files, allow_outside)
    known: Collection[str] = {pair.book for pair in pairs}
    defaults, overrides, catalog = read_guardrails(reader, document.get("guardrails", {}), known, files,
                                                   allow_outside)
    paused_books, paused_strategies = read_pause(reader, document.get("pause", {}), known, strategies)
    backtest = read_backtest(reader, document["backtest"]) if "backtest" in document else BACKTEST_DEFAULT
    narrow = narrow_step_warning(dict.fromkeys(pair.book for pair in pairs), defaults, overrides)
    warnings = (() if catalog is None else catalog.warnings) + (() if narrow is None else (narrow,))
    alerts = read_alerts(reader, document.get("alerts", {}))
    if catalog is None:
        return Config(strategies, pairs, defaults, overrides, paused_books, paused_strategies, warnings,
                      backtest=backtest, alerts=alerts)
    return Config(strategies, pairs, defaults, overrides, paused_books, paused_strategies, warnings,
                  catalog_counts=catalog.counts, catalog=catalog.name, backtest=backtest, alerts=alerts)


def load_config(path: str | Path, *, tick: float | None = None, cancel: CancelFlag | None = None) -> Config:
    """Read and parse ``path`` (at most ``limits.CONFIG_MAX_BYTES``, a regular UTF-8 file); the files
    it names are relative to its folder and must stay inside it unless ``allow_outside_paths``.
    ``cancel`` (a ``threading.Event``) stops a long read (a big catalog) with a ConfigError."""
    path = Path(path)
    try:
        text = read_text(path, limits.CONFIG_MAX_BYTES)
    except FileRefused as exc:
        raise ConfigError(f"{path}: {exc}") from None
    files = LocalFiles(path.parent, cancel)
    try:
        config = parse_config(text, str(path), files, tick=tick)
    except Cancelled:
        raise ConfigError(f"{path}: reading cancelled") from None
    return dataclasses.replace(config, files=(str(path), *files.opened))
