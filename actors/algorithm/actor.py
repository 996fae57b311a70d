"""The Algorithm: on every tick, prices each (book, strategy) pair it owns and prints the decision.

Per pair and tick: ask the DataManager for the competitor's last prices, average them, register a
request with the APIServer at the price now being set, wait the strategy's delay x, read whether the
book sold, and price it at ``avg * 1.1`` or ``avg * 0.9`` (:mod:`actors.pricing`).

Bounds, so a slow peer can never make work pile up: a pair has at most one decision in flight (a tick
that finds it still busy is an *overrun*, counted and skipped, never queued); DataManager and HTTP
requests in flight are capped by FIFO semaphores; each tick seq is handled at most once, so no
(book, strategy, tick) is decided twice. A failed step skips that decision with a log line and a
counter; the pair is tried again on the next tick.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import time
from collections.abc import Sequence
from decimal import Decimal
from typing import TextIO

import aiohttp
import zmq
import zmq.asyncio

from actors import runtime
from actors.algorithm.api_client import ApiClient, ApiError, HttpPolicy
from actors.algorithm.config import ConfigError, load_config
from actors.algorithm.data_client import LastPricesClient, RequestFailed, RequestPolicy
from actors.algorithm.options import AlgorithmOptions, book_ids
from actors.algorithm.output import format_human, format_json
from actors.algorithm.pricing import PricingRule, avg_comp_price, reprice, to_cents
from actors.algorithm.strategies import Pair, Strategy, dispatch_order, owned_pairs, pairs_for
from actors.kinds import ALGORITHM
from transport import endpoints, protocol
from transport.logs import RateLimitedLog
from transport.protocol import Decision, ProtocolError, Tick
from transport.sockets import TICK_HWM, Sockets

log = logging.getLogger(ALGORITHM.name)

def _real_fd(out: TextIO) -> int | None:
    """The file descriptor behind ``out`` if it is the process's stdout, else None (tests pass a
    StringIO)."""
    if out is not sys.__stdout__:
        return None
    try:
        out.flush()
        return out.fileno()
    except (AttributeError, OSError, ValueError):
        return None


class Algorithm:
    def __init__(
        self,
        sockets: Sockets[zmq.asyncio.Socket],
        *,
        ticks: str,
        data: Sequence[str],
        api_url: str,
        pairs: Sequence[Pair],
        out: TextIO = sys.stdout,
        json_output: bool = False,
        dm_policy: RequestPolicy | None = None,
        http_policy: HttpPolicy | None = None,
        drain_timeout: float = 3.0,
        name: str = "algorithm",
    ) -> None:
        self.name = name
        self._sockets = sockets
        self._ticks = ticks
        self._data = tuple(data)
        self._api_url = api_url
        self._pairs = tuple(pairs)
        self._out = out
        self._out_fd = _real_fd(out)
        self._format = format_json if json_output else format_human
        self._dm_policy = dm_policy or RequestPolicy()
        self._http_policy = http_policy or HttpPolicy()
        self._drain_timeout = drain_timeout
        self._last_seq = -1
        self._busy: set[tuple[str, str]] = set()  # pairs with a decision in flight: <= len(pairs)
        self._registered: dict[tuple[str, str], Decimal] = {}  # last decided price: <= len(pairs)
        self._tasks: set[asyncio.Task[None]] = set()
        self._skips = RateLimitedLog(log)
        self._own: dict[str, int] = {
            "ticks": 0, "stale_ticks": 0, "superseded_ticks": 0, "bad_frames": 0,
            "decisions": 0, "skipped": 0, "overruns": 0, "output_errors": 0, "last_tick": -1,
        }
        self._dm: LastPricesClient | None = None
        self._api: ApiClient | None = None

    @property
    def counters(self) -> dict[str, int]:
        merged = dict(self._own)
        if self._dm is not None:
            merged.update(self._dm.counters)
        if self._api is not None:
            merged.update(self._api.counters)
        return merged

    # --- one decision --------------------------------------------------------------------------

    async def _decide(self, pair: Pair, tick: Tick, dm: LastPricesClient, api: ApiClient) -> None:
        strategy = pair.strategy
        try:
            reply = await dm.last_prices(pair.book, tick.seq, strategy.rule.window)
            if len(reply.prices) != strategy.rule.window:
                raise RequestFailed(f"expected {strategy.rule.window} prices, got {len(reply.prices)}")
            avg = avg_comp_price(reply.prices)
            registered = self._registered.get(pair.key)
            if registered is None:  # first tick: register the average, in cents like every price sent
                registered = to_cents(avg)
            request_id = await api.register_request(pair.book, strategy.name, registered)
            await asyncio.sleep(float(strategy.delay))
            sold = await api.request_data(request_id)
            price = reprice(avg, sold, strategy.rule)
            self._registered[pair.key] = price
            self._emit(Decision(time.time(), tick.seq, pair.book, strategy.name, reply.prices, avg,
                                request_id, sold, price))
        except (RequestFailed, ApiError) as exc:
            self._own["skipped"] += 1
            self._skips.warning("skipped", "skipped book=%s strategy=%s tick=%d: %s (retried next tick)",
                                pair.book, strategy.name, tick.seq, exc)
        finally:
            self._busy.discard(pair.key)

    def _emit(self, decision: Decision) -> None:
        line = self._format(decision) + "\n"
        try:
            if self._out_fd is not None:
                # One write(2) per line, no buffer: the line is out (and whole: < PIPE_BUF) at once.
                os.write(self._out_fd, line.encode())
            else:
                self._out.write(line)
                self._out.flush()
        except OSError as exc:  # e.g. stdout closed by `| head`: say so, count it, keep serving
            self._own["output_errors"] += 1
            self._skips.warning("output", "could not print the decision for book=%s strategy=%s tick=%d: %s",
                                decision.book, decision.strategy, decision.tick, exc)
            return
        self._own["decisions"] += 1

    # --- ticks ---------------------------------------------------------------------------------

    def _on_tick(self, tick: Tick, group: asyncio.TaskGroup, dm: LastPricesClient, api: ApiClient) -> None:
        if tick.seq <= self._last_seq:
            self._own["stale_ticks"] += 1  # already handled: a (book, strategy, tick) is decided once
            return
        self._last_seq = tick.seq
        self._own["ticks"] += 1
        self._own["last_tick"] = tick.seq
        overruns = 0
        for pair in dispatch_order(self._pairs, tick.seq):
            if pair.key in self._busy:
                overruns += 1
                continue
            self._busy.add(pair.key)
            task = group.create_task(self._decide(pair, tick, dm, api))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        if overruns:
            self._own["overruns"] += overruns
            self._skips.warning("overrun", "tick %d: %d pair(s) still busy with an earlier tick: skipped",
                                tick.seq, overruns)

    async def _next_tick(self, sub: zmq.asyncio.Socket) -> Tick | None:
        """The newest tick on the socket (waiting for one), or None if only garbage arrived."""
        frames = [await sub.recv()]
        for _ in range(TICK_HWM):
            try:
                frames.append(await sub.recv(zmq.NOBLOCK))
            except zmq.Again:
                break
        newest: Tick | None = None
        for frame in frames:
            try:
                message = protocol.decode_as(frame, Tick)
            except ProtocolError as exc:
                self._own["bad_frames"] += 1
                self._skips.warning("bad_tick", "rejected a frame on the tick socket: %s", exc)
                continue
            if newest is not None:
                self._own["superseded_ticks"] += 1  # we fell behind: serve the present, not the backlog
            newest = message
        return newest

    async def _tick_loop(self, sub: zmq.asyncio.Socket, group: asyncio.TaskGroup, dm: LastPricesClient,
                         api: ApiClient) -> None:
        while True:
            tick = await self._next_tick(sub)
            if tick is not None:
                self._on_tick(tick, group, dm, api)

    # --- loop ----------------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        sub = self._sockets.sub(self._ticks)
        dm = self._dm = LastPricesClient(self._sockets, self._data, self._dm_policy)
        connector = aiohttp.TCPConnector(limit=self._http_policy.max_in_flight, ttl_dns_cache=None)
        log.info("pricing %d pair(s); ticks from %s, data from %s, API at %s", len(self._pairs),
                 self._ticks, ",".join(self._data), self._api_url)
        try:
            # No cookies, no compression, no automatic headers: none is used by the API, and each
            # costs time on every request of the hot path.
            async with aiohttp.ClientSession(connector=connector, cookie_jar=aiohttp.DummyCookieJar(),
                                             auto_decompress=False,
                                             skip_auto_headers=("User-Agent", "Accept-Encoding")) as session, \
                    asyncio.TaskGroup() as group:
                api = self._api = ApiClient(session, self._api_url, self._http_policy)
                receiver = group.create_task(dm.run())
                ticks = group.create_task(self._tick_loop(sub, group, dm, api))
                await stop.wait()  # every loop waits on its socket with no timeout: idle costs nothing
                ticks.cancel()
                # Let decisions in flight finish (none is lost to a clean stop), within a bound.
                if self._tasks:
                    await asyncio.wait(set(self._tasks), timeout=self._drain_timeout)
                for task in self._tasks:
                    task.cancel()
                receiver.cancel()
        finally:
            sub.close(linger=0)
            dm.close()


# --- command line ------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None, liveness: runtime.Liveness | None = None) -> int:
    options, runtime_options = runtime.parse_options(ALGORITHM, AlgorithmOptions, __doc__, argv)
    if options.config:
        try:
            all_pairs = load_config(options.config).pairs
        except ConfigError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
    else:
        all_pairs = pairs_for(book_ids(options), [Strategy("default", PricingRule(), options.delay)])
    pairs = list(owned_pairs(all_pairs, options.worker, options.workers_total))
    name = ALGORITHM.instance(options.worker, options.workers_total)

    def make(sockets: Sockets[zmq.asyncio.Socket]) -> runtime.Actor:
        return Algorithm(
            sockets, ticks=options.ticks, data=endpoints.split_list(options.data), api_url=options.api_url,
            pairs=pairs, json_output=options.json, dm_policy=RequestPolicy(timeout=options.dm_timeout),
            http_policy=HttpPolicy(timeout=options.http_timeout, max_in_flight=options.max_in_flight),
            name=name,
        )

    return runtime.run_actor(name, make, runtime_options, liveness)
