from __future__ import annotations

import asyncio
import logging
import os
import re
import signal
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from actors import runtime
from actors.api_server import actor as api_server
from actors.api_server.options import APIServerOptions
from actors.api_server.state_file import StateFile
from actors.kinds import API_SERVER
from tests.actors.api_server.serve import call, run, serving
from tests.helpers import REPO
from transport.endpoints import is_loopback_host


async def register(session: aiohttp.ClientSession, base: str, price: object = "12.34") -> int:
    status, body = await call(session, "POST", f"{base}/register-request",
                              json={"book": "b1", "price": price})
    assert status == 200, body
    assert set(body) == {"id"} and type(body["id"]) is int
    return int(body["id"])


def test_register_then_sold_by_parity() -> None:
    async def body() -> None:
        async with serving() as (server, base), aiohttp.ClientSession() as session:
            first = await register(session, base)
            second = await register(session, base, price=7)
            third = await register(session, base, price="0.01")
            assert [second, third] == [first + 1, first + 2]
            for request_id in (first, second):
                status, data = await call(session, "GET", f"{base}/request-data/{request_id}")
                assert status == 200
                assert data == {"sold": request_id % 2 == 0}
            assert server.counters["registered"] == 3
            assert server.counters["lookups"] == 2
            assert server.counters["sold"] == 1 and server.counters["not_sold"] == 1
    run(body)


def test_accepts_json_numbers_and_strategy() -> None:
    async def body() -> None:
        async with serving() as (_, base), aiohttp.ClientSession() as session:
            for raw in (with_price(b"1.25"), with_price(b"1e2"), with_price(b"7"), with_price(b'"19.990000"'),
                        b'{"book": "x", "price": 0.1, "strategy": "undercut", "extra": 1}'):
                status, data = await call(session, "POST", f"{base}/register-request", data=raw)
                assert status == 200, (raw, data)
    run(body)


def test_ids_unique_across_two_servers_one_after_the_other() -> None:
    async def body() -> None:
        async with aiohttp.ClientSession() as session:
            async with serving() as (_, base):
                old = [await register(session, base) for _ in range(20)]
            async with serving() as (_, base):
                new = [await register(session, base) for _ in range(20)]
                assert min(new) > max(old)
                status, data = await call(session, "GET", f"{base}/request-data/{old[-1]}")
                assert status == 404
                assert data == {"error": "unknown id (issued before this server started, or expired)"}
    run(body)


def with_price(price: bytes) -> bytes:
    return b'{"book": "x", "price": ' + price + b"}"


BAD_PRICES = [b'"0"', b'"-1.00"', b"-1", b"0", b'"NaN"', b"NaN", b"Infinity", b'"1e3"', b'"1.1234567"',
              b"1.1234567", b'" 1.00"', b'"1,00"', b'"abc"', b"1e999999", b"[1]", b"null", b"true",
              b'"20000000"', b'"10000000.01"', b'"0.009"', b"0.001"]
BAD_BODIES = [
    b"", b"not json", b"{", b"\xff\xfe", b"[]", b'"str"', b"42", b"null",
    b'{"price": "1.00"}', b'{"book": "", "price": "1.00"}', b'{"book": "   ", "price": "1.00"}',
    b'{"book": 5, "price": "1.00"}', b'{"book": "' + b"x" * 129 + b'", "price": "1.00"}', b'{"book": "x"}',
    b'{"book": "x", "price": "1.00", "strategy": 3}',
    b'{"book": "x", "price": "1.00", "strategy": "' + b"s" * 65 + b'"}',
    *map(with_price, BAD_PRICES),
]

def test_malformed_bodies_are_400_json() -> None:
    async def body() -> None:
        async with serving() as (server, base), aiohttp.ClientSession() as session:
            for raw in BAD_BODIES:
                status, data = await call(session, "POST", f"{base}/register-request", data=raw)
                assert status == 400, raw
                assert isinstance(data["error"], str) and data["error"], raw
            assert server.counters["bad_requests"] == len(BAD_BODIES)
            assert server.counters["registered"] == 0
            assert server.ids.issued == 0  # a rejected body costs no id
    run(body)


@pytest.mark.parametrize("bad_id", ["abc", "-1", "1.5", "1e3", "%20", str(2**63), str(2**64), "9" * 100])
def test_malformed_ids_are_400_json(bad_id: str) -> None:
    async def body() -> None:
        async with serving() as (server, base), aiohttp.ClientSession() as session:
            status, data = await call(session, "GET", f"{base}/request-data/{bad_id}")
            assert status == 400
            assert "malformed id" in data["error"]
            assert server.counters["bad_requests"] == 1
    run(body)


