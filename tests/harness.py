"""Drive the real ``launcher.py`` as a subprocess: collect its decisions (stdout) and its supervisor
log (stderr) as they arrive, and wait on them with deadlines."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal, TypeVar

from actors.algorithm.pricing import PricingRule, avg_comp_price, reprice
from launcher import STARTED_LINE, started_pids

REPO = Path(__file__).resolve().parent.parent
T = TypeVar("T")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def alive(pid: int) -> bool:
    """True while ``pid`` exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, ProcessLookupError):
        return False


class LauncherRun:
    """One ``python launcher.py --json ...`` run with private endpoints."""

    def __init__(self, run_dir: Path | None, args: Sequence[str], env: dict[str, str] | None = None) -> None:
        """With ``run_dir``, private ipc endpoints and a free API port; without, ``args`` say it all."""
        self.api_port = free_port()
        private = ["--run-dir", str(run_dir), "--api-port", str(self.api_port)] if run_dir is not None else []
        command = [sys.executable, str(REPO / "launcher.py"), "--json", *private, *args]
        self.process = subprocess.Popen(command, cwd=REPO, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                        stderr=subprocess.PIPE, text=True, env={**os.environ, **(env or {})})
        self.decisions: list[dict[str, Any]] = []
        self.log: list[str] = []
        self._changed = threading.Condition()
        self._readers = [threading.Thread(target=self._read, args=(stream, sink), daemon=True)
                         for stream, sink in ((self.process.stdout, self._on_decision),
                                              (self.process.stderr, self.log.append))]
        for reader in self._readers:
            reader.start()

    def _on_decision(self, line: str) -> None:
        self.decisions.append(json.loads(line))

    def _read(self, stream: Any, sink: Callable[[str], None]) -> None:
        for line in stream:
            with self._changed:
                sink(line.rstrip("\n"))
                self._changed.notify_all()

    def wait_until(self, predicate: Callable[[], T | Literal[False] | None], timeout: float, what: str) -> T:
        deadline = time.monotonic() + timeout
        with self._changed:
            while not (result := predicate()):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    tail = "\n".join(self.log[-30:])
                    raise AssertionError(f"timed out after {timeout}s waiting for {what}; stderr tail:\n{tail}")
                self._changed.wait(min(remaining, 0.1))
            return result

    def pids(self) -> dict[str, int]:
        """The newest pid of each actor, from the launcher's 'started' lines."""
        return started_pids(list(self.log))

    def all_pids(self) -> set[int]:
        """Every pid the launcher started in this run, restarted ones included."""
        return {int(m.group(2)) for line in list(self.log) if (m := STARTED_LINE.search(line))}

    def wait_for_actors(self, names: Sequence[str], timeout: float = 20.0) -> dict[str, int]:
        def started() -> dict[str, int] | None:
            pids = self.pids()
            return pids if set(names) <= set(pids) else None

        return self.wait_until(started, timeout, f"actors {names} to start")

    def decision_count(self) -> int:
        with self._changed:
            return len(self.decisions)

    def wait_decisions(self, more_than: int, timeout: float = 20.0) -> None:
        self.wait_until(lambda: len(self.decisions) > more_than, timeout, f"more than {more_than} decisions")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15.0) -> int:
        if self.process.poll() is None:
            self.process.send_signal(sig)
        code = self.process.wait(timeout)
        for reader in self._readers:
            reader.join(5.0)
        return code

    def kill_everything(self) -> None:
        """Last-resort cleanup so a failed test leaves no process behind."""
        for pid in self.all_pids() | {self.process.pid}:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        self.process.wait(10.0)


# --- the independent model of what must be printed --------------------------------------------


def read_points(csv_path: Path) -> dict[str, list[Decimal]]:
    """Each book's valid prices in file order, parsed without the project's CSV code."""
    import csv  # the stdlib parser: independent of actors.csv_rows

    points: dict[str, list[Decimal]] = {}
    with open(csv_path, newline="", encoding="utf-8-sig") as f:
        rows = csv.reader(f)
        header = [h.strip().lower() for h in next(rows)]
        for row in rows:
            if not row or len(row) != len(header):
                continue
            record = dict(zip(header, (v.strip() for v in row), strict=True))
            try:
                price = Decimal(record["price"])
            except ArithmeticError:
                continue
            if price.is_finite() and price > 0 and record.get("book_id"):
                points.setdefault(record["book_id"], []).append(price)
    return points


def expected_window(points: list[Decimal], tick: int, size: int = 5) -> list[Decimal]:
    """Replay: tick k sees points k..k+size-1; past the end, the last ``size``."""
    start = min(tick, len(points) - size)
    return points[start:start + size]


def check_decision(decision: dict[str, Any], points: dict[str, list[Decimal]],
                   rule: PricingRule | None = None) -> None:
    rule = rule or PricingRule()
    window = expected_window(points[decision["book"]], decision["tick"], rule.window)
    assert [Decimal(p) for p in decision["prices"]] == window, decision
    avg = avg_comp_price(window)
    assert Decimal(decision["avg_comp_price"]) == avg, decision
    assert decision["sold"] == (decision["request_id"] % 2 == 0), decision
    assert decision["price"] == str(reprice(avg, decision["sold"], rule)), decision
