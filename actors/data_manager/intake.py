"""Which requests the DataManager reads first when more come than it can serve. Pure: no I/O.

ZeroMQ's ROUTER fair-queues its peers, one message of each in turn. A client that reconnects with a new
identity every few requests (issue 20) is hundreds of peers, so the Algorithm's share of the reads fell
to a few per second, and the messages of all those peers piled up inside ZeroMQ (184 MiB, 447 with 2M
messages). No per-client budget sees it: each identity is new. So the receive loop reads a turn's
messages at once (``INTAKE_MAX``, a few microseconds each) and sorts them here, before any is decoded:

* the messages of *steppers* -- clients stepping through books' ticks lately
  (:mod:`actors.data_manager.homes`): the Algorithm's workers -- are all served;
* while a stepper is active and the read found no backlog, the others' messages share one global
  budget (:class:`Bucket`,
  ``STRANGERS_PER_SECOND`` units: a message is one, and every ``BOOKS_PER_UNIT`` books it asks past
  the first one more -- a ``WindowsRequest`` of 50 books costs 7 -- guessed from its size before it
  is decoded, see :func:`cost`), taken one per client in turn; the rest are shed unanswered,
  undecoded. (A restarted Algorithm is one of the others until it steps: 10,000 books in batches
  of 200 cost 1,250 a tick, within the burst.)
* while a stepper is active and the turn's read stopped at its bound (a backlog waits in ZeroMQ), the
  others get nothing in that turn: all is shed (``behind``), and the budget's unspent rate carries to
  the next turn without a backlog. ZeroMQ's ROUTER reads one message of each peer in turn, so behind
  a backlog a stepper's request waits for one message of every identity a flood used lately: serving
  the others then only slows the reading that clears it (issue 20: in a 0.5-CPU cgroup the stepper's
  requests waited 1-8 s in ZeroMQ under either cycling flood; 0.0-0.6 s once the others were not
  served behind a backlog).
* with no stepper active (no one to protect: a cold start, a restarted Algorithm not yet stepping),
  when the turn's read was full (a backlog waits), ``STRANGERS_MAX`` of the others' are served per
  turn, one per client in turn.

What is shed is counted (``shed``) and logged, rate-limited; its clients retry after their timeout, as
for any lost reply. So the work others can cause is bounded whatever the number of identities they
use (reading a message to shed it costs ~4 us), reading keeps up with a flood (the backlog inside
ZeroMQ stays small, and with it the memory), and the Algorithm is served first. A client becomes a
stepper by stepping forward through a book's ticks three times in a row as its home
(``book_store.STEPPER_STREAK``): a restarted Algorithm does so within three ticks; a client asking ticks
at random, or cycling through identities, does not.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from typing import Final

INTAKE_MAX: Final = 4096  # messages read in one turn of the receive loop (~5 us each)
STRANGERS_MAX: Final = 64  # messages of non-steppers served per turn when a backlog waits
# The others' share while a stepper is active, in books asked per second (all clients together): an
# honest second client gets answers, a flood costs at most this much decoding and window work.
STRANGERS_PER_SECOND: Final = 1000.0  # units (see the module's help): ~20 us of decoding and answering each
STRANGERS_BURST: Final = 2000.0
BOOKS_PER_UNIT: Final = 8  # a book's answer costs about an eighth of a message's decoding, encoding, sending
SINGLE_BYTES: Final = 64  # a LastPricesRequest's size, at most (its book id is short)
UNIT_BYTES: Final = 40  # a WindowsRequest's bytes per BOOKS_PER_UNIT books of short ids, about
STEPPER_TTL: Final = 10.0  # seconds a client stays a stepper after it was last answered as a home
STEPPERS_MAX: Final = 256  # steppers remembered (the least recently answered forgotten first)


class Bucket:
    """A token bucket. Pure: ``now`` is passed in. ``tokens`` may go below zero (a debt, see
    :meth:`Intake.charge`), down to ``-burst``."""

    __slots__ = ("at", "burst", "rate", "tokens")

    def __init__(self, rate: float, burst: float, now: float = 0.0) -> None:
        self.rate, self.burst, self.tokens, self.at = rate, burst, burst, now

    def refill(self, now: float) -> float:
        self.tokens = min(self.burst, self.tokens + max(0.0, now - self.at) * self.rate)
        self.at = now
        return self.tokens

    def spend(self, tokens: float) -> None:
        """Take ``tokens`` (give back, if negative), within -burst..burst."""
        self.tokens = max(-self.burst, min(self.burst, self.tokens - tokens))


class Steppers:
    """Clients answered lately as a book's home, least recent first. Bounded."""

    def __init__(self, ttl: float = STEPPER_TTL, limit: int = STEPPERS_MAX) -> None:
        self.ttl = ttl
        self._limit = limit
        self._seen: dict[bytes, float] = {}  # client -> monotonic time last answered as a home

    def note(self, client: bytes, now: float) -> None:
        seen = self._seen
        if seen.pop(client, None) is None and len(seen) >= self._limit:
            del seen[next(iter(seen))]
        seen[client] = now

    def stepping(self, client: bytes, now: float) -> bool:
        at = self._seen.get(client)
        return at is not None and now - at <= self.ttl

    def any_active(self, now: float) -> bool:
        """Whether some client stepped lately (the most recent is last in the table)."""
        return bool(self._seen) and now - next(reversed(self._seen.values())) <= self.ttl

    def active(self, now: float) -> list[bytes]:
        """The steppers now, the most recently answered first."""
        return [client for client, at in reversed(self._seen.items()) if now - at <= self.ttl]

    def __len__(self) -> int:
        return len(self._seen)


