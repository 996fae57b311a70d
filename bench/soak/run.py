"""One soak: the real launcher (Ledger and Dashboard on) for a given time, fed,
reloaded and watched. :func:`soak` returns what it saw; :mod:`bench.soak.report` judges it."""

from __future__ import annotations

import contextlib
import math
import threading
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Final

from bench.common import book_ids
from bench.driver import LauncherRun, free_port, launched, private_dir, wait_http
from bench.soak import procs, tally
from bench.soak.agree import Agreement, PrintedStore
from bench.soak.collect import Log, Printed, Supervision
from bench.soak.feed import Feed
from bench.soak.live_client import LiveClient
from bench.soak.poller import Poller
from bench.soak.prices import WINDOW, PriceCheck
from bench.soak.reloads import Reloads
from bench.soak.stalls import StallWatch

FIRST_DECISION_WAIT: Final = 180.0  # seconds: the start of 1,000 books on a loaded machine
DASHBOARD_WAIT: Final = 60.0  # seconds after the first decision
STOP_WAIT: Final = 120.0


@dataclass(frozen=True, slots=True)
class Plan:
    """A soak's parameters; the defaults are the release soak's (docs/operating.md#the-release-soak)."""

    books: int = 1000
    tick: float = 1.0
    delay: float = 0.1
    seconds: float = 7200.0  # how long the run lasts, from the first decision
    reload_every: float = 600.0  # seconds between SIGHUP reloads (0: none)
    dashboard: bool = True
    browser: bool = True  # a live Chromium on the Dashboard's overview (needs the Dashboard)
    look_every: float = 10.0  # seconds between two looks at the browser's page, and two polls of the Dashboard
    sample_every: float | None = None  # seconds between /proc samples (default: ~100 samples, 1..60 s)
    status_every: float = 5.0  # the launcher's --status-every
    max_growth_pct: float = 5.0  # RSS growth allowed from the middle to the end, each process and all
    start_grace: float = 30.0  # seconds after the first tick during which a tick may be short (see grace)
    # Accept short ticks whose missing decisions the Algorithm counted (``missed``, ``skipped``: a pair
    # busy past a whole tick, on a machine too loaded to keep up) -- the test suite's short run, on a
    # shared CI machine; never the release soak, where every book must be decided every tick.
    accept_counted_misses: bool = False
    data_max_mb: float = 64.0  # the followed file is rotated past this size
    workers: int = 1
    extra: tuple[str, ...] = ()  # more launcher options

    def __post_init__(self) -> None:
        if self.seconds <= 0 or self.books < 1:
            raise ValueError("a soak needs some seconds and some books")
        if self.browser and not self.dashboard:
            raise ValueError("the browser needs the Dashboard")
        if not 0 <= self.delay < self.tick:
            raise ValueError("the delay must be shorter than the tick")

    @property
    def grace(self) -> float:
        """Seconds after the first decision not judged for memory and short ticks: the start's, but
        at most a quarter of the run."""
        return min(self.start_grace, self.seconds / 4)

    @property
    def sample_interval(self) -> float:
        return self.sample_every or min(60.0, max(1.0, self.seconds / 100))


@dataclass
class Observed:
    """Everything a soak saw, for the report."""

    plan: Plan
    seconds: float
    stop_at: float
    exit_code: int | None
    printed: Printed
    supervision: Supervision
    log: Log
    reloads: Reloads
    feed: Feed
    looks: dict[str, object] | None
    polls: dict[str, object] | None
    samples: procs.Samples
    agreement: Agreement | None  # None when the Ledger could not be read
    agreement_error: str | None
    log_tail: str
    stalls: StallWatch  # the whole machine held up (a paused VM): the ticks it spans are not judged


@contextlib.contextmanager
def _live_client(plan: Plan, port: int | None) -> Iterator[LiveClient | None]:
    if not plan.browser or port is None:
        yield None
        return
    client = LiveClient(f"http://127.0.0.1:{port}/", plan.look_every)
    client.start()
    try:
        yield client
    finally:
        client.stop()


@contextlib.contextmanager
def _poller(plan: Plan, port: int | None) -> Iterator[Poller | None]:
    if port is None:
        yield None
        return
    url = f"http://127.0.0.1:{port}/"
    wait_http(url + "static/style.css", DASHBOARD_WAIT)
    poller = Poller(url, plan.look_every)
    poller.start()
    try:
        yield poller
    finally:
        poller.stop()


