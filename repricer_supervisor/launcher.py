"""Start the whole repricer -- Scheduler, DataManager, APIServer, Ledger and the Algorithm worker(s) --
each in its own OS process, and supervise them.

Supervision (in the spirit of Erlang/OTP supervisors and supervisord): a child that exits or dies is
restarted with exponential backoff and jitter, reset after a stable start; a child whose event loop
misses its heartbeats (blocked, deadlocked, SIGSTOPped) is killed and restarted. One child failing
never stops the others -- except a child that keeps exiting with a configuration error (exit code 2:
a port in use, bad keys): after 3 in a row the launcher gives up, stops everything and exits 2.
SIGINT/SIGTERM stop every child (SIGTERM, then SIGKILL after a grace period); children die with the
launcher even if it is SIGKILLed (PR_SET_PDEATHSIG plus a parent watch).

What cannot work (a missing --data-file, --delay not shorter than --tick, no book, a port in use, a
value out of range) is refused before anything starts: one line "error: ..." and exit code 2.

Decisions go to stdout (printed by the Algorithm workers); everything else goes to stderr.

Renamed, the old names working until the next release: --data is now --data-file (an actor's --data
was its --data-endpoint: --data named two things), --events is now --events-endpoint.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import logging
import os
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass

from actors import kinds, runtime
from actors.api_server.options import APIServerOptions
from actors.dashboard.options import DEFAULT_PORT as DASHBOARD_PORT
from actors.first_rows import DataCheck
from actors.options import add_options, default_of, from_namespace, make_parser
from actors.pricing.config import Config, ConfigError
from repricer_supervisor import history, preflight
from repricer_supervisor.children import Child
from repricer_supervisor.options import API_PORT, LauncherOptions
from repricer_supervisor.plan import Plan, needs_private_dir, plan
from repricer_supervisor.policy import ChildHealth
from repricer_supervisor.preflight import Refusal
from repricer_supervisor.supervisor import Supervisor, SupervisorError
from transport import limits
from transport.roles import LAUNCHER
from transport.security import Keys, Security, SecurityError

log = logging.getLogger("launcher")

API_HOST: str = default_of(APIServerOptions, "host")  # the launcher leaves the APIServer on its default host
STARTUP_ALLOWANCE = 1.0  # seconds from the Scheduler's start to tick 0: its own spawn and imports (~0.5 s)


@dataclass(frozen=True, slots=True)
class Startup:
    """The command line, parsed and checked against this machine: the options, the keys loaded, and
    what will be priced."""

    options: LauncherOptions
    security: Security
    books_priced: list[str]
    strategies: list[str]  # of the config, in its order (empty without one: the default rule)
    pairs: dict[str, int] = dataclasses.field(default_factory=dict)  # books per strategy, as configured
    paused: int = 0  # pairs the config pauses
    data: DataCheck | None = None  # what the start of the data file says, when it was read


def parse_args(argv: Sequence[str] | None) -> Startup:
    """Parse and check the command line; anything that cannot work is one ``error:`` line and exit 2."""
    parser = build_parser()
    options = from_namespace(LauncherOptions, parser.parse_args(argv), parser)  # the options' own checks
    try:
        return check(options)
    except (Refusal, ConfigError, ValueError, SecurityError) as exc:
        parser.error(str(exc))


def parse_options(argv: Sequence[str] | None) -> LauncherOptions:
    """The options of a command line, checked on their own but not against this machine (what
    :func:`parse_args` adds): for planning without starting anything."""
    parser = build_parser()
    return from_namespace(LauncherOptions, parser.parse_args(argv), parser)


def build_parser() -> argparse.ArgumentParser:
    parser = make_parser("python launcher.py", __doc__)
    add_options(parser, LauncherOptions)
    return parser


def check(options: LauncherOptions) -> Startup:
    """Refuse at start what cannot work on this machine (see :mod:`repricer_supervisor.preflight`): the
    keys, the files, the ports. Keeps what it loaded."""
    security = Security(Keys.load(options.security.keys, LAUNCHER) if options.security.keys else None,
                        options.security.insecure)
    if options.net.run_dir:
        preflight.run_dir(options.net.run_dir)
    options = with_ports(options)
    reads_data = options.starts(kinds.DATA_MANAGER) and (not options.wait_for_data
                                                         or os.path.exists(options.data_file))
    if reads_data:
        preflight.readable_file("--data-file", options.data_file)
    books: list[str] = []
    strategies: list[str] = []
    pairs: dict[str, int] = {}
    paused = 0
    if options.starts(kinds.ALGORITHM):
        books, strategies, pairs, paused = check_pricing(options)
    data = None
    if reads_data:  # after the books: the check looks for a valid row of each
        data = preflight.data_file("--data-file", options.data_file, books or None, options.mode == "replay")
    check_private_dir(options)
    check_ports(options)
    check_descriptors(options)
    return Startup(options, security, books, strategies, pairs, paused, data)


def check_descriptors(options: LauncherOptions) -> None:
    """Enough file descriptors for every process this launcher starts (each inherits its limit): the
    HTTP servers' connection cap, an Algorithm worker's connections, the launcher's pipes."""
    servers = options.starts(kinds.API_SERVER) or options.starts(kinds.DASHBOARD)
    per_actor = max(limits.HTTP_CONNECTIONS_MAX if servers else 0,
                    options.pricing.max_in_flight if options.starts(kinds.ALGORITHM) else 0)
    children = options.workers + options.data_managers + len(kinds.KINDS)
    needed = max(per_actor + preflight.DESCRIPTORS_BASE,
                 children * preflight.DESCRIPTORS_PER_CHILD + preflight.DESCRIPTORS_BASE)
    preflight.descriptors(needed, f"these actors (the APIServer takes {limits.HTTP_CONNECTIONS_MAX} connections, "
                                  f"an Algorithm worker {options.pricing.max_in_flight}; {children} processes)")


