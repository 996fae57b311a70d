"""Floors and ceilings for the chart, from the config's [guardrails] table (the seam to issue 12)."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from actors.dashboard.bounds import Bounds, BoundsError, NoBounds, load_bounds, parse_bounds


def test_guardrails_defaults_are_read_and_other_keys_ignored() -> None:
    text = '[strategies.default]\nwindow = 5\n[guardrails]\nfloor = "9.50"\nceiling = 40\nmax_step_pct = 5\n'
    assert parse_bounds(text) == Bounds(Decimal("9.50"), Decimal("40"))
    assert parse_bounds('[guardrails]\nceiling = "12.00"\n') == Bounds(None, Decimal("12.00"))
    assert parse_bounds("[[books]]\nids = ['B1']\n") == Bounds()


@pytest.mark.parametrize("text", ['[guardrails]\nfloor = "abc"\n', "[guardrails]\nfloor = 0\n",
                                  "[guardrails]\nceiling = true\n", "[guardrails\n"])
def test_bad_bounds_are_refused_with_the_key(text: str) -> None:
    with pytest.raises(BoundsError):
        parse_bounds(text)


def test_load_without_a_config_or_bounds(tmp_path: Path) -> None:
    assert isinstance(load_bounds(None), NoBounds)
    config = tmp_path / "c.toml"
    config.write_text('[guardrails]\nfloor = "30"\n', encoding="utf-8")
    assert load_bounds(str(config)).bounds("B1", "default") == Bounds(Decimal("30"), None)
    with pytest.raises(BoundsError):
        load_bounds(str(tmp_path / "missing.toml"))
