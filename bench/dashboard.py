"""The Dashboard under load, as a separate process (``python -m actors.dashboard``):

1. **Books page, 100,000 pairs.** A Ledger database of 50,000 books x 2 strategies (written with
   :mod:`bench.fake_ledger` in the Ledger's schema); ``GET /books`` with a random sort key, direction
   and page over the whole range (and some searches), one keep-alive connection, sequential: p50 / p99
   / max. Baseline in the same run: ``GET /static/style.css`` (the HTTP floor: no database). Measured
   on the schema as the brief has it, then on a copy with the indexes the Dashboard asks the Ledger for
   (``fake_ledger.PROPOSED_INDEXES``).
2. **Live clients.** 5 server-sent-event clients on ``/api/live`` and a stream of ``ActorStatus``
   messages (14 actors, 10 of them Algorithm workers whose counters move, at 100 messages/s: the
   launcher sends at most one per actor per heartbeat, so this is ~7x a 14-process system at full
   tilt; the books being decided only change the numbers in them). The Dashboard's CPU (% of one
   core) and RSS over the window; baseline: the same process idle (no client, no message) over a
   window of the same length.
3. **The real thing** (full run only): the launcher with 10,000 books on a 5 s tick and the Dashboard,
   5 live clients; the Dashboard's CPU and RSS while the system decides (decisions/s shown beside).
"""

from __future__ import annotations

import contextlib
import http.client
import random
import shutil
import sqlite3
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import zmq

from bench import common, fake_ledger
from bench.common import Config, Outcome, Row
from transport import protocol
from transport.protocol import ActorStatus

TARGET_P99_MS = 100.0
SORTS = ("book", "strategy", "price", "avg", "sold", "hits", "decisions", "updated")
PAIRS = 100_000


@contextlib.contextmanager
def dashboard(db: Path, events: str | None = None) -> Iterator[tuple[int, int]]:
    """A Dashboard on a free port; (port, pid)."""
    port = common.free_port()
    args = ["--port", str(port), "--db", str(db)] + (["--events-endpoint", events] if events else [])
    with common.actor("dashboard", *args) as process:
        common.wait_http(f"http://127.0.0.1:{port}/static/style.css", timeout=30)
        yield port, process.pid


def timed_gets(port: int, paths: list[str]) -> list[float]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    took: list[float] = []
    try:
        for path in paths:
            start = time.perf_counter()
            conn.request("GET", path)
            response = conn.getresponse()
            response.read()
            took.append(time.perf_counter() - start)
            if response.status != 200:
                raise RuntimeError(f"GET {path}: {response.status}")
    finally:
        conn.close()
    return took


