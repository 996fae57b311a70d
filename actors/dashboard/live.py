"""The system's live state as the launcher tells it (pure): each actor's state from ``SupervisorEvent``
messages, its numbers from ``ActorStatus`` messages, the rates, recent events, and the banner that
says what is not up.

States: ``starting`` (started, no heartbeat yet), ``up`` (beating since its start), ``hung`` (missed
its heartbeats: being killed), ``restarting`` (exited, waiting out its backoff), ``down`` (no process
and no event saying why), ``stopping``/``stopped`` (the launcher is shutting down). The Dashboard may
start after the actors: a status alone is enough to place an actor.

Everything is bounded: actors (:data:`ACTORS_MAX`), events kept (:data:`EVENTS_KEPT`), the rate ring.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Final

from actors.counter_catalog import kind_of
from actors.dashboard.rates import RateRing, business_key
from transport.protocol import ActorStatus, SupervisorEvent

ACTORS_MAX: Final = 2048
EVENTS_KEPT: Final = 50
STALE_AFTER: Final = 30.0  # seconds without any message from the launcher before the banner says so
LAUNCHER: Final = "launcher"
_EVENT_STATE: Final = MappingProxyType({"started": "starting", "exited": "restarting", "hung": "hung",
                                        "stopping": "stopping", "stopped": "stopped", "failed": "failed"})
_SETTLED: Final = ("stopping", "stopped", "failed")  # only a new start moves an actor out of these
BUSINESS_HOUR: Final = 3600.0  # the overview's business figures: the last hour, in minutes
BUSINESS_BUCKET: Final = 60.0


@dataclass
class ActorView:
    """One actor: its state from the launcher's events, its numbers from its newest status report."""

    name: str
    state: str = "down"
    detail: str = ""
    changed: float = 0.0  # when the state last changed
    pid: int = 0  # 0: no process
    up_since: float = 0.0
    report: ActorStatus | None = None

    @property
    def process(self) -> ActorStatus | None:
        """The report, if it is of the process running now (memory is a process's, not the actor's)."""
        return self.report if self.report is not None and self.pid and self.report.pid == self.pid else None

    @property
    def counters(self) -> dict[str, int]:
        return self.report.counters if self.report else {}

    def numbers(self) -> tuple[int, int, int, int, float]:
        """restarts, hangs, RSS and PSS (KiB, 0 without a process) and the newest heartbeat."""
        report, process = self.report, self.process
        return (report.restarts if report else 0, report.hangs if report else 0,
                process.rss_kib if process else 0, process.pss_kib if process else 0,
                report.last_beat if report else 0.0)

    def as_json(self) -> dict[str, Any]:
        restarts, hangs, rss_kib, pss_kib, last_beat = self.numbers()
        return {"name": self.name, "state": self.state, "detail": self.detail, "pid": self.pid,
                "up_since": self.up_since or None, "restarts": restarts, "hangs": hangs,
                "rss_kib": rss_kib, "pss_kib": pss_kib, "last_beat": last_beat or None,
                "counters": self.counters}


