"""One actor's numbers in Prometheus' text exposition format (version 0.0.4), written by hand: pure,
no I/O, so every actor can serve its own ``/metrics`` without importing a client library (the
Dashboard's ``/metrics`` uses ``prometheus-client``; it imports the table below, so both name a
counter the same way).

Families, each with one series per actor (the ``actor`` label: ``algorithm-1``, ``ledger``, ...):

- ``repricer_<name>_total``: the counters of :data:`ACTOR_COUNTERS`, typed as counters;
- ``repricer_actor_counter{counter=...}``: every counter the actor reports, as a gauge (some, like
  ``in_flight`` or ``books``, go down), the same family the Dashboard exposes from the launcher's
  statuses;
- ``repricer_actor_ready``: 1 when the actor says it is ready (``/readyz``);
- ``process_*``: the standard process metrics (resident memory, CPU seconds, start time).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final

CONTENT_TYPE: Final = "text/plain; version=0.0.4; charset=utf-8"

# Actor counter -> (metric name without _total, help). The actor kinds that report each are named.
ACTOR_COUNTERS: Final = MappingProxyType({
    "decisions": ("repricer_decisions", "decisions printed (Algorithm workers)"),
    "skipped": ("repricer_skipped", "decisions skipped after a failed step (Algorithm workers)"),
    "overruns": ("repricer_overruns", "pairs skipped on a tick because their previous decision still ran"),
    "http_requests": ("repricer_api_requests", "HTTP requests to the APIServer (Algorithm workers)"),
    "http_errors": ("repricer_api_errors", "failed HTTP requests to the APIServer (Algorithm workers)"),
    "dm_requests": ("repricer_dm_requests", "requests to the DataManager (Algorithm workers)"),
    "dm_timeouts": ("repricer_dm_timeouts", "DataManager requests that timed out (Algorithm workers)"),
    "requests": ("repricer_served_requests", "requests served (DataManager: price windows)"),
    "errors": ("repricer_served_errors", "error replies (DataManager: no window for the book)"),
    "bad_frames": ("repricer_bad_frames", "malformed frames received and rejected"),
    "unstarted": ("repricer_unstarted",
                  "pairs a tick could not start before the next tick (overload; Algorithm workers)"),
    "backpressure_ticks_ledger": ("repricer_backpressure_ticks_ledger",
                                  "ticks during which new pairs waited because the Ledger was behind "
                                  "(Algorithm workers)"),
    "backpressure_ticks_spool": ("repricer_backpressure_ticks_spool",
                                 "ticks during which new pairs waited because the spool was full or its disk failing "
                                 "(Algorithm workers)"),
    "spool_full_pauses": ("repricer_spool_full_pauses",
                          "times the spool filled and repricing paused (Algorithm workers)"),
    "ledger_dropped": ("repricer_ledger_dropped",
                       "printed decisions not kept: --no-spool with its outbox full (Algorithm workers)"),
})


@dataclass(frozen=True, slots=True)
class ProcessStats:
    """What the ``process_*`` family says about this process (read at scrape time, see :mod:`actors.health`)."""

    rss_bytes: int
    cpu_seconds: float
    start_time: float  # epoch seconds


def escape_label(value: str) -> str:
    """A label value as the text format wants it: backslash, double quote and newline escaped."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _family(lines: list[str], name: str, kind: str, doc: str) -> None:
    lines.append(f"# HELP {name} {doc}")
    lines.append(f"# TYPE {name} {kind}")


def exposition(actor: str, counters: Mapping[str, int], *, ready: bool, process: ProcessStats | None = None) -> str:
    """The text a scrape of ``actor``'s ``/metrics`` returns."""
    who = f'actor="{escape_label(actor)}"'
    lines: list[str] = []
    for key, (name, doc) in ACTOR_COUNTERS.items():
        value = counters.get(key)
        if value is not None and value >= 0:
            _family(lines, f"{name}_total", "counter", doc)
            lines.append(f"{name}_total{{{who}}} {value}")
    _family(lines, "repricer_actor_counter", "gauge", "every counter an actor reports, as last reported")
    for key in sorted(counters):
        lines.append(f'repricer_actor_counter{{{who},counter="{escape_label(key)}"}} {counters[key]}')
    _family(lines, "repricer_actor_ready", "gauge", "1 when the actor is ready (connected and serving)")
    lines.append(f"repricer_actor_ready{{{who}}} {1 if ready else 0}")
    if process is not None:
        _family(lines, "process_resident_memory_bytes", "gauge", "Resident memory size in bytes.")
        lines.append(f"process_resident_memory_bytes {process.rss_bytes}")
        _family(lines, "process_cpu_seconds_total", "counter", "Total user and system CPU time spent in seconds.")
        lines.append(f"process_cpu_seconds_total {round(process.cpu_seconds, 3)!r}")
        _family(lines, "process_start_time_seconds", "gauge", "Start time of the process since unix epoch in seconds.")
        lines.append(f"process_start_time_seconds {round(process.start_time, 3)!r}")
    return "\n".join(lines) + "\n"
