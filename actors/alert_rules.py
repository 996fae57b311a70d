"""The alerts a publisher gets, and their thresholds: the ``[alerts]`` table of the repricer's TOML config
(pure: no I/O).

One record per alert (:data:`ALERTS`): its name (the ``alert`` label of its metric, the Ledger's
``alerts`` table, the webhook's JSON), what it is about (a pair, a strategy, the system), a title
and a sentence saying what to look at. The Ledger detects them (``actors/ledger/watch.py``); the
Algorithm's config loader checks the table with the same :func:`parse`, so a bad value is refused
when the config is loaded (at start, or by a reload), naming the file, the line and the key.

Every threshold has a default; 0 turns its alert off.
"""

from __future__ import annotations

import math
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass, fields
from types import MappingProxyType
from typing import Any, Final, Literal

Scope = Literal["pair", "strategy", "system"]


@dataclass(frozen=True, slots=True)
class Alert:
    name: str
    scope: Scope
    title: str
    advice: str  # what it means for a publisher, and where to look


ALERTS: Final = MappingProxyType({a.name: a for a in (
    Alert("price_war", "pair", "Price war",
          "our price and the competitor's average fell together decision after decision: check the strategy "
          "and its floor before the price erodes further"),
    Alert("floor_pinned", "pair", "Pinned at the floor",
          "the price has been held at its floor for a long time: the rule wants it lower; is the floor right?"),
    Alert("stale_competitor", "pair", "Competitor data stale",
          "the competitor's prices have not changed for a long time: is the data feed still writing rows "
          "for this book?"),
    Alert("guardrails_most", "strategy", "Guardrails set most prices",
          "the guardrails moved most of this strategy's recent decisions: the strategy or its guardrails "
          "need a look"),
    Alert("ledger_lag", "system", "Ledger behind",
          "decisions reach the Ledger late, or it refuses them (busy, database unavailable): the history and "
          "this page lag; the workers' spools hold what is not kept yet"),
)})
NAMES: Final = tuple(ALERTS)
WEBHOOK_MAX_LEN: Final = 2048


@dataclass(frozen=True, slots=True)
class Thresholds:
    """``[alerts]``. Times in seconds; 0 turns an alert off."""

    price_war_ticks: int = 12  # both fell on this many decisions of the pair in a row
    floor_pinned_seconds: float = 3600.0  # the floor set the pair's price for this long
    stale_competitor_seconds: float = 900.0  # the pair's competitor prices unchanged for this long
    guardrail_share_pct: float = 50.0  # guardrails moved at least this share (most) ...
    guardrail_share_decisions: int = 200  # ... of the strategy's last this many decisions
    ledger_lag_seconds: float = 30.0  # decisions reach the Ledger this late, or it refused one this recently
    webhook: str = ""  # POST each alert raised or cleared here as JSON ("" : none)

    def enabled(self, name: str) -> bool:
        return {"price_war": self.price_war_ticks, "floor_pinned": self.floor_pinned_seconds,
                "stale_competitor": self.stale_competitor_seconds,
                "guardrails_most": self.guardrail_share_pct * self.guardrail_share_decisions,
                "ledger_lag": self.ledger_lag_seconds}[name] > 0

    def as_json(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


KEYS: Final = frozenset(f.name for f in fields(Thresholds))
_INTEGERS: Final = MappingProxyType({"price_war_ticks": 10_000, "guardrail_share_decisions": 100_000})
_SECONDS: Final = MappingProxyType({"floor_pinned_seconds": 30 * 86_400.0, "stale_competitor_seconds": 30 * 86_400.0,
                                    "ledger_lag_seconds": 86_400.0})


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def _problem(key: str, value: Any) -> str | None:
    """Why ``value`` is not valid for ``key``, or None."""
    if key in _INTEGERS:
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= _INTEGERS[key]:
            return f"expected a whole number 0..{_INTEGERS[key]} (0: off)"
        return None
    if key in _SECONDS:
        number = _number(value)
        if number is None or not 0 <= number <= _SECONDS[key]:
            return f"expected seconds 0..{_SECONDS[key]:.0f} (0: off)"
        return None
    if key == "guardrail_share_pct":
        number = _number(value)
        if number is None or not 0 <= number <= 100:
            return "expected a percentage 0..100 (0: off)"
        return None
    if not isinstance(value, str) or len(value) > WEBHOOK_MAX_LEN:
        return f"expected a URL string of at most {WEBHOOK_MAX_LEN} characters"
    if value:
        url = urllib.parse.urlsplit(value)
        if url.scheme not in ("http", "https") or not url.hostname or not value.isprintable():
            return "expected an http:// or https:// URL"
    return None


def parse(table: Mapping[str, Any]) -> Thresholds | tuple[str, str]:
    """``[alerts]`` as read from TOML: the thresholds, or (key, why) for the first bad key."""
    for key, value in table.items():
        if key not in KEYS:
            return key, f"unknown key (known: {', '.join(sorted(KEYS))})"
        problem = _problem(key, value)
        if problem is not None:
            return key, problem
    values: dict[str, Any] = dict(table)
    for key in _SECONDS:
        if key in values:
            values[key] = float(values[key])
    if "guardrail_share_pct" in values:
        values["guardrail_share_pct"] = float(values["guardrail_share_pct"])
    return Thresholds(**values)


def from_document(document: Mapping[str, Any], name: str) -> Thresholds:
    """The ``[alerts]`` of a parsed TOML document (defaults without one); ValueError naming ``name``
    and the key for a bad one."""
    table = document.get("alerts", {})
    if not isinstance(table, Mapping):
        raise ValueError(f"{name}: alerts: expected a table")
    parsed = parse(table)
    if isinstance(parsed, tuple):
        key, why = parsed
        raise ValueError(f"{name}: alerts.{key}: {why}")
    return parsed
