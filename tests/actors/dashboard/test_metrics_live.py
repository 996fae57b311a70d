"""/metrics of a live system (the real launcher: every actor, the Ledger's alerts, the Dashboard): promtool
has nothing to say about it, every counter any actor reports is described, the metrics the shipped
alerting rules use are there, and decisions are counted once."""

from __future__ import annotations

import urllib.request
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from actors.alert_rules import ALERTS
from bench.driver import LauncherRun
from tests.actors.dashboard.promtool import check_metrics
from tests.harness import write_csv
from tests.helpers import free_port

CONFIG = """[strategies.default]
delay = 0
[strategies.undercut]
delay = 0
sold_factor = "0.98"
unsold_factor = "0.98"
[[books]]
ids = ["A", "B", "C"]
strategies = ["default", "undercut"]
[guardrails]
floor = "15.00"
max_step_pct = 5
ending = "0.99"
[pause]
books = ["C"]
[alerts]
price_war_ticks = 3
"""


def scrape(url: str) -> str:
    with urllib.request.urlopen(url, timeout=10) as reply:
        return str(reply.read().decode())


def test_a_live_systems_metrics_pass_promtool_and_every_counter_is_described(tmp_path: Path, ipc_dir: Path) -> None:
    csv_path = write_csv(tmp_path / "prices.csv", rows_per_book=200)
    config = tmp_path / "repricer.toml"
    config.write_text(CONFIG, encoding="utf-8")
    port = free_port()
    with LauncherRun(["--data-file", str(csv_path), "--config", str(config), "--tick", "0.3", "--dashboard",
                      "--dashboard-port", str(port)], ipc_dir, status_every=1) as run:
        run.wait_decisions(12)
        url = f"http://127.0.0.1:{port}/metrics"

        def complete() -> str | None:  # every actor has reported its counters, the Ledger's business too
            text = scrape(url)
            wanted = ('repricer_ledger_lag_seconds{actor="ledger"}', "repricer_decisions_total{",
                      'repricer_datamanager_rows_read_total{actor="datamanager"}',
                      'repricer_strategy_decisions_total{strategy="undercut"}',
                      'repricer_apiserver_registered_total{actor="apiserver"}', "repricer_launcher_starts_total")
            return text if all(w in text for w in wanted) else None

        text = run.wait_until(complete, 40, "every actor's numbers on /metrics")
        assert run.stop() == 0, run.log_tail()
    checked = check_metrics(text)
    assert checked.returncode == 0 and checked.stdout + checked.stderr == "", checked.stdout + checked.stderr
    families = {f.name: f for f in text_string_to_metric_families(text)}
    undescribed = sorted(f"{s.labels['actor']}: {s.labels['counter']}" for name, f in families.items()
                         if f.type == "unknown" for s in f.samples)
    assert undescribed == [], f"counters missing from actors/counter_catalog.py: {undescribed}"
    assert {s.labels["alert"] for s in families["repricer_alerts_active"].samples} == set(ALERTS)
    assert "repricer_actor_up" in families
    workers = {s.labels["actor"] for s in families["repricer_decisions"].samples}
    assert workers == {"algorithm"}  # decisions counted once: the Ledger's count is its own family
    assert "repricer_ledger_received_decisions" in families
    assert {s.labels["strategy"] for s in families["repricer_strategy_decisions"].samples} == {"default", "undercut"}
