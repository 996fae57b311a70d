"""Every counter an actor reports, described once (pure): what it means in words, whether it only
grows (a Prometheus counter) or goes up and down (a gauge), and the metric family it is exported as.

The actors report their numbers as ``name -> int`` maps (heartbeats, then the launcher's
``ActorStatus`` messages). This table is what turns them into something a person or a scraper can
read: the Dashboard's ``/metrics`` (one family per counter, typed, with this text as its HELP; the
actor instance in the ``actor`` label), the overview's "details" (the same words) and the one-line
stop summaries (:func:`summary`). A counter missing here is still exported, in the untyped family
``repricer_<kind>_undescribed{counter=NAME}`` (``tests/test_publisher_view.py`` fails
on one).

Names: ``repricer_<kind>_<counter>`` (``_total`` added to counters), except the few named before
this table existed, kept for the scrapers that use them: ``repricer_decisions_total`` and its
siblings (the Algorithm workers' only: the Ledger's count of the decisions it received is
``repricer_ledger_received_decisions_total``, so a ``sum()`` counts each decision once).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final, Literal

Kind = Literal["counter", "gauge"]
PREFIX: Final = "repricer"
_INSTANCE: Final = re.compile(r"(.+)-[0-9]+")
_METRIC_CHARS: Final = re.compile(r"[^a-zA-Z0-9_]")


@dataclass(frozen=True, slots=True)
class Described:
    """One counter: ``type`` as Prometheus means it, ``words`` its meaning (the HELP line), ``metric``
    the family name when not the default, ``scale`` what its value is multiplied by to reach the
    family's unit (microseconds to seconds), ``hidden`` for a counter another instrument exports."""

    type: Kind
    words: str
    metric: str = ""
    scale: float = 1.0
    hidden: bool = False


@dataclass(frozen=True, slots=True)
class ByLabel:
    """Counters named ``<prefix><value>`` (``bad_rows_zero_price``): one family, the rest of the name
    in ``label``."""

    prefix: str
    label: str
    type: Kind
    words: str
    metric: str


@dataclass(frozen=True, slots=True)
class Series:
    """Where one reported counter goes: its family, type, HELP, extra labels and scaled value."""

    family: str
    type: Kind | Literal["unknown"]
    help: str
    labels: tuple[tuple[str, str], ...]
    value: float


def _c(words: str, metric: str = "", *, scale: float = 1.0, hidden: bool = False) -> Described:
    return Described("counter", words, metric, scale, hidden)


def _g(words: str, metric: str = "", *, scale: float = 1.0) -> Described:
    return Described("gauge", words, metric, scale)


_EDGE: Final = MappingProxyType({  # actors.http_edge: the APIServer's and the Dashboard's HTTP edge
    "bad_http": _c("malformed HTTP requests answered 400 by the HTTP edge"),
    "disconnects": _c("HTTP clients that left before their answer was sent"),
    "internal_errors": _c("HTTP requests that failed inside the server (answered 500)"),
    "slow_readers": _c("HTTP connections dropped because the client read its answer too slowly"),
    "connections_refused": _c("HTTP connections refused because too many were open"),
})

# Counters any actor may report: the runtime's and its probe listener's (``--health-port``).
COMMON: Final[Mapping[str, Described]] = MappingProxyType({
    "curve_refusals": _c("peers refused by CurveZMQ authentication", "repricer_curve_refusals"),
    "probe_requests": _c("probe requests answered (/livez, /readyz, /metrics)", "repricer_probe_requests"),
    "probe_bad_requests": _c("probe requests refused as malformed", "repricer_probe_bad_requests"),
    "probe_timeouts": _c("probe connections dropped: no complete request in time", "repricer_probe_timeouts"),
    "probe_connections_refused": _c("probe connections refused: too many open", "repricer_probe_connections_refused"),
})

