"""/metrics by Prometheus' conventions (pure: the registry over a live state): one family per counter
with the right type and a HELP line saying what it counts, decisions counted once, per-strategy and
per-guardrail counters, the Ledger's lag, alert-state gauges; read back with the reference parser and
checked by promtool."""

from __future__ import annotations

import time
from collections.abc import Mapping

from prometheus_client.parser import text_string_to_metric_families

from actors import counter_catalog
from actors.dashboard.business import Business, StrategyStats
from actors.dashboard.live import LiveState
from actors.dashboard.metrics import DashboardMetrics
from tests.actors.dashboard.promtool import check_metrics
from transport.protocol import ActorStatus

NOW = time.time()
LEDGER = {"decisions": 120, "stored": 120, "prices_up": 40, "prices_down": 35, "prices_same": 5, "competitor_up": 30,
          "competitor_down": 50, "competitor_same": 0, "guardrail_floor": 12, "guardrail_step": 20, "lag_ms": 250,
          "alerts_active_price_war": 2, "alerts_active_floor_pinned": 1, "alerts_active_ledger_lag": 0,
          "db_errors": 0, "db_errors_full": 0, "queued": 3}
WORKER = {"decisions": 60, "skipped": 3, "http_requests": 130, "http_errors": 2, "gc_pause_max_us": 1500,
          "gc_pause_max_generation": -1, "last_tick": -1, "skipped_api": 3, "ledger_outbox": 7}


def scrape(extra: Mapping[str, Mapping[str, int]] | None = None, business: Business | None = None) -> str:
    state = LiveState(600, 5, time.time)
    statuses = {"algorithm-0": WORKER, "algorithm-1": WORKER, "ledger": LEDGER,
                "dashboard": {"http_requests": 99, "events": 4},  # this Dashboard, as the launcher relays it
                "datamanager": {"requests": 130, "errors": 2, "bad_rows_zero_price": 4, "books": 5},
                **(extra or {})}
    for pid, (actor, counters) in enumerate(statuses.items(), start=10):
        state.on_status(ActorStatus(NOW, actor, pid, 40_000, 30_000, 1, 0, NOW - 5, NOW, dict(counters)))
    state.on_status(ActorStatus(NOW, "launcher", 9, 90_000, 60_000, 0, 0, 0.0, NOW, {"starts": 6, "hangs": 1}))
    own = {"http_requests": 5, "refused": 1, "events": 7, "live_clients": 1}
    metrics = DashboardMetrics(state, lambda: own, "dashboard", lambda: business)
    body, _ = metrics.render(None)
    return body.decode()


def families(text: str) -> dict[str, tuple[str, str, list[tuple[dict[str, str], float]]]]:
    """name -> (type, help, [(labels, value)]) as the reference parser reads the exposition."""
    found: dict[str, tuple[str, str, list[tuple[dict[str, str], float]]]] = {}
    for family in text_string_to_metric_families(text):
        assert family.name not in found, f"two families named {family.name}"
        found[family.name] = (family.type, family.documentation,
                              [(dict(s.labels), s.value) for s in family.samples if not s.name.endswith("_created")])
    return found


def value(found: dict[str, tuple[str, str, list[tuple[dict[str, str], float]]]], name: str,
          **labels: str) -> float:
    return next(v for got, v in found[name][2] if all(got.get(k) == want for k, want in labels.items()))


