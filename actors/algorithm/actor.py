"""The Algorithm: on every tick, prices each (book, strategy) pair it owns and prints the decision.

Per pair and tick: ask the DataManager for the competitor's last prices, average them, register a
request with the APIServer at the price now being set, wait the strategy's delay x, read whether the
book sold, and price it at ``avg * 1.1`` or ``avg * 0.9`` (:mod:`actors.pricing.rule`).

The jobs, one module each: ``ticks`` (which ticks to follow, the receive loop), ``dispatch`` (which
pair next: at most one decision in flight per pair, at most one per (book, strategy, tick), a pair
freed late still decides for the newest tick), ``pool`` (a fixed pool of worker coroutines doing
every step), ``pipeline`` (the steps and checks of a decision: rule, then guardrails), ``roster``
(which pairs are priced now: owned, not paused; a reload swaps it on SIGHUP), ``sink`` and ``spool``
(keep, then print: each decision on the worker's disk, fsync'd, before its line is written),
``writer`` (printing without ever blocking the loop), ``clients.ledger`` (every decision shipped to
the Ledger from the spool; each pair resumes from its last decided price), ``admission`` (pairs wait
their turn while the Ledger is behind or the spool full). A failed step skips that decision with a log line and a
counter; the pair is tried again on the next tick. At start (and after a restart) ticks are taken at
once; only registrations wait for the spool to be read back and the Ledger to say each pair's last
decision, and a pair either says was decided for the current tick is not decided again.
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
import signal
import sys
import time
from collections.abc import Sequence
from decimal import Decimal
from typing import Final, TextIO

import zmq
import zmq.asyncio

from actors import runtime
from actors.algorithm import gc_watch
from actors.algorithm.admission import Admission
from actors.algorithm.clients.api import ApiClient, HttpPolicy
from actors.algorithm.clients.data_manager import LastPricesClient, RequestPolicy
from actors.algorithm.clients.http import HttpClient
from actors.algorithm.clients.ledger import LastDecided, LedgerClient
from actors.algorithm.dispatch import Dispatcher
from actors.algorithm.options import AlgorithmOptions, book_ids, spool_path, with_worker_from_env
from actors.algorithm.pairs import PairTable
from actors.algorithm.pipeline import Pipeline
from actors.algorithm.pool import Pool
from actors.algorithm.roster import Roster
from actors.algorithm.sink import DecisionSink, KeepThenPrint, Printer, PrintThenKeep
from actors.algorithm.spool.disk import SpoolLocked
from actors.algorithm.spool.records import Scan
from actors.algorithm.spool.spool import Spool
from actors.algorithm.ticks import STALL_INTERVALS, TickGate, TickReceiver, Verdict
from actors.algorithm.writer import OutputWriter
from actors.kinds import ALGORITHM
from actors.pricing.config import Config, ConfigError, load_config
from actors.pricing.config.reload import ConfigReloader, log_warnings, warnings_log
from actors.pricing.strategies import Pair, Share
from actors.probes import READY, Readiness, not_ready
from transport import endpoints
from transport.logs import RateLimitedLog
from transport.protocol import Decision, Tick
from transport.roles import TICKS
from transport.sockets import Sockets

log = logging.getLogger(ALGORITHM.name)


RETRY_MIN: Final = 0.5  # seconds between retries within a tick (forged repeats cannot make a storm)
LEDGER_DRAIN_MAX: Final = 60.0  # seconds a clean stop waits at most for a Ledger that keeps acknowledging
DRAIN_TIMEOUT: Final = 3.0  # seconds a clean stop waits for decisions in flight, then for stdout, the Ledger


class Algorithm:
    """One worker: ``options`` (its command line), the ``config`` loaded from them (the pairs of every
    worker: this one takes its share), its sockets, and where decisions are printed."""

    def __init__(self, sockets: Sockets[zmq.asyncio.Socket], options: AlgorithmOptions, config: Config,
                 out: TextIO = sys.stdout) -> None:
        self.name = ALGORITHM.instance(options.worker, options.workers_total)
        self._sockets = sockets
        self._options = options
        self._data = endpoints.split_list(options.data_endpoint)
        self._config = config
        share = Share(options.worker, options.workers_total)
        self._table = PairTable(share.owned(config.pairs))
        http_policy = HttpPolicy.of(options)
        self._writer = OutputWriter(out)
        self._gate = TickGate()
        self._intake = TickReceiver(self._gate, self._on_tick, on_repeat=self._on_repeat)
        self._retried_at = -math.inf  # monotonic time of the last retry within a tick
        self._gc = gc_watch.GcWatch()
        self._log = RateLimitedLog(log)
        # reload_without_config: SIGHUPs with nothing to reload (no --config); a reload's own outcome is
        # config_reloads / config_reload_errors (the reloader's)
        self._own = {"overruns": 0, "unstarted": 0, "carried": 0, "missed": 0, "reload_without_config": 0}
        self._last_seq: int | None = None  # of the run followed
        self._dm = LastPricesClient(sockets, self._data, RequestPolicy.of(options))
        self._http = HttpClient(options.api_url, http_policy.max_in_flight)
        self._api = ApiClient(self._http, http_policy)
        printer = Printer(self._writer, json_output=options.json)
        # Keep, then print: with a Ledger, every decision goes through the worker's spool (unless
        # --no-spool asks for the lossy order: print, then keep in memory).
        self._spool: Spool[Decision] | None = None
        self._admission: Admission | None = None
        self._ledger: LedgerClient | None = None
        self._sink: DecisionSink = PrintThenKeep(printer, None)
        if options.ledger_endpoint:
            if not options.no_spool:
                self._spool = Spool(spool_path(options), max_bytes=options.spool_max_bytes,
                                    on_durable=printer.print_all)
            self._ledger = LedgerClient(sockets, options.ledger_endpoint, spool=self._spool)
            if self._spool is not None:
                self._sink = KeepThenPrint(self._spool)
                self._admission = Admission(self._spool, self._ledger, options.ledger_backlog)
            else:
                self._sink = PrintThenKeep(printer, self._ledger)
        self._pipeline = Pipeline(self._table, self._dm, self._api, self._sink,
                                  dm_batch=options.dm_batch, api_batch=options.api_batch, config=config)
        self._roster = Roster(config, share, self._table, self._pipeline)
        self._dispatcher = Dispatcher(self._table)
        # With a Ledger, a pair's first decision must register its last decided price, not the average:
        # windows are fetched at once, registrations wait for the Ledger's answer (bounded).
        self._pool = Pool(self._dispatcher, self._pipeline, self._api, workers=http_policy.max_in_flight,
                          api_batch=options.api_batch, dm_batch=options.dm_batch, resuming=self._ledger is not None,
                          gate=self._admission)
        # A loaded config's warnings, at start as on a reload: said by worker 0 alone (every worker loads
        # the same config: N workers made N copies of each warning, issue 21's trial).
        says = options.worker == 0
        self._config_log = warnings_log() if says else None
        self._reloader = (ConfigReloader(options.config, config, self._reload, poll=options.config_poll or None,
                                         warnings=self._config_log, say_warnings=says) if options.config else None)
        self._resumed = self._ledger is None  # the Ledger has said the pairs' last prices (readiness)
        self._resumes: asyncio.Queue[list[Pair]] = asyncio.Queue(maxsize=64)  # pairs to ask the Ledger about
        self._parts = [self._own, self._intake.counters, self._writer.counters, self._gc.counters,
                       self._pipeline.counters, self._dm.counters, self._api.counters,
                       *((self._ledger.counters,) if self._ledger else ()),
                       *((self._spool.counters, self._admission.counters) if self._spool and self._admission else ()),
                       *((self._reloader.counters,) if self._reloader else ())]
        self._roster.release()  # the config's paused pairs are blocked from the start

    @property
    def counters(self) -> dict[str, int]:
        merged: dict[str, int] = {}
        for part in self._parts:
            merged.update(part)
        merged["in_flight"] = self._dispatcher.busy
        merged["retried_in_tick"] = self._dispatcher.retried  # pair-ticks tried again when their tick came again
        merged["paused"] = self._dispatcher.paused  # pair-ticks not decided because the pair was paused
        # pair-ticks not decided again after a restart: the Ledger had them (passed over, or found waiting)
        merged["decided_before"] = self._dispatcher.decided_before + self._pipeline.counters["decided_before"]
        merged["pairs_active"] = self._roster.active
        merged.update(self._roster.config.catalog_counters())  # of the config running now
        return merged

    def readiness(self, now: float | None = None) -> Readiness:
        """Ready when ticks arrive (the last one within the stall bound the tick receiver warns at) and,
        with a Ledger, once it has said the pairs' last prices: decisions are being made."""
        if not self._resumed:
            return not_ready("waiting for the Ledger's last decided prices")
        run = self._gate.run
        if run is None:
            return not_ready(f"no tick received yet from {self._options.ticks_endpoint}")
        silent = (time.time() if now is None else now) - self._gate.advanced_at
        if silent > max(1.0, STALL_INTERVALS * run[1]):
            return not_ready(f"no new tick for {silent:.0f}s from {self._options.ticks_endpoint}")
        return READY

    def _on_tick(self, tick: Tick, verdict: Verdict) -> None:
        # Pair-ticks with no decision attempt: ticks never seen (superseded, lost) and pairs a tick
        # could not start before the next one (what a slow consumer of this output must expect).
        gap = tick.seq - self._last_seq - 1 if verdict is Verdict.NEW and self._last_seq is not None else 0
        self._last_seq = tick.seq
        if self._spool is not None and self._admission is not None:
            self._spool.know_tick(tick.t0, tick.seq)  # segments of older ticks may go once acknowledged
            self._admission.new_tick()
        late = self._pool.new_tick(tick)
        self._own["missed"] += late.unstarted + max(0, gap) * self._roster.active
        self._own["carried"] += late.carried
        if late.overruns or late.unstarted:
            # Each of these pairs decides for the newest tick as soon as it can.
            self._own["overruns"] += late.overruns
            self._own["unstarted"] += late.unstarted
            self._log.warning("overrun", "tick %d: %d pair(s) still busy with an earlier tick, %d never started "
                              "for one (overload): each decides the oldest tick it still owes, late", tick.seq,
                              late.overruns, late.unstarted)
        if self._reloader is not None:
            self._reloader.know_tick(tick.interval)

    def _on_repeat(self, tick: Tick) -> None:
        """The tick followed now came again: pairs it skipped because a peer did not answer (at a start,
        the APIServer or DataManager may come up after the tick) try again, at most once a RETRY_MIN."""
        now = time.monotonic()
        if now - self._retried_at >= RETRY_MIN:
            self._retried_at = now
            self._pool.retry_skipped()

    # --- config reload and resume -------------------------------------------------------------

    def _on_sighup(self) -> None:
        if self._reloader is None:
            self._own["reload_without_config"] += 1
            self._log.warning("sighup", "SIGHUP: nothing to reload (no --config)")
        else:
            self._reloader.request()

    def _reload(self, config: Config) -> str | None:
        """A reloaded config, valid as a whole: applies from the next pair started (see ``roster``).
        Returns why it cannot be taken (the reloader then refuses it and keeps the running one)."""
        added = self._roster.apply(config)
        if isinstance(added, str):
            return added
        if added and self._ledger is not None:
            self._roster.hold(added)
            try:
                self._resumes.put_nowait(added)
            except asyncio.QueueFull:  # many reloads in a row: these start from their average
                self._roster.release()
        return None

    async def _resume(self, ledger: LedgerClient) -> None:
        """Learn the last decision of each pair (at start, then pairs a reload adds): those pairs register
        its price instead of the average, and a tick it was for is not decided again (a restart). At
        start the spool is read back first (it knows what this worker decided, acknowledged or not), then
        the Ledger is asked (it knows what any worker decided); the newer of the two wins. Meanwhile the
        start's decisions wait to register, a reload's new pairs are held."""
        scan = await self._open_spool(self._spool) if self._spool is not None else None
        while True:
            pairs = await self._resumes.get()
            found = await ledger.last_decided([pair.key for pair in pairs])
            if scan is not None:
                found = newest(found, scan)
                scan = None  # the start's only: a reload's pairs are asked of the Ledger
            for key, last in found.items():
                self._table.remember(key, last.price, (last.run, last.tick) if last.tick >= 0 else None)
            if self._resumes.empty():
                self._roster.release()
            self._pool.resume_done()  # the first answer (at start) releases the registrations
            self._resumed = True

    async def _open_spool(self, spool: Spool[Decision]) -> Scan:
        try:
            return await spool.open()
        except (OSError, SpoolLocked) as exc:
            # No falling back to printing first: that would lose decisions silently. Said once per start.
            log.error("spool %s cannot be used (%s): this worker cannot keep decisions before printing them; "
                      "--spool-dir moves it (--no-spool prints without keeping, and loses decisions)",
                      spool.directory, exc)
            raise

    async def run(self, stop: asyncio.Event) -> None:
        sub = self._sockets.sub(self._options.ticks_endpoint, channel=TICKS)
        dm, pool = self._dm, self._pool
        log.info("pricing %d pair(s); ticks from %s, data from %s, API at %s", len(self._table),
                 self._options.ticks_endpoint, ",".join(self._data), self._options.api_url)
        log_warnings(self._config_log, self._config)  # what loading it skipped (as a reload logs it)
        self._writer.start()
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGHUP, self._on_sighup)  # reload (without a handler SIGHUP kills)
        try:
            with self._gc:
                async with asyncio.TaskGroup() as group:
                    tasks = [group.create_task(dm.run()), group.create_task(pool.run())]
                    if self._ledger is not None:
                        self._resumes.put_nowait(list(self._pipeline.pairs))  # first their last prices
                        tasks += [group.create_task(self._ledger.run()), group.create_task(self._resume(self._ledger))]
                    if self._reloader is not None:
                        tasks.append(group.create_task(self._reloader.run(stop)))
                    intake = group.create_task(self._intake.run(sub))
                    await stop.wait()  # every loop waits on its socket with no timeout: idle costs nothing
                    intake.cancel()
                    pool.stop_starting()
                    await self._drain()
                    if self._spool is not None:
                        await self._spool.flush(DRAIN_TIMEOUT)  # kept, then printed
                    if self._ledger is not None:
                        # As long as the Ledger keeps acknowledging (the launcher's --grace bounds the stop):
                        # a backlog of --ledger-backlog takes a second or two. It says what it could not deliver.
                        await self._ledger.flush(LEDGER_DRAIN_MAX, quiet=DRAIN_TIMEOUT)
                    for task in tasks:
                        task.cancel()
        finally:
            loop.remove_signal_handler(signal.SIGHUP)
            sub.close(linger=0)
            dm.close()
            if self._ledger is not None:
                self._ledger.close()
            if self._spool is not None:
                await self._spool.close()
            await self._http.close()
            if not await self._writer.aclose(DRAIN_TIMEOUT):
                log.warning("stdout is not being read: decisions still waiting to be printed are lost")

    async def _drain(self) -> None:
        """Let decisions in flight finish (none is lost to a clean stop), within a bound."""
        try:
            await asyncio.wait_for(self._pool.drained.wait(), DRAIN_TIMEOUT)
        except TimeoutError:
            log.warning("stopping with %d decision(s) still in flight", self._dispatcher.busy)