CATALOG: Final[Mapping[str, Mapping[str, Described]]] = MappingProxyType({
    "scheduler": MappingProxyType({
        "ticks_sent": _c("ticks published"),
        "ticks_skipped": _c("ticks not published because their time had passed (the Scheduler fell behind)"),
        "ticks_repeated": _c("ticks published again (the current tick repeated, so a worker that missed it "
                             "still decides it)"),
        "last_seq": _g("the number of the newest tick published"),
    }),
    "datamanager": MappingProxyType({
        "requests": _c("requests for price windows served", "repricer_served_requests"),
        "batch_requests": _c("requests for many books' windows at once served"),
        "replies": _c("replies sent"),
        "errors": _c("error replies sent (no window for the book)", "repricer_served_errors"),
        "bad_frames": _c("malformed frames received and rejected", "repricer_bad_frames"),
        "refused_frames": _c("requests refused whole (their id readable, the rest not)"),
        "busy": _c("requests answered 'busy': their client already had its share of waiting requests"),
        "expired": _c("waiting requests given up after their deadline"),
        "deduped": _c("requests that repeated one still waiting (a client's retry), answered once"),
        "rows_read": _c("price rows read from the CSV file"),
        "lines_read": _c("lines read from the CSV file"),
        "lines_caught_up": _c("lines skipped by a catch-up joining the newest reader"),
        "bad_rows": _c("CSV rows skipped as malformed (one log line each, rate-limited)"),
        "file_errors": _c("errors reading the CSV file"),
        "truncations": _c("times the CSV file was truncated and read again from the start"),
        "rotations": _c("times the CSV file was replaced (rotated) and the new one read"),
        "books_over_limit": _c("CSV rows of books past the limit of distinct books, ignored"),
        "waiting": _g("requests waiting for rows not read yet"),
        "books": _g("distinct books seen in the CSV file"),
        "parks": _c("books whose window was parked at an offset to wait for a reader"),
        "seeks": _c("windows moved to another place in the file"),
        "moves_refused": _c("window moves refused because a client asked too many"),
        "overload_refused": _c("window moves away from a client stepping through a book's ticks refused while "
                               "overloaded"),
        "shed": _c("requests of clients stepping through no book's ticks shed while overloaded"),
        "shed_behind": _c("of those, shed because a backlog waited: the clients stepping through the ticks were "
                          "served alone"),
        "steppers": _g("clients stepping through books' ticks now (the Algorithm's workers): served first"),
        "memory_trims": _c("times the memory freed after a flood was given back to the system"),
        "not_regular": _c("times the data file's path named no regular file (a FIFO, a device): the open file "
                          "kept"),
        "cursors": _g("readers of the CSV file (the newest one and catch-ups)"),
        "merges": _c("catch-up readers that reached another and merged into it"),
        "catch_ups": _c("catch-up readers started for windows behind the newest reader"),
        "index_points": _g("points in the sparse index of the CSV file"),
        "index_stride": _g("lines between two points of the sparse index"),
    }),
    "apiserver": MappingProxyType({
        "registered": _c("requests registered (POST /register-request, and items of batches)"),
        "lookups": _c("request ids looked up (GET /request-data, and items of batches)"),
        "sold": _c("lookups answered sold (an even id)"),
        "not_sold": _c("lookups answered not sold (an odd id)"),
        "bad_requests": _c("requests refused 400 for a bad body or id"),
        "unknown_ids": _c("lookups of an id never registered (404)"),
        "unknown_paths": _c("requests to a path the API does not have (404)"),
        "bad_methods": _c("requests with a method the path does not take (405)"),
        "too_large": _c("requests refused 413 for a body over the limit"),
        "injected_errors": _c("errors injected on purpose (--fail-rate)"),
        "persist_errors": _c("failures to save the id high-water mark"),
        "other_errors": _c("requests that failed for another reason"),
        "batch_registers": _c("batch registrations (POST /register-requests)"),
        "batch_lookups": _c("batch lookups (POST /request-data)"),
        "bad_items": _c("items of batches refused one by one"),
        "rate_limited": _c("requests answered 429 by the rate limit"),
        "body_timeouts": _c("requests dropped because their body did not arrive in time"),
        **_EDGE,
    }),
    "algorithm": MappingProxyType({
        "decisions": _c("decisions printed (Algorithm workers)", "repricer_decisions"),
        "skipped": _c("decisions skipped after a failed step (Algorithm workers)", "repricer_skipped"),
        "overruns": _c("pairs still deciding an earlier tick when a new one came (each decides the oldest "
                       "tick it still owes next)", "repricer_overruns"),
        "http_requests": _c("HTTP requests to the APIServer (Algorithm workers)", "repricer_api_requests"),
        "http_errors": _c("failed HTTP requests to the APIServer (Algorithm workers)", "repricer_api_errors"),
        "http_429": _c("APIServer answers 429 (rate limited)"),
        "dm_requests": _c("requests to the DataManager (Algorithm workers)", "repricer_dm_requests"),
        "dm_timeouts": _c("DataManager requests that timed out (Algorithm workers)", "repricer_dm_timeouts"),
        "dm_reopens": _c("DataManager sockets reopened after a silence (Lazy Pirate)"),
        "dm_bad_frames": _c("malformed frames from the DataManager"),
        "dm_stale_replies": _c("DataManager replies that came after their request had timed out"),
        "unstarted": _c("pairs a tick could not start before it was over (overload: they decide a newer one)",
                        "repricer_unstarted"),
        "carried": _c("pairs of a tick not yet started when the next tick came: started for it first, late "
                      "(a hiccup of up to 3 ticks costs no decision)", "repricer_carried"),
        "backpressure_ticks_ledger": _c("ticks during which new pairs waited because the Ledger was behind",
                                        "repricer_backpressure_ticks_ledger"),
        "backpressure_ticks_spool": _c("ticks during which new pairs waited because the spool was full or its disk "
                                       "failing", "repricer_backpressure_ticks_spool"),
        "ledger_behind": _g("1 while the Ledger is behind (more than --ledger-backlog decisions unacknowledged)"),
        "spool_bytes": _g("bytes in the worker's spool (decisions kept before they are printed)"),
        "spool_decisions": _g("decisions in the spool's segments"),
        "spool_backlog": _g("decisions kept in the spool, not yet acknowledged by the Ledger"),
        "spool_segments": _g("segment files of the spool"),
        "spool_waiting": _g("decisions made, waiting for the spool's next commit"),
        "spool_commits": _c("spool commits (each one fsync)"),
        "spool_committed": _c("decisions committed to the spool"),
        "spool_full": _g("1 while the spool is full (repricing paused)"),
        "spool_full_pauses": _c("times the spool filled and repricing paused", "repricer_spool_full_pauses"),
        "spool_errors": _c("failed writes to the spool (tried again in a new segment)"),
        "spool_damaged_bytes": _c("bytes of torn or damaged spool records cut off at start (never printed)"),
        "spool_unreadable": _c("spool segments that could not be read at start"),
        "spool_recovered": _g("decisions found in the spool at start"),
        "spool_redelivered": _g("decisions found in the spool at start not yet acknowledged (sent again)"),
        "spool_reclaimed": _c("spool segments removed once the Ledger acknowledged all they held"),
        "spool_paused_ms": _c("time repricing was paused by a full or failing spool",
                              "repricer_algorithm_spool_paused_seconds", scale=1e-3),
        "missed": _c("pair-ticks with no decision attempt (ticks never seen, or not started in time)"),
        "retried_in_tick": _c("pair-ticks tried again when their tick came again (a step had failed)"),
        "decided_before": _c("pair-ticks passed over: the Ledger already had their decision (from before a "
                             "restart)"),
        "reload_without_config": _c("SIGHUPs with nothing to reload (no --config)"),
        "ticks": _c("ticks received"),
        "stale_ticks": _c("ticks received again (already followed), ignored"),
        "early_ticks": _c("ticks refused as early on the schedule of the run followed (forged or a clock step)"),
        "resyncs": _c("times the Algorithm took a refused tick stream for the real one (heard while ours was "
                      "silent)"),
        "returns": _c("times the Algorithm went back to the run it had left for one that showed no tick on "
                      "its own schedule (a forged run taken during a gap)"),
        "superseded_ticks": _c("ticks skipped because a newer one was already waiting"),
        "bad_frames": _c("malformed frames received and rejected", "repricer_bad_frames"),
        "implausible_ticks": _c("ticks refused as implausible (their number does not match the clock)"),
        "foreign_run_ticks": _c("ticks from another Scheduler run than the one followed, ignored"),
        "new_runs": _c("new Scheduler runs followed (a restarted Scheduler)"),
        "tick_stalls": _c("times no tick came for several intervals"),
        "last_tick": _g("the number of the newest tick received (-1: none yet)"),
        "output_dropped": _c("decision lines dropped because stdout was not read (the output buffer was full)"),
        "output_errors": _c("decision lines lost to a stdout write error"),
        "output_writes": _c("writes to stdout"),
        "gc_collections": _c("Python garbage collections"),
        "gc_collections_full": _c("full (oldest generation) Python garbage collections"),
        "gc_pause_max_us": _g("the longest garbage-collection pause, wall clock",
                              "repricer_algorithm_gc_pause_max_seconds", scale=1e-6),
        "gc_pause_total_us": _c("garbage-collection pauses, wall clock, all together",
                                "repricer_algorithm_gc_pause_seconds", scale=1e-6),
        "gc_pause_max_generation": _g("the generation of the longest garbage-collection pause (-1: none yet)"),
        "gc_cpu_max_us": _g("the most CPU one garbage collection used", "repricer_algorithm_gc_cpu_max_seconds",
                            scale=1e-6),
        "refused": _c("prices refused before they were sent (outside the API's limits)"),
        "rate_limited": _c("APIServer calls answered 429 and paused"),
        "ledger_submitted": _c("decisions handed to the Ledger client"),
        "ledger_acked": _c("decisions the Ledger acknowledged"),
        "ledger_stored": _c("decisions the Ledger stored (new)"),
        "ledger_duplicates": _c("decisions the Ledger already had (a resend)"),
        "ledger_rejected": _c("decisions the Ledger refused as invalid"),
        "ledger_dropped": _c("printed decisions not kept: --no-spool with its outbox full (Algorithm workers)",
                             "repricer_ledger_dropped"),
        "ledger_outbox": _g("decisions in the spool, waiting for the Ledger"),
        "ledger_batches_sent": _c("batches of decisions sent to the Ledger"),
        "ledger_resends": _c("batches sent again (no acknowledgement in time)"),
        "ledger_refusals": _c("batches the Ledger could not commit (it said why; sent again later)"),
        "ledger_unconnected": _c("sends put off because the Ledger socket had no connection"),
        "ledger_reopens": _c("Ledger sockets reopened after a silence (Lazy Pirate)"),
        "ledger_bad_frames": _c("malformed frames from the Ledger"),
        "ledger_stale_acks": _c("acknowledgements of batches already acknowledged"),
        "ledger_resumed": _c("pairs resumed from the last price the Ledger kept"),
        "ledger_resume_fallbacks": _c("pairs that started from the average because the Ledger did not answer"),
        "config_reloads": _c("config reloads taken (SIGHUP)"),
        "config_reload_errors": _c("config reloads refused (the running config stays)"),
        "in_flight": _g("decisions in progress"),
        "paused": _c("pair-ticks not decided because the pair was paused"),
        "pairs_active": _g("pairs this worker prices now (owned, not paused)"),
        "catalog_rows": _g("guardrail catalog rows in use (the config running now)"),
        "catalog_bad_rows": _g("guardrail catalog rows skipped as malformed (the config running now)"),
        "catalog_unknown_books": _g("guardrail catalog rows of books the config does not price"),
    }),
    "ledger": MappingProxyType({
        "frames": _c("frames received"),
        "bad_frames": _c("malformed frames received and rejected", "repricer_bad_frames"),
        "batches": _c("batches of decisions received"),
        "decisions": _c("decisions received (each counted once more by the Algorithm worker that made it)",
                        "repricer_ledger_received_decisions"),
        "rejected": _c("decisions refused as invalid"),
        "queries": _c("last-price queries received"),
        "replies_dropped": _c("replies that could not be sent (the worker was gone)"),
        "writes_refused": _c("batches of decisions refused: the sender's key is not a writer's (with --keys: the "
                             "Dashboard's key may only read)"),
        "transactions": _c("database write transactions"),
        "stored": _c("decisions stored"),
        "duplicates": _c("decisions received again and kept once"),
        "key_collisions": _c("decisions whose key held another decision (the first stays in the decisions)"),
        "collisions_kept": _c("colliding decisions kept in the collisions table (the key is disputed)"),
        "collisions_unkept": _c("colliding decisions not kept: the collisions table was full"),
        "pairs_updates": _c("updates of the pairs table from the decisions committed since the last one"),
        "pairs_pending": _g("pairs whose row in the pairs table waits for the next update"),
        "pairs_interval_ms": _g("time between updates of the pairs table (longer when an update takes long)",
                                "repricer_ledger_pairs_interval_seconds", scale=1e-3),
        "quick_checks": _c("integrity checks (quick_check) of the whole database file"),
        "db_lost": _c("times the database file was found deleted, replaced, truncated or damaged while open"),
        "acks": _c("batches acknowledged"),
        "nacks": _c("batches refused for a database error (the worker sends them again)"),
        "busy": _c("batches or queries refused because the database queue was full"),
        "queries_answered": _c("last-price queries answered"),
        "pruned": _c("decisions deleted by the retention limits"),
        "db_open": _g("1 when the database is open"),
        "rows": _g("decisions kept in the database"),
        "db_errors": _c("database errors"),
        "queued": _g("decisions waiting for the database thread"),
        "lag_ms": _g("how late the newest decision of the last batch reached the Ledger",
                     "repricer_ledger_lag_seconds", scale=1e-3),
        "pairs_watched": _g("pairs the Ledger's alert detectors follow"),
        "watch_evicted": _c("pairs the alert detectors forgot to stay within their bound (the oldest first)"),
        "alerts_raised": _c("alerts raised", "repricer_alerts_raised"),
        "alerts_cleared": _c("alerts cleared", "repricer_alerts_cleared"),
        "alerts_written": _c("alert changes written to the database"),
        "alerts_write_errors": _c("failed writes of alert changes (tried again)"),
        "alerts_dropped": _c("alert changes not written: too many waiting"),
        "webhook_sent": _c("alert changes delivered to the webhook"),
        "webhook_failed": _c("alert changes the webhook did not take after every retry"),
        "webhook_retries": _c("webhook deliveries tried again"),
        "webhook_dropped": _c("alert changes not delivered: too many waiting for the webhook"),
        "reads": _c("reads of the database asked on the socket (the Dashboard's, --ledger-endpoint)"),
        "reads_answered": _c("reads answered with their result"),
        "reads_busy": _c("reads refused or interrupted: too many in flight, or past their deadline"),
        "reads_refused": _c("reads refused as malformed (no such read, or bad arguments)"),
        "reads_unavailable": _c("reads with no database to read"),
        "reads_too_large": _c("reads whose answer would not fit in one frame"),
        "reads_failed": _c("reads that failed for another reason (logged)"),
        "alerts_reloads": _c("alert thresholds reloaded (SIGHUP)"),
        "alerts_reload_errors": _c("alert threshold reloads refused (the running ones stay)"),
        "reload_without_config": _c("SIGHUPs with nothing to reload (no --config)"),
    }),
    "dashboard": MappingProxyType({
        "events": _c("supervisor events received"),
        "statuses": _c("actor status messages received"),
        "bad_events": _c("malformed frames on the events socket"),
        "http_requests": _c("HTTP requests answered", hidden=True),  # repricer_dashboard_http_requests_total
        "refused": _c("HTTP requests refused", hidden=True),  # repricer_dashboard_refused_requests_total
        "csv_downloads": _c("CSV downloads started"),
        "csv_aborted": _c("CSV downloads cut short (the Ledger failed, or the client stalled)"),
        "db_queries": _c("queries to the Ledger's database"),
        "db_errors": _c("Ledger database queries that failed"),
        "db_unavailable": _c("Ledger database queries with no database to read"),
        "db_busy": _c("Ledger database queries refused or interrupted (too many, or too slow)"),
        "db_reopens": _c("times the Ledger's database file was replaced and opened again"),
        "db_bad_replies": _c("malformed answers from the Ledger's socket (--ledger-endpoint)"),
        "db_late_replies": _c("answers from the Ledger's socket that came after their read gave up"),
        "live_clients": _g("browsers following the live overview"),
        "live_refused": _c("live overview clients refused (too many)"),
        "live_dropped": _c("live overview clients dropped for reading too slowly"),
        "live_sent": _c("live overview updates sent"),
        "actors_refused": _c("messages about actors past the limit of actors shown"),
        "config_reloads": _c("config reloads taken (SIGHUP): guardrails and pauses shown"),
        "config_reload_errors": _c("config reloads refused (the running config stays)"),
        "reload_without_config": _c("SIGHUPs with nothing to reload (no --config)"),
        **_EDGE,
    }),
    "launcher": MappingProxyType({
        "starts": _c("actor processes started"),
        "exits": _c("actor processes that exited (then restarted)"),
        "hangs": _c("actor processes killed as hung (no heartbeat)"),
        "bad_heartbeats": _c("malformed heartbeats received"),
        "sighups": _c("SIGHUPs received (each forwarded as a reload request)"),
        "stray_heartbeats": _c("heartbeats from processes that are not running children"),
        "curve_refusals": _c("peers refused by CurveZMQ authentication"),
        "refused_subscriptions": _c("subscriptions to the events socket refused (unknown topics)"),
        "events_rebinds": _c("times the events socket was bound again after a flood of subscriptions"),
        "memory_trims": _c("times the memory freed after a flood of subscriptions was given back to the system"),
    }),
})

