"""``/metrics``: the system's numbers in Prometheus' text format, with the ``prometheus-client`` library.

Two sources, one registry per Dashboard (no global registry: no module-level state):
- the actors' numbers, read at scrape time from the live state (the launcher's ``ActorStatus``
  messages): decisions, skips, overruns, APIServer and DataManager requests and errors, restarts,
  hangs, memory -- one series per actor, so a restarted worker's counter resets as Prometheus expects;
- the Dashboard's own: HTTP requests by route and status, refused requests by reason, live clients,
  events received, Ledger queries.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import choose_encoder
from prometheus_client.registry import Collector

from actors.dashboard.live import LiveState
from actors.prometheus_text import ACTOR_COUNTERS


class ActorCollector(Collector):
    """The actors' numbers, straight from the live state at each scrape."""

    def __init__(self, state: LiveState, own: Callable[[], Mapping[str, int]]) -> None:
        self._state = state
        self._own = own

    def collect(self) -> Iterable[Metric]:
        actors = list(self._state.actors.values())
        families = {key: CounterMetricFamily(name, doc, labels=["actor"])
                    for key, (name, doc) in ACTOR_COUNTERS.items()}
        every = GaugeMetricFamily("repricer_actor_counter", "every counter an actor reports, as last reported",
                                  labels=["actor", "counter"])
        up = GaugeMetricFamily("repricer_actor_up", "1 when the actor is up (beating since its start)",
                               labels=["actor"])
        restarts = CounterMetricFamily("repricer_actor_restarts", "restarts of the actor by the launcher",
                                       labels=["actor"])
        hangs = CounterMetricFamily("repricer_actor_hangs", "times the actor was killed as hung", labels=["actor"])
        rss = GaugeMetricFamily("repricer_actor_rss_bytes", "resident memory of the actor's process",
                                labels=["actor"])
        pss = GaugeMetricFamily("repricer_actor_pss_bytes", "proportional memory of the actor's process",
                                labels=["actor"])
        beat = GaugeMetricFamily("repricer_actor_last_beat_timestamp_seconds", "the actor's newest heartbeat",
                                 labels=["actor"])
        for view in actors:
            labels = [view.name]
            up.add_metric(labels, 1.0 if view.state == "up" else 0.0)
            restarts.add_metric(labels, view.restarts)
            hangs.add_metric(labels, view.hangs)
            rss.add_metric(labels, view.rss_kib * 1024)
            pss.add_metric(labels, view.pss_kib * 1024)
            beat.add_metric(labels, view.last_beat)
            for counter, value in view.counters.items():
                every.add_metric([view.name, counter], value)
                if counter in families and value >= 0:
                    families[counter].add_metric(labels, value)
        yield from families.values()
        yield from (every, up, restarts, hangs, rss, pss, beat)
        launcher = self._state.launcher
        if launcher is not None:
            yield GaugeMetricFamily("repricer_total_rss_bytes", "summed RSS of the launcher and every actor",
                                    value=launcher.rss_kib * 1024)
            yield GaugeMetricFamily("repricer_total_pss_bytes", "summed PSS of the launcher and every actor",
                                    value=launcher.pss_kib * 1024)
            mine = GaugeMetricFamily("repricer_launcher_counter", "the launcher's own counters (starts, exits, "
                                     "hangs, bad_heartbeats, ...), as last reported", labels=["counter"])
            for name, value in launcher.counters.items():
                mine.add_metric([name], value)
            yield mine
        own = GaugeMetricFamily("repricer_dashboard_counter", "the Dashboard's own counters (as in its heartbeat)",
                                labels=["counter"])
        for name, value in self._own().items():
            own.add_metric([name], value)
        yield own


class DashboardMetrics:
    """The registry behind ``/metrics`` and the Dashboard's own instruments."""

    def __init__(self, state: LiveState, own: Callable[[], Mapping[str, int]]) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(ActorCollector(state, own))
        self.http = Counter("repricer_dashboard_http_requests", "HTTP requests answered by the Dashboard",
                            ["route", "status"], registry=self.registry)
        self.refused = Counter("repricer_dashboard_refused_requests", "requests refused (4xx), by reason",
                               ["reason"], registry=self.registry)
        self.query_seconds = Histogram("repricer_dashboard_db_query_seconds", "Ledger queries, wall time",
                                       buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 2.5),
                                       registry=self.registry)

    def render(self, accept: str | None) -> tuple[bytes, str]:
        """The exposition in the format the scraper asked for (text by default); body and content type."""
        encoder, content_type = choose_encoder(accept or "")
        return encoder(self.registry), content_type
