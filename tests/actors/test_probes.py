"""The probes' pure logic: parsing a probe request, the answers, the Prometheus text, the process's
start time; and the options that turn the listener on."""

from __future__ import annotations

import json

import pytest
from prometheus_client.parser import text_string_to_metric_families

from actors import probes, prometheus_text
from actors.health import start_time
from actors.probes import Probe, Refusal, Request
from actors.prometheus_text import ProcessStats
from actors.runtime import RuntimeOptions
from tests.actors.dashboard.promtool import check_metrics


@pytest.mark.parametrize(("head", "probe", "head_only"), [
    (b"GET /livez HTTP/1.1\r\nHost: x\r\n\r\n", Probe.LIVE, False),
    (b"GET /readyz?verbose=1 HTTP/1.0\r\n\r\n", Probe.READY, False),
    (b"HEAD /metrics HTTP/1.1\r\n\r\n", Probe.METRICS, True),
])
def test_a_probe_request_is_parsed(head: bytes, probe: Probe, head_only: bool) -> None:
    assert probes.parse_head(head) == Request(probe, head_only)


@pytest.mark.parametrize(("head", "status", "reason"), [
    (b"GET /livez\r\n\r\n", 400, "malformed request line 'GET /livez'"),
    (b"\x16\x03\x01\x02\x00\x01\r\n\r\n", 400, r"malformed request line '\x16\x03\x01\x02\x00\x01'"),
    (b"GET /livez SPDY/3\r\n\r\n", 400, "malformed request line"),
    (b"GET /admin HTTP/1.1\r\n\r\n", 404, "no such path '/admin'"),
    (b"GET /livez/ HTTP/1.1\r\n\r\n", 404, "no such path '/livez/'"),
    (b"POST /livez HTTP/1.1\r\n\r\n", 405, "method POST not allowed"),
])
def test_anything_else_is_refused_with_a_reason(head: bytes, status: int, reason: str) -> None:
    refusal = probes.parse_head(head)
    assert isinstance(refusal, Refusal)
    assert refusal.response.status == status
    assert reason in refusal.reason
    assert "\n" not in refusal.reason and "\x16" not in refusal.reason  # escaped: one log line
    assert json.loads(refusal.response.body) == {"error": refusal.reason}


def test_readiness_is_503_with_the_reason_and_while_stopping() -> None:
    ok = probes.ready("ledger", probes.READY, stopping=False)
    assert ok.status == 200 and json.loads(ok.body) == {"actor": "ledger", "ready": True}
    waiting = probes.ready("ledger", probes.not_ready("database var/x not open"), stopping=False)
    assert waiting.status == 503
    assert json.loads(waiting.body) == {"actor": "ledger", "ready": False, "reason": "database var/x not open"}
    stopping = probes.ready("ledger", probes.READY, stopping=True)
    assert stopping.status == 503 and json.loads(stopping.body)["reason"] == "stopping"


def test_a_response_is_complete_http_and_head_has_no_body() -> None:
    response = probes.live("scheduler")
    full = response.encode()
    head, _, body = full.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 OK\r\n")
    assert f"Content-Length: {len(body)}".encode() in head and b"Connection: close" in head
    assert json.loads(body) == {"actor": "scheduler", "live": True}
    assert response.encode(head_only=True) == head + b"\r\n\r\n"


def test_the_metrics_text_parses_as_prometheus_and_says_everything() -> None:
    counters = {"decisions": 12, "skipped": 1, "in_flight": 3, 'odd"name\\\n': 5, "backpressure_ticks_ledger": 2,
                "spool_bytes": 4096}
    text = prometheus_text.exposition('algorithm-"1"', counters, ready=True,
                                      process=ProcessStats(40 << 20, 1.25, 1_796_000_000.5))
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
               for family in text_string_to_metric_families(text) for s in family.samples}
    who = ("actor", 'algorithm-"1"')
    assert samples[("repricer_decisions_total", (who,))] == 12
    assert samples[("repricer_skipped_total", (who,))] == 1
    assert samples[("repricer_algorithm_in_flight", (who,))] == 3  # a gauge of its own, as on the Dashboard's page
    assert samples[("repricer_backpressure_ticks_ledger_total", (who,))] == 2  # overload from backpressure (issue 19)
    assert samples[("repricer_algorithm_spool_bytes", (who,))] == 4096  # the spool's size
    assert samples[("repricer_algorithm_undescribed", (who, ("counter", 'odd"name\\\n')))] == 5  # escaped, read back
    types = {family.name: family.type for family in text_string_to_metric_families(text)}
    assert (types["repricer_decisions"], types["repricer_algorithm_in_flight"]) == ("counter", "gauge")
    assert samples[("repricer_actor_ready", (who,))] == 1
    assert samples[("process_resident_memory_bytes", ())] == 40 << 20
    assert samples[("process_start_time_seconds", ())] == 1_796_000_000.5
    assert ("repricer_dm_timeouts_total", (who,)) not in samples  # only what the actor reports


def test_not_ready_shows_as_zero() -> None:
    text = prometheus_text.exposition("ledger", {}, ready=False)
    assert 'repricer_actor_ready{actor="ledger"} 0' in text.splitlines()
    assert "process_" not in text


def test_the_start_time_counts_from_the_last_parenthesis() -> None:
    # The command name may hold spaces and parentheses; field 22 is the start in clock ticks since boot.
    stat = "4242 (a) b (c) S 1 4242 4242 0 -1 4194560 900 0 0 0 12 3 0 0 20 0 1 0 12345 30000000 7000"
    assert start_time(stat, boot_time=1_000_000.0, ticks_per_second=100) == 1_000_123.45


def test_a_non_loopback_probe_listener_needs_insecure() -> None:
    with pytest.raises(ValueError, match=r"--health-host 0\.0\.0\.0: not a loopback address"):
        RuntimeOptions(health_port=9100, health_host="0.0.0.0")
    assert RuntimeOptions(health_port=9100, health_host="0.0.0.0", insecure=True).health_host == "0.0.0.0"
    assert RuntimeOptions(health_host="0.0.0.0").health_port is None  # no listener, nothing bound
    with pytest.raises(ValueError, match=r"--health-port must be within 1\.\.65535"):
        RuntimeOptions(health_port=0)
    with pytest.raises(ValueError, match="--authorized-keys needs --keys"):
        RuntimeOptions(authorized_keys="/keys/authorized")


def test_promtool_finds_nothing_to_say_about_an_actors_own_metrics() -> None:
    counters = {"stored": 10, "queued": 2, "lag_ms": 120, "alerts_active_price_war": 1, "guardrail_floor": 3,
                "db_errors_full": 0, "probe_requests": 4, "curve_refusals": 0, "brand_new": 1}
    checked = check_metrics(prometheus_text.exposition("ledger", counters, ready=True,
                                                       process=ProcessStats(40 << 20, 1.25, 1_796_000_000.5)))
    assert checked.returncode == 0 and checked.stdout + checked.stderr == "", checked.stdout + checked.stderr
