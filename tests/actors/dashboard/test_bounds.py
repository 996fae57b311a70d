"""Floors and ceilings for the chart: the guardrails of the repricer's own config, per book."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from actors.dashboard.bounds import Bounds, BoundsError, DefaultBounds, load_bounds

BOOKS = '[strategies.default]\ndelay = 0\n[[books]]\nids = ["B1", "B2"]\n'


def write(tmp_path: Path, text: str) -> str:
    config = tmp_path / "c.toml"
    config.write_text(text, encoding="utf-8")
    return str(config)


def test_each_book_gets_its_own_floor_and_ceiling(tmp_path: Path) -> None:
    source = load_bounds(write(tmp_path, BOOKS + '[guardrails]\nfloor = "9.50"\nceiling = "40"\nmax_step_pct = 5\n'
                                               '[guardrails.books.B2]\nfloor = "12.00"\n'))
    assert source.bounds("B1", "default") == Bounds(Decimal("9.50"), Decimal("40"))
    assert source.bounds("B2", "default") == Bounds(Decimal("12.00"), Decimal("40"))


def test_no_config_or_no_guardrails_means_no_lines(tmp_path: Path) -> None:
    assert isinstance(load_bounds(None), DefaultBounds)
    source = load_bounds(write(tmp_path, BOOKS))
    assert source.bounds("B1", "default") == Bounds() and not source.paused("B1", "default")


def test_each_books_strategies_come_in_the_configs_order(tmp_path: Path) -> None:
    source = load_bounds(write(tmp_path, '[strategies.zeta]\ndelay = 0\n[strategies.alpha]\ndelay = 0\n'
                                         '[[books]]\nids = ["B1"]\nstrategies = ["zeta", "alpha"]\n'
                                         '[[books]]\nids = ["B2"]\nstrategies = ["alpha"]\n'))
    assert source.strategies("B1") == ("zeta", "alpha") and source.strategies("B2") == ("alpha",)
    assert source.strategies("B9") == ()


@pytest.mark.parametrize("extra", ['[guardrails]\nfloor = "abc"\n', "[guardrails]\nfloor = 0\n",
                                   "[guardrails]\nceiling = true\n", "[guardrails\n"])
def test_a_bad_config_is_refused_with_the_key(tmp_path: Path, extra: str) -> None:
    with pytest.raises(BoundsError, match=r"c\.toml"):
        load_bounds(write(tmp_path, BOOKS + extra))


def test_a_missing_config_is_refused(tmp_path: Path) -> None:
    with pytest.raises(BoundsError):
        load_bounds(str(tmp_path / "missing.toml"))
