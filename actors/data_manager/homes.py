"""Whose ticks a book's window follows. Pure: no I/O.

One window per book serves every client, so who goes first matters. The client stepping through a
book's ticks (the Algorithm) makes that tick the book's *home*: requests near it go first, and a
request far from it (a new Scheduler run, a hand-made request, a client asking ticks at random) takes
the window away only if no one else steps there (see :class:`actors.data_manager.book_store.MoveBudget`).
"""

from __future__ import annotations

from typing import Final

from actors.data_manager.price_window import PriceWindow

TAKEOVER_STEPS: Final = 2  # another client takes a home by asking one of its next ticks
JUMPER_QUIET: Final = 1.0  # seconds before a client that jumped away from its home may take one again


class HomedWindow(PriceWindow):
    """A price window and the client stepping through its ticks (``__slots__``, as the window)."""

    __slots__ = ("home", "home_at", "home_client", "jumped_at", "jumper", "stepped_at", "streak")

    def __init__(self) -> None:
        super().__init__()
        # Where the client stepping through this book's ticks is (the Algorithm): the tick it was last
        # answered, which client, when. Requests near it go first (book_store._wake).
        self.home = -1
        self.home_client = b""
        self.home_at = 0.0
        # The client whose jump far from its home released it, and when: it may not take a home again
        # at once (a client asking ticks at random must not hold one).
        self.jumper = b""
        self.jumped_at = 0.0
        # Forward steps in a row of the home's client (to a tick just after its home): the Algorithm
        # makes one per tick; a client asking ticks at random almost never two in a row.
        self.streak = 0
        # When a stepper (the Algorithm) was last answered here as the home: the window stays guarded for
        # it a while even if another client took the home meanwhile by asking one of its next ticks.
        self.stepped_at = float("-inf")

    def answered(self, tick: int, client: bytes, now: float, near: int, ttl: float) -> None:
        """A request for ``tick`` was answered: it is the floor now, and the book's home follows the
        client stepping through the ticks. A fresh home (younger than ``ttl``) moves with its client
        while it steps (``near`` the home) and is released when it jumps far; another client takes it
        only by asking the home's next ticks (a reconnected DEALER has a new identity). With no fresh
        home the client answered takes it -- unless it is the one that just jumped away."""
        self.served = tick
        self.stepped(tick, client, now, near, ttl)

    def stepped(self, tick: int, client: bytes, now: float, near: int, ttl: float, keep: bool = False) -> None:
        """The home follows ``client`` answered at ``tick`` (see :meth:`answered`); the window's floor is
        left as it is (follow mode answers the newest rows whatever the tick). ``keep``: the client may
        take the home by asking its next ticks and step on from there (a restarted Algorithm does), but
        neither release nor move it otherwise -- a client that is no stepper on a stepper's book, whose
        jump would hand the home to whichever client is answered next, at its tick (issue 20)."""
        if self.home >= 0 and now - self.home_at <= ttl:
            if client == self.home_client:
                if keep and not self.home < tick <= self.home + TAKEOVER_STEPS:
                    return
                if abs(tick - self.home) <= near:
                    if self.home < tick <= self.home + TAKEOVER_STEPS:
                        self.streak += 1
                    elif tick < self.home:
                        self.streak = 0
                    self.home, self.home_at = tick, now
                else:
                    self.home, self.home_client, self.jumper, self.jumped_at = -1, b"", client, now
                    self.streak = 0
            elif self.home <= tick <= self.home + TAKEOVER_STEPS:
                self.home, self.home_client, self.home_at, self.streak = tick, client, now, 0
        elif not keep and (client != self.jumper or now - self.jumped_at > JUMPER_QUIET):
            self.home, self.home_client, self.home_at, self.streak = tick, client, now, 0

    def homed_by(self, client: bytes, now: float, ttl: float) -> bool:
        """Whether ``client`` holds this book's fresh home (it steps through its ticks)."""
        return self.home >= 0 and client == self.home_client and now - self.home_at <= ttl

    def moves_away(self, tick: int, client: bytes, now: float, near: int, ttl: float) -> bool:
        """Whether serving ``client`` at ``tick`` takes the window away from another client's fresh
        home (that client then needs a seek back)."""
        return (self.home >= 0 and client != self.home_client and abs(tick - self.home) > near
                and now - self.home_at <= ttl)

    def seek_target(self, reach: int) -> int | None:
        """Where to move the window for its waiting requests, if a seek is needed: ticks near the home
        first, seeking back there if the window was moved away; else ticks the window reaches by
        reading (from its base to ``reach`` points past its end); else the longest-waiting tick. A
        request far from the others waits until they are answered instead of moving the window away
        and back each time: a client asking random ticks cannot make the Algorithm wait behind its
        seeks."""
        pins = self.pins
        if not pins:
            return None
        end = self.base + len(self.points) + reach
        if len(pins) == 1:  # the usual case: one tick waits
            tick = next(iter(pins))
            return None if self.base <= tick < end else tick
        home = [tick for tick in pins if self.home >= 0 and abs(tick - self.home) <= reach]
        if home:
            return home[0]
        if any(self.base <= tick < end for tick in pins):
            return None
        return next(iter(pins))  # the oldest
