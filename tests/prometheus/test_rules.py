"""The shipped Prometheus alerting rules (docs/prometheus/repricer-alerts.yml): valid for promtool, their
unit tests pass (each alert fires when its gauge says so and clears when it ends), and every alert the
Ledger raises has a rule."""

from __future__ import annotations

import subprocess
from pathlib import Path

from actors.alert_rules import ALERTS
from tests.actors.dashboard.promtool import promtool
from tests.helpers import REPO

RULES = REPO / "docs" / "prometheus" / "repricer-alerts.yml"
TESTS = Path(__file__).with_name("repricer-alerts.test.yml")


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([promtool(), *args], capture_output=True, text=True, timeout=120, check=False, cwd=REPO)


def test_promtool_checks_the_rules_and_their_unit_tests_pass() -> None:
    checked = run("check", "rules", str(RULES))
    assert checked.returncode == 0 and "SUCCESS: 8 rules found" in checked.stdout, checked.stdout + checked.stderr
    tested = run("test", "rules", str(TESTS))
    assert tested.returncode == 0 and "SUCCESS" in tested.stdout, tested.stdout + tested.stderr


def test_every_alert_the_ledger_raises_has_a_rule() -> None:
    text = RULES.read_text(encoding="utf-8")
    assert [name for name in ALERTS if f'alert="{name}"' not in text] == []
