"""One actor's numbers in Prometheus' text exposition format (version 0.0.4), written by hand: pure,
no I/O, so every actor can serve its own ``/metrics`` without importing a client library (the
Dashboard's ``/metrics`` uses ``prometheus-client``; both name and describe every counter from
:mod:`actors.counter_catalog`, so a counter is the same family whichever page it is scraped from).

Families, each with one series per actor (the ``actor`` label: ``algorithm-1``, ``ledger``, ...):

- one per counter the actor reports, typed and described by :mod:`actors.counter_catalog`
  (``repricer_decisions_total``, ``repricer_algorithm_ledger_outbox``, ...; counters that name a
  reason share a family with a label);
- ``repricer_actor_ready``: 1 when the actor says it is ready (``/readyz``);
- ``process_*``: the standard process metrics (resident memory, CPU seconds, start time).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final

from actors import counter_catalog

CONTENT_TYPE: Final = "text/plain; version=0.0.4; charset=utf-8"
_TYPES: Final = MappingProxyType({"counter": "counter", "gauge": "gauge", "unknown": "untyped"})


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


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def exposition(actor: str, counters: Mapping[str, int], *, ready: bool, process: ProcessStats | None = None) -> str:
    """The text a scrape of ``actor``'s ``/metrics`` returns."""
    who = f'actor="{escape_label(actor)}"'
    kind = counter_catalog.kind_of(actor)
    families: dict[str, tuple[counter_catalog.Series, list[str]]] = {}
    for name in sorted(counters):
        series = counter_catalog.describe(kind, name, counters[name])
        if series is None or (series.type == "counter" and series.value < 0):
            continue
        sample = series.family + ("_total" if series.type == "counter" else "")
        labels = "".join(f',{label}="{escape_label(value)}"' for label, value in series.labels)
        families.setdefault(series.family, (series, []))[1].append(f"{sample}{{{who}{labels}}} "
                                                                  f"{_number(series.value)}")
    lines: list[str] = []
    for family, (series, samples) in families.items():
        _family(lines, family + ("_total" if series.type == "counter" else ""), _TYPES[series.type],
                series.help.replace("\\", "\\\\").replace("\n", "\\n"))
        lines += samples
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
