"""The launcher's periodic status as one line a person reads (pure): actors up, decisions per second
since the last line, restarts, the Ledger's lag, the workers' spool and the alerts raised now.

Every actor's full counters still go out on the events socket (``ActorStatus``) and to the DEBUG log;
this line is what INFO shows every ``--status-every`` seconds.
"""

from __future__ import annotations

from collections.abc import Sequence

from actors.alert_rules import ALERTS
from actors.counter_catalog import kind_of
from transport.protocol import ActorStatus

ALERT_PREFIX = "alerts_active_"  # the Ledger's gauges of the alerts raised now (actors/ledger/watch.py)


class StatusLine:
    def __init__(self) -> None:
        self._decided: dict[tuple[str, int], int] = {}  # (worker, pid) -> its decisions at the last line
        self._at: float | None = None

    def line(self, statuses: Sequence[ActorStatus], now: float) -> str:
        running = [s for s in statuses if s.pid]
        up = sum(s.last_beat >= s.up_since > 0 for s in running)
        workers = [s for s in running if kind_of(s.actor) == "algorithm"]
        decided = {(s.actor, s.pid): s.counters.get("decisions", 0) for s in workers}
        # A worker restarted since the last line counts from 0 again: its whole count is new.
        moved = sum(n - self._decided.get(key, 0) if n >= self._decided.get(key, 0) else n
                    for key, n in decided.items())
        parts = [f"{up} of {len(statuses)} actors up"]
        if self._at is not None and now > self._at:
            parts.append(f"{moved / (now - self._at):.1f} decisions/s")
        elif workers:
            parts.append(f"{sum(decided.values())} decisions so far")
        self._decided, self._at = decided, now
        restarts = sum(s.restarts for s in statuses)
        parts.append(f"{restarts} restart{'s' if restarts != 1 else ''}")
        ledger = next((s for s in running if kind_of(s.actor) == "ledger"), None)
        if ledger is not None and "lag_ms" in ledger.counters:
            parts.append(f"Ledger lag {ledger.counters['lag_ms'] / 1000:.1f} s")
        if workers and any("ledger_outbox" in s.counters for s in workers):
            parts.append(f"spool {sum(s.counters.get('ledger_outbox', 0) for s in workers)}")
        if ledger is not None:
            raised = {name[len(ALERT_PREFIX):]: n for name, n in ledger.counters.items()
                      if name.startswith(ALERT_PREFIX) and n > 0}
            titles = ", ".join(f"{ALERTS[k].title.lower() if k in ALERTS else k} {n}"
                               for k, n in sorted(raised.items()))
            parts.append(f"alerts: {sum(raised.values())} ({titles})" if raised else "alerts: none")
        return "status: " + ", ".join(parts)
