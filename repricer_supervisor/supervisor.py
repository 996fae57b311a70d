"""The supervisor loop: start every child, restart what exits, kill what hangs, give up on what cannot
work, stop in order.

In the spirit of Erlang/OTP supervisors and circus: the policy (backoff, stable start, hang timeout,
giving up) is the pure :mod:`supervisor.policy`; this module only applies it. Its life and every
child's status are published by :mod:`supervisor.events`.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import time
from collections.abc import Sequence
from types import TracebackType
from typing import Final

import zmq

from actors import counter_catalog
from repricer_supervisor.children import Child, describe_exit
from repricer_supervisor.events import Events, child_status, format_counters, launcher_status
from repricer_supervisor.heartbeats import HeartbeatInbox
from repricer_supervisor.options import SupervisionOptions
from repricer_supervisor.policy import CONFIGURATION_ERROR
from repricer_supervisor.shutdown import stop_in_stages
from repricer_supervisor.signals import StopSignals
from repricer_supervisor.status_line import StatusLine
from transport.logs import RateLimitedLog, printable
from transport.protocol import FINAL_HEARTBEAT_SEQ, Heartbeat
from transport.security import Security, SecurityError
from transport.sockets import Sockets

log = logging.getLogger("launcher")

CHECK_INTERVAL: Final = 1.0  # exits, hangs and heartbeats are looked at once a second
PEERS_WAIT: Final = 60.0  # seconds a kind that starts last waits at most for the others to run
PEERS_POLL: Final = 0.05  # seconds between looks at the others meanwhile
FINAL_BEAT_WAIT: Final = 1.0  # on stop: how long a cleanly exited child's final counters may take to arrive


class SupervisorError(Exception):
    """The supervisor cannot start: an endpoint it must bind is taken, invalid or refused."""


class Supervisor:
    def __init__(self, children: Sequence[Child], heartbeat_endpoint: str, options: SupervisionOptions | None = None,
                 security: Security | None = None, events_endpoint: str | None = None) -> None:
        options = options or SupervisionOptions()
        self._security = security or Security()
        self._stray_log = RateLimitedLog(log)
        self._sighup_log = RateLimitedLog(log)
        self._events_endpoint = events_endpoint
        self.children = {child.name: child for child in children}
        self._heartbeat_endpoint = heartbeat_endpoint
        self._grace = options.grace
        self._status_every = options.status_every
        self._status_line = StatusLine()  # the INFO line of each status report
        self.counters = {"starts": 0, "exits": 0, "hangs": 0, "bad_heartbeats": 0, "stray_heartbeats": 0,
                         "sighups": 0, "curve_refusals": 0, "refused_subscriptions": 0, "events_rebinds": 0,
                         "memory_trims": 0}
        self.failed: Child | None = None  # the child given up on: the run stops
        self._ctx: zmq.Context[zmq.Socket[bytes]] | None = None
        self._inbox: HeartbeatInbox | None = None
        self._events = Events(None)

    # --- the launcher's own sockets ------------------------------------------------------------

    def open(self) -> Supervisor:
        """Bind the heartbeat inbox and the events socket; :class:`SupervisorError` if either cannot be."""
        self._ctx = zmq.Context()
        self._security.start(self._ctx)
        sockets = Sockets(self._ctx, self._security)
        try:
            what, endpoint = "the heartbeat endpoint", self._heartbeat_endpoint
            self._inbox = HeartbeatInbox(sockets.pull(endpoint), self._on_heartbeat, self.counters, log)
            if self._events_endpoint:
                what, endpoint = "--events-endpoint", self._events_endpoint
                self._events = Events(lambda: sockets.xpub(endpoint), RateLimitedLog(log))
        except (zmq.ZMQError, SecurityError) as exc:
            self.close()
            raise SupervisorError(f"cannot bind {what} {endpoint}: {exc}") from None
        return self

    def close(self) -> None:
        if self._inbox is not None:
            self._inbox.sock.close(linger=0)
            self._inbox = None
        self._events.close()  # lingers: the last events leave before the context goes
        self._security.stop()
        if self._ctx is not None:
            self._ctx.term()
            self._ctx = None

    def __enter__(self) -> Supervisor:
        return self.open()

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    # --- children ------------------------------------------------------------------------------

    def _start(self, child: Child) -> None:
        process = child.spawn(["--heartbeat-endpoint", self._heartbeat_endpoint, "--parent-pid", str(os.getpid())])
        child.health.on_start(time.monotonic())
        child.started_wall = time.time()
        self.counters["starts"] += 1
        restart = f" (restart #{child.health.restarts})" if child.health.restarts else ""
        log.info("started %s pid=%d%s", child.name, process.pid, restart)
        self._events.event("started", child.name, process.pid, f"restart #{child.health.restarts}")

    def _reap(self, child: Child, reason: str | None = None) -> None:
        """The child has exited: record it and schedule its restart, or give up on it."""
        process = child.process
        assert process is not None
        process.join(timeout=0)
        now = time.monotonic()
        delay = child.health.on_exit(now, process.exitcode)
        child.process = None
        self.counters["exits"] += 1
        how = f"{reason + ', ' if reason else ''}{describe_exit(process.exitcode)}"
        if delay is None:
            self.failed = child
            log.error("%s pid=%d %s: a configuration error %d times in a row (its own error is above); giving up "
                      "and stopping", child.name, process.pid, how, child.health.configuration_errors)
            self._events.event("failed", child.name, process.pid, how, process.exitcode)
        else:
            child.restart_at = now + delay
            log.warning("%s pid=%d %s; restarting in %.1fs (restart #%d)", child.name, process.pid, how, delay,
                        child.health.restarts)
            self._events.event("exited", child.name, process.pid, f"{how}; restart in {delay:.1f}s",
                               process.exitcode, delay)
        process.close()

    def _kill_hung(self, child: Child, now: float) -> None:
        assert child.process is not None and child.process.pid is not None
        silent = now - (child.health.last_heartbeat or child.health.started_at or now)
        self.counters["hangs"] += 1
        child.hangs += 1
        log.error("%s pid=%d hung: no heartbeat for %.1fs; killing it", child.name, child.process.pid, silent)
        self._events.event("hung", child.name, child.process.pid, f"no heartbeat for {silent:.1f}s")
        with contextlib.suppress(ProcessLookupError):
            os.kill(child.process.pid, signal.SIGKILL)  # SIGKILL also ends a SIGSTOPped process
        child.process.join(timeout=2.0)
        self._reap(child, "hung")

    def _check(self) -> None:
        now = time.monotonic()
        for child in self.children.values():
            if child.process is not None:
                stamp = child.stamp()  # liveness: written by the child's event loop, nobody else can
                if stamp and stamp > (child.health.last_heartbeat or 0.0):
                    child.health.on_heartbeat(stamp)  # stamped with the same monotonic clock
                    child.last_beat_wall = time.time() - (now - stamp)
                if child.process.exitcode is not None:
                    self._reap(child)
                elif child.health.is_hung(now):
                    self._kill_hung(child, now)
            if self.failed is None and child.process is None and child.restart_at is not None \
                    and now >= child.restart_at:
                self._start(child)

    def _on_heartbeat(self, beat: Heartbeat) -> None:
        # Matched by pid, not name: several processes run the same actor (workers, DataManagers).
        child = next((c for c in self.children.values() if c.pid == beat.pid), None)
        if child is None:  # from a process we already replaced (its last beats), or a forgery: ignore
            self.counters["stray_heartbeats"] += 1
            self._stray_log.warning("stray heartbeat", "ignored a heartbeat from pid %d (%s): not a running child",
                                 beat.pid, printable(beat.actor, 64))
            return
        child.last_counters = beat.counters  # counters only: the beat itself is the shared stamp
        child.final_beat = beat.seq == FINAL_HEARTBEAT_SEQ
        self._events.status_changed(child)

    # --- status ------------------------------------------------------------------------------------

    def _report_status(self) -> None:
        """One line at INFO a person reads; every actor's counters at DEBUG and on the events socket."""
        statuses = [child_status(child) for child in self.children.values()]
        for status in statuses:
            log.debug("status %s pid=%d rss_kib=%d pss_kib=%d restarts=%d hangs=%d %s", status.actor, status.pid,
                      status.rss_kib, status.pss_kib, status.restarts, status.hangs, format_counters(status.counters))
            self._events.publish(status)
        self._refresh_counters()
        mine = launcher_status(os.getpid(), statuses, self.counters)
        log.debug("status launcher pid=%d total_rss_kib=%d total_pss_kib=%d %s", mine.pid, mine.rss_kib,
                  mine.pss_kib, format_counters(mine.counters))
        self._events.publish(mine)
        log.info("%s", self._status_line.line(statuses, time.time()))

    # --- loop ----------------------------------------------------------------------------------

    def run(self, duration: float | None = None, first_tick_after: float = 0.0) -> int:
        """Supervise until SIGINT/SIGTERM, ``duration`` seconds, or a child given up on; then stop every
        child. Returns the launcher's exit code: 0, or 2 when a child was given up on.

        ``duration`` counts from the first tick, ``first_tick_after`` seconds after the kinds that start
        last (the Scheduler) start, or from now when none is supervised: a slow start (seconds on a
        loaded machine) must not eat a short run, which then decided nothing (issue 21).

        A plain blocking loop, no asyncio: the launcher only waits on a signal pipe and the events
        socket's subscriptions, and pyzmq's asyncio layer would cost more CPU per heartbeat than the
        rest of an idle system together.
        """
        if self._inbox is None:
            self.open()
        assert self._inbox is not None
        now = time.monotonic()
        waiting = [child for child in self.children.values() if child.kind.starts_last]
        until = now + duration if duration is not None and not waiting else None
        next_status = now + self._status_every
        with StopSignals() as signals:
            # Heartbeats wait in their socket and are drained once a turn: one wake-up per second
            # instead of one per heartbeat (a wake-up costs ~0.3 ms here). Only a signal or a new
            # subscriber wakes the launcher.
            poller = zmq.Poller()
            poller.register(signals.fd, zmq.POLLIN)
            polled = self._events.sock
            if polled is not None:
                poller.register(polled, zmq.POLLIN)
            try:
                for child in self.children.values():
                    if not child.kind.starts_last:
                        self._start(child)
                peers_by = time.monotonic() + PEERS_WAIT
                while not signals.requested and self.failed is None:
                    self._inbox.drain()
                    self._check()
                    if waiting and (self._peers_run() or time.monotonic() >= peers_by):
                        for child in waiting:
                            self._start(child)
                        waiting = []
                        if duration is not None:
                            until = time.monotonic() + first_tick_after + duration
                    self._events.read_subscriptions()
                    if self._events.sock is not polled:  # bound again after a subscription flood
                        if polled is not None:
                            poller.unregister(polled)
                        polled = self._events.sock
                        if polled is not None:
                            poller.register(polled, zmq.POLLIN)
                    self._events.greet(list(self.children.values()))
                    self._events.flush()
                    self._events.trim_after_flood()
                    now = time.monotonic()
                    if until is not None and now >= until:
                        break
                    if signals.fd in dict(poller.poll(self._poll_timeout_ms(now, until, next_status))):
                        signals.drain()
                    if signals.reload:
                        signals.reload = False
                        self._forward_reload()
                    if time.monotonic() >= next_status:
                        self._report_status()
                        next_status = max(next_status + self._status_every, time.monotonic())
            finally:
                stop_in_stages(list(self.children.values()), self._grace, self._inbox, self._events)
        code = CONFIGURATION_ERROR if self.failed is not None else 0
        self._refresh_counters()
        log.info("stopped (exit code %d): %s", code, counter_catalog.summary("launcher", self.counters))
        self._events.event("stopped", "launcher", os.getpid(), format_counters(self.counters), code)
        return code

    def _refresh_counters(self) -> None:
        """The counters kept by the socket owners, copied in before they are reported."""
        self.counters["curve_refusals"] = self._security.denied  # at the heartbeat and events sockets
        self.counters["refused_subscriptions"] = self._events.refused_subscriptions
        self.counters["events_rebinds"] = self._events.rebinds
        self.counters["memory_trims"] = self._events.memory_trims

    def _peers_run(self) -> bool:
        """Whether every child that does not start last has beaten once (its event loop runs)."""
        return all(child.stamp() > 0 for child in self.children.values() if not child.kind.starts_last)

    def _forward_reload(self) -> None:
        """SIGHUP to the launcher: each actor that reloads its config (the Algorithm workers) gets one."""
        self.counters["sighups"] += 1
        for child in self.children.values():
            if child.kind.reloads and child.pid is not None:
                # Rate-limited: 1,000 SIGHUPs at 50/s made 1,000 lines (issue 20); sighups counts them all.
                self._sighup_log.info("sighup", "SIGHUP: asking %s pid=%d to reload its config", child.name, child.pid)
                with contextlib.suppress(ProcessLookupError):
                    os.kill(child.pid, signal.SIGHUP)

    def _poll_timeout_ms(self, now: float, until: float | None, next_status: float) -> int:
        """Sleep until the next thing due: a check (once a second), a restart, a status report, a
        greeting or a held status, the end."""
        starting = any(c.process is None and c.restart_at is None and self.failed is None
                       for c in self.children.values())  # a kind that starts last, waiting for its peers
        due = [now + (PEERS_POLL if starting else CHECK_INTERVAL), next_status]
        due += [c.restart_at for c in self.children.values() if c.process is None and c.restart_at is not None]
        due += [t for t in (until, self._events.greeting_due_at, self._events.flush_due_at, self._events.trim_due_at)
                if t is not None]
        return max(0, int((min(due) - now) * 1000) + 1)
