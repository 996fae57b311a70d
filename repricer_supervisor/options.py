"""The launcher's options, declared once as dataclass fields like every actor's (:mod:`actors.options`):
default, help and bounds in one place; a bad value is one usage error at start.

What the launcher passes on to an actor is not declared here again: it is borrowed from the actor's
options class (:func:`~actors.options.borrow`: ``--tick`` is the Scheduler's, ``--data-file`` the
DataManager's, every pricing option the Algorithm's), so a default or a bound changes in one place.
What these options mean as processes and endpoints is :mod:`repricer_supervisor.plan`; what must be
checked against the machine (files, ports, keys) is :mod:`repricer_supervisor.preflight`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, fields
from pathlib import Path

from actors import kinds
from actors.algorithm.options import DEFAULT_SPOOL_DIR, AlgorithmOptions, PricingOptions
from actors.api_server.options import APIServerOptions
from actors.dashboard.launch import DashboardLaunch
from actors.data_manager.options import DataManagerOptions
from actors.kinds import ActorKind
from actors.ledger.options import DEFAULT_DB, LedgerOptions
from actors.options import borrow, borrowed, default_of, group, option
from actors.runtime import RuntimeOptions
from actors.scheduler.options import SchedulerOptions
from repricer_supervisor.policy import RestartPolicy
from repricer_supervisor.preflight import Refusal, valid_endpoints, valid_url
from transport import endpoints, limits
from transport.logs import printable

API_PORT: int = default_of(APIServerOptions, "port")
RUNNABLE: tuple[ActorKind, ...] = kinds.KINDS  # what --run may name, in the order the launcher starts them


def _seconds(name: str, value: float | None, low: float, high: float) -> None:
    if value is not None and not low <= value <= high:  # also refuses nan and inf
        raise ValueError(f"--{name.replace('_', '-')} must be within {low:g}..{high:.0f} seconds, got {value}")


@dataclass(frozen=True, slots=True)
class SupervisionOptions:
    duration: float | None = option(None, "stop cleanly S seconds after the first tick, however long the start "
                                    "took (default: run until Ctrl-C / SIGTERM)",
                                    parse=float, metavar="S")
    hang_timeout: float = option(default_of(RestartPolicy, "time_to_dead"),
                                 "kill and restart an actor silent for this long", metavar="S")
    max_backoff: float = option(default_of(RestartPolicy, "max_backoff"),
                                "longest wait between restarts of a crashing actor", metavar="S")
    grace: float = option(5.0, "on stop, SIGKILL actors still running after S seconds", metavar="S")
    status_every: float = option(60.0, "log every actor's RSS and counters every S seconds (and publish them "
                                 "on --events-endpoint)", metavar="S")

    def __post_init__(self) -> None:
        _seconds("duration", self.duration, 0.01, 1e9)
        _seconds("grace", self.grace, 0.01, 600)
        _seconds("status_every", self.status_every, 0.1, 86_400)
        self.policy()  # --hang-timeout and --max-backoff are checked by the policy itself

    def policy(self) -> RestartPolicy:
        return RestartPolicy(time_to_dead=self.hang_timeout, max_backoff=self.max_backoff)


@dataclass(frozen=True, slots=True)
class EndpointOptions:
    """Where the actors meet: each ``--NAME-endpoint`` is a ZeroMQ endpoint (as in every actor)."""

    run_dir: str | None = option(None, "run a system of its own beside others on this machine: every ZeroMQ "
                                 "endpoint a private ipc:// socket in DIR (created if missing, one launcher at a "
                                 "time), the Ledger's database DIR/ledger.sqlite3, and the APIServer and the Dashboard "
                                 "on free ports (chosen at start and logged) unless given",
                                 metavar="DIR")
    ticks_endpoint: str = borrow(SchedulerOptions, "ticks_endpoint",
                                 help="the Scheduler's PUB: bound by the Scheduler, the Algorithm workers connect "
                                      "to it")
    data_endpoint: str = borrow(DataManagerOptions, "data_endpoint",
                                help="the DataManagers' ROUTERs: a list, or the first of --data-managers consecutive "
                                     "ports")
    heartbeat_endpoint: str | None = borrow(RuntimeOptions, "heartbeat_endpoint",
                                            help="where the actors' heartbeats come in (default: a private ipc:// "
                                                 "path)")
    events_endpoint: str | None = option(None, "publish supervisor events (started, exited, hung, stopping, "
                                         "stopped, failed) and each process's status on this PUB endpoint, as msgpack "
                                         "SupervisorEvent and ActorStatus messages", metavar="ENDPOINT",
                                         deprecated=("--events",))
    api_port: int | None = borrow(APIServerOptions, "port", flag="--api-port", default=None,
                                  help=f"the APIServer's port (default {API_PORT}; with --run-dir a free port); 0 = a "
                                       "free port, chosen at start and logged")
    api_url: str | None = option(None, "where the Algorithm reaches the APIServer (default "
                                 "http://127.0.0.1:<api-port>)")

    @property
    def bound_api_port(self) -> int:
        """The port the APIServer binds: as given, else its default (the launcher chooses one first for
        0, and under --run-dir for none given: :func:`repricer_supervisor.preflight.choose_port`)."""
        return API_PORT if self.api_port is None else self.api_port

    def __post_init__(self) -> None:
        borrowed(self, APIServerOptions, port=self.bound_api_port)
        if self.events_endpoint:
            valid_endpoints("--events-endpoint", self.events_endpoint)
        if self.api_url:
            valid_url("--api-url", self.api_url)


@dataclass(frozen=True, slots=True)
class SecurityOptions:
    keys: str | None = borrow(RuntimeOptions, "keys")
    insecure: bool = borrow(RuntimeOptions, "insecure")


@dataclass(frozen=True, slots=True)
class LedgerLaunch:
    """The Ledger as the launcher starts it; its --db defaults to DIR/ledger.sqlite3 with --run-dir."""

    no_ledger: bool = option(False, "run without the Ledger: decisions only on stdout, pairs resume from the "
                             "average")
    ledger_endpoint: str = borrow(LedgerOptions, "ledger_endpoint",
                                  help="the Ledger's ROUTER: bound by the Ledger, the Algorithm workers connect to it")
    db: str | None = borrow(LedgerOptions, "db", default=None,
                            help="the Ledger's SQLite database (default: var/ledger.sqlite3 in the project's folder, "
                                 f"{DEFAULT_DB}, whatever the working directory; DIR/ledger.sqlite3 with --run-dir); "
                                 "created, with its directory, on first start")
    retain_days: float = borrow(LedgerOptions, "retain_days")
    retain_rows: int = borrow(LedgerOptions, "retain_rows")
    synchronous: str = borrow(LedgerOptions, "synchronous")

    def __post_init__(self) -> None:
        borrowed(self, LedgerOptions, db=self.db or DEFAULT_DB)


@dataclass(frozen=True, slots=True)
class SpoolLaunch:
    """Each Algorithm worker's spool (keep, then print); --spool-dir defaults to DIR/spool with --run-dir,
    DB.spool with --db: the spool belongs to the database it delivers to."""

    spool_dir: str | None = borrow(AlgorithmOptions, "spool_dir", default=None,
                                   help=f"where each worker keeps its decisions before printing them: DIR/algorithm-K "
                                        f"per worker (default {DEFAULT_SPOOL_DIR}, DIR/spool with --run-dir, "
                                        "DB.spool with --db: the database it delivers to); "
                                        "a restarted worker delivers from it what the Ledger never acknowledged")
    spool_max_bytes: int = borrow(AlgorithmOptions, "spool_max_bytes")
    ledger_backlog: int = borrow(AlgorithmOptions, "ledger_backlog")
    no_spool: bool = borrow(AlgorithmOptions, "no_spool")


@dataclass(frozen=True, slots=True)
class LauncherOptions:
    """``python launcher.py``'s whole command line."""

    data_file: str = borrow(DataManagerOptions, "data_file", deprecated=("--data",))
    wait_for_data: bool = option(False, "with --mode follow: start even if the --data-file does not exist yet (the "
                                 "DataManager waits for it); without, a missing file is refused at start")
    mode: str = borrow(DataManagerOptions, "mode")
    tick: float = borrow(SchedulerOptions, "tick")
    run: tuple[str, ...] = option(tuple(k.name for k in RUNNABLE), "which actors this launcher starts; with the "
                                  "endpoint options, one launcher per machine supervises that machine's share",
                                  parse=endpoints.split_list, render=",".join, metavar="ACTOR,...")
    workers: int = option(1, f"Algorithm processes this launcher starts, 1..{limits.LAUNCHER_WORKERS_MAX}; each "
                          "(book, strategy) is owned by one", metavar="N")
    workers_total: int | None = option(None, "Algorithm workers across all launchers (default: --workers)",
                                       parse=int, metavar="M")
    worker_offset: int = option(0, "global index of this launcher's first worker", metavar="K")
    data_managers: int = option(1, f"DataManager processes, 1..{limits.DATA_MANAGERS_MAX}; the Algorithm's DEALER "
                                "load-balances over them", metavar="N")
    log_level: str = borrow(RuntimeOptions, "log_level")
    pricing: PricingOptions = group(PricingOptions, "pricing (each Algorithm worker's)")
    net: EndpointOptions = group(EndpointOptions, "endpoints")
    supervision: SupervisionOptions = group(SupervisionOptions, "supervision")
    security: SecurityOptions = group(SecurityOptions, "security")
    ledger: LedgerLaunch = group(LedgerLaunch, "ledger: every decision kept in SQLite")
    spool: SpoolLaunch = group(SpoolLaunch, "spool: every decision kept on the worker's disk before it is printed")
    dashboard: DashboardLaunch = group(DashboardLaunch, "dashboard")

    def __post_init__(self) -> None:
        borrowed(self, SchedulerOptions)
        borrowed(self, DataManagerOptions)
        unknown = sorted(set(self.run) - set(kinds.BY_NAME))
        if unknown or not self.run:
            raise Refusal(f"--run takes a list of {', '.join(k.name for k in RUNNABLE)}"
                          + (f" (unknown: {printable(', '.join(unknown))})" if unknown else ""))
        if not 1 <= self.workers <= limits.LAUNCHER_WORKERS_MAX:
            raise Refusal(f"--workers must be within 1..{limits.LAUNCHER_WORKERS_MAX}, got {self.workers}")
        if not 1 <= self.data_managers <= limits.DATA_MANAGERS_MAX:
            raise Refusal(f"--data-managers must be within 1..{limits.DATA_MANAGERS_MAX}, got {self.data_managers}")
        if not 0 <= self.worker_offset <= self.total_workers - self.workers:
            raise Refusal(f"--worker-offset {self.worker_offset} + --workers {self.workers} exceeds --workers-total "
                          f"{self.total_workers}")
        self.worker_options(self.worker_offset, endpoints.Endpoints())  # --workers-total and the pricing options
        self._check_endpoints()
        if self.starts(kinds.DASHBOARD) and (refused := self.dashboard.refusal(self.security.insecure)) is not None:
            raise Refusal(refused)
        if self.starts(kinds.DATA_MANAGER) and self.wait_for_data and self.mode != "follow":
            raise Refusal("--wait-for-data is for --mode follow (a replay needs the whole file at start)")

    def _check_endpoints(self) -> None:
        net = self.net
        if not self.starts(kinds.API_SERVER) and net.api_port == 0 and not net.api_url and self.starts(kinds.ALGORITHM):
            raise Refusal("--api-port 0 (any free port) with no APIServer started here leaves the Algorithm nowhere to "
                          "send requests: give the other launcher's port, or --api-url")
        if net.run_dir:
            mine = endpoints.Endpoints.in_directory(net.run_dir, net.bound_api_port, self.data_managers)
            for endpoint in (mine.ticks, mine.heartbeat, *mine.data):
                valid_endpoints("--run-dir", endpoint)
            return
        for flag, value in (("--ticks-endpoint", net.ticks_endpoint), ("--heartbeat-endpoint", net.heartbeat_endpoint)):
            if value is not None and len(valid_endpoints(flag, value)) != 1:
                raise Refusal(f"{flag} takes one endpoint, got {printable(value)}")
        valid_endpoints("--data-endpoint", net.data_endpoint)
        for endpoint in self.data_endpoints:  # N consecutive ports must all exist
            valid_endpoints("--data-endpoint (with --data-managers)", endpoint)
        ledger = "" if self.ledger.no_ledger else self.ledger.ledger_endpoint
        if ledger and len(valid_endpoints("--ledger-endpoint", ledger)) != 1:
            raise Refusal(f"--ledger-endpoint takes one endpoint, got {printable(ledger)}")
        listed = (net.ticks_endpoint, net.data_endpoint, net.heartbeat_endpoint, net.events_endpoint, ledger)
        exposed = [e for value in listed for e in endpoints.split_list(value or "") if not endpoints.is_loopback(e)]
        if exposed and not self.security.keys and not self.security.insecure:
            # Refused here, once, rather than by every actor in a restart loop.
            raise Refusal(f"refusing to bind {', '.join(exposed)} without CURVE keys: pass --keys DIR "
                          "(python -m transport.security keygen DIR), or --insecure to accept the risk")

    # --- what follows from them ----------------------------------------------------------------

    def starts(self, kind: ActorKind) -> bool:
        """Whether this launcher starts (and supervises) actors of ``kind``."""
        if kind is kinds.DASHBOARD:
            return self.dashboard.wanted(self.run)
        if kind is kinds.LEDGER and self.ledger.no_ledger:
            return False
        return kind.name in self.run

    @property
    def total_workers(self) -> int:
        return self.workers_total or self.workers

    @property
    def ledger_db(self) -> str:
        """The Ledger's database: a --run-dir run is private, so is its database."""
        if self.ledger.db is not None:
            return os.path.abspath(self.ledger.db)  # the start line and every child name one file
        return os.path.abspath(Path(self.net.run_dir) / "ledger.sqlite3") if self.net.run_dir else DEFAULT_DB

    @property
    def spool_dir(self) -> str:
        """The workers' spools belong to the database they deliver to: a --run-dir run is private, so are
        its spools; with --db, ``<db>.spool`` beside it (a spool shared by two databases would resume a
        pair of one from a price the other was given)."""
        if self.spool.spool_dir is not None:
            return os.path.abspath(self.spool.spool_dir)  # every worker names one directory, whatever its cwd
        if self.net.run_dir:
            return os.path.abspath(Path(self.net.run_dir) / "spool")
        if self.ledger.db is not None:
            return os.path.abspath(self.ledger.db) + ".spool"
        return DEFAULT_SPOOL_DIR

    @property
    def data_endpoints(self) -> tuple[str, ...]:
        """The DataManagers' endpoints: as listed, or N from the one given (consecutive tcp ports, or ipc
        sockets beside it: :func:`transport.endpoints.numbered`)."""
        data = endpoints.split_list(self.net.data_endpoint)
        if len(data) == 1 and self.data_managers > 1:
            data = tuple(endpoints.numbered(data[0], i) for i in range(self.data_managers))
        return data

    def worker_options(self, worker: int, net: endpoints.Endpoints) -> AlgorithmOptions:
        """Algorithm worker ``worker``'s options, its peers at ``net`` (``worker`` is a global index:
        launchers on several machines share one set of pairs)."""
        pricing = {f.name: getattr(self.pricing, f.name) for f in fields(PricingOptions)}
        return AlgorithmOptions(**pricing, ticks_endpoint=net.ticks, data_endpoint=",".join(net.data),
                                api_url=net.api_url, ledger_endpoint="" if self.ledger.no_ledger else net.ledger,
                                workers_total=self.total_workers, worker=worker, spool_dir=self.spool_dir,
                                spool_max_bytes=self.spool.spool_max_bytes, ledger_backlog=self.spool.ledger_backlog,
                                no_spool=self.spool.no_spool)
