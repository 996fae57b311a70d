"""Load generators run in their own process (``python -m bench.baseline MODE ...``), each printing one
JSON line with its rate:

* ``api``  -- the APIServer ceiling: POST /register-request + GET /request-data/<id> pairs per second
  from one client with ``--concurrency`` pairs in flight.
* ``dm``   -- the DataManager ceiling: LastPricesRequests per second from one asyncio DEALER
  (:class:`actors.algorithm.clients.data_manager.LastPricesClient`) with ``--concurrency`` requests in flight.
* ``bare`` -- the bare baseline: ONE plain script doing the Algorithm's per-book steps (DEALER request
  to the DataManager, average, POST, GET, price) with no supervision, no validation, no output
  formatting, ``--concurrency`` books in flight.

Every mode runs ``--warmup`` seconds uncounted, then counts completions for ``--seconds``. The HTTP
client is the Algorithm's own (``--client thin``, :mod:`actors.algorithm.clients.http`) unless
``--client aiohttp``, so the pipeline is compared with a bare script using the same client. Each mode
also reports its CPU microseconds per completion (process CPU, all threads).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import aiohttp
import msgpack
import zmq
import zmq.asyncio

from actors.algorithm.clients.data_manager import LastPricesClient, RequestPolicy
from actors.algorithm.clients.http import HttpClient
from transport.sockets import Sockets

CENT = Decimal("0.01")


class _Http:
    """POST/GET returning parsed JSON, on the thin client or on aiohttp."""

    def __init__(self, base: str, kind: str, concurrency: int) -> None:
        self._base = base
        self._kind = kind
        self._thin = HttpClient(base, concurrency)
        self._session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency)) \
            if kind == "aiohttp" else None

    async def post(self, path: str, body: bytes) -> Any:
        if self._session is None:
            return json.loads((await self._thin.request("POST", path, body, timeout=5.0)).body)
        async with self._session.post(self._base + path, data=body,
                                      headers={"Content-Type": "application/json"}) as r:
            return json.loads(await r.read())

    async def get(self, path: str) -> Any:
        if self._session is None:
            return json.loads((await self._thin.request("GET", path, timeout=5.0)).body)
        async with self._session.get(self._base + path) as r:
            return json.loads(await r.read())

    async def close(self) -> None:
        await self._thin.close()
        if self._session is not None:
            await self._session.close()


async def _drive(step: Callable[[int], Awaitable[None]], concurrency: int, warmup: float,
                 seconds: float) -> dict[str, float]:
    """Run ``step(i)`` in ``concurrency`` loops; count the completions inside the measured window."""
    start = time.monotonic()
    begin = start + warmup
    end = begin + seconds
    done = 0
    errors = 0
    counter = itertools.count()

    async def worker() -> None:
        nonlocal done, errors
        while (now := time.monotonic()) < end:
            try:
                await step(next(counter))
            except Exception:
                errors += 1
                await asyncio.sleep(0.001)
                continue
            if now >= begin and time.monotonic() < end:
                done += 1

    cpu_begin = 0.0

    async def cpu_at_begin() -> None:
        nonlocal cpu_begin
        await asyncio.sleep(warmup)
        cpu_begin = sum(os.times()[:2])

    await asyncio.gather(cpu_at_begin(), *(worker() for _ in range(concurrency)))
    cpu = sum(os.times()[:2]) - cpu_begin
    return {"completed": float(done), "errors": float(errors), "seconds": seconds, "rate": done / seconds,
            "cpu_us_per_completion": 1e6 * cpu / done if done else 0.0}


async def api_mode(args: argparse.Namespace) -> dict[str, float]:
    http = _Http(args.api_url, args.client, args.concurrency)
    try:
        async def pair(i: int) -> None:
            rid = (await http.post("/register-request", b'{"book":"B001","price":"12.34"}'))["id"]
            await http.get(f"/request-data/{rid}")

        return await _drive(pair, args.concurrency, args.warmup, args.seconds)
    finally:
        await http.close()


def _books(args: argparse.Namespace) -> list[str]:
    with open(args.books_file, encoding="utf-8") as f:
        return [line.strip() for line in f if line.strip()]


async def dm_mode(args: argparse.Namespace) -> dict[str, float]:
    books = _books(args)
    ctx = zmq.asyncio.Context()
    policy = RequestPolicy(timeout=5.0, max_in_flight=args.concurrency)
    client = LastPricesClient(Sockets(ctx), [args.data_endpoint], policy)
    receiver = asyncio.create_task(client.run())
    try:
        async def request(i: int) -> None:
            await client.last_prices(books[i % len(books)], 0, 5)

        return await _drive(request, args.concurrency, args.warmup, args.seconds)
    finally:
        receiver.cancel()
        client.close()
        ctx.destroy(linger=0)


async def bare_mode(args: argparse.Namespace) -> dict[str, float]:
    books = _books(args)
    ctx = zmq.asyncio.Context()
    sock = ctx.socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.connect(args.data_endpoint)
    pending: dict[int, asyncio.Future[list[str]]] = {}
    ids = itertools.count(1)

    async def receive() -> None:
        while True:
            raw = msgpack.unpackb(await sock.recv())
            future = pending.pop(raw[2], None)  # [version, type, request_id, book, tick, prices, error]
            if future is not None and not future.done():
                future.set_result(raw[5])

    receiver = asyncio.create_task(receive())
    loop = asyncio.get_running_loop()
    http = _Http(args.api_url, args.client, args.concurrency)
    try:
        async def decide(i: int) -> None:
            book = books[i % len(books)]
            rid = next(ids)
            future: asyncio.Future[list[str]] = loop.create_future()
            pending[rid] = future
            await sock.send(msgpack.packb([1, 2, rid, book, 0, 5]))
            try:
                prices = await asyncio.wait_for(future, 5.0)
            finally:
                pending.pop(rid, None)
            avg = (sum(map(Decimal, prices), Decimal(0)) / len(prices)).quantize(CENT, ROUND_HALF_UP)
            body = b'{"book":"%s","price":"%s"}' % (book.encode(), str(avg).encode())
            request_id = (await http.post("/register-request", body))["id"]
            sold = (await http.get(f"/request-data/{request_id}"))["sold"]
            (avg * (Decimal("1.1") if sold else Decimal("0.9"))).quantize(CENT, ROUND_HALF_UP)

        return await _drive(decide, args.concurrency, args.warmup, args.seconds)
    finally:
        await http.close()
        receiver.cancel()
        sock.close(0)
        ctx.destroy(linger=0)


MODES = {"api": api_mode, "dm": dm_mode, "bare": bare_mode}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.baseline", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("mode", choices=sorted(MODES))
    parser.add_argument("--api-url", default="http://127.0.0.1:8080")
    parser.add_argument("--data-endpoint", default="tcp://127.0.0.1:5556", help="DataManager endpoint")
    parser.add_argument("--books-file", default=None)
    parser.add_argument("--concurrency", type=int, default=128)
    parser.add_argument("--client", choices=("thin", "aiohttp"), default="thin",
                        help="HTTP client: the Algorithm's (thin, on httptools) or aiohttp")
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument("--seconds", type=float, default=5.0)
    args = parser.parse_args(argv)
    if args.mode != "api" and not args.books_file:
        parser.error(f"{args.mode} needs --books-file")
    try:
        import uvloop
    except ImportError:  # pragma: no cover
        result = asyncio.run(MODES[args.mode](args))
    else:
        result = uvloop.run(MODES[args.mode](args))
    print(json.dumps({"mode": args.mode, "concurrency": args.concurrency, **result}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