def with_ports(options: LauncherOptions) -> LauncherOptions:
    """The options with the APIServer's and the Dashboard's ports chosen: 0 (and, with --run-dir, none
    given) is a free port chosen now, fixed for the run."""
    net, dashboard, private = options.net, options.dashboard, options.net.run_dir is not None
    api_port, dashboard_port = net.api_port, dashboard.port
    if options.starts(kinds.API_SERVER):
        api_port = preflight.choose_port("--api-port", API_HOST, net.api_port, API_PORT, private)
    if options.starts(kinds.DASHBOARD):
        dashboard_port = preflight.choose_port("--dashboard-port", dashboard.host, dashboard.port, DASHBOARD_PORT,
                                               private)
    if (api_port, dashboard_port) == (net.api_port, dashboard.port):
        return options
    return dataclasses.replace(options, net=dataclasses.replace(net, api_port=api_port),
                               dashboard=dataclasses.replace(dashboard, port=dashboard_port))


def check_pricing(options: LauncherOptions) -> tuple[list[str], list[str], dict[str, int], int]:
    """The books and strategies priced, the books of each strategy and the pairs paused; refused if
    there is no book, or if a delay is not below the tick."""
    books, config = preflight.pricing(options.pricing, options.tick)
    strategies = list(config.strategies) if config is not None else []
    config = config or Config.simple(books, options.pricing.delay)
    pairs: dict[str, int] = {}
    for pair in config.pairs:
        pairs[pair.strategy.name] = pairs.get(pair.strategy.name, 0) + 1
    paused = sum(config.is_paused(pair.book, pair.strategy.name) for pair in config.pairs)
    return books, strategies, pairs, paused


def check_private_dir(options: LauncherOptions) -> None:
    """The default endpoints are ipc sockets in a directory private to this user: made so, or refused."""
    net = options.net
    if net.run_dir:  # its own directory, checked by preflight.run_dir
        return
    listed = [("--ticks-endpoint", net.ticks_endpoint), ("--ledger-endpoint", options.ledger.ledger_endpoint),
              ("--heartbeat-endpoint", net.heartbeat_endpoint or ""), ("--events-endpoint", net.events_endpoint or "")]
    listed += [("--data-endpoint", endpoint) for endpoint in options.data_endpoints]
    preflight.private_endpoints(listed)


