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
import contextlib
import importlib
import logging
import multiprocessing
import multiprocessing.process
import os
import re
import signal
import sys
import tempfile
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import zmq

from actors import runtime
from actors.cli import DEFAULT_BOOKS, add_pricing_arguments
from actors.config import ConfigError, load_config
from actors.supervision import ChildHealth, RestartPolicy
from transport import endpoints, protocol, sockets
from transport.protocol import Heartbeat, ProtocolError, SupervisorEvent
from transport.security import Keys, Security, SecurityError

log = logging.getLogger("launcher")

ROOT = Path(__file__).resolve().parent
DEFAULT_CSV = ROOT / "data" / "data.csv"
CHECK_INTERVAL_MS = 1000  # exits, hangs and heartbeats are looked at once a second
ACTOR_KINDS = ("scheduler", "datamanager", "apiserver", "algorithm")
STARTUP_ALLOWANCE = 1.5  # seconds: spawning a Python process and importing pyzmq/aiohttp takes ~0.5-1 s


def _child_main(module: str, argv: list[str], liveness: Any) -> None:
    """Entry point of every child: run ``actors.<module>.main(argv)`` and exit with its code, stamping
    ``liveness`` (a shared double) at every heartbeat."""
    runtime.liveness = liveness
    sys.exit(importlib.import_module(f"actors.{module}").main(argv))


@dataclass
class Child:
    """One supervised actor process."""

    name: str
    module: str
    argv: list[str]
    health: ChildHealth
    process: multiprocessing.process.BaseProcess | None = None
    restart_at: float | None = None  # set while waiting out a backoff
    liveness: Any = None  # the shared double the running process stamps at every heartbeat
    last_counters: dict[str, int] = field(default_factory=dict)

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None


# The launcher's "started NAME pid=PID" log line, parsed here beside the code that writes it, so tools
# that follow a run through its log (tests, benchmarks) share one reading of it.
STARTED_LINE = re.compile(r"started (\S+) pid=(\d+)")


def started_pids(lines: Iterable[str]) -> dict[str, int]:
    """The newest pid of each actor, from a launcher's log lines."""
    return {m.group(1): int(m.group(2)) for line in lines if (m := STARTED_LINE.search(line))}


def describe_exit(exitcode: int | None) -> str:
    if exitcode is None:
        return "still running"
    if exitcode < 0:
        return f"killed by {signal.Signals(-exitcode).name}"
    return f"exit code {exitcode}"


