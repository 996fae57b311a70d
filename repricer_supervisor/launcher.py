"""Start the whole repricer -- Scheduler, DataManager, APIServer, Ledger and the Algorithm worker(s) --
each in its own OS process, and supervise them.

Supervision (in the spirit of Erlang/OTP supervisors and supervisord): a child that exits or dies is
restarted with exponential backoff and jitter, reset after a stable start; a child whose event loop
misses its heartbeats (blocked, deadlocked, SIGSTOPped) is killed and restarted. One child failing
never stops the others -- except a child that keeps exiting with a configuration error (exit code 2:
a port in use, bad keys): after 3 in a row the launcher gives up, stops everything and exits 2.
SIGINT/SIGTERM stop every child (SIGTERM, then SIGKILL after a grace period); children die with the
launcher even if it is SIGKILLed (PR_SET_PDEATHSIG plus a parent watch).

What cannot work (a missing --data file, --delay not shorter than --tick, no book, a port in use, a
value out of range) is refused before anything starts: one line "error: ..." and exit code 2.

Decisions go to stdout (printed by the Algorithm workers); everything else goes to stderr.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

from actors import kinds, runtime
from actors.algorithm.config import ConfigError, load_config
from actors.algorithm.options import AlgorithmOptions, PricingOptions, book_ids
from actors.api_server.options import APIServerOptions
from actors.dashboard import launch as dashboard
from actors.data_manager.options import DataManagerOptions
from actors.kinds import ActorKind
from actors.ledger.options import DEFAULT_DB, LedgerOptions
from actors.options import add_options, default_of, from_namespace, to_argv
from actors.runtime import RuntimeOptions
from actors.scheduler.options import SchedulerOptions
from repricer_supervisor import preflight
from repricer_supervisor.children import Child
from repricer_supervisor.options import SupervisionOptions
from repricer_supervisor.policy import ChildHealth, RestartPolicy
from repricer_supervisor.preflight import Refusal
from repricer_supervisor.supervisor import Supervisor, SupervisorError
from transport import endpoints, limits
from transport.logs import printable
from transport.security import Keys, Security, SecurityError

log = logging.getLogger("launcher")

STARTUP_ALLOWANCE = 1.5  # seconds: spawning a Python process and importing pyzmq/aiohttp takes ~0.5-1 s


# --- command line ------------------------------------------------------------------------------

# What --run may name, and in which order the launcher starts them.
RUNNABLE: tuple[ActorKind, ...] = kinds.KINDS


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        """One line, ``error: <why>``, exit code 2 (argparse would print the whole usage first)."""
        self.exit(2, f"error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python launcher.py", description=__doc__,
                     formatter_class=argparse.RawDescriptionHelpFormatter)
    # Options the launcher passes on to an actor are declared once, on the actor's options class.
    add_options(parser, DataManagerOptions, only=("csv",), flags={"csv": "--data"})
    parser.add_argument("--wait-for-data", action="store_true",
                        help="with --mode follow: start even if the --data file does not exist yet (the "
                             "DataManager waits for it); without, a missing file is refused at start")
    add_options(parser, PricingOptions)
    add_options(parser, SchedulerOptions, only=("tick",))
    add_options(parser, DataManagerOptions, only=("mode",))
    add_options(parser, SupervisionOptions, only=("duration",))
    parser.add_argument("--workers", type=int, default=1, metavar="N",
                        help=f"Algorithm processes this launcher starts, 1..{limits.LAUNCHER_WORKERS_MAX}; each "
                             "(book, strategy) is owned by one (default 1)")
    parser.add_argument("--run", default=",".join(k.name for k in RUNNABLE), metavar="ACTOR,...",
                        help="which actors this launcher starts (default: all); with the endpoint options, one "
                             "launcher per machine supervises that machine's share")
    parser.add_argument("--workers-total", type=int, default=None, metavar="M",
                        help="Algorithm workers across all launchers (default: --workers)")
    parser.add_argument("--worker-offset", type=int, default=0, metavar="K",
                        help="global index of this launcher's first worker (default 0)")
    parser.add_argument("--data-managers", type=int, default=1, metavar="N",
                        help=f"DataManager processes, 1..{limits.DATA_MANAGERS_MAX}; the Algorithm's DEALER "
                             "load-balances over them (default 1)")
    net = parser.add_argument_group("endpoints")
    net.add_argument("--run-dir", metavar="DIR", default=None,
                     help="use private ipc:// endpoints in DIR instead of the tcp defaults")
    net.add_argument("--ticks-endpoint", default=endpoints.DEFAULT_TICKS)
    net.add_argument("--data-endpoint", default=endpoints.DEFAULT_DATA)
    net.add_argument("--heartbeat-endpoint", default=endpoints.DEFAULT_HEARTBEAT)
    net.add_argument("--events", metavar="ENDPOINT", default=None,
                     help="publish supervisor events (started, exited, hung, stopping, stopped, failed) and each "
                          "process's status on this PUB endpoint, as msgpack SupervisorEvent and ActorStatus "
                          "messages")
    add_options(net, APIServerOptions, only=("port",), flags={"port": "--api-port"})
    net.add_argument("--api-url", default=None,
                     help="where the Algorithm reaches the APIServer (default http://127.0.0.1:<api-port>)")
    sup = parser.add_argument_group("supervision")
    add_options(sup, SupervisionOptions, only=("hang_timeout", "max_backoff", "grace", "status_every"))
    add_options(sup, RuntimeOptions, only=("log_level",))
    add_options(parser.add_argument_group("security"), RuntimeOptions, only=("keys", "insecure"))
    add_ledger_options(parser, net)
    dashboard.add_arguments(parser)
    return parser


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """Parse and check the command line; anything that cannot work is one ``error:`` line and exit 2."""
    parser = build_parser()
    args = parser.parse_args(argv)
    # Each actor's options class validates its own fields: built here, its errors are usage errors.
    args.ledger_options = ledger_options(args, parser)
    args.pricing = from_namespace(PricingOptions, args, parser)
    args.supervision = from_namespace(SupervisionOptions, args, parser)
    from_namespace(SchedulerOptions, args, parser)
    try:
        APIServerOptions(port=args.port)
    except ValueError as exc:
        parser.error(str(exc).replace("--port", "--api-port"))  # the launcher's name for it
    from_namespace(DataManagerOptions, args, parser)
    args.runtime = from_namespace(RuntimeOptions, args, parser)
    try:
        check(args)
    except (Refusal, ConfigError, ValueError, SecurityError) as exc:
        parser.error(str(exc))
    return args


def check(args: argparse.Namespace) -> None:
    """Refuse at start what cannot work (see :mod:`supervisor.preflight`); keeps what it loaded."""
    run = set(endpoints.split_list(args.run))
    unknown = sorted(run - set(kinds.BY_NAME))
    if unknown or not run:
        raise Refusal(f"--run takes a list of {', '.join(k.name for k in RUNNABLE)}"
                      + (f" (unknown: {printable(', '.join(unknown))})" if unknown else ""))
    if not 1 <= args.workers <= limits.LAUNCHER_WORKERS_MAX:
        raise Refusal(f"--workers must be within 1..{limits.LAUNCHER_WORKERS_MAX}, got {args.workers}")
    if not 1 <= args.data_managers <= limits.DATA_MANAGERS_MAX:
        raise Refusal(f"--data-managers must be within 1..{limits.DATA_MANAGERS_MAX}, got {args.data_managers}")
    total = args.workers_total or args.workers
    if not 0 <= args.worker_offset <= total - args.workers:
        raise Refusal(f"--worker-offset {args.worker_offset} + --workers {args.workers} exceeds --workers-total "
                      f"{total}")
    AlgorithmOptions(**pricing_fields(args.pricing), workers_total=total, worker=args.worker_offset)
    args.security = Security(Keys.load(args.keys) if args.keys else None, args.insecure)
    check_endpoints(args, run)
    if (refused := dashboard.refusal(args)) is not None:
        raise Refusal(refused)
    if kinds.DATA_MANAGER.name in run:
        if args.wait_for_data and args.mode != "follow":
            raise Refusal("--wait-for-data is for --mode follow (a replay needs the whole file at start)")
        if not args.wait_for_data:
            preflight.readable_file("--data", args.csv)
    args.books_priced, args.strategies = [], []
    if kinds.ALGORITHM.name in run:
        check_pricing(args)
    check_ports(args, run)


def check_pricing(args: argparse.Namespace) -> None:
    if args.config:
        config = load_config(args.config)  # a ConfigError names the file, the line and the key
        args.books_priced, args.strategies = config.books, list(config.strategies)
        source = f"--config {args.config}"
        delays = [(f"strategy {name!r}: delay", s.delay) for name, s in config.strategies.items()]
    else:
        try:
            args.books_priced = book_ids(args.pricing)
        except (OSError, UnicodeDecodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
            raise Refusal(f"--books-file {printable(args.books_file)}: {reason}") from None
        source = f"--books-file {args.books_file}" if args.books_file else "--books"
        delays = [("--delay", args.pricing.delay)]
    preflight.no_book(args.books_priced, printable(source))
    preflight.delays_within_tick(delays, args.tick)


def check_endpoints(args: argparse.Namespace, run: set[str]) -> None:
    if args.events:
        preflight.valid_endpoints("--events", args.events)
    if args.api_url:
        preflight.valid_url("--api-url", args.api_url)
    elif args.port == 0 and kinds.ALGORITHM.name in run:
        raise Refusal("--api-port 0 (any free port) leaves the Algorithm nowhere to send requests: give a port, or "
                      "--api-url")
    if args.run_dir:
        if not os.path.isdir(args.run_dir):
            raise Refusal(f"--run-dir {printable(args.run_dir)}: not a directory")
        net = endpoints.Endpoints.in_directory(args.run_dir, args.port, args.data_managers)
        for endpoint in (net.ticks, net.heartbeat, *net.data):
            preflight.valid_endpoints("--run-dir", endpoint)
        return
    for flag, value in (("--ticks-endpoint", args.ticks_endpoint), ("--heartbeat-endpoint", args.heartbeat_endpoint)):
        if len(preflight.valid_endpoints(flag, value)) != 1:
            raise Refusal(f"{flag} takes one endpoint, got {printable(value)}")
    preflight.valid_endpoints("--data-endpoint", args.data_endpoint)
    for endpoint in data_endpoints(args):  # N consecutive ports must all exist
        preflight.valid_endpoints("--data-endpoint (with --data-managers)", endpoint)
    ledger = "" if args.no_ledger else args.ledger_endpoint
    if ledger and len(preflight.valid_endpoints("--ledger-endpoint", ledger)) != 1:
        raise Refusal(f"--ledger-endpoint takes one endpoint, got {printable(ledger)}")
    exposed = [e for value in (args.ticks_endpoint, args.data_endpoint, args.heartbeat_endpoint, args.events or "",
                               ledger)
               for e in endpoints.split_list(value) if not endpoints.is_loopback(e)]
    if exposed and not args.keys and not args.insecure:
        # Refused here, once, rather than by every actor in a restart loop.
        raise Refusal(f"refusing to bind {', '.join(exposed)} without CURVE keys: pass --keys DIR "
                      "(python -m transport.security keygen DIR), or --insecure to accept the risk")


def check_ports(args: argparse.Namespace, run: set[str]) -> None:
    """The tcp endpoints this launcher's actors and the launcher itself will bind are free now."""
    binds: list[tuple[str, str]] = []
    if args.events:
        binds.append(("--events", args.events))
    if not args.run_dir:
        if args.heartbeat_endpoint != endpoints.DEFAULT_HEARTBEAT:  # the default becomes a private ipc path
            binds.append(("--heartbeat-endpoint", args.heartbeat_endpoint))
        if kinds.SCHEDULER.name in run:
            binds.append(("--ticks-endpoint", args.ticks_endpoint))
        if kinds.DATA_MANAGER.name in run:
            binds += [("--data-endpoint", endpoint) for endpoint in data_endpoints(args)]
        if kinds.LEDGER.name in run and not args.no_ledger:
            binds.append(("--ledger-endpoint", args.ledger_endpoint))
    for what, endpoint in binds:
        preflight.bindable(what, endpoint)
    if kinds.API_SERVER.name in run and args.port:
        host: str = default_of(APIServerOptions, "host")  # the launcher leaves the APIServer on its default host
        preflight.free("--api-port", f"{args.port} (on {host})", host, args.port)
    if dashboard.wanted(args) and args.dashboard_port:
        preflight.free("--dashboard-port", f"{args.dashboard_port} (on {args.dashboard_host})", args.dashboard_host,
                       args.dashboard_port)


