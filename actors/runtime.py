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
import logging
import os
import signal
import sys
import time
from collections.abc import Callable, Mapping
from typing import Any, Final, Protocol

import zmq
import zmq.asyncio

from transport import protocol, sockets
from transport.protocol import Heartbeat
from transport.security import Keys, Security, SecurityError

log = logging.getLogger(__name__)

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


class RateLimitedLog:
    """Log a repeated problem at most ``burst`` times per ``window`` seconds per kind, then say how
    many were suppressed: bad input must be visible, but must not flood stderr (a log is bounded too)."""

    def __init__(self, logger: logging.Logger, burst: int = 5, window: float = 60.0, kinds: int = 64) -> None:
        self._log = logger
        self._burst = burst
        self._window = window
        self._max_kinds = kinds
        self._state: dict[str, tuple[float, int]] = {}

    def warning(self, kind: str, message: str, *args: object) -> None:
        now = time.monotonic()
        if kind not in self._state and len(self._state) >= self._max_kinds:
            kind = "other"  # one shared budget for kinds beyond the table: the log stays bounded
        started, count = self._state.get(kind, (now, 0))
        if now - started >= self._window:
            if count > self._burst:
                self._log.warning("%s: %d more suppressed in the last %.0fs", kind, count - self._burst,
                                  now - started)
            started, count = now, 0
        count += 1
        self._state[kind] = (started, count)
        if count <= self._burst:
            self._log.warning(message, *args)


def add_common_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("supervision")
    group.add_argument("--heartbeat", metavar="ENDPOINT", default=None,
                       help="PUSH heartbeats to this supervisor endpoint (the launcher sets it)")
    group.add_argument("--heartbeat-interval", type=float, default=HEARTBEAT_INTERVAL, metavar="S",
                       help="seconds between heartbeats (default %(default)s)")
    group.add_argument("--parent-pid", type=int, default=None,
                       help="exit when this process (the launcher) is gone")
    group.add_argument("--log-level", default="INFO", help="DEBUG, INFO, WARNING (default %(default)s)")
    sec = parser.add_argument_group("security")
    sec.add_argument("--keys", metavar="DIR", default=None,
                     help="CurveZMQ key directory (python -m transport.security keygen DIR): encrypt and "
                          "authenticate every ZeroMQ socket")
    sec.add_argument("--insecure", action="store_true",
                     help="allow binding a non-loopback address without encryption")


# Set by the launcher in the child before main() runs: a shared double the child stamps with
# time.monotonic() (system-wide on Linux) at every beat. The launcher reads it once a second, so a
# beat costs no message and wakes nobody else (a ZeroMQ message wakes three threads, ~0.2 ms each).
liveness: Any = None
TELEMETRY_EVERY: Final = 10  # with shared liveness, counters travel on every 10th beat only


async def _housekeeping(actor: Actor, ctx: zmq.asyncio.Context, args: argparse.Namespace,
                        security: Security, stop: asyncio.Event) -> None:
    """Once per heartbeat interval: tell the supervisor we are alive, and check that it still is.

    The beat comes from the event loop on purpose: a loop blocked by a bug misses its beats and gets
    restarted. Under the launcher it is a stamp in shared memory plus, every TELEMETRY_EVERY beats, a
    Heartbeat message carrying the counters; supervised from elsewhere (``--heartbeat`` alone) every
    beat is a message. The parent check backs up PR_SET_PDEATHSIG (other systems, or a parent that
    died before prctl ran). One loop for all: an idle actor wakes once per interval, no more.
    """
    plain: zmq.Context[zmq.Socket[bytes]] = zmq.Context.shadow(ctx.underlying)  # same context, plain sockets
    sock = sockets.push(plain, args.heartbeat) if args.heartbeat else None
    every = TELEMETRY_EVERY if liveness is not None else 1
    seq = 0
    try:
        while not stop.is_set():
            if args.parent_pid is not None and os.getppid() != args.parent_pid:
                log.warning("parent %d is gone: stopping", args.parent_pid)
                stop.set()
                return
            if liveness is not None:
                liveness.value = time.monotonic()
            if sock is not None and seq % every == 0:
                counters = dict(actor.counters)
                if security.keys is not None:
                    counters["curve_refusals"] = security.denied  # peers refused by the ZAP handler
                beat = Heartbeat(actor.name, os.getpid(), seq, time.time(), counters)
                with contextlib.suppress(zmq.Again):  # no supervisor listening: nobody to tell
                    sock.send(protocol.encode(beat), zmq.NOBLOCK)
            seq += 1
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(args.heartbeat_interval):
                    await stop.wait()
    finally:
        if sock is not None:
            sock.close(linger=0)


async def _serve(make_actor: Callable[[zmq.asyncio.Context], Actor], args: argparse.Namespace) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    if args.parent_pid is None:
        loop.add_signal_handler(signal.SIGINT, stop.set)
    else:
        # Supervised: Ctrl-C reaches the whole process group, but the launcher stops the actors in
        # order (Scheduler, Algorithm, then their peers) so no decision in flight is lost.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    ctx = zmq.asyncio.Context()
    security = sockets.use_security(Security(Keys.load(args.keys) if args.keys else None, args.insecure))
    security.start(ctx)
    try:
        actor = make_actor(ctx)
        async with asyncio.TaskGroup() as group:
            run = group.create_task(actor.run(stop))
            if args.heartbeat or args.parent_pid is not None:
                group.create_task(_housekeeping(actor, ctx, args, security, stop))
            await run
            stop.set()  # the actor returned on its own: let the helpers finish too
        log.info("stopped; counters %s", dict(actor.counters))
    finally:
        security.stop()
        ctx.destroy(linger=0)


def run_actor(name: str, make_actor: Callable[[zmq.asyncio.Context], Actor], args: argparse.Namespace) -> int:
    """Run one actor in this process until it is stopped; return the exit code."""
    set_process_name(name)
    if args.parent_pid is not None:
        die_with_parent()
    setup_logging(name, args.log_level)
    try:
        import uvloop  # a faster loop where available; plain asyncio otherwise
    except ImportError:  # pragma: no cover - uvloop is a dependency on Linux
        runner = asyncio.run
    else:
        runner = uvloop.run
    try:
        runner(_serve(make_actor, args))
    except KeyboardInterrupt:  # a second Ctrl-C while stopping
        return 130
    except (SecurityError, ExceptionGroup) as exc:
        refusal = _find(exc, SecurityError)
        if refusal is None:
            raise
        log.error("%s", refusal)  # a configuration error: say it plainly, no traceback
        return 2
    return 0


def _find(exc: BaseException, kind: type[Exception]) -> BaseException | None:
    """``exc`` itself or the first ``kind`` inside (TaskGroups wrap errors in ExceptionGroups)."""
    if isinstance(exc, kind):
        return exc
    if isinstance(exc, BaseExceptionGroup):
        for inner in exc.exceptions:
            if (found := _find(inner, kind)) is not None:
                return found
    return None