def newest(found: dict[tuple[str, str], LastDecided], scan: Scan) -> dict[tuple[str, str], LastDecided]:
    """Each pair's newer last decision, by (run, tick), of the Ledger's answer and the spool's scan."""
    merged = dict(found)
    for key, last in scan.last.items():
        known = merged.get(key)
        if known is None or known.tick < 0 or (last.run, last.tick) > (known.run, known.tick):
            merged[key] = LastDecided(Decimal(last.price), last.run, last.tick)
    return merged


# --- command line ------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None, liveness: runtime.Liveness | None = None) -> int:
    options, runtime_options = runtime.parse_options(ALGORITHM, AlgorithmOptions, __doc__, argv)
    try:
        options = with_worker_from_env(options, os.environ)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return runtime.CONFIGURATION_ERROR
    try:
        config = load_config(options.config) if options.config else Config.simple(book_ids(options), options.delay)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return runtime.CONFIGURATION_ERROR

    def make(sockets: Sockets[zmq.asyncio.Socket]) -> runtime.Actor:
        algorithm = Algorithm(sockets, options, config)
        gc_watch.tune()  # after the pairs exist: they live as long as the process (see gc_watch)
        return algorithm

    return runtime.run_actor(ALGORITHM.instance(options.worker, options.workers_total), make, runtime_options,
                             liveness)