def test_unknown_ids_and_paths_are_404_json() -> None:
    async def body() -> None:
        async with serving() as (server, base), aiohttp.ClientSession() as session:
            request_id = await register(session, base)
            status, data = await call(session, "GET", f"{base}/request-data/{request_id + 1}")
            assert (status, data) == (404, {"error": "unknown id (not issued yet)"})
            status, data = await call(session, "GET", f"{base}/request-data/0")
            assert status == 404 and "before this server started" in data["error"]
            assert server.counters["unknown_ids"] == 2
            for path in ("/", "/nope", "/request-data/", "/request-data/1/x"):
                status, data = await call(session, "GET", base + path)
                assert status == 404 and "no such path" in data["error"], path
            assert server.counters["unknown_paths"] == 4
            # /request-data itself is the batched lookup now (POST only): GET there is a 405
            status, data = await call(session, "GET", base + "/request-data")
            assert status == 405 and "not allowed" in data["error"]
    run(body)


def test_expired_ids_are_404() -> None:
    async def body() -> None:
        async with serving(retention=2) as (_, base), aiohttp.ClientSession() as session:
            ids = [await register(session, base) for _ in range(3)]
            status, data = await call(session, "GET", f"{base}/request-data/{ids[0]}")
            assert status == 404 and "expired" in data["error"]
            for request_id in ids[1:]:
                status, _ = await call(session, "GET", f"{base}/request-data/{request_id}")
                assert status == 200
    run(body)


def test_wrong_method_is_405_json() -> None:
    async def body() -> None:
        async with serving() as (server, base), aiohttp.ClientSession() as session:
            request_id = await register(session, base)
            known = f"/request-data/{request_id}"
            for method, path in (("GET", "/register-request"), ("PUT", "/register-request"),
                                 ("POST", known), ("DELETE", known)):
                async with session.request(method, base + path) as resp:
                    assert resp.status == 405, (method, path)
                    assert resp.content_type == "application/json"
                    assert "not allowed" in (await resp.json())["error"]
                    assert "Allow" in resp.headers
            assert server.counters["bad_methods"] == 4
    run(body)


def test_too_large_body_is_413_json() -> None:
    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(5):
            yield b" " * 1024

    async def body() -> None:
        big = b'{"book": "x", "price": "1.00", "pad": "' + b"x" * 5000 + b'"}'
        async with serving() as (server, base), aiohttp.ClientSession() as session:
            status, data = await call(session, "POST", f"{base}/register-request", data=big)
            assert status == 413 and "4096" in data["error"]
            # chunked: no Content-Length to check up front, so the read itself must stop at the limit
            status, data = await call(session, "POST", f"{base}/register-request", data=chunks())
            assert status == 413 and "4096" in data["error"]
            assert server.counters["too_large"] == 2
            assert server.ids.issued == 0
            await register(session, base)  # and the server still works
    run(body)


def test_error_rate_one_gives_503_json() -> None:
    async def body() -> None:
        async with serving(error_rate=1.0, seed=1) as (server, base), aiohttp.ClientSession() as session:
            for _ in range(5):
                status, data = await call(session, "POST", f"{base}/register-request",
                                          json={"book": "x", "price": "1.00"})
                assert status == 503 and "injected" in data["error"]
            assert server.counters["injected_errors"] == 5
            assert server.ids.issued == 0
    run(body)


def test_error_rate_is_a_fraction_and_seeded() -> None:
    async def outcomes() -> list[int]:
        async with serving(error_rate=0.5, seed=42) as (_, base), aiohttp.ClientSession() as session:
            statuses = []
            for _ in range(40):
                async with session.post(f"{base}/register-request", json={"book": "x", "price": "1"}) as resp:
                    statuses.append(resp.status)
            return statuses

    first = run(outcomes)
    assert set(first) == {200, 503}
    assert run(outcomes) == first  # same seed, same faults


def test_latency_is_added() -> None:
    async def body() -> None:
        async with serving(latency_ms=150) as (_, base), aiohttp.ClientSession() as session:
            t0 = time.monotonic()
            await register(session, base)
            assert time.monotonic() - t0 >= 0.15
    run(body)


