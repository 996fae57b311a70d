"""The actor kinds: one record each, read by the launcher (what to start, in which order to stop),
by ``--run``, by the actors themselves (their process and logger name) and by the logs.

``name`` is the one spelling of a kind everywhere: ``ps``, logs, ``--run``, events. A kind that runs
as several processes names each ``<name>-<index>``.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType
from typing import Final


@dataclass(frozen=True, slots=True)
class ActorKind:
    name: str  # process name (/proc/PID/comm), logger name, --run entry
    package: str  # ``python -m <package>`` starts one standalone
    stop_stage: int  # the launcher stops stage 0 first: producers before consumers before servers
    reloads: bool = False  # reloads its config on SIGHUP (the launcher forwards its own SIGHUP to it)
    starts_last: bool = False  # the launcher starts it once every other actor runs (their loops beat)

    @property
    def entry(self) -> str:
        """The module whose ``main(argv, liveness)`` runs the actor."""
        return f"{self.package}.actor"

    def instance(self, index: int, count: int) -> str:
        """The name of process ``index`` of ``count`` of this kind."""
        return self.name if count == 1 else f"{self.name}-{index}"


# Stop order: no new ticks first; then the Algorithm finishes its decisions in flight while the peers
# it needs still answer; then those peers.
# Start order: the Scheduler last, once the others run: a PUB drops a tick sent before its subscribers
# joined, and tick 0 must find the Algorithm and its peers ready (issue 21).
SCHEDULER: Final = ActorKind("scheduler", "actors.scheduler", stop_stage=0, starts_last=True)
ALGORITHM: Final = ActorKind("algorithm", "actors.algorithm", stop_stage=1, reloads=True)
DATA_MANAGER: Final = ActorKind("datamanager", "actors.data_manager", stop_stage=2)
API_SERVER: Final = ActorKind("apiserver", "actors.api_server", stop_stage=2)
# The Ledger stops with the other servers, after the Algorithm has sent what it decided.
LEDGER: Final = ActorKind("ledger", "actors.ledger", stop_stage=2, reloads=True)  # its [alerts] thresholds
# A reader of the others' history and events: nothing waits on it, so it goes first.
# On by default (--no-dashboard to leave it out); a second launcher on one machine needs its own
# --dashboard-port, or --no-dashboard (the launcher refuses a port in use at start).
DASHBOARD: Final = ActorKind("dashboard", "actors.dashboard", stop_stage=0, reloads=True)  # pauses and guardrails

KINDS: Final = (SCHEDULER, DATA_MANAGER, API_SERVER, LEDGER, ALGORITHM, DASHBOARD)
BY_NAME: Final = MappingProxyType({kind.name: kind for kind in KINDS})
