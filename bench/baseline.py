"""Load generators run in their own process (``python -m bench.baseline MODE ...``), each printing one
JSON line with its rate:

* ``api``  -- the APIServer ceiling: POST /register-request + GET /request-data/<id> pairs per second
  from one aiohttp client with ``--concurrency`` pairs in flight.
* ``dm``   -- the DataManager ceiling: LastPricesRequests per second from one asyncio DEALER
  (:class:`actors.algorithm.data_client.LastPricesClient`) with ``--concurrency`` requests in flight.
* ``bare`` -- the bare baseline: ONE plain script doing the Algorithm's per-book steps (DEALER request
  to the DataManager, average, POST, GET, price) with no supervision, no validation, no output
  formatting, ``--concurrency`` books in flight.

Every mode runs ``--warmup`` seconds uncounted, then counts completions for ``--seconds``.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from decimal import ROUND_HALF_UP, Decimal

import aiohttp
import msgpack
import zmq
import zmq.asyncio

from actors.algorithm.data_client import LastPricesClient, RequestPolicy
from transport.sockets import Sockets

CENT = Decimal("0.01")


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

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return {"completed": float(done), "errors": float(errors), "seconds": seconds, "rate": done / seconds}


async def api_mode(args: argparse.Namespace) -> dict[str, float]:
    connector = aiohttp.TCPConnector(limit=args.concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:
        base = args.api_url

        async def pair(i: int) -> None:
            async with session.post(f"{base}/register-request", json={"book": "B001", "price": "12.34"}) as r:
                rid = (await r.json())["id"]
            async with session.get(f"{base}/request-data/{rid}") as r:
                await r.read()

        return await _drive(pair, args.concurrency, args.warmup, args.seconds)


def _books(args: argparse.Namespace) -> list[str]:
    with open(args.books_file, encoding="utf-8") as f:
        return [line.strip() for line in f if line.strip()]


async def dm_mode(args: argparse.Namespace) -> dict[str, float]:
    books = _books(args)
    ctx = zmq.asyncio.Context()
    client = LastPricesClient(Sockets(ctx), [args.data], RequestPolicy(timeout=5.0, max_in_flight=args.concurrency))
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
    sock.connect(args.data)
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
    connector = aiohttp.TCPConnector(limit=args.concurrency)
    try:
        async with aiohttp.ClientSession(connector=connector) as session:
            base = args.api_url

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
                avg = sum(map(Decimal, prices), Decimal(0)) / len(prices)
                async with session.post(f"{base}/register-request", json={"book": book, "price": str(avg)}) as r:
                    request_id = (await r.json())["id"]
                async with session.get(f"{base}/request-data/{request_id}") as r:
                    sold = (await r.json())["sold"]
                (avg * (Decimal("1.1") if sold else Decimal("0.9"))).quantize(CENT, ROUND_HALF_UP)

            return await _drive(decide, args.concurrency, args.warmup, args.seconds)
    finally:
        receiver.cancel()
        sock.close(0)
        ctx.destroy(linger=0)


MODES = {"api": api_mode, "dm": dm_mode, "bare": bare_mode}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.baseline", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("mode", choices=sorted(MODES))
    parser.add_argument("--api-url", default="http://127.0.0.1:8080")
    parser.add_argument("--data", default="tcp://127.0.0.1:5556", help="DataManager endpoint")
    parser.add_argument("--books-file", default=None)
    parser.add_argument("--concurrency", type=int, default=128)
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
