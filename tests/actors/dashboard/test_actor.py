"""The Dashboard actor over real sockets: it follows the launcher's events PUB socket, rejects and counts
garbage on it, serves HTTP meanwhile (malformed HTTP answered 400 and counted, not a traceback) and
stops cleanly; run alone, it refuses a public address."""

from __future__ import annotations

import asyncio
import json
import logging
import time
import urllib.request
from decimal import Decimal
from pathlib import Path

import zmq
import zmq.asyncio

from actors.dashboard.actor import Dashboard
from actors.dashboard.bounds import DefaultBounds, load_bounds
from actors.dashboard.options import DashboardOptions
from tests.helpers import async_wait_for, ipc_endpoint, python, run_async
from transport import protocol
from transport.protocol import ActorStatus, Decision, SupervisorEvent, Tick
from transport.sockets import Sockets


def test_live_state_follows_the_events_socket_and_garbage_is_counted(ipc_dir: Path, tmp_path: Path) -> None:
    endpoint = ipc_endpoint(ipc_dir, "events")

    async def scenario() -> None:
        ctx = zmq.asyncio.Context()
        pub = Sockets(ctx).pub(endpoint, 1000)
        options = DashboardOptions(port=0, events_endpoint=endpoint, db=str(tmp_path / "none"))
        dashboard = Dashboard(Sockets(ctx), options, DefaultBounds())
        stop = asyncio.Event()
        try:
            async with asyncio.TaskGroup() as group:
                group.create_task(dashboard.run(stop))
                await asyncio.wait_for(dashboard.started.wait(), 10)

                async def published() -> bool:  # a SUB joins late: publish until it hears
                    if "algorithm" in dashboard.state.actors:
                        return True
                    now = time.time()
                    await pub.send(protocol.encode(ActorStatus(now, "algorithm", 9, 100, 90, 0, 0, now - 1, now,
                                                               {"decisions": 3})))
                    return False

                await async_wait_for(published, timeout=10, interval=0.02, what="the Dashboard to hear a status")
                await pub.send(protocol.encode(SupervisorEvent(time.time(), "exited", "algorithm", 9, "exit code 1")))
                for garbage in (b"\x00garbage", protocol.encode(Tick(1, 1.0, 1.0, 1.0)), b""):
                    await pub.send(garbage)
                await async_wait_for(lambda: dashboard.counters["bad_events"] == 3, timeout=5)
                assert dashboard.state.actors["algorithm"].state == "restarting"
                url = f"http://127.0.0.1:{dashboard.port}/api/overview"
                body = await asyncio.to_thread(lambda: urllib.request.urlopen(url, timeout=5).read())
                assert json.loads(body)["banner"] == ["algorithm is restarting (exit code 1)"]
                assert dashboard.statuses >= 1 and dashboard.counters["events"] == 1
                assert "statuses" not in dashboard.counters and dashboard.all_counters()["statuses"] >= 1
                stop.set()
        finally:
            pub.close(0)
            ctx.destroy(0)

    run_async(scenario(), timeout=20)


def test_a_decision_on_the_events_socket_is_rejected_too() -> None:
    dashboard = Dashboard(Sockets(zmq.asyncio.Context()), DashboardOptions(port=0), DefaultBounds())
    decision = Decision(1.0, 1, "B1", "default", (), Decimal("1"), 2, True, Decimal("1.10"))
    dashboard.on_frame(protocol.encode(decision))
    assert dashboard.counters["bad_events"] == 1 and not dashboard.state.actors


def test_standalone_it_refuses_a_public_address_without_insecure() -> None:
    done = python("-m", "actors.dashboard", "--host", "0.0.0.0")
    assert done.returncode == 2 and "--insecure" in done.stderr
    done = python("-m", "actors.dashboard", "--bucket", "0")
    assert done.returncode == 2 and "--bucket" in done.stderr


def test_malformed_http_is_answered_400_counted_and_logged_in_one_line(tmp_path: Path, caplog: object) -> None:
    async def scenario() -> None:
        ctx = zmq.asyncio.Context()
        dashboard = Dashboard(Sockets(ctx), DashboardOptions(port=0, db=str(tmp_path / "none")), DefaultBounds())
        stop = asyncio.Event()
        try:
            async with asyncio.TaskGroup() as group:
                group.create_task(dashboard.run(stop))
                await asyncio.wait_for(dashboard.started.wait(), 10)
                for garbage in (b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n",  # TLS to plain HTTP
                                b"GET / HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n",
                                b"GET /" + b"a" * 10_000 + b" HTTP/1.1\r\n\r\n"):
                    reader, writer = await asyncio.open_connection("127.0.0.1", dashboard.port)
                    writer.write(garbage)
                    answer = await asyncio.wait_for(reader.read(4096), 5)
                    writer.close()
                    assert answer.split(b" ")[1] == b"400" and b"malformed HTTP request" in answer, answer
                assert dashboard.counters["bad_http"] == 3
                url = f"http://127.0.0.1:{dashboard.port}/api/overview"  # and it still serves
                body = await asyncio.to_thread(lambda: urllib.request.urlopen(url, timeout=5).read())
                assert "actors" in json.loads(body)
                stop.set()
        finally:
            ctx.destroy(0)

    with caplog.at_level(logging.WARNING):  # type: ignore[attr-defined]
        run_async(scenario(), timeout=20)
    lines = [r for r in caplog.records if "malformed HTTP request" in r.getMessage()]  # type: ignore[attr-defined]
    assert lines and all(r.exc_info is None and "\n" not in r.getMessage() for r in lines)
    assert not [r for r in caplog.records if "Error handling request" in r.getMessage()]  # type: ignore[attr-defined]



def test_a_sighup_reload_takes_the_configs_pauses_and_a_bad_file_keeps_the_running_ones(tmp_path: Path) -> None:
    config = tmp_path / "repricer.toml"
    books = '[strategies.default]\ndelay = 0\n[[books]]\nids = ["B1", "B2"]\n'
    config.write_text(books, encoding="utf-8")

    async def scenario() -> None:
        options = DashboardOptions(port=0, db=str(tmp_path / "none"), config=str(config))
        dashboard = Dashboard(Sockets(zmq.asyncio.Context()), options, load_bounds(str(config)))
        assert not dashboard.web.bounds.paused("B2", "default")
        config.write_text(books + '[pause]\nbooks = ["B2"]\n', encoding="utf-8")
        await dashboard.reload()
        assert dashboard.web.bounds.paused("B2", "default") and not dashboard.web.bounds.paused("B1", "default")
        config.write_text(books + '[pause]\nbooks = ["B9"]\n', encoding="utf-8")  # no such book: refused
        await dashboard.reload()
        assert dashboard.web.bounds.paused("B2", "default")  # the running config stays
        assert (dashboard.counters["config_reloads"], dashboard.counters["config_reload_errors"]) == (1, 1)

    run_async(scenario())
