"""Floors and ceilings to draw on a book's chart: the seam between the Dashboard and the guardrails.

The book page asks a :class:`BoundsSource` for a pair's ``(floor, ceiling)``; either may be None (not
set: no line). What the Dashboard ships reads the ``[guardrails]`` table's ``floor`` and ``ceiling``
defaults from the TOML config given with ``--config`` (every other key is ignored, a config without
that table has no bounds). When the guardrails' own loader exists (per-book rows of its catalog
included), plug it in here: anything with a ``bounds(book, strategy)`` method will do.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, Protocol

from transport import limits


class BoundsError(ValueError):
    """A config whose floor or ceiling the Dashboard cannot read (the message names the key)."""


@dataclass(frozen=True, slots=True)
class Bounds:
    floor: Decimal | None = None
    ceiling: Decimal | None = None

    def as_json(self) -> dict[str, str | None]:
        return {"floor": None if self.floor is None else str(self.floor),
                "ceiling": None if self.ceiling is None else str(self.ceiling)}


class BoundsSource(Protocol):
    def bounds(self, book: str, strategy: str) -> Bounds: ...


class NoBounds:
    def bounds(self, book: str, strategy: str) -> Bounds:
        return Bounds()


class DefaultBounds:
    """The same bounds for every pair."""

    def __init__(self, default: Bounds) -> None:
        self._default = default

    def bounds(self, book: str, strategy: str) -> Bounds:
        return self._default


def _money(name: str, value: Any) -> Decimal | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise BoundsError(f"guardrails.{name}: expected a price, got {value!r:.40}")
    try:
        price = Decimal(str(value))
    except InvalidOperation:
        raise BoundsError(f"guardrails.{name}: not a price: {value!r:.40}") from None
    if not price.is_finite() or not limits.PRICE_MIN <= price <= limits.PRICE_MAX:
        raise BoundsError(f"guardrails.{name}: must be within {limits.PRICE_MIN}..{limits.PRICE_MAX}")
    return price


def parse_bounds(text: str) -> Bounds:
    """The ``[guardrails]`` floor and ceiling of a config's text (pure)."""
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise BoundsError(f"not valid TOML: {exc}") from None
    table = document.get("guardrails")
    if not isinstance(table, dict):
        return Bounds()
    return Bounds(_money("floor", table.get("floor")), _money("ceiling", table.get("ceiling")))


def load_bounds(path: str | None) -> BoundsSource:
    """The bounds of the config at ``path`` (none without one)."""
    if not path:
        return NoBounds()
    try:
        if Path(path).stat().st_size > limits.CONFIG_MAX_BYTES:
            raise BoundsError(f"larger than {limits.CONFIG_MAX_BYTES} bytes")
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise BoundsError(f"cannot read: {getattr(exc, 'strerror', None) or exc}") from None
    bounds = parse_bounds(text)
    return DefaultBounds(bounds) if bounds != Bounds() else NoBounds()
