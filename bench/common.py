"""Shared helpers of the benchmark suite: generated data, the launcher as a subprocess (through
:mod:`bench.driver`, the driver the tests use too), standalone actors, /proc readings,
percentiles and the result rows every measurement returns.

Nothing here imports the product's actors: the benchmarks drive the real processes from outside
(only :mod:`transport.protocol` is used, to decode ticks and build DataManager requests).
"""

from __future__ import annotations

import contextlib
import math
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import zmq

from bench.driver import REPO as REPO  # re-exported: where the benchmarks run commands
from bench.driver import LauncherRun, private_dir
from bench.driver import free_port as free_port  # re-exported for the bench modules
from bench.driver import wait_http as wait_http
from bench.polling import wait_for
from repricer_supervisor.procfs import alive
from repricer_supervisor.procfs import cpu_seconds as cpu_seconds
from repricer_supervisor.procfs import rss_kib as rss_kib
from transport import protocol
from transport.protocol import Tick

DATA_DIR = Path(os.environ.get("BENCH_DATA_DIR", "/tmp/bench-data"))  # generated CSVs: never in the repo

T = TypeVar("T")


# --- configuration and results --------------------------------------------------------------------


@dataclass(frozen=True)
class Config:
    quick: bool = False
    seconds: float | None = None  # how long a timed run lasts (the soak), when given

    def pick(self, quick: T, full: T) -> T:
        return quick if self.quick else full


@dataclass
class Row:
    """One line of the results table. ``ratio`` = value / baseline when both are known."""

    measure: str
    value: float
    unit: str = ""
    baseline: float | None = None
    baseline_label: str = ""
    target: str = ""
    met: bool | None = None
    note: str = ""

    @property
    def ratio(self) -> float | None:
        if self.baseline is None or self.baseline == 0:
            return None
        return self.value / self.baseline

    def as_dict(self) -> dict[str, Any]:
        return {"measure": self.measure, "value": self.value, "unit": self.unit, "baseline": self.baseline,
                "baseline_label": self.baseline_label, "ratio": self.ratio, "target": self.target,
                "met": self.met, "note": self.note}


@dataclass
class Outcome:
    """What one measurement module returns: table rows plus everything raw, for the JSON file."""

    rows: list[Row] = field(default_factory=list)
    raw: dict[str, Any] = field(default_factory=dict)


# Results shared between modules within one ``bench.run`` (e.g. the soak run feeds both the tick and
# the memory measurements): computed once, on first use.
_CACHE: dict[str, Any] = {}


def cached(key: str, compute: Callable[[], T]) -> T:
    if key not in _CACHE:
        _CACHE[key] = compute()
    value: T = _CACHE[key]
    return value


def cached_values(prefix: str) -> list[Any]:
    """Every cached result whose key starts with ``prefix``."""
    return [value for key, value in _CACHE.items() if key.startswith(prefix)]


# --- numbers ------------------------------------------------------------------------------------