def add_ledger_options(parser: argparse.ArgumentParser, net: argparse._ArgumentGroup) -> None:
    net.add_argument("--ledger-endpoint", default=endpoints.DEFAULT_LEDGER, metavar="ENDPOINT",
                     help="the Ledger's ROUTER: bound by the Ledger, the Algorithm workers connect to it")
    group = parser.add_argument_group("ledger", "every decision kept in SQLite; --db defaults to "
                                      f"{DEFAULT_DB} (DIR/ledger.sqlite3 with --run-dir)")
    group.add_argument("--no-ledger", action="store_true",
                       help="run without the Ledger: decisions only on stdout, pairs resume from the average")
    add_options(group, LedgerOptions, only=("db", "retain_days", "retain_rows", "synchronous"))
    parser.set_defaults(db=None)


def ledger_options(args: argparse.Namespace, parser: argparse.ArgumentParser) -> LedgerOptions:
    if args.db is None:  # a --run-dir run is private: so is its database
        args.db = str(Path(args.run_dir) / "ledger.sqlite3") if args.run_dir else DEFAULT_DB
    return from_namespace(LedgerOptions, args, parser, ledger=args.ledger_endpoint)


def data_endpoints(args: argparse.Namespace) -> tuple[str, ...]:
    """The DataManagers' endpoints: as listed, or N consecutive ports from the one given."""
    data = endpoints.split_list(args.data_endpoint)
    if len(data) == 1 and args.data_managers > 1:
        host, _, port = data[0].rpartition(":")
        data = tuple(f"{host}:{int(port) + i}" for i in range(args.data_managers))
    return data


