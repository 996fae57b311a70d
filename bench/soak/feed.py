"""The competitor's feed for a follow-mode soak: a thread appending one row per book to the CSV at
the tick's pace, as a scraper writing a live file would, with the disk bounded.

Each book's price walks in whole cents (seeded, integers only). Past ``max_bytes`` the file is rotated
the way logrotate's ``create`` mode does it: a new file holding the header and each book's last
``keep`` rows is written beside it and renamed over it (the DataManager reads the new inode from the
start, so every book still has a full window), and the old one is gone once the DataManager lets go.
"""

from __future__ import annotations

import contextlib
import os
import random
import threading
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Final, TextIO

HEADER: Final = "timestamp,book_id,price\n"
LOW, HIGH = 1000, 4000  # cents: each walk stays within [10.00, 40.00]
STOP_WAIT: Final = 10.0
HISTORY: Final = 300  # prices kept per book for the check: a printed window may lag the feed this many steps


class History:
    """The newest prices the feed wrote for each book, as written (bounded: ``depth`` per book). The
    price check asks whether a printed window is ``len(window)`` consecutive rows of its book: what the
    DataManager must have read from the file, whatever it did in between (rotation, restarts)."""

    def __init__(self, books: Sequence[str], depth: int = HISTORY) -> None:
        self._rows: dict[str, deque[str]] = {book: deque(maxlen=depth) for book in books}
        self._lock = threading.Lock()

    def add(self, prices: Sequence[tuple[str, str]]) -> None:
        """One step of (book, price) rows."""
        with self._lock:
            for book, price in prices:
                self._rows[book].append(price)

    def holds(self, book: str, window: Sequence[str]) -> bool:
        """Whether ``window`` is some consecutive run of ``book``'s newest rows."""
        size = len(window)
        with self._lock:
            rows = self._rows.get(book)
            if rows is None or not 0 < size <= len(rows):
                return False
            # From the newest rows back: a window is almost always among the last few steps.
            return any(all(rows[end - size + j] == window[j] for j in range(size))
                       for end in range(len(rows), size - 1, -1))


@dataclass
class FeedCounters:
    rows: int = 0
    appends: int = 0  # one append of a row per book
    rotations: int = 0
    late_max: float = 0.0  # seconds the writer fell behind its schedule, at most
    errors: int = 0
    error: str = ""  # the first one

    def report(self) -> dict[str, object]:
        return {"rows": self.rows, "appends": self.appends, "rotations": self.rotations,
                "late_max_s": round(self.late_max, 3), "errors": self.errors, "error": self.error}


class Feed:
    def __init__(self, path: Path, books: Sequence[str], interval: float, *, keep: int = 5,
                 max_bytes: int = 64 << 20, seed: int = 1) -> None:
        if keep < 1 or interval <= 0 or max_bytes < 4096:
            raise ValueError("keep >= 1, interval > 0 and max_bytes >= 4096")
        self.path = path
        self.books = list(books)
        self.interval = interval
        self.keep = keep
        self.max_bytes = max_bytes
        self.counters = FeedCounters()
        self._rng = random.Random(seed)
        self._cents = [self._rng.randint(LOW + 500, HIGH - 500) for _ in self.books]
        self._recent: list[deque[str]] = [deque(maxlen=keep) for _ in self.books]  # bounded: keep rows per book
        self.history = History(self.books, max(keep, HISTORY))
        self._out: TextIO | None = None
        self._size = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # --- rows ------------------------------------------------------------------------------------

    def _step(self) -> str:
        """One row per book, a step of each walk (reflected into [LOW, HIGH])."""
        stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        lines = []
        prices = []
        for i, book in enumerate(self.books):
            cents = self._cents[i] + self._rng.randint(-40, 40)
            cents = 2 * LOW - cents if cents < LOW else 2 * HIGH - cents if cents > HIGH else cents
            self._cents[i] = cents
            price = f"{cents // 100}.{cents % 100:02d}"
            line = f"{stamp},{book},{price}\n"
            self._recent[i].append(line)
            lines.append(line)
            prices.append((book, price))
        self.history.add(prices)  # before the write: a decision can never print a row not yet noted
        return "".join(lines)

    def prime(self, steps: int | None = None) -> None:
        """Write the file anew: the header and ``steps`` rows per book (default ``keep``), interleaved."""
        chunks = [self._step() for _ in range(steps or self.keep)]
        self._replace(HEADER + "".join(chunks))
        self.counters.rows += len(self.books) * len(chunks)

    def _replace(self, text: str) -> None:
        """Put a file holding ``text`` at the path in one rename, and append to it from now on."""
        tmp = self.path.with_name(self.path.name + ".new")
        with open(tmp, "w", encoding="ascii") as out:
            out.write(text)
        os.replace(tmp, self.path)
        if self._out is not None:
            self._out.close()
        self._out = open(self.path, "a", encoding="ascii")  # noqa: SIM115 - held until stop or the next rotation
        self._size = len(text)

    def append(self) -> None:
        """One step: a row per book, appended (and the file rotated past its size)."""
        text = self._step()
        assert self._out is not None
        self._out.write(text)
        self._out.flush()  # a whole step in one write: the reader sees no book missing from it for long
        self._size += len(text)
        self.counters.rows += len(self.books)
        self.counters.appends += 1
        if self._size > self.max_bytes:
            # The newest rows of every book, in step order, then the rename.
            recent = "".join(rows[step] for step in range(self.keep) for rows in self._recent if step < len(rows))
            self._replace(HEADER + recent)
            self.counters.rotations += 1

    # --- the thread --------------------------------------------------------------------------------

    def start(self) -> None:
        if self._out is None:
            raise RuntimeError("prime() the file first")
        self._thread = threading.Thread(target=self._run, daemon=True, name="feed")
        self._thread.start()

    def _run(self) -> None:
        next_at = time.monotonic() + self.interval
        while not self._stop.wait(max(0.0, next_at - time.monotonic())):
            self.counters.late_max = max(self.counters.late_max, time.monotonic() - next_at)
            try:
                self.append()
            except OSError as exc:  # a full disk: counted, said once, and the soak's report fails on it
                self.counters.errors += 1
                self.counters.error = self.counters.error or str(exc)
            next_at += self.interval
            if next_at < time.monotonic():  # far behind (a stalled machine): skip, never burst
                next_at = time.monotonic() + self.interval

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(STOP_WAIT)
        if self._out is not None:
            with contextlib.suppress(OSError):
                self._out.close()
            self._out = None
