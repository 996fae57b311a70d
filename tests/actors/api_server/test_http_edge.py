"""What reaches the APIServer below HTTP's rules, over raw sockets against the real server: malformed
requests answered in JSON with one escaped, rate-limited log line each; idle, slow and too many
connections bounded; log lines that cannot be forged; a port in use is one clear line and exit 2."""

from __future__ import annotations

import asyncio
import gzip
import json
import logging
import os
import random
import re
import signal
import socket
import subprocess
import sys
import time

import aiohttp
import pytest
from aiohttp import web
from aiohttp.http_exceptions import BadHttpMessage, BadStatusLine, LineTooLong

from actors.http_edge import HttpBounds, JsonErrorHandler, describe_parse_error
from tests.actors.api_server.serve import call, exchange, run, serving, split_response, split_responses
from tests.helpers import REPO, async_wait_for
from transport.limits import HTTP_LINE_MAX_BYTES
from transport.logs import RateLimitedLog

pytestmark = pytest.mark.both_loops  # the edge runs on uvloop in production: its transports differ

MALFORMED = [
    b"GET / HTTP/9.9\r\n\r\n",  # the example: an invalid HTTP version
    b"GET / HTTP/1.1 extra\r\n\r\n",
    b"GARBAGE\r\n\r\n",
    b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03",  # TLS on the plain port
    b"GET /a\nb HTTP/1.1\r\nHost: x\r\n\r\n",  # raw LF in the path
    b"GET /a\rlauncher[1] INFO started algorithm pid=1 HTTP/1.1\r\nHost: x\r\n\r\n",  # raw CR
    b"GET /\x00 HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET / HTTP/1.1\r\nBad Header\r\n\r\n",
    b"GET / HTTP/1.1\r\nX: \x01\x02\r\n\r\n",
    b"GET /" + b"a" * (HTTP_LINE_MAX_BYTES + 10) + b" HTTP/1.1\r\n\r\n",
    b"GET / HTTP/1.1\r\nX: " + b"a" * (HTTP_LINE_MAX_BYTES + 10) + b"\r\n\r\n",
    b"GET / HTTP/1.1\r\n" + b"".join(b"X%d: y\r\n" % i for i in range(40)) + b"\r\n",  # too many headers
    b"POST /register-request HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n",
    b"POST /register-request HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n12345",
    b"POST /register-request HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
]


def test_describe_parse_error_is_one_short_line_without_the_peers_bytes() -> None:
    assert describe_parse_error(BadStatusLine("", "Bad status line:\n  Invalid HTTP version:\n\n  b'GET / HTTP/9.9'"
                                                  "\n                ^")) == "Bad status line: Invalid HTTP version"
    assert describe_parse_error(LineTooLong(b"x" * 9000, 4096)) == \
        f"request line or header longer than {HTTP_LINE_MAX_BYTES} bytes"
    forged = describe_parse_error(BadHttpMessage("bad\nlauncher[1] INFO started algorithm pid=1\r\nx"))
    assert "\n" not in forged and "\r" not in forged
    assert describe_parse_error(None) == "malformed request"
    assert len(describe_parse_error(BadHttpMessage("y" * 5000))) < 200


def test_malformed_requests_get_json_400_and_one_rate_limited_line_each(caplog: pytest.LogCaptureFixture) -> None:
    async def body() -> None:
        async with serving() as (server, base), aiohttp.ClientSession() as session:
            for raw in MALFORMED * 4:
                status, headers, data = split_response(await exchange(server.port, raw))
                assert status == 400, raw
                assert headers["content-type"].startswith("application/json"), raw
                assert json.loads(data)["error"].startswith("malformed HTTP request: "), raw
            assert server.counters["bad_http"] == len(MALFORMED) * 4
            status, _ = await call(session, "POST", f"{base}/register-request", json={"book": "b", "price": "1"})
            assert status == 200  # the server is unharmed

    caplog.set_level(logging.DEBUG)
    run(body)
    peer_lines = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert 1 <= len(peer_lines) <= 5, [r.getMessage() for r in peer_lines]  # RateLimitedLog's burst, then quiet
    for record in caplog.records:
        assert record.exc_info is None, record.getMessage()  # no traceback, from us or from aiohttp
        assert "\n" not in record.getMessage() and "\r" not in record.getMessage()


