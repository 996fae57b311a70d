"""``/metrics``: the system's numbers in Prometheus' text format, with the ``prometheus-client`` library.

Three sources, one registry per Dashboard (no global registry: no module-level state):
- the actors' numbers, read at scrape time from the live state (the launcher's ``ActorStatus``
  messages): every counter an actor reports, as the family :mod:`actors.counter_catalog` names for
  it (typed, with a HELP line that says what it counts; the instance in the ``actor`` label, so a
  restarted worker's counter resets as Prometheus expects), plus each actor's up, restarts, hangs
  and memory;
- the business, from the Ledger's database (:mod:`actors.dashboard.business`, refreshed by the
  Dashboard every few seconds): pairs, decisions and guardrail hits per strategy, pairs at their
  floor or ceiling, alerts active by kind;
- the Dashboard's own: HTTP requests by route and status, refused requests by reason, Ledger query
  times, and its counters.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from types import MappingProxyType
from typing import Final

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric, UnknownMetricFamily
from prometheus_client.exposition import choose_encoder
from prometheus_client.registry import Collector

from actors import counter_catalog
from actors.dashboard.business import Business
from actors.dashboard.live import LiveState

_FAMILY: Final = MappingProxyType({"counter": CounterMetricFamily, "gauge": GaugeMetricFamily,
                                  "unknown": UnknownMetricFamily})


class _Families:
    """Families built during one scrape, each created on first use with its labels."""

    def __init__(self) -> None:
        self.by_name: dict[str, CounterMetricFamily | GaugeMetricFamily | UnknownMetricFamily] = {}

    def add(self, series: counter_catalog.Series, actor: str) -> None:
        if series.type == "counter" and series.value < 0:
            return  # a counter cannot go below zero: a value that does is not one
        family = self.by_name.get(series.family)
        if family is None:
            labels = ["actor", *(name for name, _ in series.labels)]
            family = self.by_name[series.family] = _FAMILY[series.type](series.family, series.help, labels=labels)
        family.add_metric([actor, *(value for _, value in series.labels)], series.value)

    def counters(self, actor: str, kind: str, counters: Mapping[str, int]) -> None:
        for name, value in counters.items():
            series = counter_catalog.describe(kind, name, value)
            if series is not None:
                self.add(series, actor)


class ActorCollector(Collector):
    """The actors' numbers, straight from the live state at each scrape, and the Dashboard's own."""

    def __init__(self, state: LiveState, own: Callable[[], Mapping[str, int]], own_name: str,
                 business: Callable[[], Business | None]) -> None:
        self._state = state
        self._own = own
        self._own_name = own_name
        self._business = business

    def collect(self) -> Iterable[Metric]:
        families = _Families()
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
        for view in list(self._state.actors.values()):
            labels = [view.name]
            up.add_metric(labels, 1.0 if view.state == "up" else 0.0)
            restarted, hung, rss_kib, pss_kib, last_beat = view.numbers()
            restarts.add_metric(labels, restarted)
            hangs.add_metric(labels, hung)
            rss.add_metric(labels, rss_kib * 1024)
            pss.add_metric(labels, pss_kib * 1024)
            beat.add_metric(labels, last_beat)
            if view.name != self._own_name:  # this Dashboard's own counters: below, fresher
                families.counters(view.name, counter_catalog.kind_of(view.name), view.counters)
        families.counters(self._own_name, "dashboard", self._own())
        launcher = self._state.launcher
        if launcher is not None:
            families.counters("launcher", "launcher", launcher.counters)
        yield from families.by_name.values()
        yield from (up, restarts, hangs, rss, pss, beat)
        if launcher is not None:
            yield GaugeMetricFamily("repricer_total_rss_bytes", "summed RSS of the launcher and every actor",
                                    value=launcher.rss_kib * 1024)
            yield GaugeMetricFamily("repricer_total_pss_bytes", "summed PSS of the launcher and every actor",
                                    value=launcher.pss_kib * 1024)
        business = self._business()
        if business is not None:
            yield from business_families(business)


def business_families(business: Business) -> Iterable[Metric]:
    """The Ledger's picture of the business, as metrics (see :class:`Business`)."""
    pairs = GaugeMetricFamily("repricer_pairs", "(book, strategy) pairs in the Ledger, by strategy and scope "
                              "(current: in the current catalogue; earlier: only decided by earlier runs)",
                              labels=["strategy", "scope"])
    decisions = CounterMetricFamily("repricer_strategy_decisions", "decisions kept by the Ledger, by strategy",
                                    labels=["strategy"])
    hits = CounterMetricFamily("repricer_strategy_guardrail_hits", "decisions kept by the Ledger that a guardrail "
                               "moved, by strategy", labels=["strategy"])
    bound = GaugeMetricFamily("repricer_pairs_at_bound", "current pairs whose newest price a floor or ceiling set",
                              labels=["strategy", "bound"])
    for s in business.strategies:
        pairs.add_metric([s.strategy, "current"], s.current)
        pairs.add_metric([s.strategy, "earlier"], s.pairs - s.current)
        decisions.add_metric([s.strategy], s.decisions)
        hits.add_metric([s.strategy], s.guardrail_hits)
        bound.add_metric([s.strategy, "floor"], s.at_floor)
        bound.add_metric([s.strategy, "ceiling"], s.at_ceiling)
    yield from (pairs, decisions, hits, bound)


class DashboardMetrics:
    """The registry behind ``/metrics`` and the Dashboard's own instruments."""

    def __init__(self, state: LiveState, own: Callable[[], Mapping[str, int]], own_name: str = "dashboard",
                 business: Callable[[], Business | None] = lambda: None) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(ActorCollector(state, own, own_name, business))
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
