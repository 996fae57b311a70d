"""The supervisor loop: start every child, restart what exits, kill what hangs, stop in order.

In the spirit of Erlang/OTP supervisors and circus: the policy (backoff, stable start, hang timeout)
is the pure :mod:`supervisor.policy`; this module only applies it. Its life (started, exited, hung,
stopping, stopped) and every child's status are published as messages on the optional events PUB
socket, besides the log.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import time
from collections.abc import Sequence
from typing import Final

import zmq

from supervisor.children import Child, describe_exit
from supervisor.procfs import pss_kib, rss_kib
from transport import protocol
from transport.logs import RateLimitedLog
from transport.protocol import ActorStatus, Heartbeat, ProtocolError, SupervisorEvent
from transport.security import Security
from transport.sockets import EVENTS_HWM, Sockets

log = logging.getLogger("launcher")

CHECK_INTERVAL: Final = 1.0  # exits, hangs and heartbeats are looked at once a second
HEARTBEATS_PER_TURN: Final = 1000  # drained per turn at most: a flood of beats cannot stall the checks


class Supervisor:
    def __init__(self, children: Sequence[Child], heartbeat_endpoint: str, grace: float = 5.0,
                 status_every: float = 60.0, security: Security | None = None,
                 events_endpoint: str | None = None) -> None:
        self._security = security or Security()
        self._events_endpoint = events_endpoint
        self._events: zmq.Socket[bytes] | None = None
        self.children = {child.name: child for child in children}
        self._heartbeat_endpoint = heartbeat_endpoint
        self._grace = grace
        self._status_every = status_every
        self._rlog = RateLimitedLog(log)
        self.counters = {"starts": 0, "exits": 0, "hangs": 0, "bad_heartbeats": 0}

    # --- what others see: log lines and events -------------------------------------------------

    def _publish(self, message: SupervisorEvent | ActorStatus) -> None:
        if self._events is not None:
            with contextlib.suppress(zmq.Again):  # PUB drops rather than blocks; nobody may listen
                self._events.send(protocol.encode(message), zmq.NOBLOCK)

    def _event(self, event: str, child: Child, pid: int | None, detail: str = "") -> None:
        """Supervisor state as events others can subscribe to (as circus does), besides the log."""
        self._publish(SupervisorEvent(time.time(), event, child.name, pid or 0, detail))

    def _status(self, child: Child) -> ActorStatus:
        pid = child.pid or 0
        return ActorStatus(time.time(), child.name, pid, rss_kib(pid) if pid else 0, pss_kib(pid) if pid else 0,
                           child.health.restarts, child.hangs, child.started_wall if pid else 0.0,
                           child.last_beat_wall, dict(child.last_counters))

    def _report_status(self) -> None:
        me = os.getpid()
        total_rss, total_pss = rss_kib(me), pss_kib(me)
        for child in self.children.values():
            status = self._status(child)
            total_rss += status.rss_kib
            total_pss += status.pss_kib
            log.info("status %s pid=%s rss_kib=%d pss_kib=%d restarts=%d counters=%s", child.name, child.pid,
                     status.rss_kib, status.pss_kib, status.restarts, status.counters)
            self._publish(status)
        log.info("status launcher pid=%d rss_kib=%d total_rss_kib=%d total_pss_kib=%d %s", me, rss_kib(me),
                 total_rss, total_pss, self.counters)
        self._publish(ActorStatus(time.time(), "launcher", me, total_rss, total_pss, 0, 0, 0.0, time.time(),
                                  dict(self.counters)))

    # --- children ------------------------------------------------------------------------------

    def _start(self, child: Child) -> None:
        process = child.spawn(["--heartbeat", self._heartbeat_endpoint, "--parent-pid", str(os.getpid())])
        child.health.on_start(time.monotonic())
        child.started_wall = time.time()
        self.counters["starts"] += 1
        restart = f" (restart #{child.health.restarts})" if child.health.restarts else ""
        log.info("started %s pid=%d%s", child.name, process.pid, restart)
        self._event("started", child, process.pid, f"restart #{child.health.restarts}")

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
        how = f"{reason + ', ' if reason else ''}{describe_exit(process.exitcode)}"
        log.warning("%s pid=%d %s; restarting in %.1fs (restart #%d)", child.name, process.pid, how, delay,
                    child.health.restarts)
        self._event("exited", child, process.pid, f"{how}; restart in {delay:.1f}s")
        process.close()

    def _kill_hung(self, child: Child, now: float) -> None:
        assert child.process is not None and child.process.pid is not None
        silent = now - (child.health.last_heartbeat or child.health.started_at or now)
        self.counters["hangs"] += 1
        child.hangs += 1
        log.error("%s pid=%d hung: no heartbeat for %.1fs; killing it", child.name, child.process.pid, silent)
        self._event("hung", child, child.process.pid, f"no heartbeat for {silent:.1f}s")
        with contextlib.suppress(ProcessLookupError):
            os.kill(child.process.pid, signal.SIGKILL)  # SIGKILL also ends a SIGSTOPped process
        child.process.join(timeout=2.0)
        self._reap(child, "hung")

    def _check(self) -> None:
        now = time.monotonic()
        for child in self.children.values():
            if child.process is not None:
                stamp = child.stamp()
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
            self._rlog.warning("bad_heartbeat", "rejected a heartbeat frame: %s", exc)
            return
        # Matched by pid, not name: several processes run the same actor (workers, DataManagers).
        child = next((c for c in self.children.values() if c.pid == beat.pid), None)
        if child is None:
            return  # from a process we already replaced: ignore
        child.health.on_heartbeat(time.monotonic())
        child.last_counters = beat.counters
        child.last_beat_wall = time.time()
        self._publish(self._status(child))

    # --- loop ----------------------------------------------------------------------------------

    def run(self, duration: float | None = None) -> None:
        """Supervise until SIGINT/SIGTERM (or ``duration`` seconds), then stop every child.

        A plain blocking loop, no asyncio: the launcher only waits on the heartbeat socket and a
        signal pipe, and pyzmq's asyncio layer would cost more CPU per heartbeat than the rest of
        an idle system together.
        """
        ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
        self._security.start(ctx)
        sockets = Sockets(ctx, self._security)
        pull = sockets.pull(self._heartbeat_endpoint)
        if self._events_endpoint:
            self._events = sockets.pub(self._events_endpoint, EVENTS_HWM)
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
                for _ in range(HEARTBEATS_PER_TURN):  # the beats that came in since the last turn
                    try:
                        self._on_heartbeat(pull.recv(zmq.NOBLOCK))
                    except zmq.Again:
                        break
                self._check()
                now = time.monotonic()
                if until is not None and now >= until:
                    break
                if wake_r in dict(poller.poll(self._poll_timeout_ms(now, until))):
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
        due = [now + CHECK_INTERVAL]
        due += [c.restart_at for c in self.children.values() if c.process is None and c.restart_at is not None]
        if until is not None:
            due.append(until)
        return max(0, int((min(due) - now) * 1000) + 1)

    def _stop_all(self) -> None:
        """Stop stage by stage (:attr:`ActorKind.stop_stage`) so no decision in flight is lost. Each
        stage: SIGTERM, then SIGKILL after the grace period."""
        for stage in sorted({c.kind.stop_stage for c in self.children.values()}):
            self._stop_stage([c for c in self.children.values() if c.kind.stop_stage == stage])

    def _stop_stage(self, children: list[Child]) -> None:
        running = [c for c in children if c.process is not None and c.process.exitcode is None]
        for child in running:
            assert child.process is not None and child.process.pid is not None
            log.info("stopping %s pid=%d", child.name, child.process.pid)
            self._event("stopping", child, child.process.pid)
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
            self._event("stopped", child, child.process.pid, describe_exit(child.process.exitcode))
