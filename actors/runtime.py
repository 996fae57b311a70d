"""What every actor process shares: its name in ``ps``, logging to stderr, signals, the heartbeat to
the supervisor, dying with its parent, and the event loop that runs it all.

An actor is an object with ``async run(stop)`` and a ``counters`` map; :func:`run_actor` gives it a
``TaskGroup`` next to the heartbeat and the parent watch, and one ``stop`` event that SIGTERM, SIGINT
or the loss of the parent sets. Nothing outlives the group (trio's structured concurrency).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
import ctypes.util
import errno
import logging
import os
import signal
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, Protocol, TypeVar

import zmq
import zmq.asyncio

from actors import counter_catalog
from actors.health import HealthServer
from actors.kinds import ActorKind
from actors.options import add_options, from_namespace, make_parser, option
from actors.probes import readiness_of
from actors.sd_notify import Notifier, NotifyConfig
from transport import protocol
from transport.endpoints import is_loopback_host
from transport.logs import RateLimitedLog, loop_error_handler, printable
from transport.protocol import Heartbeat
from transport.security import Keys, Security, SecurityError
from transport.sockets import Sockets

log = logging.getLogger(__name__)

_O = TypeVar("_O")
_PR_SET_PDEATHSIG: Final = 1
_PR_SET_NAME: Final = 15
HEARTBEAT_INTERVAL: Final = 1.0


class Actor(Protocol):
    name: str

    @property
    def counters(self) -> Mapping[str, int]: ...

    async def run(self, stop: asyncio.Event) -> None: ...


def _prctl(option: int, arg: int | bytes) -> bool:
    if not sys.platform.startswith("linux"):
        return False
    libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
    return bool(libc.prctl(option, arg, 0, 0, 0) == 0)


def set_process_name(name: str) -> None:
    """Show the actor as ``name`` in ps/top (/proc/PID/comm, at most 15 bytes)."""
    _prctl(_PR_SET_NAME, name.encode()[:15])


def die_with_parent() -> None:
    """Ask the kernel for SIGTERM when the parent dies, so a SIGKILLed launcher leaves no orphans."""
    _prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def setup_logging(name: str, level: str = "INFO") -> None:
    logging.basicConfig(
        stream=sys.stderr,
        level=getattr(logging, level.upper(), logging.INFO),
        format=f"%(asctime)s {name}[%(process)d] %(levelname)s %(message)s",
    )


@dataclass(frozen=True, slots=True)
class RuntimeOptions:
    """What every actor process takes besides its own options: supervision, logging, security."""

    heartbeat_endpoint: str | None = option(None, "PUSH heartbeats to this supervisor endpoint (the launcher sets "
                                            "it)", metavar="ENDPOINT", deprecated=("--heartbeat",))
    heartbeat_interval: float = option(HEARTBEAT_INTERVAL, "seconds between heartbeats", metavar="S")
    parent_pid: int | None = option(None, "exit when this process (the launcher) is gone", parse=int,
                                    metavar="PID")
    log_level: str = option("INFO", "log level", choices=("DEBUG", "INFO", "WARNING", "ERROR"),
                            parse=str.upper)
    keys: str | None = option(None, "CurveZMQ key directory (python -m transport.security keygen DIR): "
                              "encrypt and authenticate every ZeroMQ socket with this actor's own role's key "
                              "pair (ROLE.key_secret); each socket admits the roles of its channel only",
                              metavar="DIR")
    authorized_keys: str | None = option(None, "with --keys: the folder of the public keys allowed in, each named "
                                         "for its role, ROLE.key or ROLE-NAME.key (default: the authorized/ folder "
                                         "of --keys)", metavar="DIR")
    insecure: bool = option(False, "allow binding a non-loopback address without encryption")
    health_port: int | None = option(None, "serve /livez, /readyz and /metrics over HTTP on this port, for an "
                                     "orchestrator's probes and Prometheus when no launcher supervises (off by "
                                     "default)", parse=int, metavar="PORT")
    health_host: str = option("127.0.0.1", "address of the --health-port listener (plain HTTP: a non-loopback "
                              "address needs --insecure)", metavar="HOST")

    def __post_init__(self) -> None:
        if not 0.01 <= self.heartbeat_interval <= 60:
            raise ValueError(f"--heartbeat-interval must be within 0.01..60 s, got {self.heartbeat_interval}")
        if self.authorized_keys is not None and self.keys is None:
            raise ValueError("--authorized-keys needs --keys")
        if self.health_port is not None and not 1 <= self.health_port <= 65535:
            raise ValueError(f"--health-port must be within 1..65535, got {self.health_port}")
        if self.health_port is not None and not is_loopback_host(self.health_host) and not self.insecure:
            raise ValueError(f"--health-host {printable(self.health_host)}: not a loopback address, and the probes "
                             "are plain HTTP; pass --insecure to do it anyway")


TELEMETRY_EVERY: Final = 10  # with shared liveness, counters travel on every 10th beat only


class Liveness(Protocol):
    """A shared double (``multiprocessing.RawValue("d")``) the supervisor gives a child: the child
    stamps it with time.monotonic() (system-wide on Linux) at every beat and the launcher reads it once
    a second, so a beat costs no message and wakes nobody else (a ZeroMQ message wakes three threads,
    ~0.2 ms each)."""

    value: float


def _telemetry(actor: Actor, sockets: Sockets[zmq.asyncio.Socket]) -> dict[str, int]:
    counters = dict(actor.counters)
    if sockets.security.keys is not None:
        counters["curve_refusals"] = sockets.security.denied  # peers refused by the ZAP handler
    return counters


async def _housekeeping(actor: Actor, sockets: Sockets[zmq.asyncio.Socket], sock: zmq.Socket[bytes] | None,
                        options: RuntimeOptions, liveness: Liveness | None, stop: asyncio.Event) -> None:
    """Once per heartbeat interval: tell the supervisor we are alive, and check that it still is.

    The beat comes from the event loop on purpose: a loop blocked by a bug misses its beats and gets
    restarted. Under the launcher it is a stamp in shared memory plus a Heartbeat message carrying the
    counters whenever they changed (so a busy actor's status is live, an idle one sends nothing) and
    at least every TELEMETRY_EVERY beats; supervised from elsewhere (``--heartbeat-endpoint`` alone)
    every beat is a message. The parent check backs up PR_SET_PDEATHSIG (other systems, or a parent that
    died before prctl ran). One loop for all: an idle actor wakes once per interval, no more.
    """
    every = TELEMETRY_EVERY if liveness is not None else 1
    seq = 0
    sent: dict[str, int] | None = None  # the counters of the last message that left
    while not stop.is_set():
        if options.parent_pid is not None and os.getppid() != options.parent_pid:
            log.warning("parent %d is gone: stopping", options.parent_pid)
            stop.set()
            return
        if liveness is not None:
            liveness.value = time.monotonic()
        if sock is not None:
            counters = _telemetry(actor, sockets)
            if (seq % every == 0 or counters != sent) and _beat(sock, actor.name, seq, counters):
                sent = counters
        seq += 1
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(options.heartbeat_interval):
                await stop.wait()


def _beat(sock: zmq.Socket[bytes], name: str, seq: int, counters: dict[str, int]) -> bool:
    """Send one Heartbeat without blocking; False if it could not leave (no supervisor listening)."""
    try:
        sock.send(protocol.encode(Heartbeat(name, os.getpid(), seq, time.time(), counters)), zmq.NOBLOCK)
    except zmq.Again:
        return False
    return True


FINAL_BEAT_LINGER_MS: Final = 1000  # how long the last beat may take to leave before the process exits


MakeActor = Callable[[Sockets[zmq.asyncio.Socket]], Actor]


async def _serve(role: str, make_actor: MakeActor, options: RuntimeOptions, liveness: Liveness | None) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.set_exception_handler(loop_error_handler(RateLimitedLog(log)))  # an actor may set its own
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    if options.parent_pid is None:
        loop.add_signal_handler(signal.SIGINT, stop.set)
    else:
        # Supervised: Ctrl-C reaches the whole process group, but the launcher stops the actors in
        # order (Scheduler, Algorithm, then their peers) so no decision in flight is lost.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    started = time.monotonic()
    ctx = zmq.asyncio.Context()
    security = Security(Keys.load(options.keys, role, options.authorized_keys) if options.keys else None,
                        options.insecure)
    security.start(ctx)
    try:
        factory = Sockets(ctx, security)
        actor = make_actor(factory)
        health = (HealthServer(actor, lambda: _telemetry(actor, factory), options.health_host, options.health_port,
                               stop) if options.health_port is not None else None)
        beats = factory.push(options.heartbeat_endpoint) if options.heartbeat_endpoint else None
        notify = NotifyConfig.from_environ(os.environ, os.getpid())  # run by systemd (deploy/systemd)
        notifier = Notifier(notify) if notify is not None else None
        try:
            if health is not None:
                await health.start()  # before the actor: probes answer from the start (not ready yet)
            async with asyncio.TaskGroup() as group:
                run = group.create_task(actor.run(stop))
                if options.heartbeat_endpoint or options.parent_pid is not None:
                    group.create_task(_housekeeping(actor, factory, beats, options, liveness, stop))
                if notifier is not None:
                    group.create_task(notifier.run(lambda: readiness_of(actor), stop))
                await run
                stop.set()  # the actor returned on its own: let the helpers finish too
            if beats is not None:
                # The final counters, as a message: the supervisor publishes them, so nobody has to
                # read them back from the log line below.
                _beat(beats, actor.name, protocol.FINAL_HEARTBEAT_SEQ, _telemetry(actor, factory))
                beats.close(linger=FINAL_BEAT_LINGER_MS)
        finally:
            if beats is not None and not beats.closed:
                beats.close(linger=0)
            if health is not None:
                await health.close()  # last: liveness holds while the actor drains (readiness says stopping)
            if notifier is not None:
                notifier.close()
        counters = dict(actor.counters)
        log.info("stopped after %s: %s", _duration(time.monotonic() - started),
                 counter_catalog.summary(counter_catalog.kind_of(actor.name), counters))
        log.debug("final counters: %s", " ".join(f"{name}={value}" for name, value in counters.items()))
    finally:
        security.stop()
        ctx.destroy(linger=0)


def _duration(seconds: float) -> str:
    """``45 s``, ``12 min``, ``3.5 h``: how long an actor ran, for its stop line."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    return f"{seconds / 60:.0f} min" if seconds < 5400 else f"{seconds / 3600:.1f} h"


def run_actor(name: str, make_actor: MakeActor, options: RuntimeOptions,
              liveness: Liveness | None = None) -> int:
    """Run one actor in this process until it is stopped; return the exit code. ``liveness`` is the
    supervisor's shared stamp, when a launcher started this process."""
    set_process_name(name)
    if options.parent_pid is not None:
        die_with_parent()
    setup_logging(name, options.log_level)
    try:
        import uvloop  # a faster loop where available; plain asyncio otherwise
    except ImportError:  # pragma: no cover - uvloop is a dependency on Linux
        runner = asyncio.run
    else:
        runner = uvloop.run
    try:
        runner(_serve(name.partition("-")[0], make_actor, options, liveness))  # its kind's name: its key's role
    except KeyboardInterrupt:  # a second Ctrl-C while stopping
        return 130
    except Exception as exc:
        refusal = _find(exc, _is_configuration_error)
        if refusal is None:
            raise
        # Restarting cannot help: say it plainly in one line, no traceback, and exit with the code the
        # supervisor gives up on after a few tries (supervisor.policy).
        log.error("cannot run: %s", refusal)
        return CONFIGURATION_ERROR
    return 0


CONFIGURATION_ERROR: Final = 2  # the exit code of an actor that cannot run as configured (argparse's too)
# A port in use, an address not on this machine, a port or file we may not use.
_BIND_ERRNOS: Final = frozenset({errno.EADDRINUSE, errno.EADDRNOTAVAIL, errno.EACCES})


def _is_configuration_error(exc: BaseException) -> bool:
    if isinstance(exc, SecurityError):
        return True
    return isinstance(exc, OSError | zmq.ZMQError) and exc.errno in _BIND_ERRNOS


def _find(exc: BaseException, matches: Callable[[BaseException], bool]) -> BaseException | None:
    """``exc`` itself or the first exception inside that ``matches`` (TaskGroups wrap errors in
    ExceptionGroups)."""
    if matches(exc):
        return exc
    if isinstance(exc, BaseExceptionGroup):
        for inner in exc.exceptions:
            if (found := _find(inner, matches)) is not None:
                return found
    return None


def refuse_plain_http(kind: ActorKind, host: str, options: RuntimeOptions, why: str) -> bool:
    """True, having said so on stderr, when an actor serving plain HTTP is asked to bind ``host``, not a
    loopback address, without ``--insecure``; ``why`` says what makes that unsafe."""
    if is_loopback_host(host) or options.insecure:
        return False
    print(f"{kind.name}: refusing to bind {host!r}: not a loopback address, and {why}; pass --insecure to do it "
          "anyway", file=sys.stderr)
    return True


def build_parser(kind: ActorKind, options_class: type[Any], description: str | None) -> argparse.ArgumentParser:
    parser = make_parser(f"python -m {kind.package}", description)
    add_options(parser, options_class)
    add_options(parser, RuntimeOptions, "supervision, logging and security")
    return parser


def parse_options(kind: ActorKind, options_class: type[_O], description: str | None,
                  argv: Sequence[str] | None) -> tuple[_O, RuntimeOptions]:
    """Parse an actor's command line: its own options (``options_class``) and the runtime's."""
    parser = build_parser(kind, options_class, description)
    args = parser.parse_args(argv)
    return from_namespace(options_class, args, parser), from_namespace(RuntimeOptions, args, parser)
