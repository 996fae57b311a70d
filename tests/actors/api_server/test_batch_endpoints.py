"""The batched endpoints and the rate limits over real HTTP, against the real server in this process."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import aiohttp
import pytest

from actors import runtime
from actors.api_server.options import APIServerOptions
from actors.api_server.rate_limit import TokenBucket
from actors.kinds import API_SERVER
from actors.options import to_argv
from tests.actors.api_server.serve import call, run, serving
from transport.limits import API_BATCH_MAX, HTTP_BATCH_BODY_MAX_BYTES, HTTP_BODY_MAX_BYTES


def items(n: int, price: Any = "12.34") -> list[dict[str, Any]]:
    return [{"book": f"B{i:04d}", "strategy": "undercut", "price": price} for i in range(n)]


def test_register_batch_then_look_the_ids_up() -> None:
    async def body() -> None:
        async with serving() as (server, base), aiohttp.ClientSession() as session:
            batch = items(5)
            batch[2]["price"] = "0"
            status, data = await call(session, "POST", f"{base}/register-requests", json={"items": batch})
            assert status == 200
            results = data["results"]
            assert len(results) == 5 and results[2]["error"].startswith("item 2: price must be within")
            ids = [r["id"] for r in results if "id" in r]
            assert ids == list(range(ids[0], ids[0] + 4))  # consecutive, in order, the bad item skipped
            status, data = await call(session, "POST", f"{base}/request-data", json={"ids": [*ids, ids[-1] + 1]})
            assert status == 200
            assert data["results"][:4] == [{"id": n, "sold": n % 2 == 0} for n in ids]
            assert data["results"][4] == {"id": ids[-1] + 1, "error": "item 4: unknown id (not issued yet)"}
            # ids of a batch and of the single endpoint come from one sequence
            status, single = await call(session, "POST", f"{base}/register-request", json=items(1)[0])
            assert single == {"id": ids[-1] + 1}
            status, data = await call(session, "GET", f"{base}/request-data/{ids[0]}")
            assert (status, data) == (200, {"sold": ids[0] % 2 == 0})
            c = server.counters
            assert (c["batch_registers"], c["batch_lookups"], c["registered"], c["bad_items"]) == (1, 1, 5, 1)
            assert (c["lookups"], c["unknown_ids"], c["sold"] + c["not_sold"]) == (5, 1, 5)
    run(body)


def test_a_full_batch_fits_in_the_body_limit() -> None:
    async def body() -> None:
        async with serving() as (_, base), aiohttp.ClientSession() as session:
            # the largest items the rules allow, as many as allowed
            big = [{"book": "b" * 128, "strategy": "s" * 64, "price": "9999999.999999"}] * API_BATCH_MAX
            assert len(json.dumps({"items": big})) <= HTTP_BATCH_BODY_MAX_BYTES
            status, data = await call(session, "POST", f"{base}/register-requests", json={"items": big})
            assert status == 200 and len(data["results"]) == API_BATCH_MAX
            ids = [r["id"] for r in data["results"]]
            status, data = await call(session, "POST", f"{base}/request-data", json={"ids": ids})
            assert status == 200 and [r["id"] for r in data["results"]] == ids
    run(body)


@pytest.mark.parametrize("path", ["/register-requests", "/request-data"])
def test_malformed_envelopes_are_400_and_cost_no_id(path: str) -> None:
    async def body() -> None:
        key = "items" if path == "/register-requests" else "ids"
        bad = [b"", b"nope", b"[]", b"{}", b'{"%s": []}' % key.encode(), b'{"%s": 5}' % key.encode(),
               json.dumps({key: [1] * (API_BATCH_MAX + 1)}).encode()]
        async with serving() as (server, base), aiohttp.ClientSession() as session:
            for raw in bad:
                status, data = await call(session, "POST", base + path, data=raw)
                assert status == 400 and data["error"], raw
            assert server.counters["bad_requests"] == len(bad)
            assert server.ids.issued == 0
    run(body)


def test_body_limits_batch_and_single() -> None:
    async def chunks(size: int) -> Any:
        for _ in range(size // 1024 + 1):
            yield b" " * 1024

    async def body() -> None:
        async with serving() as (server, base), aiohttp.ClientSession() as session:
            over = b" " * (HTTP_BATCH_BODY_MAX_BYTES + 1)
            for path in ("/register-requests", "/request-data"):
                status, data = await call(session, "POST", base + path, data=over)
                assert status == 413 and str(HTTP_BATCH_BODY_MAX_BYTES) in data["error"]
                status, data = await call(session, "POST", base + path, data=chunks(HTTP_BATCH_BODY_MAX_BYTES))
                assert status == 413 and str(HTTP_BATCH_BODY_MAX_BYTES) in data["error"]
            # the single endpoint keeps its own, smaller limit even though a batch body may be larger
            status, data = await call(session, "POST", f"{base}/register-request",
                                      data=b" " * (HTTP_BODY_MAX_BYTES + 1))
            assert status == 413 and str(HTTP_BODY_MAX_BYTES) in data["error"]
            assert server.counters["too_large"] == 5 and server.ids.issued == 0
    run(body)


def test_429_carries_retry_after_in_the_header_and_the_body() -> None:
    async def body() -> None:
        async with serving(rate_limit=1, burst=2) as (server, base), aiohttp.ClientSession() as session:
            url = f"{base}/register-requests"
            for _ in range(2):
                async with session.post(url, json={"items": items(3)}) as resp:
                    assert resp.status == 200  # a batch call counts as one request
            async with session.post(url, json={"items": items(3)}) as resp:
                assert resp.status == 429 and resp.content_type == "application/json"
                assert resp.headers["Retry-After"] == "1"
                data = await resp.json()
            assert data["error"] == "rate limit exceeded" and 0.9 < data["retry_after"] <= 1.0
            assert server.ids.issued == 6  # the refused call cost no id
            # every endpoint has its own bucket
            status, _ = await call(session, "POST", f"{base}/register-request", json=items(1)[0])
            assert status == 200
            assert server.counters["rate_limited"] == 1
            # unknown paths are not limited (nor counted as throttled): they are 404s
            for _ in range(5):
                status, _ = await call(session, "GET", f"{base}/nope")
                assert status == 404
            assert server.counters["rate_limited"] == 1
    run(body)


class HonouringClient:
    """What a well-behaved client does: it starts greedy (it does not know the limit yet); at a 429 it
    waits ``retry_after`` from the body (else ``Retry-After``) instead of retrying in a storm, and from
    then on paces itself with its own token bucket at the limit, started empty. Its bucket's burst is
    below the server's, so a catch-up after a stall never outruns what the server has accrued (the
    difference absorbs the jitter between a send and its handling)."""

    def __init__(self, rate: float, burst: int) -> None:
        self.pacer = TokenBucket(rate, burst, time.monotonic())
        self.paced = False
        self.paused_until = 0.0
        self.ok_at: list[float] = []
        self.throttled_at: list[float] = []

    async def worker(self, session: aiohttp.ClientSession, url: str, start: float, end: float) -> None:
        while (now := time.monotonic()) < end:
            if now < self.paused_until:
                await asyncio.sleep(self.paused_until - now)
                continue
            if self.paced and (wait := self.pacer.take(now)):
                await asyncio.sleep(wait)
                continue
            async with session.post(url, json={"book": "B1", "price": "1.00"}) as resp:
                received = time.monotonic()
                if resp.status == 429:
                    data = await resp.json()
                    retry = data.get("retry_after", float(resp.headers["Retry-After"]))
                    self.throttled_at.append(received - start)
                    self.paused_until = max(self.paused_until, received + retry)
                    self.paced = True
                    self.pacer.tokens = 0.0
                else:
                    assert resp.status == 200
                    self.ok_at.append(received - start)


def test_a_client_honouring_retry_after_gets_the_limit_and_the_429s_stop() -> None:
    rate, seconds = 200, 4.0

    async def body() -> None:
        # A small server burst, so the greedy start meets the limit early even on a busy machine.
        async with serving(rate_limit=rate, burst=30) as (server, base), aiohttp.ClientSession() as session:
            client = HonouringClient(rate, burst=20)
            start = time.monotonic()
            await asyncio.gather(*(client.worker(session, f"{base}/register-request", start, start + seconds)
                                   for _ in range(8)))
            assert client.throttled_at, "the greedy start must have met the limit"
            assert max(client.throttled_at) < 1.0, client.throttled_at  # the 429s stop in the first second
            achieved = sum(1 for t in client.ok_at if 1.0 <= t < seconds) / (seconds - 1.0)  # after the first second
            assert abs(achieved - rate) <= 0.05 * rate, achieved
            assert server.counters["rate_limited"] == len(client.throttled_at)
    run(body)


def parse(argv: list[str]) -> APIServerOptions:
    return runtime.parse_options(API_SERVER, APIServerOptions, None, argv)[0]


@pytest.mark.parametrize("argv", [["--burst", "3"], ["--rate-limit", "0"], ["--rate-limit", "-1"],
                                  ["--rate-limit", "nan"], ["--rate-limit", "inf"], ["--rate-limit", "2000000"],
                                  ["--rate-limit", "5", "--burst", "0"]])
def test_bad_rate_limit_options_exit_2(argv: list[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        parse(argv)
    assert exc.value.code == 2


def test_rate_limit_options_default_and_round_trip() -> None:
    assert parse([]).rate_limit is None  # off by default
    assert parse(["--rate-limit", "2.5"]).effective_burst == 3  # one second's worth, rounded up
    options = parse(["--rate-limit", "200", "--burst", "10"])
    assert options.effective_burst == 10
    assert parse(to_argv(options)) == options  # the launcher can pass them on