def test_stops_promptly_with_an_open_keepalive_connection() -> None:
    async def body() -> None:
        async with aiohttp.ClientSession() as session, serving() as (_, base):
            await register(session, base)  # leaves an idle keep-alive connection in the pool
            # serving() already asserted the stop took < 1 s
    run(body)


def test_state_file_is_written_at_start_and_respected(tmp_path: Path) -> None:
    path = str(tmp_path / "ids.json")
    far_future = 2**62
    StateFile(path).save(far_future)

    async def body() -> None:
        async with serving(state_file=path) as (server, base), aiohttp.ClientSession() as session:
            assert server.ids.run_start == far_future  # above the clock: the persisted mark wins
            assert StateFile(path).load() == far_future + 10_000  # first block reserved before serving
            assert await register(session, base) == far_future
    run(body)


def test_refuses_non_loopback_host_without_insecure(capsys: pytest.CaptureFixture[str]) -> None:
    assert api_server.main(["--host", "0.0.0.0", "--port", "0"]) == 2
    assert "--insecure" in capsys.readouterr().err
    assert is_loopback_host("127.0.0.1") and is_loopback_host("::1")
    assert is_loopback_host("localhost") and not is_loopback_host("example.com")


def test_corrupt_state_file_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "ids.json"
    path.write_text("garbage")
    assert api_server.main(["--port", "0", "--state-file", str(path)]) == 2
    assert "state file" in capsys.readouterr().err


def parse_args(argv: list[str]) -> APIServerOptions:
    return runtime.parse_options(API_SERVER, APIServerOptions, None, argv)[0]


@pytest.mark.parametrize("argv", [["--error-rate", "1.5"], ["--retention", "0"], ["--port", "70000"],
                                  ["--latency-ms", "-1"]])
def test_bad_cli_values_exit_2(argv: list[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        parse_args(argv)
    assert exc.value.code == 2


def process_name(pid: int) -> str:
    return Path(f"/proc/{pid}/comm").read_text().strip()


def test_process_answers_and_exits_0_on_sigterm() -> None:
    async def body() -> None:
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "actors.api_server", "--port", "0", "--log-level", "INFO",
            cwd=REPO, env=env, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE)
        assert proc.stderr is not None
        try:
            port = None
            async with asyncio.timeout(10):
                while port is None:
                    line = (await proc.stderr.readline()).decode()
                    assert line, "process exited before listening"
                    if match := re.search(r"listening on http://127\.0\.0\.1:(\d+)", line):
                        port = int(match.group(1))
            assert process_name(proc.pid) == "apiserver"
            async with aiohttp.ClientSession() as session:
                base = f"http://127.0.0.1:{port}"
                request_id = await register(session, base)
                status, data = await call(session, "GET", f"{base}/request-data/{request_id}")
                assert status == 200 and data == {"sold": request_id % 2 == 0}
            proc.send_signal(signal.SIGTERM)
            async with asyncio.timeout(3):
                rest = await proc.stderr.read()
                assert await proc.wait() == 0, rest.decode()
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
    run(body, timeout=30)


def test_help_runs() -> None:
    with pytest.raises(SystemExit) as exc:
        parse_args(["--help"])
    assert exc.value.code == 0


def test_unknown_paths_bad_methods_and_large_bodies_are_logged_with_the_peer(caplog: pytest.LogCaptureFixture
                                                                              ) -> None:
    """Each refusal is counted and logged (rate-limited) with the peer's address and what it sent,
    escaped: a path with an encoded newline cannot forge a log line."""
    async def body() -> None:
        async with serving() as (server, base), aiohttp.ClientSession() as session:
            for i in range(7):
                status, _ = await call(session, "GET", f"{base}/nope%0Aforged{i}")
                assert status == 404
            status, _ = await call(session, "DELETE", f"{base}/register-request")
            assert status == 405
            status, _ = await call(session, "POST", f"{base}/register-request", data=b"x" * 5000)
            assert status == 413
            c = server.counters
            assert (c["unknown_paths"], c["bad_methods"], c["too_large"]) == (7, 1, 1)

    with caplog.at_level(logging.WARNING, logger=api_server.log.name):
        run(body)
    unknown = [m for m in caplog.messages if m.startswith("404 GET /nope")]
    assert unknown == [f"404 GET /nope\\nforged{i} from 127.0.0.1" for i in range(5)]  # the burst, escaped
    assert "405 DELETE /register-request from 127.0.0.1" in caplog.messages
    assert "body over 4096 bytes refused (413): POST /register-request from 127.0.0.1" in caplog.messages
