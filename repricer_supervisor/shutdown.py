"""Stopping every child, stage by stage (:attr:`ActorKind.stop_stage`), so no decision in flight is
lost: each stage gets SIGTERM, then SIGKILL after the grace period; a child that stopped cleanly sends
its final counters on its way out, and they are published before its "stopped" event."""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import time
from collections.abc import Callable, Sequence
from typing import Final

import zmq

from repricer_supervisor.children import Child, describe_exit
from repricer_supervisor.events import Events, child_status
from repricer_supervisor.heartbeats import HeartbeatInbox

log = logging.getLogger("launcher")

FINAL_BEAT_WAIT: Final = 1.0  # how long a cleanly exited child's final counters may take to arrive
POLL_AT_MOST: Final = 1.0  # seconds per wait in the loops below, whatever the deadline


def stop_in_stages(children: Sequence[Child], grace: float, inbox: HeartbeatInbox, events: Events) -> None:
    for stage in sorted({c.kind.stop_stage for c in children}):
        _stop_stage([c for c in children if c.kind.stop_stage == stage], grace, inbox, events)


def _stop_stage(children: list[Child], grace: float, inbox: HeartbeatInbox, events: Events) -> None:
    running = [c for c in children if c.process is not None and c.process.exitcode is None]
    for child in running:
        assert child.process is not None and child.process.pid is not None
        log.info("stopping %s pid=%d", child.name, child.process.pid)
        events.event("stopping", child.name, child.process.pid)
        with contextlib.suppress(ProcessLookupError):
            os.kill(child.process.pid, signal.SIGCONT)  # a stopped process cannot act on SIGTERM
            os.kill(child.process.pid, signal.SIGTERM)
    _wait(running, lambda c: c.exitcode is not None, time.monotonic() + grace, inbox)
    for child in running:
        assert child.process is not None
        if child.process.exitcode is None:
            log.warning("%s pid=%s did not stop within %.1fs: killing it", child.name, child.process.pid, grace)
            child.process.kill()
            child.process.join(timeout=2.0)
    _wait(running, lambda c: c.final_beat or c.exitcode != 0, time.monotonic() + FINAL_BEAT_WAIT, inbox)
    for child in running:
        assert child.process is not None
        how = describe_exit(child.process.exitcode)
        log.info("%s pid=%s stopped (%s)", child.name, child.process.pid, how)
        events.publish(child_status(child))
        events.event("stopped", child.name, child.process.pid, how, child.process.exitcode)


def _wait(children: list[Child], done: Callable[[Child], bool], deadline: float, inbox: HeartbeatInbox) -> None:
    """Until ``done`` holds for every child or the deadline: read heartbeats (final counters come that
    way), waking on each exit (a process's sentinel) or message."""
    while True:
        inbox.drain()
        pending = [c for c in children if not done(c)]
        remaining = deadline - time.monotonic()
        if not pending or remaining <= 0:
            return
        poller = zmq.Poller()
        poller.register(inbox.sock, zmq.POLLIN)
        for child in pending:
            if child.process is not None and child.process.exitcode is None:
                poller.register(child.process.sentinel, zmq.POLLIN)
        poller.poll(max(1, int(min(remaining, POLL_AT_MOST) * 1000)))
