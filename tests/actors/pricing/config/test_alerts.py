"""The config's [alerts] table: the thresholds of the alerts the Ledger raises, checked when the config
is loaded (the same parser the Ledger reads the table with, actors/alert_rules.py)."""

from __future__ import annotations

from typing import Any

import pytest

from actors.alert_rules import ALERTS, Thresholds, from_document, parse
from actors.pricing.config import ConfigError, parse_config

BOOKS = '[[books]]\nids = ["B1"]\n'


def test_no_table_means_the_defaults_and_every_alert_on() -> None:
    config = parse_config(BOOKS)
    assert config.alerts == Thresholds()
    assert all(config.alerts.enabled(name) for name in ALERTS)


def test_every_threshold_is_read_and_zero_turns_an_alert_off() -> None:
    config = parse_config(BOOKS + '[alerts]\nprice_war_ticks = 0\nfloor_pinned_seconds = 1.5\n'
                          'stale_competitor_seconds = 60\nguardrail_share_pct = 75\nguardrail_share_decisions = 10\n'
                          'ledger_lag_seconds = 0\nwebhook = "https://hooks.example.com/r?x=1"\n')
    a = config.alerts
    assert (a.price_war_ticks, a.floor_pinned_seconds, a.stale_competitor_seconds, a.guardrail_share_pct,
            a.guardrail_share_decisions, a.ledger_lag_seconds) == (0, 1.5, 60.0, 75.0, 10, 0.0)
    assert a.webhook == "https://hooks.example.com/r?x=1"
    assert not a.enabled("price_war") and not a.enabled("ledger_lag") and a.enabled("stale_competitor")


@pytest.mark.parametrize(("line", "message"), [
    ("price_war_ticks = -1", "alerts.price_war_ticks: expected a whole number 0..10000 (0: off)"),
    ("price_war_ticks = 2.5", "alerts.price_war_ticks: expected a whole number"),
    ("floor_pinned_seconds = true", "alerts.floor_pinned_seconds: expected seconds 0..2592000 (0: off)"),
    ("floor_pinned_seconds = nan", "alerts.floor_pinned_seconds: expected seconds"),
    ("guardrail_share_pct = 101", "alerts.guardrail_share_pct: expected a percentage 0..100 (0: off)"),
    ("webhook = 'ftp://example.com'", "alerts.webhook: expected an http:// or https:// URL"),
    ("webhook = 5", "alerts.webhook: expected a URL string"),
    ("pric_war_ticks = 3", "alerts.pric_war_ticks: unknown key (expected one of floor_pinned_seconds"),
])
def test_a_bad_threshold_is_refused_naming_the_file_line_and_key(line: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(BOOKS + "[alerts]\n" + line + "\n", "r.toml")
    assert str(caught.value).startswith(f"r.toml:4: {message}")


def test_the_ledger_reads_the_same_table_with_the_same_checks() -> None:
    assert from_document({"alerts": {"price_war_ticks": 5}}, "r.toml").price_war_ticks == 5
    assert from_document({}, "r.toml") == Thresholds()
    with pytest.raises(ValueError, match=r"^r.toml: alerts.price_war_ticks: expected a whole number"):
        from_document({"alerts": {"price_war_ticks": "5"}}, "r.toml")
    with pytest.raises(ValueError, match=r"^r.toml: alerts: expected a table"):
        from_document({"alerts": [1]}, "r.toml")
    bad: dict[str, Any] = {"ledger_lag_seconds": 86_401}
    assert parse(bad) == ("ledger_lag_seconds", "expected seconds 0..86400 (0: off)")