def check_ports(options: LauncherOptions) -> None:
    """The tcp endpoints this launcher's actors and the launcher itself will bind are free now."""
    net = options.net
    binds: list[tuple[str, str]] = []
    if net.events_endpoint:
        binds.append(("--events-endpoint", net.events_endpoint))
    if not net.run_dir:  # else every endpoint is an ipc path of that directory
        if net.heartbeat_endpoint is not None:
            binds.append(("--heartbeat-endpoint", net.heartbeat_endpoint))
        if options.starts(kinds.SCHEDULER):
            binds.append(("--ticks-endpoint", net.ticks_endpoint))
        if options.starts(kinds.DATA_MANAGER):
            binds += [("--data-endpoint", endpoint) for endpoint in options.data_endpoints]
        if options.starts(kinds.LEDGER):
            binds.append(("--ledger-endpoint", options.ledger.ledger_endpoint))
    for what, endpoint in binds:
        preflight.bindable(what, endpoint)
    if options.starts(kinds.API_SERVER) and net.api_port:
        preflight.free("--api-port", f"{net.api_port} (on {API_HOST})", API_HOST, net.api_port)
    dashboard = options.dashboard
    if options.starts(kinds.DASHBOARD) and dashboard.port:
        preflight.free("--dashboard-port", f"{dashboard.port} (on {dashboard.host})", dashboard.host, dashboard.port)


def supervisor_for(startup: Startup, the_plan: Plan, private_dir: str | None = None) -> Supervisor:
    """The supervisor of the planned children, each restarted by the options' policy. The Scheduler
    starts once the others run (``kinds.SCHEDULER.starts_last``): its run's t0 is planned then, from
    the moment of its first start (its restarts continue that run)."""
    supervision = startup.options.supervision
    policy = supervision.policy()
    children = [Child(child.name, child.kind, list(child.argv), ChildHealth(policy)) for child in the_plan.children]

    def scheduler_argv() -> list[str]:
        fresh = plan(startup.options, t0=time.time() + STARTUP_ALLOWANCE, private_dir=private_dir)
        return list(fresh.named(kinds.SCHEDULER.name).argv)

    for child in children:
        if child.kind is kinds.SCHEDULER:
            child.argv_at_first_start = scheduler_argv
    return Supervisor(children, the_plan.endpoints.heartbeat, supervision, security=startup.security,
                      events_endpoint=the_plan.events_endpoint)


def main(argv: Sequence[str] | None = None) -> int:
    startup = parse_args(argv)
    options = startup.options
    runtime.setup_logging("launcher", options.log_level)
    if startup.books_priced:
        log.info("%s", preflight.priced(startup.books_priced, startup.pairs, startup.paused, options.workers))
    if options.starts(kinds.LEDGER):
        # A --run-dir system's database is its own by design: no other history is looked for.
        others: list[str] | None = [] if options.net.run_dir and options.ledger.db is None else None
        for level, line in history.start_lines(options.ledger_db, os.getcwd(), others):
            log.log(level, "%s", line)
    if startup.data is not None:
        flag, path = "--data-file", options.data_file
        if startup.data.refused:  # follow mode: the rows may still come
            log.warning("waiting for data: %s (the DataManager reads it again as it changes)",
                        startup.data.problem(flag, path))
        for line in startup.data.warnings(flag, path):
            log.warning("%s", line)
    with contextlib.ExitStack() as cleanup:
        if options.net.run_dir:
            try:
                lock = preflight.hold_run_dir(options.net.run_dir)
            except Refusal as exc:
                print(f"error: {exc}", file=sys.stderr)
                return 2
            cleanup.callback(os.close, lock)
        # The heartbeat inbox (and the Dashboard's events) are private to this launcher unless given:
        # ipc paths nobody else can collide with.
        private = (cleanup.enter_context(tempfile.TemporaryDirectory(prefix="repricer-"))
                   if needs_private_dir(options) else None)
        # The Scheduler's t0 is planned again when it first starts, once the others run (supervisor_for).
        the_plan = plan(options, t0=time.time() + STARTUP_ALLOWANCE, private_dir=private)
        supervisor = supervisor_for(startup, the_plan, private)
        if options.starts(kinds.API_SERVER):
            log.info("apiserver: http://%s:%d/", API_HOST, options.net.bound_api_port)
        if the_plan.dashboard_url:
            log.info("dashboard: %s", the_plan.dashboard_url)
        try:
            with supervisor:
                return supervisor.run(options.supervision.duration, first_tick_after=STARTUP_ALLOWANCE)
        except SupervisorError as exc:  # one of the launcher's own endpoints cannot be bound
            print(f"error: {exc}", file=sys.stderr)
            return 2
