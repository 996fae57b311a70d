"""The APIServer alone: items/s through each batched endpoint against its single-item endpoint, in one
run against one server process, and the server's CPU per item (the number that decides how many
decisions/s the 2-core system has left for the rest).

A load generator runs as its own process (``python -m bench.api_server load MODE --url URL``): one
aiohttp session sending pre-built bodies (the client's JSON work is not measured), reading each
answer whole. Modes: ``register`` (POST /register-request), ``lookup`` (GET /request-data/N),
``register-batch`` (POST /register-requests, ``--batch`` items) and ``lookup-batch`` (POST
/request-data, ``--batch`` ids). Also, in this process: the server's per-item validation and response
building alone (no HTTP), and what orjson would save on the JSON decoding, when it is installed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import time
import timeit
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Final

import aiohttp

from bench import common
from bench.common import Config, Outcome, Row

BATCH: Final = 500  # items per batched call, as the Algorithm sends them (--api-batch 500)
TARGET_DECISION_US: Final = 10.0  # server CPU per decision (one item registered + one looked up):
                                  # 50,000 decisions/s in half of one core
MODES: Final = ("register", "lookup", "register-batch", "lookup-batch")
LABELS: Final = {"register": "POST /register-request", "lookup": "GET /request-data/N",
                 "register-batch": f"POST /register-requests ({BATCH} items/call)",
                 "lookup-batch": f"POST /request-data ({BATCH} ids/call)"}


def items_body(n: int) -> bytes:
    return json.dumps({"items": [{"book": f"B{i:06d}", "strategy": "undercut", "price": f"{10 + i % 90}.{i % 100:02d}"}
                                 for i in range(n)]}).encode()


# --- the load generator (its own process) ---------------------------------------------------------


async def generate_load(mode: str, url: str, concurrency: int, batch: int, warmup: float,
                        seconds: float) -> dict[str, Any]:
    connector = aiohttp.TCPConnector(limit=concurrency)
    headers = {"Content-Type": "application/json"}
    async with aiohttp.ClientSession(connector=connector) as session:
        single = json.dumps({"book": "B000001", "strategy": "undercut", "price": "12.34"}).encode()
        known = []  # ids the lookups ask for (from the single endpoint: any version of the server has it)
        for _ in range(batch):
            async with session.post(f"{url}/register-request", data=single, headers=headers) as resp:
                known.append((await resp.json())["id"])
        batch_body = items_body(batch)
        ids_body = json.dumps({"ids": known}).encode()
        per_call = batch if mode.endswith("batch") else 1

        async def call(i: int) -> int:
            if mode == "register":
                request = session.post(f"{url}/register-request", data=single, headers=headers)
            elif mode == "lookup":
                request = session.get(f"{url}/request-data/{known[i % len(known)]}")
            elif mode == "register-batch":
                request = session.post(f"{url}/register-requests", data=batch_body, headers=headers)
            else:
                request = session.post(f"{url}/request-data", data=ids_body, headers=headers)
            async with request as resp:
                await resp.read()
                return resp.status

        return await _drive(call, concurrency, warmup, seconds, per_call)


async def _drive(call: Callable[[int], Awaitable[int]], concurrency: int, warmup: float, seconds: float,
                 per_call: int) -> dict[str, Any]:
    begin = time.monotonic() + warmup
    end = begin + seconds
    counts = {"measured": 0, "total": 0, "errors": 0}

    async def worker(offset: int) -> None:
        i = offset
        while time.monotonic() < end:
            status = await call(i)
            i += concurrency
            if status != 200:
                counts["errors"] += 1
                continue
            counts["total"] += per_call
            if begin <= time.monotonic() < end:
                counts["measured"] += per_call

    async with asyncio.TaskGroup() as group:
        for offset in range(concurrency):
            group.create_task(worker(offset))
    return {**counts, "items_per_s": counts["measured"] / seconds}


def load_main(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.api_server load")
    parser.add_argument("mode", choices=MODES)
    parser.add_argument("--url", required=True)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--batch", type=int, default=BATCH)
    parser.add_argument("--warmup", type=float, default=0.5)
    parser.add_argument("--seconds", type=float, default=3.0)
    args = parser.parse_args(argv)
    import uvloop

    result = uvloop.run(generate_load(args.mode, args.url, args.concurrency, args.batch, args.warmup, args.seconds))
    print(json.dumps({"mode": args.mode, **result}), flush=True)
    return 0


# --- the measurement --------------------------------------------------------------------------------


def codec_costs(repeat: int) -> dict[str, float]:
    """Microseconds per item of the server's batch work without HTTP (stdlib json, as shipped), and of
    decoding the same bodies with json vs orjson. CPU time (process_time), best of 5: other processes
    on a shared machine slow the wall clock, not the work."""
    from actors.api_server import batches
    from actors.api_server.request_ids import IdAllocator

    body = items_body(BATCH)
    ids = IdAllocator(10**15)
    first = ids.allocate_many(BATCH)
    ids_body = json.dumps({"ids": list(range(first, first + BATCH))}).encode()

    def per_item(work: Callable[[], object]) -> float:
        number = max(1, repeat // 5)
        best = min(timeit.Timer(work, timer=time.process_time).repeat(number=number, repeat=5))
        return 1e6 * best / (number * BATCH)

    out = {
        "register_us": per_item(lambda: batches.registration_results(batches.parse_registrations(body), first)),
        "lookup_us": per_item(lambda: batches.lookup_results(batches.parse_lookups(ids_body), ids)),
        "json_items_us": per_item(lambda: json.loads(body)),
        "json_ids_us": per_item(lambda: json.loads(ids_body)),
    }
    try:
        import orjson
    except ImportError:
        return out
    out["orjson_items_us"] = per_item(lambda: orjson.loads(body))
    out["orjson_ids_us"] = per_item(lambda: orjson.loads(ids_body))
    return out


def _run_load(mode: str, url: str, seconds: float, server_pid: int) -> dict[str, Any]:
    concurrency = 4 if mode.endswith("batch") else 32  # enough to keep one server core busy
    before = common.cpu_seconds(server_pid)
    loader = common.python_module("bench.api_server", "load", mode, "--url", url, "--concurrency",
                                  str(concurrency), "--seconds", str(seconds), stdout=subprocess.PIPE)
    try:
        stdout, _ = loader.communicate(timeout=seconds + 60)
    finally:
        common.terminate(loader)
    result: dict[str, Any] = json.loads(stdout.decode().strip().splitlines()[-1])
    server_cpu = common.cpu_seconds(server_pid) - before
    result["server_us_per_item"] = 1e6 * server_cpu / max(1, result["total"])
    result["concurrency"] = concurrency
    return result


def measure(cfg: Config) -> Outcome:
    seconds = cfg.pick(2.0, 5.0)
    port = common.free_port()
    url = f"http://127.0.0.1:{port}"
    out = Outcome()
    with common.actor("api_server", "--port", str(port)) as server:
        common.wait_http(f"{url}/request-data/0")
        results = {mode: _run_load(mode, url, seconds, server.pid) for mode in MODES}
    out.raw["load"] = results
    for mode in MODES:
        r = results[mode]
        single = results[mode.removesuffix("-batch")]
        batched = mode.endswith("batch")
        out.rows.append(Row(f"{LABELS[mode]}: items/s, {r['concurrency']} in flight", r["items_per_s"], "/s",
                            single["items_per_s"] if batched else None, "single" if batched else "",
                            note=f"server CPU {r['server_us_per_item']:.2f} us/item, errors {r['errors']}"))
    per_decision = results["register-batch"]["server_us_per_item"] + results["lookup-batch"]["server_us_per_item"]
    single_decision = results["register"]["server_us_per_item"] + results["lookup"]["server_us_per_item"]
    out.rows.append(Row("server CPU per decision (1 item registered + 1 looked up), batches of 500", per_decision,
                        "us", single_decision, "single-item calls", f"<= {TARGET_DECISION_US:.0f} us",
                        met=per_decision <= TARGET_DECISION_US))
    codec = codec_costs(cfg.pick(50, 300))
    out.raw["codec"] = codec
    out.rows.append(Row("batch work without HTTP: register / lookup, us per item", codec["register_us"], "us",
                        note=f"lookup {codec['lookup_us']:.2f} us"))
    if "orjson_items_us" in codec:
        out.rows.append(Row("JSON decoding of a 500-item body, orjson vs json (not used: see README)",
                            codec["orjson_items_us"], "us/item", codec["json_items_us"], "json",
                            note=f"ids: orjson {codec['orjson_ids_us']:.3f} vs json {codec['json_ids_us']:.3f} us"))
    return out


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "load":
        sys.exit(load_main(sys.argv[2:]))
    from bench.run import main

    sys.exit(main(["--only", "api_server", *sys.argv[1:]]))