def percentile(values: Sequence[float], q: float) -> float:
    """Linear-interpolated percentile, q in 0..100; NaN for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100.0
    low = math.floor(pos)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


def summary_ms(seconds: Sequence[float]) -> dict[str, float]:
    """p50/p99/max/mean of durations given in seconds, in milliseconds."""
    ms = [s * 1000.0 for s in seconds]
    return {"n": float(len(ms)), "p50": percentile(ms, 50), "p99": percentile(ms, 99),
            "max": max(ms) if ms else math.nan, "mean": sum(ms) / len(ms) if ms else math.nan}


# --- /proc -------------------------------------------------------------------------------------


def cpu_ns(pid: int) -> int:
    """CPU time of all threads of ``pid`` in nanoseconds (/proc/PID/task/*/schedstat): /proc/PID/stat
    counts in 10 ms ticks, too coarse for an idle process; 0 if it is gone."""
    total = 0
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return 0
    for task in tasks:
        try:
            with open(f"/proc/{pid}/task/{task}/schedstat") as f:
                total += int(f.read().split()[0])
        except (OSError, ValueError, IndexError):
            continue
    return total


def cpu_by_kind(pids: Mapping[str, int]) -> dict[str, float]:
    """CPU seconds so far (all threads) of each kind of process in ``pids`` (name -> pid, the kind the
    name's part before a "-": Algorithm workers summed)."""
    totals: dict[str, float] = {}
    for name, pid in pids.items():
        kind = name.split("-")[0]
        totals[kind] = totals.get(kind, 0.0) + cpu_ns(pid) / 1e9
    return totals


# --- data ----------------------------------------------------------------------------------------


def book_ids(books: int) -> list[str]:
    """The ids ``data/generate.py`` gives ``books`` books."""
    width = max(3, len(str(books)))
    return [f"B{i:0{width}d}" for i in range(1, books + 1)]


def ensure_csv(books: int, rows: int) -> Path:
    """A generated CSV of ``books`` x ``rows`` (time-interleaved, seed 1) under DATA_DIR, made once."""
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    path = DATA_DIR / f"b{books}_r{rows}_s.csv"
    if not path.exists():
        tmp = path.with_suffix(f".tmp{os.getpid()}")
        subprocess.run([sys.executable, str(REPO / "data" / "generate.py"), "--books", str(books), "--rows",
                        str(rows), "--seed", "1", "-o", str(tmp)], check=True, cwd=REPO, timeout=900)
        tmp.rename(path)
    return path


def write_books_file(directory: Path, books: int) -> Path:
    path = directory / "books.txt"
    path.write_text("\n".join(book_ids(books)) + "\n", encoding="utf-8")
    return path


def count_lines(path: Path) -> int:
    with open(path, "rb") as f:
        return sum(chunk.count(b"\n") for chunk in iter(lambda: f.read(1 << 20), b""))


# --- processes -----------------------------------------------------------------------------------


def terminate(process: subprocess.Popen[Any], extra_pids: Sequence[int] = (), grace: float = 10.0) -> None:
    """SIGTERM, then SIGKILL after ``grace``; also SIGKILL ``extra_pids`` (children) still alive and
    the process group (every process is started in its own session)."""
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(signal.SIGTERM)
        try:
            process.wait(grace)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(5.0)
    with contextlib.suppress(AssertionError):  # 3 s of grace: whatever is left is killed below
        wait_for(lambda: not any(alive(p) for p in extra_pids), 3.0, 0.05, "the processes to exit")
    for pid in extra_pids:
        if alive(pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)  # anything left in the group


def python_module(module: str, *args: str, stdout: Any = subprocess.DEVNULL,
                  stderr: Any = subprocess.DEVNULL) -> subprocess.Popen[bytes]:
    """``python -m module args`` in the repo, in its own session (so it can be killed as a group)."""
    return subprocess.Popen([sys.executable, "-m", module, *args], cwd=REPO, stdin=subprocess.DEVNULL,
                            stdout=stdout, stderr=stderr, start_new_session=True)


@contextlib.contextmanager
def actor(module: str, *args: str) -> Iterator[subprocess.Popen[bytes]]:
    """One actor alone (``python -m actors.<module>``), stopped on exit; it also dies with us."""
    process = python_module(f"actors.{module}", *args, "--parent-pid", str(os.getpid()), "--log-level", "WARNING")
    try:
        yield process
    finally:
        terminate(process)


# --- the launcher --------------------------------------------------------------------------------


class TickListener:
    """A SUB on the Scheduler's tick endpoint, in a thread: (tick, receive wall time) per tick."""

    def __init__(self, endpoint: str) -> None:
        self.ticks: list[tuple[Tick, float]] = []
        self._endpoint = endpoint
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="ticks")
        self._thread.start()

    def _run(self) -> None:
        ctx = zmq.Context()
        sock = ctx.socket(zmq.SUB)
        sock.setsockopt(zmq.LINGER, 0)
        sock.setsockopt(zmq.SUBSCRIBE, b"")
        sock.connect(self._endpoint)
        try:
            while not self._stop.is_set():
                if sock.poll(100):
                    frame = sock.recv()
                    received = time.time()
                    message = protocol.decode(frame)
                    if isinstance(message, Tick):
                        self.ticks.append((message, received))
        finally:
            sock.close(0)
            ctx.term()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5.0)


class BenchRun(LauncherRun):
    """A launcher run with private endpoints, plus what benchmarks read beside it: the ticks it
    publishes (a SUB of our own), every process's RSS and CPU time from /proc."""

    def __init__(self, directory: Path, args: Sequence[str], status_every: float) -> None:
        super().__init__(args, directory, status_every)
        self.ticks = TickListener(f"ipc://{directory}/ticks.sock")

    def all_pids(self) -> dict[str, int]:
        """Every actor's pid plus the launcher's."""
        return {**self.pids(), "launcher": self.process.pid}

    def wait_tick(self, seq: int, timeout: float = 30.0) -> Tick:
        self.wait_until(lambda: bool(self.ticks.ticks) and self.ticks.ticks[-1][0].seq >= seq, timeout, f"tick {seq}")
        return self.ticks.ticks[-1][0]

    def rss(self) -> dict[str, int]:
        """RSS in KiB of the launcher and each actor now, plus their total."""
        sizes = {name: rss_kib(pid) for name, pid in self.all_pids().items()}
        sizes["total"] = sum(sizes.values())
        return sizes

    def cpu(self) -> float:
        """utime + stime of the launcher and every actor, in seconds."""
        return sum(cpu_seconds(pid) for pid in self.all_pids().values())


@contextlib.contextmanager
def launcher(args: Sequence[str], status_every: float = 1.0) -> Iterator[BenchRun]:
    with private_dir("bn-") as directory, BenchRun(directory, args, status_every) as run:
        try:
            yield run
        finally:
            run.ticks.stop()


def fmt(value: float | None) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if value == 0:
        return "0"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    if abs(value) >= 0.01:
        return f"{value:.3g}"
    return f"{value:.2g}"
