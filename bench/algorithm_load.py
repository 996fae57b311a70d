"""The Algorithm alone under load, in this process on uvloop (as in production), against stand-ins of
its peers: a DataManager ROUTER answering every window at once, and an aiohttp APIServer with a set
latency per call or a token bucket per endpoint. These were timing assertions of the unit tests; speed
is measured here instead.

* **slight overload**: 4 workers (``--max-in-flight 4``), 20 ms per API call, 40 books. The capacity
  is measured over two unhurried ticks, then 8 ticks are offered at 1.1x of it: achieved / capacity
  (target >= 0.9; deciding a pair busy at a tick for that tick once free keeps it there: skipping such
  pairs for the whole tick gave ~0.5).
* **pacing**: the server allows 50 calls/s per endpoint (burst 5); 75 books on 0.5 s ticks offer
  150/s; the Algorithm paced by its own bucket at the same rate: POSTs per second from second 1 to 4
  against the limit (target within 5%), and 429s after the first second (target 0: after one, the
  Algorithm cuts its burst).
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import zmq
import zmq.asyncio
from aiohttp import web

from actors.algorithm.actor import Algorithm
from actors.algorithm.options import AlgorithmOptions
from actors.pricing.config import Config
from bench.common import Outcome, Row
from bench.driver import private_dir
from transport import protocol
from transport.protocol import LastPricesReply, LastPricesRequest, Tick, WindowsReply, WindowsRequest
from transport.roles import DATA
from transport.sockets import Sockets

PRICES = tuple(Decimal(10) + Decimal(i) / 4 for i in range(5))


async def serve_windows(sock: zmq.asyncio.Socket) -> None:
    """A DataManager that answers every request at once with the same window."""
    while True:
        identity, frame = await sock.recv_multipart()
        request = protocol.decode(frame)
        reply: LastPricesReply | WindowsReply
        if isinstance(request, LastPricesRequest):
            reply = LastPricesReply(request.request_id, request.book, request.tick, PRICES)
        elif isinstance(request, WindowsRequest):
            reply = WindowsReply(request.request_id, request.tick, (PRICES,) * len(request.books),
                                 ("",) * len(request.books))
        else:
            continue
        await sock.send_multipart([identity, protocol.encode(reply)])


@dataclass
class Api:
    """The APIServer's single-item endpoints: ``latency`` per call, or a token bucket per endpoint at
    ``rate`` (burst ``burst``) answering 429 with the exact wait."""

    latency: float = 0.0
    rate: float = 0.0
    burst: float = 5.0
    next_id: int = 0
    buckets: dict[str, tuple[float, float]] = field(default_factory=dict)
    posts: list[float] = field(default_factory=list)  # monotonic time of each POST served
    refused: list[float] = field(default_factory=list)  # monotonic time of each 429

    def _limited(self, endpoint: str) -> web.Response | None:
        if not self.rate:
            return None
        now = time.monotonic()
        tokens, stamp = self.buckets.get(endpoint, (self.burst, now))
        tokens = min(self.burst, tokens + (now - stamp) * self.rate)
        if tokens < 1:
            self.buckets[endpoint] = (tokens, now)
            self.refused.append(now)
            return web.json_response({"error": "rate limit exceeded", "retry_after": (1 - tokens) / self.rate},
                                     status=429)
        self.buckets[endpoint] = (tokens - 1, now)
        return None

    def app(self) -> web.Application:
        async def register(request: web.Request) -> web.Response:
            if self.latency:
                await asyncio.sleep(self.latency)
            limited = self._limited("register")
            if limited is not None:
                return limited
            self.posts.append(time.monotonic())
            self.next_id += 1
            return web.json_response({"id": self.next_id})

        async def data(request: web.Request) -> web.Response:
            if self.latency:
                await asyncio.sleep(self.latency)
            return self._limited("read") or web.json_response({"sold": int(request.match_info["id"]) % 2 == 0})

        app = web.Application()
        app.router.add_post("/register-request", register)
        app.router.add_get("/request-data/{id}", data)
        return app


@dataclass
class Running:
    algorithm: Algorithm
    api: Api
    pub: zmq.asyncio.Socket
    t0: float

    async def tick(self, seq: int, interval: float) -> None:
        now = time.time()
        await self.pub.send(protocol.encode(Tick(seq, self.t0 + seq * interval, now, interval, self.t0)))

    async def until(self, done: Callable[[], bool], timeout: float = 30.0) -> None:  # noqa: ASYNC109
        deadline = time.monotonic() + timeout
        while not done():
            if time.monotonic() > deadline:
                raise TimeoutError("the Algorithm did not get there in time")
            await asyncio.sleep(0.002)

    async def first_tick(self, done: Callable[[], bool]) -> None:
        """Tick 0 sent until ``done`` (a PUB drops what it sends before the SUB has joined)."""
        deadline = time.monotonic() + 30
        while not done():
            if time.monotonic() > deadline:
                raise TimeoutError("the Algorithm did not follow tick 0 in time")
            await self.tick(0, 1.0)
            await asyncio.sleep(0.02)


@contextlib.asynccontextmanager
async def running(directory: Path, books: int, api: Api, **options: Any) -> AsyncIterator[Running]:
    ctx = zmq.asyncio.Context()
    ticks, data = f"ipc://{directory}/ticks.sock", f"ipc://{directory}/dm.sock"
    pub = Sockets(ctx).pub(ticks)
    dm = Sockets(ctx).router(data, channel=DATA)
    runner = web.AppRunner(api.app(), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    config = Config.simple([f"B{i:03d}" for i in range(books)], Decimal(0))
    algorithm = Algorithm(Sockets(ctx), AlgorithmOptions(ticks_endpoint=ticks, data_endpoint=data,
                                                         api_url=f"http://127.0.0.1:{port}",
                                                         ledger_endpoint="", json=True, dm_batch=1, **options),
                          config, out=io.StringIO())
    stop = asyncio.Event()
    try:
        async with asyncio.TaskGroup() as group:
            served = group.create_task(serve_windows(dm))
            task = group.create_task(algorithm.run(stop))
            try:
                yield Running(algorithm, api, pub, time.time())
            finally:
                stop.set()
                await asyncio.wait_for(task, 10)
                served.cancel()
    finally:
        await runner.cleanup()
        pub.close(linger=0)
        dm.close(linger=0)
        ctx.destroy(linger=0)


async def slight_overload(directory: Path) -> dict[str, Any]:
    books = 40
    async with running(directory, books, Api(latency=0.02), max_in_flight=4) as r:
        def decisions() -> int:
            return r.algorithm.counters["decisions"]

        await r.first_tick(lambda: decisions() >= books)
        started = time.monotonic()
        for seq in (1, 2):
            target = decisions() + books
            await r.tick(seq, 1.0)
            await r.until(lambda: decisions() >= target)  # noqa: B023 - awaited within the iteration
        capacity = 2 * books / (time.monotonic() - started)
        interval = books / (1.1 * capacity)
        before, begin = decisions(), time.monotonic()
        for k in range(1, 9):
            await r.tick(2 + k, interval)
            await asyncio.sleep(max(0.0, begin + k * interval - time.monotonic()))
        achieved = (decisions() - before) / (time.monotonic() - begin)
        counters = r.algorithm.counters
    return {"capacity_per_s": capacity, "achieved_per_s": achieved, "ratio": achieved / capacity,
            "overruns": counters["overruns"], "unstarted": counters["unstarted"]}


async def pacing(directory: Path) -> dict[str, Any]:
    rate, interval = 50.0, 0.5
    api = Api(rate=rate, burst=5)
    async with running(directory, 75, api, api_rate=rate, api_burst=5) as r:
        begin = time.monotonic()  # (tick 0 may be lost to the SUB still joining: measured from second 1)
        for seq in range(9):  # 4.5 s
            await r.tick(seq, interval)
            await asyncio.sleep(max(0.0, begin + (seq + 1) * interval - time.monotonic()))
        end = time.monotonic()
    posts = [at for at in api.posts if begin + 1 <= at < end]
    late_429 = [round(at - begin, 2) for at in api.refused if at >= begin + 1]
    return {"limit_per_s": rate, "posts_per_s": len(posts) / (end - begin - 1), "refused": len(api.refused),
            "refused_after_1s": late_429}


def _run(make: Callable[[Path], Awaitable[dict[str, Any]]]) -> dict[str, Any]:
    import uvloop

    async def body() -> dict[str, Any]:
        with private_dir("bn-") as directory:
            return await make(directory)

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(body())


def measure(cfg: Any) -> Outcome:
    out = Outcome()
    overload = _run(slight_overload)
    out.raw["slight_overload"] = overload
    out.rows.append(Row("Algorithm alone: ticks offered at 1.1x its capacity (4 workers, 20 ms per API call), "
                        "achieved", overload["achieved_per_s"], "/s", overload["capacity_per_s"], "capacity",
                        ">= 0.9x", met=overload["ratio"] >= 0.9,
                        note=f"overruns {overload['overruns']}, unstarted {overload['unstarted']}"))
    paced = _run(pacing)
    out.raw["pacing"] = paced
    within = abs(paced["posts_per_s"] / paced["limit_per_s"] - 1) <= 0.05
    out.rows.append(Row("Algorithm alone: paced at a server's rate limit (50/s, burst 5; 150/s offered), POSTs/s "
                        "from second 1", paced["posts_per_s"], "/s", paced["limit_per_s"], "the server's limit",
                        "within 5%, no 429 after 1 s", met=within and not paced["refused_after_1s"],
                        note=f"429s {paced['refused']} in all, after the first second: {paced['refused_after_1s']}"))
    return out
