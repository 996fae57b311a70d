"""The Dashboard polled as scripts and scrapers do, beside the browser: ``/metrics`` (a Prometheus
scrape), ``/api/overview`` and ``/api/books`` (the Ledger's pairs, sorted), one after the other every
few seconds, each answer timed. Every answer must be a 200 with a body; the slowest one is reported.
"""

from __future__ import annotations

import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from typing import Final

PATHS: Final = ("metrics", "api/overview", "api/books")
TIMEOUT: Final = 10.0
EXAMPLES: Final = 5
STOP_WAIT: Final = 3 * TIMEOUT


@dataclass
class Polls:
    asked: int = 0
    answered: int = 0  # a 200 with a body
    failed: int = 0
    slowest_s: float = 0.0
    examples: list[str] = field(default_factory=list)

    def report(self) -> dict[str, object]:
        return {"paths": list(PATHS), "asked": self.asked, "answered": self.answered, "failed": self.failed,
                "slowest_s": round(self.slowest_s, 3), "examples": self.examples}


class Poller:
    """In a thread of its own: :meth:`start` once the Dashboard answers, :meth:`stop` before it stops."""

    def __init__(self, url: str, every: float) -> None:
        self.url = url
        self.every = every
        self._polls = Polls()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="dashboard-poller")

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            for path in PATHS:
                self._poll(path)

    def _poll(self, path: str) -> None:
        started = time.monotonic()
        problem = None
        try:
            with urllib.request.urlopen(self.url + path, timeout=TIMEOUT) as answer:
                if not answer.read():
                    problem = "an empty body"
        except urllib.error.HTTPError as exc:
            problem = f"HTTP {exc.code}"
        except OSError as exc:
            problem = f"{type(exc).__name__}: {exc}"
        took = time.monotonic() - started
        with self._lock:
            polls = self._polls
            polls.asked += 1
            polls.slowest_s = max(polls.slowest_s, took)
            if problem is None:
                polls.answered += 1
                return
            polls.failed += 1
            if len(polls.examples) < EXAMPLES:
                polls.examples.append(f"/{path} at {time.time():.0f}: {problem:.200}")

    def stop(self) -> Polls:
        self._stop.set()
        self._thread.join(STOP_WAIT)
        with self._lock:
            return self._polls