class LiveState:
    def __init__(self, history: float, bucket: float, clock: Callable[[], float], listening: bool = True) -> None:
        self._clock = clock
        self.listening = listening  # False: no events endpoint, so nothing live will ever arrive
        self.rates = RateRing(history, bucket)
        self.business = RateRing(BUSINESS_HOUR, BUSINESS_BUCKET, "ledger", business_key)
        self.actors: dict[str, ActorView] = {}
        self.launcher: ActorStatus | None = None
        self.events: deque[SupervisorEvent] = deque(maxlen=EVENTS_KEPT)
        self.last_message = 0.0  # local clock
        self.version = 0  # bumped at every change: the live stream sends when it moves
        self.refused_actors = 0

    def _view(self, name: str) -> ActorView | None:
        view = self.actors.get(name)
        if view is None:
            if len(self.actors) >= ACTORS_MAX:
                self.refused_actors += 1
                return None
            view = self.actors[name] = ActorView(name)
        return view

    def _set_state(self, view: ActorView, state: str, detail: str, now: float) -> None:
        if (view.state, view.detail) != (state, detail):
            view.state, view.detail, view.changed = state, detail, now

    def on_event(self, event: SupervisorEvent) -> None:
        now = self._clock()
        self.last_message = now
        self.events.append(event)
        self.version += 1
        if event.actor == LAUNCHER:
            return  # the launcher's own "stopped": not an actor row
        view = self._view(event.actor)
        if view is None:
            return
        state = _EVENT_STATE.get(event.event, view.state)
        self._set_state(view, state, event.detail, now)
        if event.event == "started":
            view.pid, view.up_since = event.pid, event.ts
        elif event.event in ("exited", "stopped"):
            view.pid = 0

    def on_status(self, status: ActorStatus) -> None:
        now = self._clock()
        self.last_message = now
        self.version += 1
        if status.actor == LAUNCHER:
            self.launcher = status
            return
        view = self._view(status.actor)
        if view is None:
            return
        self.rates.observe(status.actor, status.pid, status.counters, now)
        self.business.observe(status.actor, status.pid, status.counters, now)
        view.report = status
        if status.pid == 0:
            view.pid = 0
            if view.state not in ("restarting", "hung", *_SETTLED):
                self._set_state(view, "down", "no process", now)
            return
        view.pid, view.up_since = status.pid, status.up_since
        if view.state in _SETTLED:
            return
        if status.last_beat >= status.up_since > 0:
            self._set_state(view, "up", "", now)
        else:
            self._set_state(view, "starting", view.detail if view.state == "starting" else "", now)

    def banner(self, now: float) -> list[str]:
        """One line per thing a person should know: an actor not up, a silent launcher."""
        lines: list[str] = []
        if not self.listening:
            lines.append("live state is off: the Dashboard was started without --events-endpoint")
        elif self.last_message == 0.0:
            lines.append("waiting for the launcher's first status message")
        elif now - self.last_message > STALE_AFTER:
            lines.append(f"no news from the launcher for {now - self.last_message:.0f}s: is it running?")
        for view in sorted(self.actors.values(), key=lambda v: v.name):
            if view.state != "up":
                detail = f" ({view.detail})" if view.detail else ""
                lines.append(f"{view.name} is {view.state}{detail}")
        return lines

    def health(self) -> dict[str, Any]:
        """The system in a few numbers: actors up, restarts, the Ledger's lag and queue, the workers' spool."""
        views = list(self.actors.values())
        numbers = [v.numbers() for v in views]
        ledger = next((v for v in views if kind_of(v.name) == "ledger" and v.pid), None)
        workers = [v for v in views if kind_of(v.name) == "algorithm"]
        return {
            "actors": len(views), "up": sum(v.state == "up" for v in views),
            "restarts": sum(n[0] for n in numbers), "hangs": sum(n[1] for n in numbers),
            "ledger_lag": None if ledger is None or "lag_ms" not in ledger.counters
            else ledger.counters["lag_ms"] / 1000,
            "ledger_queued": None if ledger is None else ledger.counters.get("queued"),
            "spool": sum(v.counters.get("ledger_outbox", 0) for v in workers) if workers else None,
            "spool_dropped": sum(v.counters.get("ledger_dropped", 0) for v in workers),
        }

    def snapshot(self) -> dict[str, Any]:
        """Everything the overview shows, JSON-ready."""
        now = self._clock()
        launcher = self.launcher
        seconds, hour = self.business.window(now)
        return {
            "now": now,
            "listening": self.listening,
            "last_message": self.last_message or None,
            "banner": self.banner(now),
            "rates": self.rates.series(now),
            "rate_now": self.rates.now(now),
            "totals": dict(self.rates.totals),
            "health": self.health(),
            "hour": {"seconds": round(seconds, 1), "counts": hour},
            "actors": [v.as_json() for v in sorted(self.actors.values(), key=lambda v: v.name)],
            "launcher": None if launcher is None else {
                "pid": launcher.pid, "total_rss_kib": launcher.rss_kib, "total_pss_kib": launcher.pss_kib,
                "counters": launcher.counters},
            "events": [{"ts": e.ts, "event": e.event, "actor": e.actor, "pid": e.pid, "detail": e.detail}
                       for e in reversed(self.events)],
        }
