"""The soak's config and its reloads: a real change every time, so that a reload is checkable.

Two guardrail variants alternate (the ending and the step limit change: nearly every price after a
reload lands on another ending). A reload writes the other variant over the config file (one
rename), notes when it asked (:meth:`Epochs.sent`, before the file changes: a restarted Algorithm
would read the new file at once), and sends SIGHUP to the launcher, which asks every Algorithm worker
to reload. A worker has taken it when its ``config_reloads`` counter says so on the launcher's events
socket (a worker started since then read the newest file at its start).
"""

from __future__ import annotations

import os
import signal
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from actors.pricing.config import Config, load_config
from bench.soak.prices import SOLD_FACTOR, UNSOLD_FACTOR, WINDOW, Epochs
from transport.protocol import ActorStatus


@dataclass(frozen=True, slots=True)
class Variant:
    ending: str
    max_step_pct: int


VARIANTS: Final = (Variant("0.99", 10), Variant("0.49", 5))
STRATEGY: Final = "default"


def config_text(variant: Variant, delay: float, books_file: str) -> str:
    return f"""# The soak's config (bench/soak): rewritten by each reload, the other variant each time.
[strategies.{STRATEGY}]
kind = "window-average"
window = {WINDOW}
sold_factor = "{SOLD_FACTOR}"
unsold_factor = "{UNSOLD_FACTOR}"
delay = {delay!r}

[[books]]
file = "{books_file}"
strategies = ["{STRATEGY}"]

[guardrails]
floor = "5.00"
ceiling = "500.00"
max_step_pct = {variant.max_step_pct}
ending = "{variant.ending}"
"""


@dataclass
class Worker:
    pid: int
    base: int  # reloads this process had read by its start (the newest file then)
    reloads: int = 0
    errors: int = 0


class Reloads:
    """Writes the config, asks for reloads and follows the workers taking them. ``on_status`` runs on
    the events thread, the rest on the soak's: under one lock."""

    def __init__(self, path: Path, books_file: str, delay: float) -> None:
        self.path = path
        self._books_file = books_file
        self._delay = delay
        self._lock = threading.Lock()
        self._variant = 0
        self.epochs = Epochs(self._write(None))
        self._workers: dict[str, Worker] = {}
        self.asked = 0

    def _write(self, epochs: Epochs | None) -> Config:
        """Write the current variant over the config, loaded first as the Algorithm will load it (and
        noted as asked for, with ``epochs``, before the file changes)."""
        tmp = self.path.with_name(self.path.name + ".new")
        tmp.write_text(config_text(VARIANTS[self._variant], self._delay, self._books_file), encoding="utf-8")
        config = load_config(tmp)
        if epochs is not None:
            epochs.sent(config, time.time())
        os.replace(tmp, self.path)
        return config

    def reload(self, launcher_pid: int) -> None:
        """Write the other variant and signal the launcher."""
        with self._lock:
            self._variant = (self._variant + 1) % len(VARIANTS)
            self._write(self.epochs)
            self.asked += 1
        os.kill(launcher_pid, signal.SIGHUP)

    def on_status(self, status: ActorStatus) -> None:
        if not status.actor.startswith("algorithm") or not status.pid:
            return
        with self._lock:
            worker = self._workers.get(status.actor)
            if worker is None or worker.pid != status.pid:
                worker = self._workers[status.actor] = Worker(status.pid, self.asked)
            worker.reloads = status.counters.get("config_reloads", 0)
            worker.errors = status.counters.get("config_reload_errors", 0)
            taken = min(w.base + w.reloads for w in self._workers.values())
            now = time.time()
            for index in range(1, min(taken, self.asked) + 1):
                self.epochs.taken(index, now)

    def telling(self) -> list[int]:
        """Per reload, the decisions checked after it that the config before it would have refused."""
        with self._lock:
            return [epoch.telling for epoch in self.epochs.epochs[1:]]

    def report(self) -> dict[str, object]:
        with self._lock:
            epochs = self.epochs.epochs[1:]
            return {"asked": self.asked, "taken": sum(1 for e in epochs if e.taken is not None),
                    "refused": sum(w.errors for w in self._workers.values()),
                    "telling_decisions": [e.telling for e in epochs],
                    "sampled_decisions": [e.sampled for e in epochs],
                    "taken_after_s": [round(e.taken - e.sent, 2) if e.taken is not None else None for e in epochs]}
