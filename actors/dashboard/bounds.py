"""Floors and ceilings to draw on a book's chart, from the repricer's own config (``--config``): the
guardrails the Algorithm applies, per book (defaults, catalog rows and per-book tables), read with the
Algorithm's loader so the lines are exactly what holds the prices. Read once, at start: a config
reloaded by SIGHUP later shows on the Dashboard after its restart (a documented limit).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Protocol

from actors.algorithm.config import Config, ConfigError, load_config


class BoundsError(ValueError):
    """A config the Dashboard cannot read (the message names the file, the line and the key)."""


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


class ConfigBounds:
    """Each book's floor and ceiling, as the config's guardrails set them."""

    def __init__(self, config: Config) -> None:
        self._config = config

    def bounds(self, book: str, strategy: str) -> Bounds:
        guardrails = self._config.guardrails_for(book)
        return Bounds(guardrails.floor, guardrails.ceiling)


def load_bounds(path: str | None) -> BoundsSource:
    """The bounds of the config at ``path`` (none without one, or without guardrails)."""
    if not path:
        return NoBounds()
    try:
        config = load_config(path)
    except ConfigError as exc:
        raise BoundsError(str(exc)) from None
    return ConfigBounds(config) if config.has_guardrails else NoBounds()
