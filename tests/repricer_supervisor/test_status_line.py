"""The launcher's periodic INFO line (pure): a few things a person reads, from the actors' statuses."""

from __future__ import annotations

from repricer_supervisor.status_line import StatusLine
from transport.protocol import ActorStatus


def status(actor: str, pid: int, restarts: int = 0, beating: bool = True, **counters: int) -> ActorStatus:
    return ActorStatus(100.0, actor, pid, 1000, 800, restarts, 0, 10.0 if pid else 0.0, 99.0 if beating else 0.0,
                       counters)


def test_the_line_says_actors_up_decisions_per_second_restarts_lag_spool_and_alerts() -> None:
    line = StatusLine()
    first = [status("algorithm-0", 5, decisions=100, ledger_outbox=3), status("algorithm-1", 6, decisions=50),
             status("ledger", 7, restarts=1, lag_ms=1250, alerts_active_price_war=0),
             status("datamanager", 0, restarts=2, beating=False)]
    assert line.line(first, 1000.0) == ("status: 3 of 4 actors up, 150 decisions so far, 3 restarts, Ledger lag 1.2 s, "
                                        "spool 3, alerts: none")
    # Ten seconds on: algorithm-1 restarted (a new pid counts from 0), the Ledger raised two alerts.
    later = [status("algorithm-0", 5, decisions=180, ledger_outbox=0),
             status("algorithm-1", 9, restarts=1, decisions=20),
             status("ledger", 7, restarts=1, lag_ms=200, alerts_active_price_war=2, alerts_active_floor_pinned=1),
             status("datamanager", 8, restarts=2)]
    assert line.line(later, 1010.0) == ("status: 4 of 4 actors up, 10.0 decisions/s, 4 restarts, Ledger lag 0.2 s, "
                                        "spool 0, alerts: 3 (pinned at the floor 1, price war 2)")


def test_without_workers_or_ledger_the_line_says_what_it_knows() -> None:
    assert StatusLine().line([status("scheduler", 3)], 5.0) == "status: 1 of 1 actors up, 0 restarts"