BY_LABEL: Final[Mapping[str, tuple[ByLabel, ...]]] = MappingProxyType({
    "datamanager": (ByLabel("bad_rows_", "reason", "counter", "CSV rows skipped as malformed, by reason",
                            "repricer_datamanager_bad_rows_by_reason"),),
    "algorithm": (
        ByLabel("skipped_", "reason", "counter", "decisions skipped, by the step that failed",
                "repricer_skipped_by_reason"),
        ByLabel("refused_", "reason", "counter", "prices refused before they were sent, by reason",
                "repricer_refused_prices_by_reason"),
        ByLabel("catalog_bad_rows_", "reason", "gauge", "guardrail catalog rows skipped, by reason (the config "
                "running now)", "repricer_algorithm_catalog_bad_rows_by_reason"),
    ),
    "ledger": (
        ByLabel("db_errors_", "error", "counter", "database errors, by kind", "repricer_ledger_db_errors_by_kind"),
        ByLabel("db_lost_", "how", "counter", "times the open database file was lost, by how (deleted, replaced, "
                "truncated, corrupt)", "repricer_ledger_db_lost_by_how"),
        ByLabel("prices_", "direction", "counter", "decisions by how our price moved from the pair's previous "
                "decision (up, down, same)", "repricer_price_moves"),
        ByLabel("competitor_", "direction", "counter", "decisions by how the competitor's average moved from the "
                "pair's previous decision (up, down, same)", "repricer_competitor_moves"),
        ByLabel("guardrail_", "guardrail", "counter", "decisions a guardrail moved, by guardrail",
                "repricer_guardrail_hits"),
        ByLabel("alerts_active_", "alert", "gauge", "alerts raised now, by alert (pairs, strategies or the "
                "system they are about)", "repricer_alerts_active"),
    ),
})

