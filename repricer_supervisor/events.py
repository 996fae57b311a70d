"""What the supervisor tells the world: each child's status as an :class:`ActorStatus`, its life as
:class:`SupervisorEvent` messages on the optional ``--events`` socket (an XPUB: a new subscriber is
greeted with every child's current status, so one that joins late still knows every pid), and the
same in the log for people. Tools subscribe; nothing reads the log back.

Everything a child sent (its counters) is logged through :func:`transport.logs.printable`, so a
counter name cannot start a line of its own in the log.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Final

import zmq

from repricer_supervisor.children import Child
from repricer_supervisor.procfs import pss_kib, rss_kib
from transport import protocol
from transport.logs import printable
from transport.protocol import ActorStatus, SupervisorEvent

SUBSCRIPTIONS_PER_TURN: Final = 100  # subscription messages read per wake-up at most
GREETING_EVERY: Final = 0.25  # seconds: a flood of subscriptions costs at most 4 greetings a second
CLOSE_LINGER_MS: Final = 1000  # the final events may take this long to leave when the launcher stops
# A child's status is published when its counters arrive, at most this often: a flood of (forged)
# heartbeats must not become a flood of statuses that pushes the events out of subscribers' queues.
STATUS_EVERY_AT_MOST: Final = 0.25


def child_status(child: Child) -> ActorStatus:
    pid = child.pid or 0
    return ActorStatus(time.time(), child.name, pid, rss_kib(pid) if pid else 0, pss_kib(pid) if pid else 0,
                       child.health.restarts, child.hangs, child.started_wall if pid else 0.0, child.last_beat_wall,
                       dict(child.last_counters))


def format_counters(counters: Mapping[str, int]) -> str:
    """``name=value`` pairs for the log; the names come from a child: escaped."""
    return " ".join(f"{printable(name, 64)}={value}" for name, value in counters.items())


class Events:
    """The events socket (or nothing, without ``--events``): publish, greet new subscribers, close."""

    def __init__(self, sock: zmq.Socket[bytes] | None) -> None:
        self.sock = sock
        self._greeted_at = 0.0
        self._due_at: float | None = None
        self._status_at: dict[str, float] = {}  # when each child's status was last published
        self._held: dict[str, Child] = {}  # children whose newer counters wait for their turn

    def status_changed(self, child: Child) -> None:
        """Publish ``child``'s status now, or as soon as its rate allows (see :meth:`flush`)."""
        if time.monotonic() - self._status_at.get(child.name, 0.0) >= STATUS_EVERY_AT_MOST:
            self._publish_status(child)
        else:
            self._held[child.name] = child

    def flush(self) -> None:
        """Publish the held statuses whose turn has come."""
        now = time.monotonic()
        for name, child in list(self._held.items()):
            if now - self._status_at.get(name, 0.0) >= STATUS_EVERY_AT_MOST:
                self._publish_status(child)

    @property
    def flush_due_at(self) -> float | None:
        if not self._held:
            return None
        return min(self._status_at.get(name, 0.0) for name in self._held) + STATUS_EVERY_AT_MOST

    def _publish_status(self, child: Child) -> None:
        self._status_at[child.name] = time.monotonic()
        self._held.pop(child.name, None)
        self.publish(child_status(child))

    def publish(self, message: SupervisorEvent | ActorStatus) -> None:
        if self.sock is not None:
            with contextlib.suppress(zmq.Again):  # a subscriber that does not read loses messages, never blocks us
                self.sock.send(protocol.encode(message), zmq.NOBLOCK)

    def event(self, event: str, actor: str, pid: int | None, detail: str = "", exitcode: int | None = None,
              restart_in: float = 0.0) -> None:
        self.publish(SupervisorEvent(time.time(), event, actor, pid or 0, printable(detail, 500), exitcode or 0,
                                     restart_in))

    def read_subscriptions(self) -> None:
        """Read the subscriptions that came in (bounded per call); a new one makes a greeting due."""
        if self.sock is None:
            return
        for _ in range(SUBSCRIPTIONS_PER_TURN):
            try:
                frame = self.sock.recv(zmq.NOBLOCK)
            except zmq.Again:
                break
            if frame[:1] == b"\x01" and self._due_at is None:
                self._due_at = max(time.monotonic(), self._greeted_at + GREETING_EVERY)

    @property
    def greeting_due_at(self) -> float | None:
        """When the next greeting is due (monotonic), None if none is."""
        return self._due_at

    def greet(self, children: Sequence[Child]) -> None:
        """If a greeting is due: every child's status, so a subscriber learns the state it joined too
        late to see being made. (Not the launcher's: that one comes every --status-every, as a sample.)"""
        now = time.monotonic()
        if self._due_at is None or now < self._due_at:
            return
        self._due_at, self._greeted_at = None, now
        for child in children:
            self.publish(child_status(child))

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close(linger=CLOSE_LINGER_MS)
            self.sock = None


def launcher_status(pid: int, children: Iterable[ActorStatus], counters: Mapping[str, int]) -> ActorStatus:
    """The launcher's own status: its counters, and in rss/pss the totals over every process."""
    statuses = list(children)
    return ActorStatus(time.time(), "launcher", pid, rss_kib(pid) + sum(s.rss_kib for s in statuses),
                       pss_kib(pid) + sum(s.pss_kib for s in statuses), 0, 0, 0.0, time.time(), dict(counters))
