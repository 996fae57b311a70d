"""Start the whole repricer -- Scheduler, DataManager, APIServer and the Algorithm worker(s) -- each in
its own OS process, and supervise them.

Supervision (in the spirit of Erlang/OTP supervisors and supervisord): a child that exits or dies is
restarted with exponential backoff and jitter, reset after a stable start; a child whose event loop
misses its heartbeats (blocked, deadlocked, SIGSTOPped) is killed and restarted. One child failing
never stops the others. SIGINT/SIGTERM stop every child (SIGTERM, then SIGKILL after a grace period);
children die with the launcher even if it is SIGKILLed (PR_SET_PDEATHSIG plus a parent watch).

Decisions go to stdout (printed by the Algorithm workers); everything else goes to stderr.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import re
import sys
import tempfile
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from actors import kinds, runtime
from actors.algorithm.config import ConfigError, load_config
from actors.algorithm.options import DEFAULT_BOOKS, AlgorithmOptions, PricingOptions
from actors.api_server.options import APIServerOptions
from actors.data_manager.options import DataManagerOptions
from actors.kinds import ActorKind
from actors.options import add_options, default_of, from_namespace, to_argv
from actors.runtime import RuntimeOptions
from actors.scheduler.options import SchedulerOptions
from supervisor.children import Child
from supervisor.policy import ChildHealth, RestartPolicy
from supervisor.procfs import rss_kib as rss_kib
from supervisor.supervisor import Supervisor, SupervisorError
from transport import endpoints
from transport.security import Keys, Security, SecurityError

log = logging.getLogger("launcher")

ROOT = Path(__file__).resolve().parent
DEFAULT_CSV = ROOT / "data" / "data.csv"
STARTUP_ALLOWANCE = 1.5  # seconds: spawning a Python process and importing pyzmq/aiohttp takes ~0.5-1 s

# The launcher's "started NAME pid=PID" log line, parsed here beside the code that writes it, so tools
# that follow a run through its log (tests, benchmarks) share one reading of it.
STARTED_LINE = re.compile(r"started (\S+) pid=(\d+)")


def started_pids(lines: Iterable[str]) -> dict[str, int]:
    """The newest pid of each actor, from a launcher's log lines."""
    return {m.group(1): int(m.group(2)) for line in lines if (m := STARTED_LINE.search(line))}


# --- command line ------------------------------------------------------------------------------

# What --run may name, and in which order the launcher starts them.
RUNNABLE: tuple[ActorKind, ...] = kinds.KINDS


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python launcher.py", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    # Options the launcher passes on to an actor are declared once, on the actor's options class.
    add_options(parser, DataManagerOptions, only=("csv",), flags={"csv": "--data"})
    add_options(parser, PricingOptions)
    add_options(parser, SchedulerOptions, only=("tick",))
    add_options(parser, DataManagerOptions, only=("mode",))
    parser.add_argument("--duration", type=float, default=None, metavar="S",
                        help="stop cleanly after S seconds (default: run until Ctrl-C / SIGTERM)")
    parser.add_argument("--workers", type=int, default=1, metavar="N",
                        help="Algorithm processes this launcher starts; each (book, strategy) is owned by one "
                             "(default 1)")
    parser.add_argument("--run", default=",".join(k.name for k in RUNNABLE), metavar="ACTOR,...",
                        help="which actors this launcher starts (default: all); with the endpoint options, "
                             "one launcher per machine supervises that machine's share")
    parser.add_argument("--workers-total", type=int, default=None, metavar="M",
                        help="Algorithm workers across all launchers (default: --workers)")
    parser.add_argument("--worker-offset", type=int, default=0, metavar="K",
                        help="global index of this launcher's first worker (default 0)")
    parser.add_argument("--data-managers", type=int, default=1, metavar="N",
                        help="DataManager processes; the Algorithm's DEALER load-balances over them (default 1)")
    net = parser.add_argument_group("endpoints")
    net.add_argument("--run-dir", metavar="DIR", default=None,
                     help="use private ipc:// endpoints in DIR instead of the tcp defaults")
    net.add_argument("--ticks-endpoint", default=endpoints.DEFAULT_TICKS)
    net.add_argument("--data-endpoint", default=endpoints.DEFAULT_DATA)
    net.add_argument("--heartbeat-endpoint", default=endpoints.DEFAULT_HEARTBEAT)
    net.add_argument("--events", metavar="ENDPOINT", default=None,
                     help="publish supervisor events (started, exited, hung, stopping, stopped) and each "
                          "process's status on this PUB endpoint, as msgpack SupervisorEvent and ActorStatus "
                          "messages")
    add_options(net, APIServerOptions, only=("port",), flags={"port": "--api-port"})
    net.add_argument("--api-url", default=None,
                     help="where the Algorithm reaches the APIServer (default http://127.0.0.1:<api-port>)")
    sup = parser.add_argument_group("supervision")
    sup.add_argument("--hang-timeout", type=float, default=default_of(RestartPolicy, "time_to_dead"), metavar="S",
                     help="kill and restart an actor silent for this long (default %(default)s)")
    sup.add_argument("--max-backoff", type=float, default=default_of(RestartPolicy, "max_backoff"), metavar="S",
                     help="longest wait between restarts of a crashing actor (default %(default)s)")
    sup.add_argument("--grace", type=float, default=5.0, metavar="S",
                     help="on stop, SIGKILL actors still running after S seconds (default %(default)s)")
    sup.add_argument("--status-every", type=float, default=60.0, metavar="S",
                     help="log every actor's RSS and counters every S seconds (default %(default)s)")
    add_options(sup, RuntimeOptions, only=("log_level",))
    add_options(parser.add_argument_group("security"), RuntimeOptions, only=("keys", "insecure"))
    args = parser.parse_args(argv)
    args.pricing = from_namespace(PricingOptions, args, parser)
    if args.tick <= 0:
        parser.error("--tick must be positive")
    if args.workers < 1 or args.data_managers < 1:
        parser.error("--workers and --data-managers must be at least 1")
    names = endpoints.split_list(args.run)
    unknown = [name for name in names if name not in kinds.BY_NAME]
    if unknown or not names:
        parser.error(f"--run takes a list of {', '.join(k.name for k in RUNNABLE)}"
                     + (f" (unknown: {', '.join(unknown)})" if unknown else ""))
    total = args.workers_total or args.workers
    if not 0 <= args.worker_offset <= total - args.workers:
        parser.error(f"--worker-offset {args.worker_offset} + --workers {args.workers} exceeds --workers-total {total}")
    return args


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
    else:
        net = endpoints.Endpoints(args.ticks_endpoint, data_endpoints(args), args.heartbeat_endpoint,
                                  args.api_url or f"http://127.0.0.1:{args.port}")
    # Three beats per hang timeout: one late beat is never taken for a hang.
    beat = min(runtime.HEARTBEAT_INTERVAL, args.hang_timeout / 3)
    common = to_argv(RuntimeOptions(heartbeat_interval=round(beat, 3), log_level=args.log_level, keys=args.keys,
                                    insecure=args.insecure))
    run = set(endpoints.split_list(args.run))
    children: list[Child] = []

    def add(kind: ActorKind, name: str, options: object) -> None:
        children.append(Child(name, kind, [*to_argv(options), *common], ChildHealth(policy)))

    if kinds.SCHEDULER.name in run:
        add(kinds.SCHEDULER, kinds.SCHEDULER.name, SchedulerOptions(ticks=net.ticks, tick=args.tick, t0=t0))
    if kinds.API_SERVER.name in run:
        add(kinds.API_SERVER, kinds.API_SERVER.name, APIServerOptions(port=args.port))
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
                                 api_url=net.api_url, workers_total=total, worker=worker))
    return children, net.heartbeat


