"""Forged ticks over real processes (issue 20): a tap where the Algorithms' tick SUB connects, which
forwards every tick of a real Scheduler and publishes forged ones beside them.

Without ``--keys`` a local process can reach the tick socket (it binds the Scheduler's endpoint while
the Scheduler restarts, or replaces its ipc socket file): the tap stands for that process. The launcher
is started without its own Scheduler (``--run`` lists the others) and with ``--run-dir DIR``, so its
Algorithms connect to ``DIR/ticks.sock``, which the tap binds; a real Scheduler (``python -m
actors.scheduler``, started by :meth:`TickTap.start_scheduler`) publishes at ``DIR/real-ticks.sock``,
which the tap reads.

The forgeries of the issue, as pure functions of the newest real tick: :func:`ahead` (one tick of the
current run, due ``seconds`` ahead, within the 60 s clock skew) and :func:`foreign_run` (one tick of a
new run with an absurd interval).
"""

from __future__ import annotations

import collections
import contextlib
import math
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Final

import zmq

from bench.polling import wait_for
from transport import protocol
from transport.protocol import ProtocolError, Tick

REPO: Final = Path(__file__).resolve().parent.parent
RUN_WITHOUT_SCHEDULER: Final = ("--run", "apiserver,ledger,datamanager,algorithm")
FORGED_QUEUED_MAX: Final = 10_000
SEQS_KEPT: Final = 100_000  # real ticks remembered (a day at 1 s)


def ahead(real: Tick, seconds: float = 50.0) -> Tick:
    """One tick of ``real``'s run, due ``seconds`` after it (the issue's seq + 100 at a 0.5 s tick)."""
    seq = real.seq + math.ceil(seconds / real.interval)
    due = real.t0 + seq * real.interval
    return Tick(seq, due, time.time(), real.interval, real.t0)


def foreign_run(now: float, interval: float = 86_400.0) -> Tick:
    """Tick 0 of a run started ``now`` with ``interval`` seconds between its ticks."""
    return Tick(0, now, now, interval, now)


