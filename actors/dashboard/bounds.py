"""What the Dashboard reads of the repricer's own config (``--config``): each book's floor and ceiling,
the guardrails the Algorithm applies (defaults, catalog rows and per-book tables), which pairs its
``[pause]`` holds (shown as paused) and each book's strategies in the config's order (a book's page
opens the first); read with the shared config loader (``actors.pricing``), so they are exactly what
the workers apply. Read at start and again on SIGHUP (the launcher forwards its own to the Dashboard as to
the workers): a reload shows on the next page.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Protocol

from actors.pricing.config import Config, ConfigError, load_config


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

    def paused(self, book: str, strategy: str) -> bool: ...

    def strategies(self, book: str) -> tuple[str, ...]: ...


class DefaultBounds:
    """The same bounds for every pair; none by default (the Dashboard without a config)."""

    def __init__(self, default: Bounds = Bounds()) -> None:
        self._default = default

    def bounds(self, book: str, strategy: str) -> Bounds:
        return self._default

    def paused(self, book: str, strategy: str) -> bool:
        return False

    def strategies(self, book: str) -> tuple[str, ...]:
        return ()


class ConfigBounds:
    """Each book's floor and ceiling, as the config's guardrails set them."""

    def __init__(self, config: Config) -> None:
        self._config = config
        order: dict[str, list[str]] = {}
        for pair in config.pairs:
            order.setdefault(pair.book, []).append(pair.strategy.name)
        self._strategies = {book: tuple(names) for book, names in order.items()}

    def bounds(self, book: str, strategy: str) -> Bounds:
        guardrails = self._config.guardrails_for(book)
        return Bounds(guardrails.floor, guardrails.ceiling)

    def paused(self, book: str, strategy: str) -> bool:
        return self._config.is_paused(book, strategy)

    def strategies(self, book: str) -> tuple[str, ...]:
        return self._strategies.get(book, ())


def load_bounds(path: str | None) -> BoundsSource:
    """What the Dashboard reads of the config at ``path`` (nothing without one)."""
    if not path:
        return DefaultBounds()
    try:
        config = load_config(path)
    except ConfigError as exc:
        raise BoundsError(str(exc)) from None
    return ConfigBounds(config)