def book_paths(count: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    last = PAIRS // 50
    paths = []
    for i in range(count):
        if i % 10 == 9:
            paths.append(f"/books?q={rng.randint(0, 999):03d}&sort={rng.choice(SORTS)}")
        else:
            paths.append(f"/books?sort={rng.choice(SORTS)}&dir={rng.choice(('asc', 'desc'))}"
                         f"&page={rng.randint(1, last)}")
    return paths


def books_page(cfg: Config, directory: Path) -> tuple[list[Row], dict[str, Any]]:
    db = directory / "ledger.sqlite3"
    fake_ledger.fill(db, books=PAIRS // 2, strategies=("default", "fast"), ticks=1, indexes=False)
    indexed = directory / "indexed.sqlite3"
    shutil.copy(db, indexed)
    with sqlite3.connect(indexed) as conn:
        for statement in fake_ledger.PROPOSED_INDEXES:
            conn.execute(statement)
    count = cfg.pick(150, 1000)
    rows: list[Row] = []
    raw: dict[str, Any] = {}
    for label, path in (("as the brief's schema has it", db), ("with the proposed indexes", indexed)):
        with dashboard(path) as (port, _):
            timed_gets(port, ["/books", "/static/style.css"] * 5)  # warm up: connections, page cache
            floor = common.summary_ms(timed_gets(port, ["/static/style.css"] * count))
            books = common.summary_ms(timed_gets(port, book_paths(count, seed=7)))
        raw[label] = {"books": books, "static": floor}
        rows.append(Row(f"books page, {PAIRS:,} pairs, random sort/page/search, p99 ({label}; p50 "
                        f"{books['p50']:.1f} ms, max {books['max']:.0f} ms, n={count})", books["p99"], "ms",
                        baseline=floor["p99"], baseline_label="GET /static/style.css p99",
                        target=f"< {TARGET_P99_MS:.0f} ms", met=books["p99"] < TARGET_P99_MS))
    return rows, raw


class StatusStream:
    """Publishes ActorStatus messages as a launcher would, at ``rate`` per second, in a thread."""

    def __init__(self, endpoint: str, rate: float) -> None:
        self.sent = 0
        self._stop = threading.Event()
        self._ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
        self._pub = self._ctx.socket(zmq.PUB)
        self._pub.setsockopt(zmq.LINGER, 0)
        self._pub.bind(endpoint)
        self._rate = rate
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        names = [f"algorithm-{i}" for i in range(10)] + ["scheduler", "datamanager", "apiserver", "dashboard"]
        counters = {name: {"decisions": 0, "skipped": 0, "overruns": 0, "http_requests": 0} for name in names}
        start = time.time()
        interval = 1.0 / self._rate
        due = time.monotonic()
        while not self._stop.is_set():
            name = names[self.sent % len(names)]
            moved = counters[name]
            moved["decisions"] += 200
            moved["http_requests"] += 400
            now = time.time()
            status = ActorStatus(now, name, 1000 + names.index(name), 40_000, 30_000, 0, 0, start, now, dict(moved))
            with contextlib.suppress(zmq.Again):
                self._pub.send(protocol.encode(status), zmq.NOBLOCK)
            self.sent += 1
            due += interval
            self._stop.wait(max(0.0, due - time.monotonic()))

    def __enter__(self) -> StatusStream:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)
        self._pub.close(0)
        self._ctx.term()


class LiveClient:
    """One browser's worth of ``/api/live``: reads every event, in a thread."""

    def __init__(self, port: int) -> None:
        self.events = 0
        self._conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        with contextlib.suppress(OSError, http.client.HTTPException, ValueError):
            self._conn.request("GET", "/api/live")
            response = self._conn.getresponse()
            for line in response:
                if line.startswith(b"data: "):
                    self.events += 1

    def close(self) -> None:
        sock = self._conn.sock
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(2)  # the reading thread sees the end of the stream and returns
        self._thread.join(5)
        with contextlib.suppress(Exception):
            self._conn.close()


def live_clients(cfg: Config, directory: Path) -> tuple[list[Row], dict[str, Any]]:
    window = cfg.pick(8.0, 30.0)
    endpoint = f"ipc://{directory}/events.sock"
    db = directory / "ledger.sqlite3"
    with dashboard(db, endpoint) as (port, pid):
        time.sleep(1.0)
        idle_before = common.cpu_ns(pid)
        time.sleep(window)
        idle_pct = 100.0 * (common.cpu_ns(pid) - idle_before) / 1e9 / window
        idle_rss = common.rss_kib(pid)
        with StatusStream(endpoint, rate=100.0) as stream:
            clients = [LiveClient(port) for _ in range(5)]
            try:
                time.sleep(2.0)  # connected and streaming
                before, sent_before = common.cpu_ns(pid), stream.sent
                time.sleep(window)
                busy_pct = 100.0 * (common.cpu_ns(pid) - before) / 1e9 / window
                rss = common.rss_kib(pid)
                sent = stream.sent - sent_before
            finally:
                for client in clients:
                    client.close()
            events = [c.events for c in clients]
    raw = {"window_s": window, "idle_cpu_pct": idle_pct, "busy_cpu_pct": busy_pct, "idle_rss_kib": idle_rss,
           "busy_rss_kib": rss, "statuses_sent": sent, "events_per_client": events}
    rows = [
        Row(f"dashboard CPU, 5 live clients + {sent / window:.0f} status msgs/s (% of one core; "
            f"{min(events)}-{max(events)} updates per client)", busy_pct, "%", baseline=idle_pct,
            baseline_label="the same process idle"),
        Row("dashboard RSS, 5 live clients + status stream", rss / 1024, "MiB", baseline=idle_rss / 1024,
            baseline_label="idle"),
    ]
    return rows, raw


def real_system(cfg: Config) -> tuple[list[Row], dict[str, Any]]:
    books = 10_000
    csv = common.ensure_csv(books, 100)
    port = common.free_port()
    window = 30.0
    with tempfile.TemporaryDirectory(prefix="bn-dash-books-") as tmp:
        books_file = common.write_books_file(Path(tmp), books)
        args = ["--data-file", str(csv), "--books-file", str(books_file), "--tick", "5", "--delay", "0",
                "--dashboard", "--dashboard-port", str(port), "--dashboard-db", str(Path(tmp) / "none.sqlite3")]
        with common.launcher(args, status_every=5.0) as run:
            run.wait_for_actors(["dashboard"], 30)
            common.wait_http(f"http://127.0.0.1:{port}/static/style.css", timeout=30)
            pid = run.pids()["dashboard"]
            clients = [LiveClient(port) for _ in range(5)]
            try:
                time.sleep(15.0)  # the first ticks, every client connected
                before, decided = common.cpu_ns(pid), run.decision_count()
                time.sleep(window)
                cpu_pct = 100.0 * (common.cpu_ns(pid) - before) / 1e9 / window
                rate = (run.decision_count() - decided) / window
                rss = common.rss_kib(pid)
            finally:
                for client in clients:
                    client.close()
    raw = {"books": books, "cpu_pct": cpu_pct, "rss_kib": rss, "decisions_per_s": rate, "window_s": window}
    return [Row(f"dashboard CPU, launcher with {books:,} books on a 5 s tick ({rate:,.0f} decisions/s), 5 live "
                "clients (% of one core)", cpu_pct, "%"),
            Row("dashboard RSS, same", rss / 1024, "MiB")], raw


def measure(cfg: Config) -> Outcome:
    out = Outcome()
    directory = Path(tempfile.mkdtemp(prefix="bn-dash-", dir="/tmp"))
    try:
        rows, raw = books_page(cfg, directory)
        out.rows += rows
        out.raw["books_page"] = raw
        rows, raw = live_clients(cfg, directory)
        out.rows += rows
        out.raw["live_clients"] = raw
        if not cfg.quick:
            rows, raw = real_system(cfg)
            out.rows += rows
            out.raw["real_system"] = raw
    finally:
        shutil.rmtree(directory, ignore_errors=True)
    return out
