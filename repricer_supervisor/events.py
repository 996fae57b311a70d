"""What the supervisor tells the world: each child's status as an :class:`ActorStatus`, its life as
:class:`SupervisorEvent` messages on the optional ``--events-endpoint`` socket (an XPUB: a new subscriber is
greeted with every child's current status, so one that joins late still knows every pid), and the
same in the log for people. Tools subscribe; nothing reads the log back.

The XPUB is manual: only the :data:`TOPICS` below are ever applied (everything, or one message kind);
any other subscription is ignored and counted. That alone does not bound memory: libzmq 4.3 keeps every
subscription a peer sent (each distinct topic ~0.5 KB, a million of them gigabytes) until that peer
disconnects, in any PUB or XPUB. So the live subscriptions are counted (each passes through us, and a
peer's are unsubscribed when it leaves), and past :data:`SUBSCRIPTIONS_MAX` live ones or
:data:`REFUSED_MAX` to topics we do not publish -- far above any honest use: a tool holds one to three
-- the socket is closed and bound again, which frees them all. Honest subscribers reconnect within
~0.1 s and are greeted again; the flooder loses its connection. Both bounds are reached within one or
two turns of reading: until the rebind, libzmq also queues (unbounded, in the socket) what a flooder
sends faster than we read it -- with a bound of 1,000, eleven turns on a loaded 2-core machine let that
queue take the launcher from 32 to 88 MiB.

Everything a child sent (its counters) is logged through :func:`transport.logs.printable`, so a
counter name cannot start a line of its own in the log.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Final

import zmq

from repricer_supervisor.children import Child
from repricer_supervisor.procfs import pss_kib, rss_kib
from transport import memory, protocol
from transport.logs import RateLimitedLog, printable
from transport.protocol import ActorStatus, SupervisorEvent

SUBSCRIPTIONS_PER_TURN: Final = 100  # subscription messages read per wake-up at most
SUBSCRIPTIONS_MAX: Final = 100  # live subscriptions before the events socket is bound again (a tool holds 1-3)
REFUSED_MAX: Final = 50  # subscriptions to unknown topics before it is bound again (an honest tool: none)
TRIM_AFTER: Final = 2.0  # seconds without a rebind: the flood is over, give its memory back
GREETING_EVERY: Final = 0.25  # seconds: a flood of subscriptions costs at most 4 greetings a second
CLOSE_LINGER_MS: Final = 1000  # the final events may take this long to leave when the launcher stops
# The subscriptions taken: everything, or the frames of one kind (a frame starts with its msgpack array
# header, the protocol version and the message type: three bytes fixed per kind).
TOPICS: Final = frozenset({
    b"",
    protocol.encode(SupervisorEvent(0.0, "", "", 0, "", 0, 0.0))[:3],
    protocol.encode(ActorStatus(0.0, "", 0, 0, 0, 0, 0, 0.0, 0.0, {}))[:3],
})
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
    """The events socket (or nothing, without ``--events-endpoint``): publish, greet new subscribers, close.
    ``bind`` makes the socket (and makes it again when a flood of subscriptions forces a rebind)."""

    def __init__(self, bind: Callable[[], zmq.Socket[bytes]] | None, log: RateLimitedLog | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._bind = bind
        self._clock = clock  # for the trim after a flood
        self.sock = bind() if bind is not None else None
        self._log = log
        self._live = 0  # subscriptions minus unsubscriptions since the socket was bound
        self._refused = 0  # refused subscriptions since the socket was bound
        self.rebinds = 0
        self.memory_trims = 0
        self._trim_at: float | None = None  # monotonic: when to give a flood's memory back, if one came
        self._greeted_at = 0.0
        self._due_at: float | None = None
        self._status_at: dict[str, float] = {}  # when each child's status was last published
        self._held: dict[str, Child] = {}  # children whose newer counters wait for their turn
        self.refused_subscriptions = 0  # subscriptions to topics we do not publish (or not subscriptions)

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
        """Read the subscriptions that came in (bounded per call): apply those to a known topic (each
        applies to the subscriber that sent it, the last one read); a new one makes a greeting due."""
        if self.sock is None:
            return
        for _ in range(SUBSCRIPTIONS_PER_TURN):
            try:
                frame = self.sock.recv(zmq.NOBLOCK)
            except zmq.Again:
                break
            kind, topic = frame[:1], frame[1:]
            if kind in (b"\x00", b"\x01"):
                self._live += 1 if kind == b"\x01" else -1
            if self._live > SUBSCRIPTIONS_MAX:
                self._rebind()
                return
            if kind not in (b"\x00", b"\x01") or topic not in TOPICS:
                self.refused_subscriptions += 1
                self._refused += 1
                if self._refused > REFUSED_MAX:
                    self._rebind()
                    return
                continue
            self.sock.setsockopt(zmq.SUBSCRIBE if kind == b"\x01" else zmq.UNSUBSCRIBE, topic)
            if kind == b"\x01" and self._due_at is None:
                self._due_at = max(time.monotonic(), self._greeted_at + GREETING_EVERY)

    def _rebind(self) -> None:
        """Close the socket (freeing every subscription libzmq holds) and bind it again."""
        assert self.sock is not None and self._bind is not None
        self.rebinds += 1
        if self._log is not None:
            self._log.warning("subscriptions", "events socket: over %d live subscriptions or %d to unknown topics "
                              "(a subscriber floods it): binding it again; every subscriber reconnects",
                              SUBSCRIPTIONS_MAX, REFUSED_MAX)
        self.sock.close(linger=0)
        self.sock, self._live, self._refused = None, 0, 0
        self.sock = self._bind()
        self._trim_at = self._clock() + TRIM_AFTER

    @property
    def trim_due_at(self) -> float | None:
        """When the memory of the last flood is to be given back (monotonic), None if none is due."""
        return self._trim_at

    def trim_after_flood(self) -> None:
        """Once no rebind came for ``TRIM_AFTER`` seconds, give the heap a flood made libzmq take back
        to the system: glibc keeps it otherwise (a 132,000-subscription flood left the launcher at 1.27x
        its memory before, 2026-12-05)."""
        if self._trim_at is None or self._clock() < self._trim_at:
            return
        self._trim_at = None
        if memory.trim():
            self.memory_trims += 1

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