# The few numbers that say what an actor did, for its one-line stop summary.
HEADLINE: Final[Mapping[str, tuple[str, ...]]] = MappingProxyType({
    "scheduler": ("ticks_sent", "ticks_skipped"),
    "datamanager": ("requests", "rows_read", "bad_rows", "errors"),
    "apiserver": ("registered", "lookups", "sold", "bad_requests"),
    "algorithm": ("decisions", "skipped", "refused", "overruns", "ledger_dropped", "output_dropped"),
    "ledger": ("stored", "duplicates", "rejected", "db_errors", "db_lost"),
    "dashboard": ("http_requests", "refused", "live_sent"),
    "launcher": ("starts", "exits", "hangs"),
})
# ... and how to say each in a sentence ("1,204 decisions").
_NOUNS: Final = MappingProxyType({
    "ticks_sent": "ticks sent", "ticks_skipped": "ticks skipped", "requests": "requests served",
    "rows_read": "rows read", "bad_rows": "bad rows", "errors": "error replies", "registered": "requests registered",
    "lookups": "lookups", "sold": "sold", "bad_requests": "bad requests", "decisions": "decisions",
    "skipped": "skipped", "refused": "prices refused", "overruns": "overruns",
    "ledger_dropped": "not kept (outbox full)",
    "output_dropped": "output lines dropped", "stored": "decisions stored", "duplicates": "duplicates",
    "rejected": "rejected", "db_errors": "database errors", "db_lost": "database files lost",
    "http_requests": "HTTP requests",
    "live_sent": "live updates", "starts": "actor starts", "exits": "exits", "hangs": "hangs",
})


