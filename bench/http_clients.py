"""HTTP clients side by side against the same APIServer in one run: the work of one decision (POST
/register-request, then GET /request-data/<id>) as fast as each client goes, ``--concurrency`` pairs
in flight, each client in its own process.

    python -m bench.http_clients [--seconds 4] [--rounds 2] [--concurrency 64] [--clients a,b,...]

Per client: pairs/s (wall clock, noisy on a shared machine), the client's CPU microseconds per pair
(process CPU from /proc, all threads, which contention disturbs far less), the APIServer's CPU per
pair, and errors. Rounds interleave the clients so a burst of load elsewhere hits them all. Clients
whose package is not installed are reported as such (``pip install pyreqwest rnet aiosonic``).

``python -m bench.http_clients --child NAME --url URL ...`` is one client's process (internal).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from bench import common
from bench.common import Config, Outcome, Row

CLIENTS = ("aiohttp", "aiohttp-tuned", "httptools-thin", "pyreqwest", "rnet", "aiosonic")
BODY = b'{"book":"B001","strategy":"default","price":"12.34"}'

Pair = Callable[[], Awaitable[None]]


async def _aiohttp(url: str, concurrency: int, tuned: bool) -> tuple[Pair, Callable[[], Awaitable[None]]]:
    import aiohttp

    if tuned:  # the Algorithm's settings before this change: nothing the API does not use
        session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency, ttl_dns_cache=None),
                                        cookie_jar=aiohttp.DummyCookieJar(), auto_decompress=False,
                                        skip_auto_headers=("User-Agent", "Accept-Encoding"))
    else:
        session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency))
    timeout = aiohttp.ClientTimeout(total=2.0)
    headers = {"Content-Type": "application/json"}

    async def pair() -> None:
        async with session.post(url + "/register-request", data=BODY, headers=headers, timeout=timeout) as r:
            rid = json.loads(await r.read())["id"]
        async with session.get(f"{url}/request-data/{rid}", timeout=timeout) as r:
            json.loads(await r.read())

    return pair, session.close


async def _thin(url: str, concurrency: int) -> tuple[Pair, Callable[[], Awaitable[None]]]:
    from actors.algorithm.clients.http import HttpClient

    client = HttpClient(url, concurrency)

    async def pair() -> None:
        r = await client.request("POST", "/register-request", BODY, timeout=2.0)
        rid = json.loads(r.body)["id"]
        r = await client.request("GET", f"/request-data/{rid}", timeout=2.0)
        json.loads(r.body)

    return pair, client.close


async def _pyreqwest(url: str, concurrency: int) -> tuple[Pair, Callable[[], Awaitable[None]]]:
    from datetime import timedelta

    from pyreqwest.client import ClientBuilder

    client = await ClientBuilder().max_connections(concurrency).timeout(timedelta(seconds=2)).build().__aenter__()
    headers = {"Content-Type": "application/json"}

    async def pair() -> None:
        r = await client.post(url + "/register-request").headers(headers).body_bytes(BODY).build().send()
        rid = json.loads(bytes(await r.bytes()))["id"]
        r = await client.get(f"{url}/request-data/{rid}").build().send()
        json.loads(bytes(await r.bytes()))

    return pair, client.close


async def _rnet(url: str, concurrency: int) -> tuple[Pair, Callable[[], Awaitable[None]]]:
    import rnet

    client = rnet.Client(timeout=2, pool_max_size=concurrency)
    headers = {"Content-Type": "application/json"}

    async def pair() -> None:
        r = await client.post(url + "/register-request", body=BODY, headers=headers)
        rid = json.loads(await r.bytes())["id"]
        r = await client.get(f"{url}/request-data/{rid}")
        json.loads(await r.bytes())

    async def close() -> None:
        return None

    return pair, close


async def _aiosonic(url: str, concurrency: int) -> tuple[Pair, Callable[[], Awaitable[None]]]:
    import aiosonic
    from aiosonic.timeout import Timeouts

    connector = aiosonic.TCPConnector(pool_configs={":default": {"max_conn_requests": None,
                                                                   "size": concurrency}})
    client = aiosonic.HTTPClient(connector=connector)
    timeouts = Timeouts(request_timeout=2.0)
    headers = {"Content-Type": "application/json"}

    async def pair() -> None:
        r = await client.post(url + "/register-request", data=BODY, headers=headers, timeouts=timeouts)
        rid = json.loads(await r.content())["id"]
        r = await client.get(f"{url}/request-data/{rid}", timeouts=timeouts)
        json.loads(await r.content())

    async def close() -> None:
        await client.__aexit__(None, None, None)

    return pair, close


async def child(name: str, url: str, concurrency: int, warmup: float, seconds: float) -> dict[str, Any]:
    makers: dict[str, Callable[[], Awaitable[tuple[Pair, Callable[[], Awaitable[None]]]]]] = {
        "aiohttp": lambda: _aiohttp(url, concurrency, tuned=False),
        "aiohttp-tuned": lambda: _aiohttp(url, concurrency, tuned=True),
        "httptools-thin": lambda: _thin(url, concurrency),
        "pyreqwest": lambda: _pyreqwest(url, concurrency),
        "rnet": lambda: _rnet(url, concurrency),
        "aiosonic": lambda: _aiosonic(url, concurrency),
    }
    try:
        pair, close = await makers[name]()
    except ImportError as exc:
        return {"client": name, "missing": str(exc)}
    done = errors = 0
    counting = False
    cpu_start = 0.0
    start = time.monotonic()
    begin, end = start + warmup, start + warmup + seconds

    async def loop() -> None:
        nonlocal done, errors
        while time.monotonic() < end:
            try:
                await pair()
            except Exception:
                errors += 1
                await asyncio.sleep(0.001)
                continue
            if counting:
                done += 1

    async def clock() -> None:
        nonlocal counting, cpu_start
        await asyncio.sleep(warmup)
        cpu_start = sum(os.times()[:2])
        counting = True

    try:
        await asyncio.gather(clock(), *(loop() for _ in range(concurrency)))
    finally:
        await close()
    cpu = sum(os.times()[:2]) - cpu_start
    elapsed = min(time.monotonic(), end) - begin
    return {"client": name, "pairs": done, "errors": errors, "rate": done / elapsed,
            "cpu_us_per_pair": 1e6 * cpu / done if done else None}


def _run_child(name: str, url: str, args: argparse.Namespace, server_pid: int) -> dict[str, Any]:
    cpu0 = common.cpu_seconds(server_pid)
    out = subprocess.run([sys.executable, "-m", "bench.http_clients", "--child", name, "--url", url,
                          "--concurrency", str(args.concurrency), "--seconds", str(args.seconds),
                          "--warmup", str(args.warmup)], cwd=common.REPO, capture_output=True, text=True,
                         timeout=args.seconds + args.warmup + 60)
    server_cpu = common.cpu_seconds(server_pid) - cpu0
    if out.returncode != 0:
        return {"client": name, "failed": out.stderr.strip().splitlines()[-1:] or ["?"]}
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    if result.get("pairs"):
        # the server's CPU over the whole child run (warm-up included) per counted pair: an upper bound
        result["server_cpu_us_per_pair"] = 1e6 * server_cpu / result["pairs"]
    return result


def compare(args: argparse.Namespace) -> list[dict[str, Any]]:
    clients = [c.strip() for c in args.clients.split(",") if c.strip()]
    runs: dict[str, list[dict[str, Any]]] = {c: [] for c in clients}
    port = common.free_port()
    url = f"http://127.0.0.1:{port}"
    with common.actor("api_server", "--port", str(port)) as server:
        common.wait_http(f"{url}/request-data/0")
        for _ in range(args.rounds):
            for name in clients:
                runs[name].append(_run_child(name, url, args, server.pid))
    table = []
    for name, results in runs.items():
        ok = [r for r in results if "rate" in r]
        if not ok:
            table.append(results[0] if results else {"client": name})
            continue
        cpus = [r["cpu_us_per_pair"] for r in ok if r.get("cpu_us_per_pair")]
        table.append({"client": name, "rate": max(r["rate"] for r in ok),
                      "cpu_us_per_pair": min(cpus) if cpus else None,
                      "server_cpu_us_per_pair": min(r.get("server_cpu_us_per_pair", 0.0) for r in ok),
                      "errors": sum(r["errors"] for r in ok), "runs": ok})
    return table


def markdown(table: Sequence[dict[str, Any]], baseline: str = "aiohttp-tuned") -> str:
    base = next((r for r in table if r["client"] == baseline and "rate" in r), None)
    lines = ["| client | pairs/s (best round) | vs aiohttp tuned | client CPU µs/pair (best) | vs aiohttp tuned "
             "| APIServer CPU µs/pair | errors |", "|---|---|---|---|---|---|---|"]
    for r in table:
        if "rate" not in r or not r.get("cpu_us_per_pair"):
            why = r.get("missing") or r.get("failed") or f"no pairs completed ({r.get('errors')} errors)"
            lines.append(f"| {r['client']} | {why} | | | | | |")
            continue
        ratio = f"{r['rate'] / base['rate']:.2f}x" if base else "-"
        cpu = r["cpu_us_per_pair"]
        cpu_ratio = f"{base['cpu_us_per_pair'] / cpu:.2f}x" if base and cpu and base["cpu_us_per_pair"] else "-"
        lines.append(f"| {r['client']} | {r['rate']:,.0f} | {ratio} | {cpu:.0f} | {cpu_ratio} | "
                     f"{r['server_cpu_us_per_pair']:.0f} | {r['errors']} |")
    return "\n".join(lines)


def measure(cfg: Config) -> Outcome:
    """For ``bench.run``: every client's pairs/s and CPU per pair, against aiohttp tuned, same run."""
    args = argparse.Namespace(clients=",".join(CLIENTS), concurrency=64, seconds=cfg.pick(2.0, 4.0), warmup=1.0,
                              rounds=cfg.pick(1, 2))
    table = compare(args)
    out = Outcome(raw={"clients": table, "markdown": markdown(table)})
    base = next((r for r in table if r["client"] == "aiohttp-tuned" and r.get("cpu_us_per_pair")), None)
    for r in table:
        if not r.get("cpu_us_per_pair"):
            continue
        out.rows.append(Row(f"HTTP client {r['client']}: POST+GET pairs/s", r["rate"], "/s",
                            base["rate"] if base else None, "aiohttp tuned",
                            note=f"client CPU {r['cpu_us_per_pair']:.0f} us/pair"))
        out.rows.append(Row(f"HTTP client {r['client']}: client CPU per pair", r["cpu_us_per_pair"], "us",
                            base["cpu_us_per_pair"] if base else None, "aiohttp tuned"))
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.http_clients", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", default=",".join(CLIENTS))
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--url", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--json", action="store_true", help="print the raw results as JSON too")
    args = parser.parse_args(argv)
    if args.child:
        import uvloop

        result = uvloop.run(child(args.child, args.url, args.concurrency, args.warmup, args.seconds))
        print(json.dumps(result), flush=True)
        return 0
    table = compare(args)
    print(markdown(table))
    if args.json:
        print(json.dumps(table))
    return 0


if __name__ == "__main__":
    sys.exit(main())
