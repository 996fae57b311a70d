"""Which requests the DataManager reads first when more come than it can serve. Pure: no I/O.

ZeroMQ's ROUTER fair-queues its peers, one message of each in turn. A client that reconnects with a new
identity every few requests (issue 20) is hundreds of peers, so the Algorithm's share of the reads fell
to a few per second, and the messages of all those peers piled up inside ZeroMQ (184 MiB, 447 with 2M
messages). No per-client budget sees it: each identity is new. So the receive loop reads a turn's
messages at once (``INTAKE_MAX``, a few microseconds each) and sorts them here:

* the messages of *steppers* -- clients stepping through books' ticks lately
  (:mod:`actors.data_manager.homes`): the Algorithm's workers -- are all served;
* of the others, when the turn's read was full (a backlog waits), ``STRANGERS_MAX`` are served, one
  per client in turn, and the rest are shed unanswered:
  counted (``shed``) and logged, rate-limited; their clients retry after their timeout, as for any
  lost reply.

So reading keeps up with a flood (the backlog inside ZeroMQ stays small, and with it the memory), and
the Algorithm is served whatever the number of identities. A client becomes a stepper by stepping
forward through a book's ticks three times in a row as its home (``book_store.STEPPER_STREAK``): a
restarted Algorithm does so within three ticks; a client asking ticks at random, or cycling through
identities, does not.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Final

INTAKE_MAX: Final = 4096  # messages read in one turn of the receive loop (~5 us each)
STRANGERS_MAX: Final = 64  # messages of non-steppers served per turn when a backlog waits
STEPPER_TTL: Final = 10.0  # seconds a client stays a stepper after it was last answered as a home
STEPPERS_MAX: Final = 256  # steppers remembered (the least recently answered forgotten first)


class Steppers:
    """Clients answered lately as a book's home, least recent first. Bounded."""

    def __init__(self, ttl: float = STEPPER_TTL, limit: int = STEPPERS_MAX) -> None:
        self._ttl = ttl
        self._limit = limit
        self._seen: dict[bytes, float] = {}  # client -> monotonic time last answered as a home

    def note(self, client: bytes, now: float) -> None:
        seen = self._seen
        if seen.pop(client, None) is None and len(seen) >= self._limit:
            del seen[next(iter(seen))]
        seen[client] = now

    def stepping(self, client: bytes, now: float) -> bool:
        at = self._seen.get(client)
        return at is not None and now - at <= self._ttl

    def active(self, now: float) -> list[bytes]:
        """The steppers now, the most recently answered first."""
        return [client for client, at in reversed(self._seen.items()) if now - at <= self._ttl]

    def __len__(self) -> int:
        return len(self._seen)


Message = list[bytes]


def triage(messages: Sequence[Message], full: bool, steppers: Steppers, now: float,
           strangers_max: int = STRANGERS_MAX) -> tuple[list[Message], int]:
    """The messages to serve, steppers' first, and how many are shed. ``full``: the read stopped at its
    bound (more wait): only then is anything shed, and the others' messages are taken one per client
    in turn (the first of each, then the second...), so a client with a few requests gets them served
    beside a client flooding from one identity."""
    first: list[Message] = []
    others: dict[bytes, list[Message]] = {}
    for message in messages:
        if len(message) == 2 and steppers.stepping(message[0], now):
            first.append(message)
        else:
            others.setdefault(message[0] if len(message) == 2 else b"", []).append(message)
    count = len(messages) - len(first)
    if not full or count <= strangers_max:
        return first + [message for mine in others.values() for message in mine], 0
    taken: list[Message] = []
    for rank in itertools.count():
        for mine in others.values():
            if rank < len(mine):
                taken.append(mine[rank])
                if len(taken) == strangers_max:
                    return first + taken, count - strangers_max
    raise AssertionError("unreachable: more messages than strangers_max were counted")