def build_children(args: argparse.Namespace, t0: float, policy: RestartPolicy) -> tuple[list[Child], str]:
    """Every child this launcher supervises, each with the argv its actor parses, and the heartbeat
    endpoint they report to."""
    if args.run_dir:
        net = endpoints.Endpoints.in_directory(args.run_dir, args.port, args.data_managers)
        if args.api_url:  # an APIServer elsewhere (e.g. --run without apiserver)
            net = dataclasses.replace(net, api_url=args.api_url)
    else:
        net = endpoints.Endpoints(args.ticks_endpoint, data_endpoints(args), args.heartbeat_endpoint,
                                  args.api_url or f"http://127.0.0.1:{args.port}", args.ledger_endpoint)
    # Three beats per hang timeout: one late beat is never taken for a hang.
    beat = min(runtime.HEARTBEAT_INTERVAL, policy.time_to_dead / 3)
    common = to_argv(RuntimeOptions(heartbeat_interval=round(beat, 3), log_level=args.log_level, keys=args.keys,
                                    insecure=args.insecure))
    run = set(endpoints.split_list(args.run)) - ({kinds.LEDGER.name} if args.no_ledger else set())
    children: list[Child] = []

    def add(kind: ActorKind, name: str, options: object) -> None:
        children.append(Child(name, kind, [*to_argv(options), *common], ChildHealth(policy)))

    if kinds.SCHEDULER.name in run:
        add(kinds.SCHEDULER, kinds.SCHEDULER.name, SchedulerOptions(ticks=net.ticks, tick=args.tick, t0=t0))
    if kinds.API_SERVER.name in run:
        add(kinds.API_SERVER, kinds.API_SERVER.name, APIServerOptions(port=args.port))
    if kinds.LEDGER.name in run:
        add(kinds.LEDGER, kinds.LEDGER.name, dataclasses.replace(args.ledger_options, ledger=net.ledger))
    if kinds.DATA_MANAGER.name in run:
        for index, endpoint in enumerate(net.data):
            add(kinds.DATA_MANAGER, kinds.DATA_MANAGER.instance(index, len(net.data)),
                DataManagerOptions(data=endpoint, csv=args.csv, mode=args.mode))
    if kinds.ALGORITHM.name in run:
        # Worker indexes are global, so launchers on several machines can share one set of pairs.
        total = args.workers_total or args.workers
        for local in range(args.workers):
            worker = args.worker_offset + local
            add(kinds.ALGORITHM, kinds.ALGORITHM.instance(worker, total),
                AlgorithmOptions(**pricing_fields(args.pricing), ticks=net.ticks, data=",".join(net.data),
                                 api_url=net.api_url, workers_total=total, worker=worker,
                                 ledger="" if args.no_ledger else net.ledger))
    if dashboard.wanted(args):
        add(kinds.DASHBOARD, kinds.DASHBOARD.name, dashboard.child_options(args))
    return children, net.heartbeat


