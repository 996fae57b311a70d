"""Shared helpers of the benchmark suite: generated data, the launcher as a subprocess, standalone
actors, /proc readings, percentiles and the result rows every measurement returns.

Nothing here imports the product's actors: the benchmarks drive the real processes from outside
(only :mod:`transport.protocol` is used, to decode ticks and build DataManager requests).
"""

from __future__ import annotations

import ast
import contextlib
import json
import math
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import zmq

from launcher import rss_kib as rss_kib  # re-exported: the launcher's reading of /proc/PID/statm
from launcher import started_pids
from transport import protocol
from transport.protocol import LastPricesReply, LastPricesRequest, Tick

REPO = Path(__file__).resolve().parent.parent
DATA_DIR = Path(os.environ.get("BENCH_DATA_DIR", "/tmp/bench-data"))  # generated CSVs: never in the repo
CLK_TCK = os.sysconf("SC_CLK_TCK")
# tolerant of fields added between rss_kib and restarts (e.g. pss_kib)
STATUS = re.compile(r"status (\S+) pid=(\S+) rss_kib=(\d+)\b.*? restarts=(\d+) counters=(\{.*\})")
STATUS_LAUNCHER = re.compile(r"status launcher pid=(\d+) rss_kib=(\d+) total_rss_kib=(\d+)")

T = TypeVar("T")


# --- configuration and results --------------------------------------------------------------------


@dataclass(frozen=True)
class Config:
    quick: bool = False

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