def test_every_counter_is_its_own_family_typed_with_a_true_help_line() -> None:
    found = families(scrape())
    kind, help_text, _ = found["repricer_decisions"]
    assert kind == "counter" and help_text.startswith("decisions printed")
    assert found["repricer_algorithm_ledger_outbox"][0] == "gauge"  # goes up and down
    assert found["repricer_algorithm_gc_pause_max_seconds"][0] == "gauge"
    assert value(found, "repricer_algorithm_gc_pause_max_seconds", actor="algorithm-0") == 0.0015  # in seconds
    assert value(found, "repricer_datamanager_books", actor="datamanager") == 5
    assert value(found, "repricer_datamanager_bad_rows_by_reason", actor="datamanager", reason="zero_price") == 4
    assert value(found, "repricer_skipped_by_reason", actor="algorithm-1", reason="api") == 3
    assert value(found, "repricer_launcher_starts", actor="launcher") == 6
    assert "repricer_actor_counter" not in found and "repricer_launcher_counter" not in found
    for name, (kind, help_text, _) in found.items():
        assert help_text and "not described" not in help_text, name
        assert kind in ("counter", "gauge", "histogram"), name
    assert "repricer_algorithm_last_tick" in found  # a gauge may be -1 ("none yet")
    assert all(v >= 0 for _, v in found["repricer_decisions"][2])


def test_decisions_are_counted_once_and_the_dashboard_s_requests_are_not_the_api_s() -> None:
    found = families(scrape())
    assert {labels["actor"] for labels, _ in found["repricer_decisions"][2]} == {"algorithm-0", "algorithm-1"}
    assert sum(v for _, v in found["repricer_decisions"][2]) == 120  # what the workers decided, once
    assert value(found, "repricer_ledger_received_decisions", actor="ledger") == 120  # its own family
    assert {labels["actor"] for labels, _ in found["repricer_api_requests"][2]} == {"algorithm-0", "algorithm-1"}
    assert "APIServer" in found["repricer_api_requests"][1]
    # The Dashboard's requests: its labelled counter only, from its own process (not the relayed 99).
    assert "dashboard" not in {labels["actor"] for labels, _ in found["repricer_api_requests"][2]}
    assert value(found, "repricer_dashboard_events", actor="dashboard") == 7


def test_the_business_per_guardrail_per_strategy_lag_and_alert_gauges() -> None:
    business = Business(NOW, NOW - 60, 4, (StrategyStats("default", 5, 4, 900, 120, 2, 0),
                                           StrategyStats("cautious", 3, 3, 400, 10, 0, 1)))
    found = families(scrape(business=business))
    assert value(found, "repricer_guardrail_hits", actor="ledger", guardrail="floor") == 12
    assert value(found, "repricer_price_moves", actor="ledger", direction="down") == 35
    assert value(found, "repricer_competitor_moves", actor="ledger", direction="up") == 30
    assert value(found, "repricer_ledger_lag_seconds", actor="ledger") == 0.25
    assert found["repricer_alerts_active"][0] == "gauge"
    assert value(found, "repricer_alerts_active", actor="ledger", alert="price_war") == 2
    assert value(found, "repricer_strategy_decisions", strategy="default") == 900
    assert value(found, "repricer_strategy_guardrail_hits", strategy="cautious") == 10
    assert value(found, "repricer_pairs", strategy="default", scope="earlier") == 1
    assert value(found, "repricer_pairs_at_bound", strategy="cautious", bound="ceiling") == 1


def test_a_counter_nobody_described_is_exported_untyped_and_says_so() -> None:
    found = families(scrape({"ledger": {**LEDGER, "brand_new_thing": 3, 'odd"name\n': 4}}))
    kind, help_text, samples = found["repricer_ledger_undescribed"]
    assert kind == "unknown" and "not described yet" in help_text
    assert sorted((labels["counter"], v) for labels, v in samples) == [("brand_new_thing", 3), ('odd"name\n', 4)]
    assert counter_catalog.undescribed("ledger", ["brand_new_thing", "stored"]) == ["brand_new_thing"]


def test_promtool_finds_nothing_to_say_about_the_exposition() -> None:
    business = Business(NOW, NOW - 60, 1, (StrategyStats("default", 1, 1, 10, 1, 0, 0),))
    checked = check_metrics(scrape(business=business))
    assert checked.returncode == 0 and checked.stdout + checked.stderr == "", checked.stdout + checked.stderr