def pricing_fields(pricing: PricingOptions) -> dict[str, Any]:
    return {f.name: getattr(pricing, f.name) for f in dataclasses.fields(PricingOptions)}


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    runtime.setup_logging("launcher", args.log_level)
    if args.config:
        try:  # refuse a bad config now, with file, line and key, rather than crash-looping the workers
            config = load_config(args.config)
        except ConfigError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        log.info("config %s: %d book(s), strategies %s", args.config, len(config.books),
                 ", ".join(config.strategies))
    if args.books == ",".join(DEFAULT_BOOKS) and Path(args.csv).resolve() != DEFAULT_CSV:
        log.info("--books not given: pricing the default books %s", args.books)
    exposed = [e for e in (args.ticks_endpoint, args.data_endpoint, args.heartbeat_endpoint, args.events)
               if e and not endpoints.is_loopback(e)]
    if exposed and not args.keys and not args.insecure and not args.run_dir:
        # Refused here, once, rather than by every actor in a restart loop.
        print(f"error: refusing to bind {', '.join(exposed)} without CURVE keys: pass --keys DIR "
              "(python -m transport.security keygen DIR), or --insecure to accept the risk", file=sys.stderr)
        return 2
    try:
        security = Security(Keys.load(args.keys) if args.keys else None, args.insecure)
    except SecurityError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    policy = RestartPolicy(time_to_dead=args.hang_timeout, max_backoff=args.max_backoff)
    cleanup: tempfile.TemporaryDirectory[str] | None = None
    if args.run_dir is None and args.heartbeat_endpoint == endpoints.DEFAULT_HEARTBEAT:
        # The heartbeat channel is private to this launcher: an ipc path nobody else can collide with.
        cleanup = tempfile.TemporaryDirectory(prefix="repricer-")
        args.heartbeat_endpoint = f"ipc://{cleanup.name}/heartbeat.sock"
    # Tick 0 is due once every actor has had time to start and connect (a SUB that joins late misses
    # what was published before it joined).
    t0 = time.time() + STARTUP_ALLOWANCE
    children, heartbeat = build_children(args, t0, policy)
    supervisor = Supervisor(children, heartbeat, grace=args.grace, status_every=args.status_every,
                            security=security, events_endpoint=args.events)
    try:
        with supervisor:
            return supervisor.run(args.duration)
    except SupervisorError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    finally:
        if cleanup is not None:
            cleanup.cleanup()


if __name__ == "__main__":
    sys.exit(main())
