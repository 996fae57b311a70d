"""The Algorithm over real sockets, against a fake DataManager (ROUTER) and a fake APIServer (aiohttp)
whose failures the tests control."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import zmq
import zmq.asyncio
from aiohttp import web

from actors.algorithm.actor import Algorithm
from actors.algorithm.api_client import HttpPolicy
from actors.algorithm.data_client import RequestPolicy
from actors.algorithm.pricing import avg_comp_price, reprice
from actors.algorithm.strategies import Pair, Strategy
from tests.helpers import async_wait_for, ipc_endpoint, run_async
from transport import protocol
from transport.protocol import LastPricesReply, LastPricesRequest, Tick
from transport.sockets import Sockets


def window(book: str, tick: int) -> tuple[Decimal, ...]:
    """The fake DataManager's prices: distinct per book and tick, so a mix-up shows."""
    base = Decimal(10 + sum(map(ord, book)) % 7)
    return tuple(base + Decimal(tick) + Decimal(i) / 4 for i in range(5))


@dataclass
class FakeDataManager:
    endpoint: str
    answer: bool = True
    requests: list[LastPricesRequest] = field(default_factory=list)

    async def serve(self, ctx: zmq.asyncio.Context) -> None:
        sock = Sockets(ctx).router(self.endpoint)
        try:
            while True:
                identity, frame = await sock.recv_multipart()
                request = protocol.decode(frame)
                assert isinstance(request, LastPricesRequest)
                self.requests.append(request)
                if self.answer:
                    reply = LastPricesReply(request.request_id, request.book, request.tick,
                                            window(request.book, request.tick))
                    await sock.send_multipart([identity, protocol.encode(reply)])
        finally:
            sock.close(linger=0)


@dataclass
class FakeApi:
    fail: bool = False
    next_id: int = 100
    registered: list[dict[str, Any]] = field(default_factory=list)

    def app(self) -> web.Application:
        async def register(request: web.Request) -> web.Response:
            if self.fail:
                return web.json_response({"error": "injected"}, status=503)
            self.registered.append(await request.json())
            self.next_id += 1
            return web.json_response({"id": self.next_id})

        async def data(request: web.Request) -> web.Response:
            return web.json_response({"sold": int(request.match_info["id"]) % 2 == 0})

        app = web.Application()
        app.router.add_post("/register-request", register)
        app.router.add_get("/request-data/{id}", data)
        return app


@contextlib.asynccontextmanager
async def api_server(api: FakeApi) -> AsyncIterator[str]:
    runner = web.AppRunner(api.app())
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


@dataclass
class Rig:
    algorithm: Algorithm
    out: io.StringIO
    pub: zmq.asyncio.Socket
    dm: FakeDataManager
    api: FakeApi
    t0: float = field(default_factory=time.time)  # the fake Scheduler's run

    def decisions(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.out.getvalue().splitlines()]

    def make_tick(self, seq: int, t0: float | None = None, interval: float = 1.0) -> Tick:
        t0 = self.t0 if t0 is None else t0
        return Tick(seq, t0 + seq * interval, time.time(), interval, t0)

    async def tick(self, seq: int, until: Callable[[], bool], t0: float | None = None) -> None:
        """Publish tick ``seq`` until ``until`` holds (PUB drops what a late SUB has not joined for)."""

        async def keep_sending() -> None:
            while True:
                await self.pub.send(protocol.encode(self.make_tick(seq, t0)))
                await asyncio.sleep(0.02)

        sender = asyncio.create_task(keep_sending())
        try:
            await async_wait_for(until, timeout=5.0)
        finally:
            sender.cancel()


@contextlib.asynccontextmanager
async def rig(ipc_dir: Path, books: list[str], delay: str = "0", dm_answers: bool = True,
              api_fails: bool = False) -> AsyncIterator[Rig]:
    ctx = zmq.asyncio.Context()
    ticks = ipc_endpoint(ipc_dir, "ticks")
    dm = FakeDataManager(ipc_endpoint(ipc_dir, "dm"), answer=dm_answers)
    api = FakeApi(fail=api_fails)
    pub = Sockets(ctx).pub(ticks)
    out = io.StringIO()
    stop = asyncio.Event()
    strategy = Strategy("default", delay=Decimal(delay))
    async with api_server(api) as url:
        algorithm = Algorithm(Sockets(ctx), ticks=ticks, data=[dm.endpoint], api_url=url,
                              pairs=[Pair(book, strategy) for book in books], out=out, json_output=True,
                              dm_policy=RequestPolicy(timeout=0.2, retries=1),
                              http_policy=HttpPolicy(timeout=1.0), drain_timeout=1.0)
        async with asyncio.TaskGroup() as group:
            dm_task = group.create_task(dm.serve(ctx))
            run = group.create_task(algorithm.run(stop))
            try:
                yield Rig(algorithm, out, pub, dm, api)
            finally:
                stop.set()
                await asyncio.wait_for(run, 3.0)
                dm_task.cancel()
    pub.close(linger=0)
    ctx.destroy(linger=0)