def rss_kib(pid: int) -> int:
    """Resident set size of ``pid`` in KiB, 0 if it is gone (read from /proc: no extra dependency)."""
    try:
        with open(f"/proc/{pid}/statm") as statm:
            return int(statm.read().split()[1]) * (os.sysconf("SC_PAGE_SIZE") // 1024)
    except (OSError, IndexError, ValueError):
        return 0


def pss_kib(pid: int) -> int:
    """Proportional set size of ``pid`` in KiB: RSS with shared pages (libpython, libzmq, ...) divided
    among the processes sharing them, so summing it over processes does not count them five times."""
    try:
        with open(f"/proc/{pid}/smaps_rollup") as rollup:
            for line in rollup:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except (OSError, IndexError, ValueError):
        pass
    return 0


class Launcher:
    def __init__(self, children: Sequence[Child], heartbeat_endpoint: str, policy: RestartPolicy,
                 grace: float = 5.0, status_every: float = 60.0, security: Security | None = None,
                 events_endpoint: str | None = None) -> None:
        self._security = security or Security()
        self._events_endpoint = events_endpoint
        self._events: zmq.Socket[bytes] | None = None
        self.children = {child.name: child for child in children}
        self._heartbeat_endpoint = heartbeat_endpoint
        self._policy = policy
        self._grace = grace
        self._status_every = status_every
        self._mp = multiprocessing.get_context("spawn")  # no fork: safe with threads and ZeroMQ contexts
        self.counters = {"starts": 0, "exits": 0, "hangs": 0, "bad_heartbeats": 0}

    def _publish(self, event: str, child: Child, pid: int | None, detail: str = "") -> None:
        """Supervisor state as events others can subscribe to (as circus does), besides the log."""
        if self._events is not None:
            frame = protocol.encode(SupervisorEvent(time.time(), event, child.name, pid or 0, detail))
            with contextlib.suppress(zmq.Again):  # PUB drops rather than blocks; nobody may listen
                self._events.send(frame, zmq.NOBLOCK)

    # --- children ------------------------------------------------------------------------------

    def _start(self, child: Child) -> None:
        argv = [*child.argv, "--heartbeat", self._heartbeat_endpoint, "--parent-pid", str(os.getpid())]
        child.liveness = self._mp.RawValue("d", 0.0)  # a fresh one per start: no stale stamp
        process = self._mp.Process(target=_child_main, args=(child.module, argv, child.liveness),
                                   name=child.name)
        process.start()
        child.process = process
        child.restart_at = None
        child.health.on_start(time.monotonic())
        self.counters["starts"] += 1
        log.info("started %s pid=%d%s", child.name, process.pid,
                 f" (restart #{child.health.restarts})" if child.health.restarts else "")
        self._publish("started", child, process.pid, f"restart #{child.health.restarts}")

    def _reap(self, child: Child, reason: str | None = None) -> None:
        """The child has exited: record it and schedule its restart."""
        process = child.process
        assert process is not None
        process.join(timeout=0)
        now = time.monotonic()
        delay = child.health.on_exit(now)
        child.process = None
        child.restart_at = now + delay
        self.counters["exits"] += 1
        log.warning("%s pid=%d %s%s; restarting in %.1fs (restart #%d)", child.name, process.pid,
                    reason + ", " if reason else "", describe_exit(process.exitcode), delay,
                    child.health.restarts)
        self._publish("exited", child, process.pid,
                      f"{reason + ', ' if reason else ''}{describe_exit(process.exitcode)}; restart in {delay:.1f}s")
        process.close()

    def _kill_hung(self, child: Child, now: float) -> None:
        assert child.process is not None and child.process.pid is not None
        silent = now - (child.health.last_heartbeat or child.health.started_at or now)
        self.counters["hangs"] += 1
        log.error("%s pid=%d hung: no heartbeat for %.1fs; killing it", child.name, child.process.pid, silent)
        self._publish("hung", child, child.process.pid, f"no heartbeat for {silent:.1f}s")
        with contextlib.suppress(ProcessLookupError):
            os.kill(child.process.pid, signal.SIGKILL)  # SIGKILL also ends a SIGSTOPped process
        child.process.join(timeout=2.0)
        self._reap(child, "hung")

    def _check(self) -> None:
        now = time.monotonic()
        for child in self.children.values():
            if child.process is not None:
                stamp = child.liveness.value if child.liveness is not None else 0.0
                if stamp and stamp > (child.health.last_heartbeat or 0.0):
                    child.health.on_heartbeat(stamp)  # stamped with the same monotonic clock
                if child.process.exitcode is not None:
                    self._reap(child)
                elif child.health.is_hung(now):
                    self._kill_hung(child, now)
            if child.process is None and child.restart_at is not None and now >= child.restart_at:
                self._start(child)

    def _on_heartbeat(self, frame: bytes) -> None:
        try:
            beat = protocol.decode_as(frame, Heartbeat)
        except ProtocolError as exc:
            self.counters["bad_heartbeats"] += 1
            log.warning("rejected a heartbeat frame: %s", exc)
            return
        # Matched by pid, not name: several processes run the same actor (workers, DataManagers).
        child = next((c for c in self.children.values() if c.pid == beat.pid), None)
        if child is None:
            return  # from a process we already replaced: ignore
        child.health.on_heartbeat(time.monotonic())
        child.last_counters = beat.counters

    def _report_status(self) -> None:
        me = os.getpid()
        total_rss, total_pss = rss_kib(me), pss_kib(me)
        for child in self.children.values():
            rss, pss = (rss_kib(child.pid), pss_kib(child.pid)) if child.pid else (0, 0)
            total_rss += rss
            total_pss += pss
            log.info("status %s pid=%s rss_kib=%d pss_kib=%d restarts=%d counters=%s", child.name, child.pid, rss,
                     pss, child.health.restarts, child.last_counters)
        log.info("status launcher pid=%d rss_kib=%d total_rss_kib=%d total_pss_kib=%d %s", me, rss_kib(me),
                 total_rss, total_pss, self.counters)

    # --- loop ----------------------------------------------------------------------------------

    def run(self, duration: float | None = None) -> None:
        """Supervise until SIGINT/SIGTERM (or ``duration`` seconds), then stop every child.

        A plain blocking loop, no asyncio: the launcher only waits on the heartbeat socket and a
        signal pipe, and pyzmq's asyncio layer would cost more CPU per heartbeat than the rest of
        an idle system together.
        """
        ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
        sockets.use_security(self._security).start(ctx)
        pull = sockets.pull(ctx, self._heartbeat_endpoint)
        if self._events_endpoint:
            self._events = sockets.pub(ctx, self._events_endpoint)
        wake_r, wake_w = os.pipe()  # signals write here (set_wakeup_fd), so a poll returns at once
        for fd in (wake_r, wake_w):
            os.set_blocking(fd, False)
        previous_wakeup = signal.set_wakeup_fd(wake_w)
        stopping = False

        def request_stop(signum: int, frame: object) -> None:
            nonlocal stopping
            stopping = True

        previous = {signum: signal.signal(signum, request_stop) for signum in (signal.SIGTERM, signal.SIGINT)}
        # Only the signal pipe wakes the launcher; heartbeats wait in the socket and are drained once
        # a second: one wake-up per second instead of one per heartbeat (a wake-up costs ~0.3 ms here).
        poller = zmq.Poller()
        poller.register(wake_r, zmq.POLLIN)
        now = time.monotonic()
        until = now + duration if duration is not None else None
        next_status = now + self._status_every
        try:
            for child in self.children.values():
                self._start(child)
            while not stopping:
                for _ in range(1000):  # the beats that came in since the last turn, before judging
                    try:
                        self._on_heartbeat(pull.recv(zmq.NOBLOCK))
                    except zmq.Again:
                        break
                self._check()
                now = time.monotonic()
                if until is not None and now >= until:
                    break
                events = dict(poller.poll(self._poll_timeout_ms(now, until)))
                if wake_r in events:
                    with contextlib.suppress(BlockingIOError):
                        os.read(wake_r, 512)
                if time.monotonic() >= next_status:
                    self._report_status()
                    next_status += self._status_every
        finally:
            pull.close(linger=0)
            self._stop_all()  # before the context goes: its events are published too
            if self._events is not None:
                self._events.close(linger=0)
                self._events = None
            self._security.stop()
            ctx.destroy(linger=0)
            signal.set_wakeup_fd(previous_wakeup)
            for signum, handler in previous.items():
                signal.signal(signum, handler)
            os.close(wake_r)
            os.close(wake_w)

    def _poll_timeout_ms(self, now: float, until: float | None) -> int:
        """Sleep until the next thing due: a check (once a second), a restart, or the end of the run."""
        due = [now + CHECK_INTERVAL_MS / 1000]
        due += [c.restart_at for c in self.children.values() if c.process is None and c.restart_at is not None]
        if until is not None:
            due.append(until)
        return max(0, int((min(due) - now) * 1000) + 1)

    def _stop_all(self) -> None:
        """Stop in dependency order so no decision in flight is lost: the Scheduler first (no new
        ticks), then the Algorithm workers (they finish what they started while their peers still
        answer), then the DataManagers and the APIServer. Each stage: SIGTERM, then SIGKILL after the
        grace period."""
        for modules in (("scheduler",), ("algorithm",), ("data_manager", "api_server")):
            self._stop_stage([c for c in self.children.values() if c.module in modules])

    def _stop_stage(self, children: list[Child]) -> None:
        running = [c for c in children if c.process is not None and c.process.exitcode is None]
        for child in running:
            assert child.process is not None and child.process.pid is not None
            log.info("stopping %s pid=%d", child.name, child.process.pid)
            self._publish("stopping", child, child.process.pid)
            with contextlib.suppress(ProcessLookupError):
                os.kill(child.process.pid, signal.SIGCONT)  # a stopped process cannot act on SIGTERM
                os.kill(child.process.pid, signal.SIGTERM)
        deadline = time.monotonic() + self._grace
        for child in running:
            assert child.process is not None
            # join() blocks, but nothing else runs in the launcher while it stops.
            child.process.join(timeout=max(0.0, deadline - time.monotonic()))
            if child.process.exitcode is None:
                log.warning("%s pid=%s did not stop within %.1fs: killing it", child.name, child.process.pid,
                            self._grace)
                child.process.kill()
                child.process.join(timeout=2.0)
            log.info("%s pid=%s stopped (%s)", child.name, child.process.pid,
                     describe_exit(child.process.exitcode))
            self._publish("stopped", child, child.process.pid, describe_exit(child.process.exitcode))


# --- command line ------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python launcher.py", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=str(DEFAULT_CSV), metavar="PATH",
                        help="competitor prices CSV (default: the shipped data/data.csv)")
    add_pricing_arguments(parser)
    parser.add_argument("--tick", type=float, default=5.0, metavar="S",
                        help="seconds between ticks (default %(default)s)")
    parser.add_argument("--mode", choices=("replay", "follow"), default="replay",
                        help="replay: tick k sees points k..k+4; follow: the newest 5 (default %(default)s)")
    parser.add_argument("--duration", type=float, default=None, metavar="S",
                        help="stop cleanly after S seconds (default: run until Ctrl-C / SIGTERM)")
    parser.add_argument("--workers", type=int, default=1, metavar="N",
                        help="Algorithm processes; each (book, strategy) is owned by one (default 1)")
    parser.add_argument("--run", default=",".join(ACTOR_KINDS), metavar="ACTOR,...",
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
                     help="publish supervisor events (started, exited, hung, stopping, stopped) on this PUB "
                          "endpoint, msgpack SupervisorEvent messages")
    net.add_argument("--api-port", type=int, default=8080, help="APIServer port on 127.0.0.1 (default 8080)")
    net.add_argument("--api-url", default=None,
                     help="where the Algorithm reaches the APIServer (default http://127.0.0.1:<api-port>)")
    sup = parser.add_argument_group("supervision")
    sup.add_argument("--hang-timeout", type=float, default=3.0, metavar="S",
                     help="kill and restart an actor silent for this long (default %(default)s)")
    sup.add_argument("--max-backoff", type=float, default=30.0, metavar="S",
                     help="longest wait between restarts of a crashing actor (default %(default)s)")
    sup.add_argument("--grace", type=float, default=5.0, metavar="S",
                     help="on stop, SIGKILL actors still running after S seconds (default %(default)s)")
    sup.add_argument("--status-every", type=float, default=60.0, metavar="S",
                     help="log every actor's RSS and counters every S seconds (default %(default)s)")
    sup.add_argument("--log-level", default="INFO")
    sec = parser.add_argument_group("security")
    sec.add_argument("--keys", metavar="DIR", default=None,
                     help="CurveZMQ key directory for every actor (python -m transport.security keygen DIR)")
    sec.add_argument("--insecure", action="store_true",
                     help="allow non-loopback endpoints without encryption")
    args = parser.parse_args(argv)
    if args.tick <= 0:
        parser.error("--tick must be positive")
    if args.workers < 1 or args.data_managers < 1:
        parser.error("--workers and --data-managers must be at least 1")
    unknown = set(endpoints.split_list(args.run)) - set(ACTOR_KINDS)
    if unknown or not endpoints.split_list(args.run):
        parser.error(f"--run takes a list of {', '.join(ACTOR_KINDS)}")
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
    if args.run_dir:
        net = endpoints.Endpoints.in_directory(args.run_dir, args.api_port, args.data_managers)
    else:
        net = endpoints.Endpoints(args.ticks_endpoint, data_endpoints(args), args.heartbeat_endpoint,
                                  args.api_url or f"http://127.0.0.1:{args.api_port}")
    if args.config:
        books = ["--config", args.config]
    elif args.books_file:
        books = ["--books-file", args.books_file]
    else:
        books = ["--books", args.books]
    pricing = [*books, "--delay", str(args.delay), "--max-in-flight", str(args.max_in_flight),
               "--dm-timeout", str(args.dm_timeout), "--http-timeout", str(args.http_timeout),
               *(["--json"] if args.json else [])]
    # Options every actor takes (runtime.add_common_arguments).
    # Three beats per hang timeout: one late beat is never taken for a hang.
    beat = min(runtime.HEARTBEAT_INTERVAL, args.hang_timeout / 3)
    common = ["--log-level", args.log_level, "--heartbeat-interval", f"{beat:.3f}",
              *(["--keys", args.keys] if args.keys else []),
              *(["--insecure"] if args.insecure else [])]
    run = set(endpoints.split_list(args.run))
    children = []
    if "scheduler" in run:
        children.append(Child("scheduler", "scheduler",
                              ["--ticks", net.ticks, "--tick", str(args.tick), "--t0", repr(t0), *common],
                              ChildHealth(policy)))
    if "apiserver" in run:
        children.append(Child("apiserver", "api_server", ["--port", str(args.api_port), *common],
                              ChildHealth(policy)))
    if "datamanager" in run:
        for index, endpoint in enumerate(net.data):
            children.append(Child("datamanager" if len(net.data) == 1 else f"datamanager-{index}",
                                  "data_manager",
                                  ["--data", endpoint, "--csv", args.data, "--mode", args.mode, *common],
                                  ChildHealth(policy)))
    if "algorithm" in run:
        # Worker indexes are global, so launchers on several machines can share one set of pairs.
        total = args.workers_total or args.workers
        for local in range(args.workers):
            worker = args.worker_offset + local
            name = "algorithm" if total == 1 else f"algorithm-{worker}"
            children.append(Child(name, "algorithm",
                                  ["--ticks", net.ticks, "--data", ",".join(net.data), "--api-url", net.api_url,
                                   "--workers", str(total), "--worker", str(worker), *pricing, *common],
                                  ChildHealth(policy)))
    return children, net.heartbeat


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
    if args.books == ",".join(DEFAULT_BOOKS) and Path(args.data).resolve() != DEFAULT_CSV:
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
    launcher = Launcher(children, heartbeat, policy, grace=args.grace, status_every=args.status_every,
                        security=security, events_endpoint=args.events)

    try:
        launcher.run(args.duration)
    finally:
        if cleanup is not None:
            cleanup.cleanup()
    log.info("stopped: %s", launcher.counters)
    return 0


if __name__ == "__main__":
    sys.exit(main())
