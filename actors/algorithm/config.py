"""The TOML config: which books are priced, by which strategies (see ``repricer.example.toml``).

Parsing is pure (``parse_config(text, name)``); ``load_config(path)`` only reads the files. A bad
config raises :class:`ConfigError` naming the file, the line and the key, so the launcher can refuse
to start with a message the user can act on.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, Final

from actors.algorithm.pricing import PricingRule
from actors.algorithm.strategies import DEFAULT_DELAY, Pair, Strategy
from transport import limits

KINDS: Final = ("window-average",)  # the task's rule; the only kind so far
_STRATEGY_KEYS: Final = frozenset({"kind", "delay", "window", "sold_factor", "unsold_factor"})
_BOOKS_KEYS: Final = frozenset({"ids", "file", "strategies"})
_NAME: Final = re.compile(rf"^[A-Za-z0-9_.-]{{1,{limits.STRATEGY_NAME_MAX_LEN}}}$")


class ConfigError(ValueError):
    """A config the repricer cannot run with; the message says where and why."""


@dataclass(frozen=True, slots=True)
class Config:
    strategies: dict[str, Strategy]
    pairs: list[Pair]

    @property
    def books(self) -> list[str]:
        return list(dict.fromkeys(pair.book for pair in self.pairs))


def _line_of(text: str, table: str, key: str | None) -> int:
    """Best-effort line number of ``key`` inside the ``table`` header (``strategies.fast`` or
    ``books#2`` for the second ``[[books]]``); 0 when it cannot be found."""
    lines = text.splitlines()
    if "#" in table:
        name, nth = table.split("#")
        headers = [i for i, line in enumerate(lines) if line.strip() == f"[[{name}]]"]
        start = headers[int(nth) - 1] if len(headers) >= int(nth) else -1
    else:
        start = next((i for i, line in enumerate(lines) if line.strip() == f"[{table}]"), -1)
    if start < 0:
        return 0
    if key is None:
        return start + 1
    for i in range(start + 1, len(lines)):
        stripped = lines[i].strip()
        if stripped.startswith("["):
            break
        if re.match(rf"^{re.escape(key)}\s*=", stripped):
            return i + 1
    return start + 1


class _Reader:
    def __init__(self, text: str, name: str) -> None:
        self.text = text
        self.name = name

    def error(self, table: str, key: str | None, message: str) -> ConfigError:
        line = _line_of(self.text, table, key)
        where = f"{self.name}:{line}" if line else self.name
        label = f"{table.split('#')[0]}.{key}" if key else table.split("#")[0]
        return ConfigError(f"{where}: {label}: {message}")

    def decimal(self, table: str, key: str, value: Any, minimum: Decimal, maximum: Decimal) -> Decimal:
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            raise self.error(table, key, f"expected a number, got {value!r}")
        try:
            number = Decimal(str(value))
        except InvalidOperation:
            raise self.error(table, key, f"not a number: {value!r}") from None
        if not number.is_finite() or not minimum <= number <= maximum:
            raise self.error(table, key, f"must be within {minimum}..{maximum}, got {value!r}")
        return number


def _strategy(reader: _Reader, name: str, table: Any) -> Strategy:
    where = f"strategies.{name}"
    if not _NAME.match(name):
        raise reader.error(where, None, f"a strategy name is 1-{limits.STRATEGY_NAME_MAX_LEN} letters, digits, "
                           "'_', '.', '-'")
    if not isinstance(table, dict):
        raise reader.error(where, None, "expected a table")
    unknown = set(table) - _STRATEGY_KEYS
    if unknown:
        key = sorted(unknown)[0]
        raise reader.error(where, key, f"unknown key (expected one of {', '.join(sorted(_STRATEGY_KEYS))})")
    kind = table.get("kind", KINDS[0])
    if kind not in KINDS:
        raise reader.error(where, "kind", f"unknown kind {kind!r} (known: {', '.join(KINDS)})")
    window = table.get("window", limits.WINDOW_DEFAULT)
    if isinstance(window, bool) or not isinstance(window, int) or not 1 <= window <= limits.WINDOW_MAX:
        raise reader.error(where, "window", f"expected an integer 1..{limits.WINDOW_MAX}, got {window!r}")
    defaults = PricingRule()
    sold = reader.decimal(where, "sold_factor", table.get("sold_factor", str(defaults.sold_factor)),
                          limits.FACTOR_MIN, limits.FACTOR_MAX)
    unsold = reader.decimal(where, "unsold_factor", table.get("unsold_factor", str(defaults.unsold_factor)),
                            limits.FACTOR_MIN, limits.FACTOR_MAX)
    delay = reader.decimal(where, "delay", table.get("delay", str(DEFAULT_DELAY)), Decimal(0),
                           limits.DELAY_MAX)
    return Strategy(name, PricingRule(window, sold, unsold), delay)


def parse_config(text: str, name: str = "<config>",
                 read_books: Callable[[str], list[str]] | None = None) -> Config:
    """Parse a config's text. ``read_books(path)`` reads a ``file = ...`` book list (I/O stays with
    the caller); without it such an entry is an error."""
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{name}: not valid TOML: {exc}") from None
    reader = _Reader(text, name)
    unknown = set(document) - {"strategies", "books"}
    if unknown:
        raise ConfigError(f"{name}: unknown top-level key {sorted(unknown)[0]!r} (expected strategies, books)")
    raw_strategies = document.get("strategies", {"default": {}})
    if not isinstance(raw_strategies, dict) or not raw_strategies:
        raise ConfigError(f"{name}: [strategies.NAME] tables expected")
    strategies = {key: _strategy(reader, key, value) for key, value in raw_strategies.items()}
    groups = document.get("books")
    if not isinstance(groups, list) or not groups:
        raise ConfigError(f"{name}: at least one [[books]] table is required")
    pairs: dict[tuple[str, str], Pair] = {}
    for index, group in enumerate(groups, start=1):
        where = f"books#{index}"
        unknown = set(group) - _BOOKS_KEYS
        if unknown:
            raise reader.error(where, sorted(unknown)[0], "unknown key (expected ids, file, strategies)")
        ids = group.get("ids", [])
        if not isinstance(ids, list) or not all(isinstance(i, str) and i.strip() for i in ids):
            raise reader.error(where, "ids", "expected a list of non-empty book ids")
        if "file" in group:
            if not isinstance(group["file"], str):
                raise reader.error(where, "file", "expected a path")
            if read_books is None:
                raise reader.error(where, "file", "book files are not supported here")
            try:
                ids = ids + read_books(group["file"])
            except OSError as exc:
                raise reader.error(where, "file", f"cannot read: {exc.strerror or exc}") from None
        if not ids:
            raise reader.error(where, None, "no books: give ids or file")
        names = group.get("strategies", list(strategies) if len(strategies) == 1 else None)
        if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
            raise reader.error(where, "strategies", "expected a non-empty list of strategy names")
        for strategy_name in names:
            if strategy_name not in strategies:
                raise reader.error(where, "strategies", f"no strategy named {strategy_name!r}")
        for book in ids:
            for strategy_name in names:
                pair = Pair(book.strip(), strategies[strategy_name])
                pairs.setdefault(pair.key, pair)
        if len(pairs) > limits.BOOKS_MAX:
            raise reader.error(where, None, f"more than {limits.BOOKS_MAX} (book, strategy) pairs")
    return Config(strategies, list(pairs.values()))


def load_config(path: str | Path) -> Config:
    """Read and parse ``path``; book files are relative to the config's directory."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror or exc}") from None

    def read_books(relative: str) -> list[str]:
        with open(path.parent / relative, encoding="utf-8") as f:
            return [line.strip() for line in f if line.strip() and not line.lstrip().startswith("#")]

    return parse_config(text, str(path), read_books)
