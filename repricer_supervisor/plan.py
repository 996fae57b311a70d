"""What a launcher will run, worked out from its options and nothing else: which children, at which
endpoints, each with the argv its actor parses. Pure (no process, no socket, no file): the launcher
turns a :class:`Plan` into supervised processes, and tests read it directly.

Each child's argv is its actor's own options object turned back into a command line
(:func:`actors.options.to_argv`), so the launcher restates no actor's option.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass

from actors import kinds, runtime
from actors.api_server.options import APIServerOptions
from actors.data_manager.options import DataManagerOptions
from actors.kinds import ActorKind
from actors.ledger.options import LedgerOptions
from actors.options import borrowed, to_argv
from actors.runtime import RuntimeOptions
from actors.scheduler.options import SchedulerOptions
from repricer_supervisor.options import LauncherOptions
from transport.endpoints import Endpoints


@dataclass(frozen=True, slots=True)
class ChildPlan:
    """One actor process to supervise: its name (``ps``, logs, events), its kind and its argv."""

    name: str
    kind: ActorKind
    argv: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Plan:
    children: tuple[ChildPlan, ...]  # in start order
    endpoints: Endpoints  # where the actors meet; ``heartbeat`` is the launcher's own inbox
    events_endpoint: str | None  # where the launcher publishes its events, if anywhere
    dashboard_url: str | None  # for the log, when the Dashboard runs

    def named(self, name: str) -> ChildPlan:
        return next(child for child in self.children if child.name == name)

    def of_kind(self, kind: ActorKind) -> list[ChildPlan]:
        return [child for child in self.children if child.kind is kind]


def needs_private_dir(options: LauncherOptions) -> bool:
    """Whether the plan puts a private ipc:// endpoint in a directory of the launcher's own: the
    heartbeat inbox (unless given) and, for the Dashboard, the events socket (unless given)."""
    if options.net.run_dir is not None:
        return False
    return (options.net.heartbeat_endpoint is None
            or (options.starts(kinds.DASHBOARD) and options.net.events_endpoint is None))


def plan(options: LauncherOptions, *, t0: float, private_dir: str | None = None) -> Plan:
    """The children of this launcher and where they meet. ``t0`` is the wall time of tick 0 (restarts
    of the Scheduler continue its sequence); ``private_dir`` holds private ipc:// endpoints (see
    :func:`needs_private_dir`)."""
    if private_dir is None and needs_private_dir(options):
        raise ValueError("these options need a private directory for the launcher's own endpoints")
    net = _endpoints(options, private_dir)
    events = options.net.events_endpoint
    if events is None and options.starts(kinds.DASHBOARD):  # its live state comes from the launcher's events
        events = f"ipc://{os.path.join(options.net.run_dir or private_dir or '', 'events.sock')}"
    # Three beats per hang timeout: one late beat is never taken for a hang.
    beat = min(runtime.HEARTBEAT_INTERVAL, options.supervision.hang_timeout / 3)
    common = tuple(to_argv(borrowed(options, RuntimeOptions, heartbeat_interval=round(beat, 3),
                                    keys=options.security.keys, insecure=options.security.insecure)))
    children: list[ChildPlan] = []

    def add(kind: ActorKind, name: str, actor_options: object) -> None:
        children.append(ChildPlan(name, kind, (*to_argv(actor_options), *common)))

    if options.starts(kinds.SCHEDULER):
        add(kinds.SCHEDULER, kinds.SCHEDULER.name, borrowed(options, SchedulerOptions, ticks_endpoint=net.ticks, t0=t0))
    if options.starts(kinds.API_SERVER):
        add(kinds.API_SERVER, kinds.API_SERVER.name,
            borrowed(options.net, APIServerOptions, port=options.net.bound_api_port))
    if options.starts(kinds.LEDGER):
        add(kinds.LEDGER, kinds.LEDGER.name,
            # the config too: the Ledger raises the alerts of its [alerts] table
            borrowed(options.ledger, LedgerOptions, ledger_endpoint=net.ledger, db=options.ledger_db,
                     config=options.pricing.config))
    if options.starts(kinds.DATA_MANAGER):
        for index, endpoint in enumerate(net.data):
            add(kinds.DATA_MANAGER, kinds.DATA_MANAGER.instance(index, len(net.data)),
                borrowed(options, DataManagerOptions, data_endpoint=endpoint))
    if options.starts(kinds.ALGORITHM):
        for local in range(options.workers):
            worker = options.worker_offset + local
            add(kinds.ALGORITHM, kinds.ALGORITHM.instance(worker, options.total_workers),
                options.worker_options(worker, net))
    url = None
    if options.starts(kinds.DASHBOARD):
        add(kinds.DASHBOARD, kinds.DASHBOARD.name,
            options.dashboard.child_options(events, options.ledger_db, options.pricing.config))
        url = options.dashboard.url()
    return Plan(tuple(children), net, events, url)


def _endpoints(options: LauncherOptions, private_dir: str | None) -> Endpoints:
    net = options.net
    port = net.bound_api_port
    if port == 0 and options.starts(kinds.ALGORITHM) and net.api_url is None:
        raise ValueError("--api-port 0: the launcher chooses the port before planning (preflight.choose_port)")
    if net.run_dir:
        mine = Endpoints.in_directory(net.run_dir, port, options.data_managers)
        return mine if net.api_url is None else dataclasses.replace(mine, api_url=net.api_url)
    heartbeat = net.heartbeat_endpoint or f"ipc://{os.path.join(private_dir or '', 'heartbeat.sock')}"
    return Endpoints(net.ticks_endpoint, options.data_endpoints, heartbeat,
                     net.api_url or f"http://127.0.0.1:{port}", options.ledger.ledger_endpoint)
