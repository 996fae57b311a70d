"""Reading a parsed TOML document's values with errors that name the file, the line and the key.
Pure: the text is only searched for the line a key is on.

Every getter accepts any value TOML can produce (strings, numbers, booleans, dates, lists, tables,
nested to any depth) and either returns a value within its bounds or raises :class:`ConfigError`.
Errors never ``repr`` a container (a deeply nested one would overflow the stack) and never quote more
than a short escaped excerpt of a string.
"""

from __future__ import annotations

import math
import re
import tomllib
from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from typing import Any, Final

from transport import limits
from transport.logs import printable

Path = tuple[str | int, ...]  # a table: ("strategies", "fast"), or ("books", 2) for the second [[books]]
_NUMBER: Final = re.compile(r"[+-]?[0-9]{1,40}(?:\.[0-9]{1,40})?(?:[eE][+-]?[0-9]{1,12})?")
_KEY_PART: Final = r"""(?:[A-Za-z0-9_-]+|"[^"\n]*"|'[^'\n]*')"""
_KEY_LINE: Final = re.compile(rf"\s*({_KEY_PART}(?:\s*\.\s*{_KEY_PART})*)\s*=")
_BARE_DOTTED: Final = re.compile(r"[A-Za-z0-9_-]+(?:\s*\.\s*[A-Za-z0-9_-]+)*")
_HEADER: Final = re.compile(r"(\[\[?)\s*(.*?)\s*(\]\]?)\s*(?:#.*)?")


class ConfigError(ValueError):
    """A config the repricer cannot run with; the message says where and why: ``file:line: key: reason``."""


def show(value: Any) -> str:
    """A value for an error message: short, escaped, never a recursive repr."""
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return f"'{printable(value, 40)}'"
    return printable(repr(value), 40)


def _single_path(document: Any) -> Path:
    """The key path of a one-header or one-key TOML snippet: {"a": {"b": [{}]}} -> ("a", "b")."""
    path: list[str | int] = []
    node = document
    while isinstance(node, dict) and len(node) == 1:
        key = next(iter(node))
        path.append(key)
        node = node[key]
        if isinstance(node, list) and node and isinstance(node[-1], dict) and not node[-1]:
            break
    return tuple(path)


def _key_path(text: str) -> Path | None:
    """The parts of a (possibly dotted, possibly quoted) TOML key; None if it is not one."""
    if _BARE_DOTTED.fullmatch(text):  # the common case, without a TOML parser
        return tuple(part.strip() for part in text.split("."))
    try:
        return _single_path(tomllib.loads(f"{text} = 0"))
    except (ValueError, RecursionError):
        return None


def _entries(text: str) -> list[tuple[int, Path]]:
    """(line number, full key path) of every table header and key line of ``text``: best effort
    (a line inside a multi-line string or array may be misread; only error messages use this)."""
    found: list[tuple[int, Path]] = []
    table: Path = ()
    arrays: dict[Path, int] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if stripped.startswith("["):
            header = _HEADER.fullmatch(stripped)
            found_path = _key_path(header.group(2)) if header else None
            if found_path is None or not header or len(header.group(1)) != len(header.group(3)):
                continue
            path = found_path
            if stripped.startswith("[["):
                arrays[path] = arrays.get(path, 0) + 1
                path = (*path, arrays[path])
            table = path
            found.append((number, table))
            continue
        match = _KEY_LINE.match(line)
        key = _key_path(match.group(1)) if match else None
        if key is not None:
            found.append((number, (*table, *key)))
    return found


def locate(text: str, target: Path) -> int:
    """The line of the key or table ``target`` in ``text``: the entry sharing the longest prefix with
    it (the key itself, else its table's header); 0 if none."""
    best, best_len = 0, 0
    for number, path in _entries(text):
        common = 0
        for a, b in zip(path, target, strict=False):
            if a != b:
                break
            common += 1
        if common == min(len(path), len(target)) and common > best_len:
            best, best_len = number, common
    return best


def label(path: Path) -> str:
    return ".".join(str(part) for part in path if not isinstance(part, int))


class ValueReader:
    """Typed getters over one config's document; every error carries file, line and key."""

    def __init__(self, text: str, name: str) -> None:
        self.text = text
        self.name = name

    def error(self, table: Path, key: str | None, message: str) -> ConfigError:
        path = (*table, key) if key is not None else table
        line = locate(self.text, path) if path else 0
        where = f"{self.name}:{line}" if line else self.name
        return ConfigError(f"{where}: {label(path)}: {message}" if path else f"{where}: {message}")

    def table(self, table: Path, key: str | None, value: Any, allowed: frozenset[str] | None = None) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise self.error(table, key, f"expected a table, got {show(value)}")
        if allowed is not None:
            unknown = sorted(set(value) - allowed)
            if unknown:
                where = (*table, key) if key is not None else table
                raise self.error(where, unknown[0], f"unknown key (expected one of {', '.join(sorted(allowed))})")
        return value

    def integer(self, table: Path, key: str, value: Any, minimum: int, maximum: int) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or not minimum <= value <= maximum:
            raise self.error(table, key, f"expected an integer {minimum}..{maximum}, got {show(value)}")
        return value

    def boolean(self, table: Path, key: str, value: Any) -> bool:
        if not isinstance(value, bool):
            raise self.error(table, key, f"expected true or false, got {show(value)}")
        return value

    def string(self, table: Path, key: str, value: Any, max_len: int = 4096) -> str:
        if not isinstance(value, str) or not value or len(value) > max_len:
            raise self.error(table, key, f"expected a string of 1..{max_len} characters, got {show(value)}")
        return value

    def strings(self, table: Path, key: str, value: Any, check: Callable[[str], bool], what: str,
                max_items: int = limits.BOOKS_MAX) -> list[str]:
        if not isinstance(value, list) or len(value) > max_items:
            raise self.error(table, key, f"expected a list of at most {max_items} {what}s, got {show(value)}")
        for item in value:
            if not isinstance(item, str) or not check(item):
                raise self.error(table, key, f"{show(item)} is not a valid {what}")
        return value

    def decimal(self, table: Path, key: str, value: Any, minimum: Decimal, maximum: Decimal) -> Decimal:
        """A number (TOML int, float or string) within [minimum, maximum]."""
        text = number_text(value)
        if text is None or not _NUMBER.fullmatch(text):
            raise self.error(table, key, f"expected a number (ASCII digits), got {show(value)}")
        try:
            number = Decimal(text)
        except InvalidOperation:  # pragma: no cover - the pattern admits only what Decimal reads
            raise self.error(table, key, f"not a number: {show(value)}") from None
        if not minimum <= number <= maximum:
            raise self.error(table, key, f"must be within {minimum}..{maximum}, got {show(value)}")
        return number

    def parsed(self, table: Path, key: str, value: Any, parse: Callable[[str], Decimal | str]) -> Decimal:
        """A number checked by one of the guardrail parsers (which return the value or a reason)."""
        text = number_text(value)
        result = parse(text) if text is not None else "expected a number or a string such as \"12.99\""
        if isinstance(result, str):
            raise self.error(table, key, f"{result}; got {show(value)}")
        return result


def number_text(value: Any) -> str | None:
    """The text of a TOML number as written: ints and strings as they are, finite floats by repr."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return str(value) if abs(value) < 10**40 else None
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else None
    if isinstance(value, str) and len(value) <= 64:
        return value.strip()
    return None