def pricing_fields(pricing: PricingOptions) -> dict[str, Any]:
    return {f.name: getattr(pricing, f.name) for f in dataclasses.fields(PricingOptions)}


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    runtime.setup_logging("launcher", args.log_level)
    if args.books_priced:
        strategies = f" x strategies {', '.join(args.strategies)}" if args.strategies else ""
        log.info("pricing %s%s", preflight.priced(args.books_priced), strategies)
    supervision: SupervisionOptions = args.supervision
    policy = supervision.policy()
    cleanup: tempfile.TemporaryDirectory[str] | None = None
    if args.run_dir is None and args.heartbeat_endpoint == endpoints.DEFAULT_HEARTBEAT:
        # The heartbeat channel is private to this launcher: an ipc path nobody else can collide with.
        cleanup = tempfile.TemporaryDirectory(prefix="repricer-")
        args.heartbeat_endpoint = f"ipc://{cleanup.name}/heartbeat.sock"
    if dashboard.wanted(args) and args.events is None:
        directory = args.run_dir or (cleanup := cleanup or tempfile.TemporaryDirectory(prefix="repricer-")).name
        dashboard.private_events(args, directory)
    # Tick 0 is due once every actor has had time to start and connect (a SUB that joins late misses
    # what was published before it joined).
    t0 = time.time() + STARTUP_ALLOWANCE
    children, heartbeat = build_children(args, t0, policy)
    supervisor = Supervisor(children, heartbeat, grace=supervision.grace, status_every=supervision.status_every,
                            security=args.security, events_endpoint=args.events)
    if dashboard.wanted(args):
        log.info("dashboard: %s", dashboard.url(args))
    try:
        with supervisor:
            return supervisor.run(supervision.duration)
    except SupervisorError as exc:  # one of the launcher's own endpoints cannot be bound
        print(f"error: {exc}", file=sys.stderr)
        return 2
    finally:
        if cleanup is not None:
            cleanup.cleanup()