def cpu_seconds(pid: int) -> float:
    """utime + stime of ``pid`` in seconds from /proc/PID/stat; 0.0 if it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    # after the comm: state(0) ppid(1) ... utime is field 14 of stat, index 11 here; stime index 12
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


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


# --- endpoints -----------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextlib.contextmanager
def run_dir() -> Iterator[Path]:
    """A fresh short directory for ipc:// endpoints (unix socket paths are limited to ~100 bytes)."""
    path = Path(tempfile.mkdtemp(prefix="bn-", dir="/tmp"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


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
    deadline = time.monotonic() + 3.0
    while any(alive(p) for p in extra_pids) and time.monotonic() < deadline:
        time.sleep(0.05)
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


def wait_http(url: str, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=1.0):
                return
        except urllib.error.HTTPError:
            return  # it answered
        except OSError:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{url} did not answer within {timeout}s") from None
            time.sleep(0.05)


def dm_request(endpoint: str, book: str, tick: int, timeout: float, count: int = 5) -> tuple[LastPricesReply, float]:
    """One LastPricesRequest on a fresh DEALER; the reply and its round trip in seconds."""
    ctx = zmq.Context()
    sock = ctx.socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    try:
        sock.connect(endpoint)
        start = time.monotonic()
        sock.send(protocol.encode(LastPricesRequest(1, book, tick, count)))
        if not sock.poll(int(timeout * 1000)):
            raise TimeoutError(f"no reply from {endpoint} for {book}@{tick} within {timeout}s")
        reply = protocol.decode(sock.recv())
        elapsed = time.monotonic() - start
        assert isinstance(reply, LastPricesReply), reply
        return reply, elapsed
    finally:
        sock.close(0)
        ctx.term()


# --- the launcher --------------------------------------------------------------------------------


@dataclass
class StatusLine:
    at: float
    name: str
    pid: int
    rss_kib: int
    counters: dict[str, int]


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


class LauncherRun:
    """``python launcher.py --json`` with private endpoints: decisions (raw line + receive time),
    its log, the actors' pids and status lines, the ticks it publishes."""

    def __init__(self, directory: Path, args: Sequence[str], status_every: float = 1.0) -> None:
        self.dir = directory
        self.api_port = free_port()
        command = [sys.executable, str(REPO / "launcher.py"), "--json", "--run-dir", str(directory),
                   "--api-port", str(self.api_port), "--status-every", str(status_every), *args]
        self.started_at = time.time()
        self.process = subprocess.Popen(command, cwd=REPO, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                        stderr=subprocess.PIPE, start_new_session=True)
        self.lines: list[tuple[float, bytes]] = []  # parsed after the run: keeps the reader cheap
        self.log: list[str] = []
        self.status: list[StatusLine] = []
        self.launcher_total_kib: list[tuple[float, int]] = []
        self.ticks = TickListener(f"ipc://{directory}/ticks.sock")
        self._readers = [threading.Thread(target=self._read_stdout, daemon=True),
                         threading.Thread(target=self._read_stderr, daemon=True)]
        for reader in self._readers:
            reader.start()

    def _read_stdout(self) -> None:
        assert self.process.stdout is not None
        append = self.lines.append
        clock = time.time
        for line in self.process.stdout:
            append((clock(), line))

    def _read_stderr(self) -> None:
        assert self.process.stderr is not None
        for raw in self.process.stderr:
            line = raw.decode("utf-8", "replace").rstrip("\n")
            self.log.append(line)
            if " status " not in line:
                continue
            now = time.time()
            if match := STATUS_LAUNCHER.search(line):
                self.launcher_total_kib.append((now, int(match.group(3))))
            elif (match := STATUS.search(line)) and match.group(2) != "None":
                with contextlib.suppress(ValueError, SyntaxError):
                    counters = ast.literal_eval(match.group(5))
                    self.status.append(StatusLine(now, match.group(1), int(match.group(2)),
                                                  int(match.group(3)), dict(counters)))

    def pids(self) -> dict[str, int]:
        return started_pids(list(self.log))

    def all_pids(self) -> dict[str, int]:
        """Every actor's pid plus the launcher's."""
        return {**self.pids(), "launcher": self.process.pid}

    def wait_for(self, predicate: Callable[[], bool], timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while not predicate():
            if self.process.poll() is not None:
                raise RuntimeError(f"launcher exited ({self.process.returncode}) while waiting for {what}: "
                                   + "\n".join(self.log[-20:]))
            if time.monotonic() > deadline:
                raise TimeoutError(f"timed out after {timeout}s waiting for {what}: " + "\n".join(self.log[-20:]))
            time.sleep(0.02)

    def wait_actors(self, count: int, timeout: float = 20.0) -> dict[str, int]:
        self.wait_for(lambda: len(self.pids()) >= count, timeout, f"{count} actors to start")
        return self.pids()

    def wait_tick(self, seq: int, timeout: float = 30.0) -> Tick:
        self.wait_for(lambda: bool(self.ticks.ticks) and self.ticks.ticks[-1][0].seq >= seq, timeout,
                      f"tick {seq}")
        return self.ticks.ticks[-1][0]

    def rss(self) -> dict[str, int]:
        """RSS in KiB of the launcher and each actor now, plus their total."""
        sizes = {name: rss_kib(pid) for name, pid in self.all_pids().items()}
        sizes["total"] = sum(sizes.values())
        return sizes

    def cpu(self) -> float:
        """utime + stime of the launcher and every actor, in seconds."""
        return sum(cpu_seconds(pid) for pid in self.all_pids().values())

    def decisions(self) -> list[tuple[float, dict[str, Any]]]:
        return [(at, json.loads(line)) for at, line in list(self.lines)]

    def last_counters(self, prefix: str = "algorithm") -> dict[str, int]:
        """The latest status counters of each actor named ``prefix*``, summed."""
        latest: dict[str, StatusLine] = {}
        for line in list(self.status):
            if line.name.startswith(prefix):
                latest[line.name] = line
        total: dict[str, int] = {}
        for line in latest.values():
            for key, value in line.counters.items():
                total[key] = total.get(key, 0) + value
        return total

    def stop(self) -> None:
        pids = list(self.pids().values())
        try:
            terminate(self.process, pids, grace=15.0)
        finally:
            self.ticks.stop()
            for reader in self._readers:
                reader.join(5.0)
            for stream in (self.process.stdout, self.process.stderr):
                if stream is not None:
                    stream.close()


@contextlib.contextmanager
def launcher(args: Sequence[str], status_every: float = 1.0) -> Iterator[LauncherRun]:
    with run_dir() as directory:
        run = LauncherRun(directory, args, status_every)
        try:
            yield run
        finally:
            run.stop()


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
