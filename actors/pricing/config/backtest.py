"""The config's ``[backtest]`` table: which demand model says whether a book sold, and a unit cost for
margins. Pure (parsed by ``config.parse_config`` with the rest of the config, so the launcher refuses
a bad one too; the running system ignores it).

    [backtest]
    demand = "parity"        # the mock API's rule: an even request id sold (the default)
    first_id = 0             # parity without --ids: the first id of the generated sequence
    unit_cost = "4.50"       # every book's unit cost, for margins (a catalog's cost column overrides)

    [backtest.logistic]      # demand = "logistic": a sale's probability falls as our price rises
    max_probability = "0.8"  # against the competitor's average: p = max / (1 + exp(steepness *
    midpoint = "1.0"         # (price / avg_comp_price - midpoint))), drawn from a seeded generator
    steepness = "10"
    seed = 1
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Final

from actors.pricing.config.values import Path, ValueReader, show
from actors.pricing.guardrails import parse_money

MODELS: Final = ("parity", "logistic")
REPORT_DEFAULT: Final = "var/backtest/report.html"  # where the backtest writes its report, and the Dashboard looks
FIRST_ID_MAX: Final = 2**53  # ids stay exact anywhere (the mock's are microseconds since 1970, ~2**50)
SEED_MAX: Final = 2**31 - 1
_KEYS: Final = frozenset({"demand", "first_id", "unit_cost", "logistic"})
_LOGISTIC_KEYS: Final = frozenset({"max_probability", "midpoint", "steepness", "seed"})


@dataclass(frozen=True, slots=True)
class Parity:
    """The mock API's rule: a request with an even id sold. Ids come from a live run (``--ids``) or
    are generated: tick by tick, pair by pair in config order, from ``first_id``."""

    first_id: int = 0


@dataclass(frozen=True, slots=True)
class Logistic:
    """A sale's probability falls as our price rises against the competitor's average."""

    max_probability: Decimal = Decimal("0.8")
    midpoint: Decimal = Decimal(1)
    steepness: Decimal = Decimal(10)
    seed: int = 1


Demand = Parity | Logistic


@dataclass(frozen=True, slots=True)
class BacktestSettings:
    demand: Demand = field(default_factory=Parity)
    unit_cost: Decimal | None = None


DEFAULT: Final = BacktestSettings()


def read_backtest(reader: ValueReader, value: Any) -> BacktestSettings:
    """The ``[backtest]`` table, validated; ConfigError names the line and key."""
    where: Path = ("backtest",)
    table = reader.table((), "backtest", value, _KEYS)
    model = table.get("demand", MODELS[0])
    if model not in MODELS:
        raise reader.error(where, "demand", f"unknown demand model {show(model)} (known: {', '.join(MODELS)})")
    unit_cost = reader.parsed(where, "unit_cost", table["unit_cost"], parse_money) if "unit_cost" in table else None
    if model == "parity":
        if "logistic" in table:
            raise reader.error(where, "logistic", 'only with demand = "logistic"')
        first_id = reader.integer(where, "first_id", table.get("first_id", 0), 0, FIRST_ID_MAX)
        return BacktestSettings(Parity(first_id), unit_cost)
    if "first_id" in table:
        raise reader.error(where, "first_id", 'only with demand = "parity"')
    here: Path = ("backtest", "logistic")
    params = reader.table(where, "logistic", table.get("logistic", {}), _LOGISTIC_KEYS)
    defaults = Logistic()
    return BacktestSettings(Logistic(
        reader.decimal(here, "max_probability", params.get("max_probability", str(defaults.max_probability)),
                       Decimal(0), Decimal(1)),
        reader.decimal(here, "midpoint", params.get("midpoint", str(defaults.midpoint)), Decimal("0.01"),
                       Decimal(100)),
        reader.decimal(here, "steepness", params.get("steepness", str(defaults.steepness)), Decimal(0),
                       Decimal(1000)),
        reader.integer(here, "seed", params.get("seed", defaults.seed), 0, SEED_MAX)), unit_cost)