def test_each_pair_is_decided_once_per_tick_with_the_rule(ipc_dir: Path) -> None:
    books = ["A", "B", "C"]

    async def body() -> list[dict[str, Any]]:
        async with rig(ipc_dir, books) as r:
            await r.tick(0, lambda: r.algorithm.counters["decisions"] == 3)
            await r.tick(1, lambda: r.algorithm.counters["decisions"] == 6)
            registered = list(r.api.registered)
        # First tick registers the average; the next registers the price decided on the first.
        decided = {(d["book"], d["tick"]): d for d in r.decisions()}
        for body_ in registered:
            assert body_["strategy"] == "default"
        first = {b["book"]: b["price"] for b in registered[:3]}
        second = {b["book"]: b["price"] for b in registered[3:]}
        for book in books:
            assert Decimal(first[book]) == avg_comp_price(window(book, 0))
            assert second[book] == decided[(book, 0)]["price"]
        return r.decisions()

    decisions = run_async(body())
    assert sorted((d["book"], d["tick"]) for d in decisions) == [(b, t) for b in books for t in (0, 1)]
    for d in decisions:
        prices = window(d["book"], d["tick"])
        avg = avg_comp_price(prices)
        assert d["prices"] == [str(p) for p in prices]
        assert d["avg_comp_price"] == str(avg)
        assert d["sold"] == (d["request_id"] % 2 == 0)
        assert d["price"] == str(reprice(avg, d["sold"]))


def test_an_older_tick_is_never_decided(ipc_dir: Path) -> None:
    async def body() -> None:
        async with rig(ipc_dir, ["A"]) as r:
            await r.tick(5, lambda: r.algorithm.counters["decisions"] == 1)
            before = r.algorithm.counters["stale_ticks"]
            await r.tick(3, lambda: r.algorithm.counters["stale_ticks"] > before + 2)
            assert r.algorithm.counters["decisions"] == 1
            assert [d["tick"] for d in r.decisions()] == [5]

    run_async(body())


def test_datamanager_down_skips_and_stays_up(ipc_dir: Path) -> None:
    async def body() -> None:
        async with rig(ipc_dir, ["A", "B"], dm_answers=False) as r:
            await r.tick(0, lambda: r.algorithm.counters["skipped"] == 2)
            assert r.algorithm.counters["dm_timeouts"] >= 2
            assert r.decisions() == []
            r.dm.answer = True  # the peer comes back: the next tick is served
            await r.tick(1, lambda: r.algorithm.counters["decisions"] == 2)

    run_async(body())


def test_api_errors_skip_the_decision(ipc_dir: Path) -> None:
    async def body() -> None:
        async with rig(ipc_dir, ["A"], api_fails=True) as r:
            await r.tick(0, lambda: r.algorithm.counters["skipped"] == 1)
            assert r.algorithm.counters["http_errors"] == 1
            r.api.fail = False
            await r.tick(1, lambda: r.algorithm.counters["decisions"] == 1)

    run_async(body())


def test_a_pair_busy_at_a_tick_decides_for_it_once_it_frees_up(ipc_dir: Path) -> None:
    async def body() -> None:
        async with rig(ipc_dir, ["A", "B"], delay="0.5") as r:
            await r.tick(0, lambda: len(r.api.registered) == 2)
            await r.tick(1, lambda: r.algorithm.counters["overruns"] == 2)  # tick 0 still waiting out x
            await async_wait_for(lambda: r.algorithm.counters["decisions"] == 4, timeout=3.0)
            # Each pair decided tick 0, then (late, not skipped) tick 1: once each, never twice.
            assert sorted((d["book"], d["tick"]) for d in r.decisions()) == [("A", 0), ("A", 1), ("B", 0), ("B", 1)]

    run_async(body())


def test_garbage_on_the_tick_socket_is_counted(ipc_dir: Path) -> None:
    async def body() -> None:
        async with rig(ipc_dir, ["A"]) as r:
            await r.tick(0, lambda: r.algorithm.counters["decisions"] == 1)
            for frame in (b"garbage", protocol.encode(LastPricesRequest(1, "A", 0, 5))):
                await r.pub.send(frame)
            await async_wait_for(lambda: r.algorithm.counters["bad_frames"] == 2)
            await r.tick(1, lambda: r.algorithm.counters["decisions"] == 2)

    run_async(body())


def test_a_clean_stop_finishes_decisions_in_flight(ipc_dir: Path) -> None:
    async def body() -> Rig:
        async with rig(ipc_dir, ["A", "B"], delay="0.3") as r:
            await r.tick(0, lambda: len(r.api.registered) == 2)
        return r  # leaving the rig stops the Algorithm while both wait out x

    r = run_async(body())
    assert r.algorithm.counters["decisions"] == 2


class ClosedOutput(io.StringIO):
    def write(self, text: str) -> int:
        raise BrokenPipeError(32, "Broken pipe")


def test_a_closed_stdout_is_counted_not_fatal(ipc_dir: Path) -> None:
    async def body() -> None:
        async with rig(ipc_dir, ["A"]) as r:
            r.algorithm._writer._out = ClosedOutput()
            await r.tick(0, lambda: r.algorithm.counters["output_errors"] == 1)
            await r.tick(1, lambda: r.algorithm.counters["output_errors"] == 2)  # still serving
            assert r.algorithm.counters["output_writes"] == 0

    run_async(body())