def soak(plan: Plan) -> Observed:
    with private_dir("soak-") as work:
        return _soak(plan, work)


def _soak(plan: Plan, work: Path) -> Observed:
    books = book_ids(plan.books)
    (work / "books.txt").write_text("\n".join(books) + "\n", encoding="utf-8")
    reloads = Reloads(work / "repricer.toml", "books.txt", plan.delay)
    feed = Feed(work / "prices.csv", books, plan.tick, keep=WINDOW, max_bytes=int(plan.data_max_mb * (1 << 20)))
    feed.prime(WINDOW)
    store = PrintedStore(work / "printed.sqlite3")
    printed = Printed(PriceCheck(reloads.epochs, feed.history.holds), store)
    supervision = Supervision(reloads)
    log = Log()
    db = work / "ledger.sqlite3"
    port = free_port() if plan.dashboard else None
    args = ["--config", str(reloads.path), "--data-file", str(feed.path), "--mode", "follow", "--tick", str(plan.tick),
            "--db", str(db), "--retain-rows", "0", "--workers", str(plan.workers), *plan.extra]
    if port is not None:
        args += ["--dashboard", "--dashboard-port", str(port)]
    samples = procs.Samples()
    stalls = StallWatch()
    stalls.start()
    exit_code: int | None = None
    looks: dict[str, object] | None = None
    polls: dict[str, object] | None = None
    try:
        feed.start()
        # The browser starts beside the launcher (each takes seconds) and opens the page once it can.
        with _live_client(plan, port) as client, launched(
                args, plan.status_every, on_decision=printed.on_line, on_message=supervision.on_message,
                on_log=log.on_line) as run:
            first_at = run.wait_until(lambda: printed.first_at, FIRST_DECISION_WAIT, "the first decision")
            if client is not None:
                client.wait_open()  # bounded; a page that never opened is in the report (looks: errors)
            with _poller(plan, port) as poller:
                _follow(plan, run, printed, supervision, reloads, samples, first_at)
                supervision.stopping.set()
                looks = client.stop().report() if client is not None else None
                polls = poller.stop().report() if poller is not None else None
            stop_at = time.time()
            exit_code = run.stop(timeout=STOP_WAIT)
            seconds = stop_at - first_at
            log_tail = run.log_tail(40)
    finally:
        feed.stop()
        stalls.stop()
    agreement, error = None, None
    try:
        agreement = store.compare(db)
    except Exception as exc:  # a missing or unreadable Ledger: the report says so and fails
        error = f"{type(exc).__name__}: {exc}"
    finally:
        store.close()
    return Observed(plan, seconds, stop_at, exit_code, printed, supervision, log, reloads, feed, looks, polls, samples,
                    agreement, error, log_tail, stalls)


def _follow(plan: Plan, run: LauncherRun, printed: Printed, supervision: Supervision, reloads: Reloads,
            samples: procs.Samples, first_at: float) -> None:
    """Sample, reload and wait until the run's end (or the launcher's, which the report then shows)."""
    end_at = first_at + plan.seconds
    next_sample = time.time()
    next_reload = first_at + plan.reload_every if plan.reload_every > 0 else math.inf
    wake = threading.Event()  # never set: a bounded wait between two looks at the clock

    def sample(now: float) -> None:
        pids = {"launcher": run.process.pid, **run.pids()}
        samples.add(procs.Sample(now, printed.decided(), procs.read(pids), supervision.snapshot()))

    while run.process.poll() is None:
        now = time.time()
        if now >= end_at:
            break
        if now >= next_sample:
            sample(now)
            next_sample += plan.sample_interval
        if now >= next_reload:
            reloads.reload(run.process.pid)
            next_reload += plan.reload_every
        wake.wait(max(0.0, min(next_sample, next_reload, end_at, now + 1.0) - time.time()))
    if run.process.poll() is None:
        sample(time.time())  # the end sample, just before the stop


def plan_dict(plan: Plan) -> dict[str, object]:
    out = asdict(plan)
    out["extra"] = list(plan.extra)
    return out


def last_judged(observed: Observed) -> int:
    """The last tick the report judges."""
    agreement = observed.agreement
    if agreement is not None and agreement.run is not None:
        return tally.last_judged(agreement.run, observed.plan.tick, observed.stop_at)
    span = observed.printed.tick_range()
    return span[1] - 1 if span else -1