Message = list[bytes]


class Intake:
    """What is served of a turn's messages: the steppers' all, the others' within the shared budget
    while a stepper is active (see the module's help). Pure: ``now`` is passed in."""

    def __init__(self, steppers: Steppers, rate: float = STRANGERS_PER_SECOND, burst: float = STRANGERS_BURST,
                 strangers_max: int = STRANGERS_MAX) -> None:
        self.steppers = steppers
        self.budget = Bucket(rate, burst)
        self._strangers_max = strangers_max
        self.behind = 0  # the others' messages shed because a backlog waited while a stepper was active

    def triage(self, messages: Sequence[Message], full: bool, now: float) -> tuple[list[Message], int]:
        """The messages to serve, steppers' first, and how many are shed. ``full``: the read stopped at
        its bound (more wait): with a stepper active, only the steppers' are served then. The others'
        are taken one per client in turn (the first of each, then the second...), so a client with a
        few requests gets them served beside one flooding."""
        steppers = self.steppers
        first: list[Message] = []
        others: dict[bytes, list[Message]] = {}
        for message in messages:
            if len(message) == 2 and steppers.stepping(message[0], now):
                first.append(message)
            else:
                others.setdefault(message[0] if len(message) == 2 else b"", []).append(message)
        count = len(messages) - len(first)
        if steppers.any_active(now):
            room = self.budget.refill(now)
            if full:  # behind a backlog: reading it comes first (see the module's help)
                self.behind += count
                return first, count
            taken, spent = _in_turn(others, count, room, cost)
            self.budget.spend(spent)
        else:
            taken, _ = _in_turn(others, count, self._strangers_max if full else count, _one)
        return first + taken, count - len(taken)

    def settle(self, client: bytes, frame: bytes, books: int, now: float) -> None:
        """A served message of ``client`` asked ``books`` books: the others' budget was charged
        :func:`cost` for it before it was decoded; the difference now (a debt the next turns repay, or
        a refund)."""
        if not self.steppers.stepping(client, now) and self.steppers.any_active(now):
            self.budget.spend(units(books) - cost([client, frame]))


def units(books: int) -> int:
    """What serving a message of ``books`` books costs, in the others' budget."""
    return 1 + max(0, books - 1) // BOOKS_PER_UNIT


def cost(message: Message) -> int:
    """:func:`units` guessed from a message's size before it is decoded: 1 for a single book's request
    (at most ``SINGLE_BYTES``), one more per ``UNIT_BYTES`` beyond (a batch of 50 books of
    4-character ids, 263 bytes, is guessed 5 against 7; :meth:`Intake.settle` corrects it)."""
    return 1 + max(0, len(message[-1]) - SINGLE_BYTES) // UNIT_BYTES


def _one(message: Message) -> int:
    return 1


def _in_turn(others: dict[bytes, list[Message]], count: int, room: float,
             price: Callable[[Message], int]) -> tuple[list[Message], int]:
    """The clients' messages (``count`` in all) that fit in ``room`` at ``price`` each, the first of
    each client, then the second...; and what they cost."""
    taken: list[Message] = []
    spent = 0
    for rank in itertools.count():
        if len(taken) == count:
            break
        for mine in others.values():
            if rank < len(mine):
                message = mine[rank]
                paid = price(message)
                if spent + paid > room:
                    return taken, spent
                taken.append(message)
                spent += paid
    return taken, spent