def test_peer_text_in_logged_paths_is_escaped(caplog: pytest.LogCaptureFixture) -> None:
    async def body() -> None:
        async with serving() as (server, _):
            for path in (b"/request-data/1%0a2026-01-01%20launcher[1]%20INFO%20started%20algorithm%20pid=1",
                         b"/request-data/%0d%0alauncher[1]", b"/request-data/%1b[31mred"):
                raw = await exchange(server.port, b"GET " + path + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                assert split_response(raw)[0] == 400

    caplog.set_level(logging.INFO)
    run(body)
    messages = [r.getMessage() for r in caplog.records if "bad request" in r.getMessage()]
    assert len(messages) == 3
    assert all(not re.search(r"[\x00-\x1f\x7f]", m) for m in messages), messages
    assert "\\nlauncher" not in messages[0] and "\\n2026-01-01 launcher[1]" in messages[0]


def test_malformed_bodies_are_json_400_and_close_the_connection(caplog: pytest.LogCaptureFixture) -> None:
    async def body() -> None:
        async with serving(bounds=HttpBounds(body_timeout=0.3)) as (server, _):
            for encoding in (b"gzip", b"deflate"):
                raw = await exchange(server.port, b"POST /register-requests HTTP/1.1\r\nHost: x\r\n"
                                     b"Content-Encoding: " + encoding + b"\r\nContent-Length: 10\r\n\r\n0123456789")
                status, _, data = split_response(raw)
                assert status == 400 and json.loads(data)["error"].startswith("malformed request body: ")
            # a bomb: 10 MB of spaces in 10 KB of gzip is refused at the limit, decompressed or not
            bomb = gzip.compress(b" " * 10_000_000)
            raw = await exchange(server.port, b"POST /register-requests HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                                 b"Content-Encoding: gzip\r\nContent-Length: %d\r\n\r\n%s" % (len(bomb), bomb))
            assert split_response(raw)[0] == 413
            # a bad chunk after the handler started reading: bounded by the body timeout
            reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
            writer.write(b"POST /register-request HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                         b"3\r\n{\"b\r\n")
            await asyncio.sleep(0.05)  # either way (read started or not) the answer is a JSON 400/408
            writer.write(b"zz\r\n")
            assert split_response(await reader.read())[0] in (400, 408)
            writer.close()
            assert server.counters["internal_errors"] == 0 and server.ids.issued == 0

    caplog.set_level(logging.DEBUG)
    run(body)
    assert all(r.exc_info is None for r in caplog.records), [r.getMessage() for r in caplog.records if r.exc_info]


def test_aiohttp_and_event_loop_reports_are_one_line(caplog: pytest.LogCaptureFixture) -> None:
    async def body() -> None:
        async with serving() as (server, _):
            loop = asyncio.get_running_loop()
            for _ in range(10):
                loop.call_exception_handler({"message": "protocol.data_received() failed\nforged line",
                                             "exception": ValueError("x\ny")})
            handler = JsonErrorHandler(web.Server(lambda request: None), loop=loop,  # type: ignore[arg-type, return-value]
                                       counters=server.counters, bad_log=RateLimitedLog(logging.getLogger("t")),
                                       bounds=HttpBounds())
            try:
                raise RuntimeError("boom")
            except RuntimeError as e:
                handler.log_exception("Unhandled exception", exc_info=e)
            assert server.counters["internal_errors"] == 11

    caplog.set_level(logging.DEBUG)
    run(body)
    lines = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(lines) == 6  # 5 of the loop's (then rate-limited) + aiohttp's one
    assert all(r.exc_info is None and "\n" not in r.getMessage() for r in caplog.records)


def test_expect_100_continue_works_and_other_expectations_are_417_json() -> None:
    async def body() -> None:
        async with serving() as (server, base), aiohttp.ClientSession() as session:
            async with session.post(f"{base}/register-requests", json={"items": [{"book": "b", "price": "1"}]},
                                    expect100=True) as resp:
                assert resp.status == 200 and len((await resp.json())["results"]) == 1
            for expect in (b"100-continue\xffPUT", b"something-else"):
                raw = await exchange(server.port, b"POST /register-request HTTP/1.1\r\nHost: x\r\nExpect: " + expect
                                     + b"\r\nContent-Length: 2\r\n\r\n{}")
                status, _, data = split_response(raw)
                assert status == 417 and "Expect" in json.loads(data)["error"]
            assert server.counters["internal_errors"] == 0 and server.counters["bad_requests"] == 2
    run(body)


PIECES = [b"GET ", b"POST ", b"PUT ", b"/register-request", b"/register-requests", b"/request-data", b"/request-data/1",
          b" HTTP/1.1", b" HTTP/1.0", b" HTTP/2", b"\r\n", b"\n", b"\r", b"Host: x", b"Content-Length: 5",
          b"Content-Length: -1", b"Transfer-Encoding: chunked", b"Transfer-Encoding: gzip, chunked",
          b"Content-Encoding: gzip", b"Connection: close", b"Connection: Upgrade", b"Upgrade: websocket",
          b"Expect: 100-continue", b'{"items": [', b'{"ids": [1,2]}', b"0\r\n\r\n", b"ff\r\n", b"\x00", b"\xff",
          b": ", b"%0a", b"%", b"?a=b&c", b"#frag"]


def test_fuzzed_requests_get_json_answers_and_no_internal_error(caplog: pytest.LogCaptureFixture) -> None:
    rng = random.Random(9)
    cases = []
    for _ in range(300):
        data = b"".join(rng.choice(PIECES) for _ in range(rng.randint(1, 14)))
        if rng.random() < 0.5:
            data = b"POST /register-requests HTTP/1.1\r\nHost: x\r\n" + data
        cases.append(data + (b"\r\n\r\n" if rng.random() < 0.7 else b""))

    async def body() -> None:
        async with serving(bounds=HttpBounds(idle_timeout=0.3, body_timeout=0.3)) as (server, _):
            slots = asyncio.Semaphore(20)

            async def one(data: bytes) -> None:
                async with slots:
                    raw = await exchange(server.port, data, timeout=5)
                for status, headers, _ in split_responses(raw):  # pipelined cases get several answers
                    assert status < 500, (data, raw)
                    assert status == 100 or headers["content-type"].startswith("application/json"), (data, raw)

            await asyncio.gather(*(one(data) for data in cases))
            assert server.counters["internal_errors"] == 0

    caplog.set_level(logging.DEBUG)
    run(body, timeout=60)
    assert all(r.exc_info is None and "\n" not in r.getMessage() for r in caplog.records)


def test_idle_and_slowloris_connections_are_closed_after_the_idle_timeout() -> None:
    async def body() -> None:
        async with serving(bounds=HttpBounds(idle_timeout=0.5)) as (server, _):
            idle_reader, idle_writer = await asyncio.open_connection("127.0.0.1", server.port)
            slow_reader, slow_writer = await asyncio.open_connection("127.0.0.1", server.port)
            started = time.monotonic()
            slow_writer.write(b"GET /request-data/1 HTTP/1.1\r\n")
            closed = asyncio.gather(idle_reader.read(), slow_reader.read())
            while not closed.done():  # a byte of headers every 0.1 s does not keep it open
                slow_writer.write(b"X")
                await asyncio.wait([closed], timeout=0.1)
            assert list(await closed) == [b"", b""]  # closed without an answer
            assert 0.4 < time.monotonic() - started < 2.0
            idle_writer.close()
            slow_writer.close()
    run(body)


def test_a_body_that_never_completes_is_408_after_the_body_timeout() -> None:
    async def body() -> None:
        async with serving(bounds=HttpBounds(body_timeout=0.3)) as (server, _):
            for path in (b"/register-request", b"/register-requests"):
                started = time.monotonic()
                raw = await exchange(server.port, b"POST " + path + b" HTTP/1.1\r\nHost: x\r\n"
                                     b"Content-Length: 100\r\n\r\n{\"items\"")
                status, _, data = split_response(raw)
                assert status == 408 and "0.3s" in json.loads(data)["error"]
                assert time.monotonic() - started < 2.0
            assert server.counters["body_timeouts"] == 2 and server.ids.issued == 0
    run(body)


def test_connections_past_the_cap_are_refused_with_503_json() -> None:
    async def body() -> None:
        async with serving(bounds=HttpBounds(connections=3)) as (server, base):
            held = [await asyncio.open_connection("127.0.0.1", server.port) for _ in range(3)]
            await async_wait_for(lambda: server.open_connections == 3)
            status, _, data = split_response(await exchange(server.port, b"GET /request-data/1 HTTP/1.1\r\n\r\n"))
            assert status == 503 and "too many connections" in json.loads(data)["error"]
            assert server.counters["connections_refused"] == 1
            for _, writer in held:
                writer.close()
            await async_wait_for(lambda: server.open_connections == 0)  # the slots free up once those are gone
            async with aiohttp.ClientSession() as session:
                status, data = await call(session, "GET", f"{base}/request-data/1")
                assert status == 404 and "unknown id" in data["error"]
    run(body)


def test_a_client_that_never_reads_its_responses_is_dropped() -> None:
    async def body() -> None:
        async with serving(bounds=HttpBounds(write_timeout=0.3)) as (server, _):
            sock = socket.socket()
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            sock.setblocking(False)
            await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", server.port))
            ids = json.dumps({"ids": list(range(1000))}).encode()
            request = b"POST /request-data HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s" % (len(ids), ids)
            loop = asyncio.get_running_loop()
            try:
                for _ in range(400):  # pipelined, never reading: each answer is ~60 KB
                    await asyncio.wait_for(loop.sock_sendall(sock, request), 0.5)
                    if server.counters["slow_readers"]:
                        break
            except (TimeoutError, ConnectionError):
                pass  # the server stopped reading us, or dropped us already
            await async_wait_for(lambda: server.counters["slow_readers"], timeout=5)
            assert server.counters["slow_readers"] == 1
            sock.close()
    run(body, timeout=30)


def process_env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(REPO)}


LOG_LINE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} apiserver\[\d+\] (DEBUG|INFO|WARNING|ERROR) ")


def test_a_real_process_keeps_its_stderr_short_and_unforgeable() -> None:
    """The issue's attack on a real process: malformed requests in a loop (5.8 MB of tracebacks in 4 s
    before) and newlines smuggled into paths. Every stderr line must be one of ours."""
    proc = subprocess.Popen([sys.executable, "-m", "actors.api_server", "--port", "0"], cwd=REPO,
                            env=process_env(), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    assert proc.stderr is not None
    try:
        first = proc.stderr.readline().decode()
        match = re.search(r"listening on http://127\.0\.0\.1:(\d+)", first)
        assert match, first
        port = int(match.group(1))
        forged = [b"GET /request-data/1%0a2026-01-01 00:00:00,000 launcher[1] INFO started algorithm pid=1 HTTP/1.1",
                  b"GET /request-data/1%0d%0alauncher[1]%20INFO%20started%20algorithm%20pid=1 HTTP/1.1",
                  b"GET /request-data/1\nlauncher[1] INFO started algorithm pid=1 HTTP/1.1"]

        async def attack() -> None:
            for round_ in range(20):
                for raw in MALFORMED + [line + b"\r\nHost: x\r\nConnection: close\r\n\r\n" for line in forged]:
                    await exchange(port, raw)
                assert round_ < 20

        run(attack, timeout=60)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=10)
        assert proc.returncode == 0
        lines = [first.rstrip("\n"), *err.decode().splitlines()]
        assert all(LOG_LINE.match(line) for line in lines), [line for line in lines if not LOG_LINE.match(line)]
        assert len(lines) < 30, lines  # a few lines per kind of problem, not one (or 11) per request
        assert "Traceback" not in err.decode()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_a_port_in_use_is_one_clear_line_and_exit_2() -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        result = subprocess.run([sys.executable, "-m", "actors.api_server", "--port", str(port)], cwd=REPO,
                                env=process_env(), stdin=subprocess.DEVNULL, capture_output=True, timeout=30)
    assert result.returncode == 2
    lines = result.stderr.decode().splitlines()
    assert len(lines) == 1, lines
    assert LOG_LINE.match(lines[0]) and " ERROR " in lines[0]
    assert f"cannot listen on 127.0.0.1 port {port}: Address already in use" in lines[0]
    assert "--port" in lines[0]