def kind_of(actor: str) -> str:
    """The kind of an actor instance: ``algorithm-2`` -> ``algorithm`` (a known kind before its last
    ``-`` whatever follows it)."""
    match = _INSTANCE.fullmatch(actor)
    if match:
        return match[1]
    prefix = actor.rpartition("-")[0]
    return prefix if prefix in CATALOG else actor


def describe(kind: str, counter: str, value: int) -> Series | None:
    """The series ``counter`` of an actor of ``kind`` is exported as; None for one another instrument
    exports (``hidden``)."""
    known = CATALOG.get(kind, {}).get(counter) or COMMON.get(counter)
    if known is not None:
        if known.hidden:
            return None
        family = known.metric or f"{PREFIX}_{_metric_part(kind)}_{counter}"
        return Series(family, known.type, known.words, (), value * known.scale)
    for rule in BY_LABEL.get(kind, ()):
        if counter.startswith(rule.prefix) and len(counter) > len(rule.prefix):
            return Series(rule.metric, rule.type, rule.words, ((rule.label, counter[len(rule.prefix):]),), value)
    # One family for them all, the name in a label: any text is a valid label value, and two names
    # can never land on one series.
    return Series(f"{PREFIX}_{_metric_part(kind)}_undescribed", "unknown",
                  f"counters of the {_metric_part(kind)} actors not described yet (add them to "
                  "actors/counter_catalog.py), by name", (("counter", counter),), value)


def words(kind: str, counter: str) -> str:
    """What a counter means, for people."""
    known = CATALOG.get(kind, {}).get(counter) or COMMON.get(counter)
    if known is not None:
        return known.words
    for rule in BY_LABEL.get(kind, ()):
        if counter.startswith(rule.prefix):
            return f"{rule.words}: {counter[len(rule.prefix):].replace('_', ' ')}"
    return counter.replace("_", " ")


def summary(kind: str, counters: Mapping[str, int]) -> str:
    """A kind's headline numbers as words: ``1,204 decisions, 3 skipped`` (zeros left out, except the
    first, so the line is never empty)."""
    names = HEADLINE.get(kind, ())
    parts = [f"{counters[name]:,} {_NOUNS.get(name, name.replace('_', ' '))}" for i, name in enumerate(names)
             if name in counters and (counters[name] != 0 or i == 0)]
    return ", ".join(parts) if parts else f"{len(counters)} counters"


def undescribed(kind: str, names: Iterable[str]) -> list[str]:
    """The names among ``names`` this table does not describe."""
    return [name for name in names if (series := describe(kind, name, 0)) is not None and series.type == "unknown"]


def _metric_part(text: str) -> str:
    return _METRIC_CHARS.sub("_", text)