class TickTap:
    """Forwards the ticks published at ``upstream`` to subscribers of ``downstream`` (bound here), and
    sends forged ones on the same socket. A thread does all the socket work; :meth:`forge` queues."""

    def __init__(self, upstream: str, downstream: str) -> None:
        self.forwarded = 0
        self.forged_sent = 0
        self.forged_at = 0.0  # the wall time the last forged tick was sent (before any real tick after it)
        self.last: Tick | None = None  # the newest real tick forwarded
        self._seqs: collections.deque[tuple[float, int]] = collections.deque(maxlen=SEQS_KEPT)  # (when, seq)
        self._forged: queue.Queue[bytes] = queue.Queue(FORGED_QUEUED_MAX)
        self._changed = threading.Condition()
        self._halt = threading.Event()
        self._ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
        self._sub = self._ctx.socket(zmq.SUB)
        self._sub.setsockopt(zmq.LINGER, 0)
        self._sub.setsockopt(zmq.SUBSCRIBE, b"")
        self._sub.setsockopt(zmq.RECONNECT_IVL, 50)
        self._sub.connect(upstream)
        self._pub = self._ctx.socket(zmq.PUB)
        self._pub.setsockopt(zmq.LINGER, 0)
        self._pub.setsockopt(zmq.SNDHWM, FORGED_QUEUED_MAX)
        self._pub.bind(downstream)
        self._scheduler: subprocess.Popen[bytes] | None = None
        self._thread = threading.Thread(target=self._run, daemon=True, name="tick-tap")
        self._thread.start()

    @classmethod
    def in_run_dir(cls, run_dir: Path) -> TickTap:
        return cls(f"ipc://{run_dir}/real-ticks.sock", f"ipc://{run_dir}/ticks.sock")

    def start_scheduler(self, run_dir: Path, tick: float) -> int:
        """A real Scheduler publishing at ``run_dir/real-ticks.sock`` (stopped by :meth:`close`); its pid."""
        self._scheduler = subprocess.Popen(
            [sys.executable, "-m", "actors.scheduler", "--ticks-endpoint", f"ipc://{run_dir}/real-ticks.sock",
             "--tick", str(tick)], cwd=REPO, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL)
        return self._scheduler.pid

    def _run(self) -> None:
        poller = zmq.Poller()
        poller.register(self._sub, zmq.POLLIN)
        while not self._halt.is_set():
            if poller.poll(10):
                for _ in range(1000):  # bounded, then the forged queue and the stop flag again
                    try:
                        frame = self._sub.recv(zmq.NOBLOCK)
                    except zmq.Again:
                        break
                    self._pub.send(frame)
                    with contextlib.suppress(ProtocolError), self._changed:
                        self.last = protocol.decode_as(frame, Tick)
                        self.forwarded += 1
                        if not self._seqs or self._seqs[-1][1] != self.last.seq:  # (each tick is repeated)
                            self._seqs.append((time.time(), self.last.seq))
                        self._changed.notify_all()
            while True:
                try:
                    forged = self._forged.get_nowait()
                except queue.Empty:
                    break
                with contextlib.suppress(zmq.Again):
                    self._pub.send(forged, zmq.NOBLOCK)
                self.forged_at = time.time()  # (before the count: a waiter reads it once the count is up)
                self.forged_sent += 1

    def forge(self, *ticks: Tick) -> float:
        """Send ``ticks`` (after any real tick already forwarded); the wall time they were all sent."""
        target = self.forged_sent + len(ticks)
        for tick in ticks:
            self._forged.put(protocol.encode(tick), timeout=5.0)
        wait_for(lambda: self.forged_sent >= target, 5.0, 0.001, "the forged ticks to be sent")
        return self.forged_at

    def wait_tick(self, after: int = -1, timeout: float = 30.0) -> Tick:
        """The first real tick forwarded with a seq above ``after``."""
        def newer() -> Tick | None:
            return self.last if self.last is not None and self.last.seq > after else None

        with self._changed:
            return wait_for(newer, timeout, 0.05, f"a real tick after seq {after}", pause=self._changed.wait)

    def gap_then_forge(self, seconds: float, *forged: Tick | Callable[[], Tick]) -> float:
        """The Scheduler silent for ``seconds`` (SIGSTOP), then ``forged`` sent (a callable makes its
        tick at that moment) and the Scheduler let go on (SIGCONT) once they are out: the issue's gap;
        the wall time they were sent.
        Ours is not the launcher's child, so no hang is detected: only the gap is seen downstream (and
        the ticks due in it are never sent: the Scheduler skips what it missed)."""
        assert self._scheduler is not None, "start_scheduler first"
        os.kill(self._scheduler.pid, signal.SIGSTOP)
        try:
            time.sleep(seconds)  # the gap's length is the attack
            return self.forge(*(tick() if callable(tick) else tick for tick in forged))
        finally:
            os.kill(self._scheduler.pid, signal.SIGCONT)

    def seqs_after(self, since: float, count: int, timeout: float = 30.0) -> list[int]:
        """The seqs of the first ``count`` real ticks forwarded after ``since`` (waited for)."""
        def seen() -> list[int] | None:
            seqs = sorted({seq for at, seq in self._seqs if at >= since})
            return seqs[:count] if len(seqs) >= count else None

        with self._changed:
            return wait_for(seen, timeout, 0.05, f"{count} real ticks", pause=self._changed.wait)

    def seqs_between(self, since: float, until: float) -> set[int]:
        """The seqs of the real ticks forwarded between two wall times (the ticks offered the Algorithms)."""
        with self._changed:
            return {seq for at, seq in self._seqs if since <= at < until}

    def close(self) -> None:
        self._halt.set()
        self._thread.join(5.0)
        if self._scheduler is not None and self._scheduler.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self._scheduler.pid, signal.SIGCONT)
            self._scheduler.terminate()
            try:
                self._scheduler.wait(10)
            except subprocess.TimeoutExpired:
                self._scheduler.kill()
                self._scheduler.wait(5)
        self._sub.close(linger=0)
        self._pub.close(linger=0)
        self._ctx.term()
