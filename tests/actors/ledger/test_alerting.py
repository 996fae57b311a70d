"""The Ledger's alerts end to end in its process: staged decisions over its socket raise and clear alerts
in the ``alerts`` table and its counters; a restarted Ledger counts the open ones again; the
thresholds come from the config's [alerts] and again on SIGHUP; the webhook gets each change as JSON,
with bounded retries, never holding decisions up."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import zmq.asyncio
from aiohttp import web

from actors.alert_rules import Thresholds
from actors.ledger import alert_store, schema, store
from actors.ledger.actor import Ledger
from actors.ledger.alerting import load_thresholds
from actors.ledger.watch import AlertChange
from actors.ledger.webhook import Webhook
from tests.actors.ledger.helpers import T0, decision, rows
from tests.actors.ledger.test_ledger import RETRY, Peer, serve
from tests.helpers import FakeClock, async_wait_for, free_port, run_async
from transport.protocol import Decision


def falling(tick: int, book: str = "B001", *, drop: int = 0) -> Decision:
    """A decision at tick ``tick`` whose price and competitor average are lower than at the tick before
    (by ``drop`` cents a tick; 0: flat)."""
    d = decision(tick, book, price=f"{20 - tick * drop / 100:.2f}")
    avg = Decimal("18") - Decimal(tick * drop) / 100
    prices = (avg, avg, avg, avg, avg) if drop else d.prices
    return Decision(d.ts, d.tick, d.book, d.strategy, prices, avg if drop else d.avg_comp_price, d.request_id,
                    d.sold, d.price, d.rule_price, d.guardrail, d.run)


def open_alerts(db: Path) -> list[tuple[str, str, str]]:
    return [(r["alert"], r["book"], r["strategy"]) for r in rows(db, "alerts", "id") if r["cleared_at"] is None]


def test_the_alerts_table_opens_one_alert_per_subject_and_closes_it(tmp_path: Path) -> None:
    conn = sqlite3.connect(tmp_path / "l.sqlite3", isolation_level=None)
    schema.migrate(conn)
    war = AlertChange("price_war", "B1", "s", True, 10.0, 12.0, "fell")
    alert_store.write(conn, [war, war, AlertChange("ledger_lag", "", "", True, 11.0, 11.0, "late")])
    assert [(a.name, a.book, a.since) for a in alert_store.read_open(conn)] == [("price_war", "B1", 10.0),
                                                                               ("ledger_lag", "", 11.0)]
    alert_store.write(conn, [AlertChange("price_war", "B1", "s", False, 20.0, 20.0, "held")])
    assert [a.name for a in alert_store.read_open(conn)] == ["ledger_lag"]
    cleared = conn.execute("SELECT cleared_at, cleared_detail FROM alerts WHERE alert = 'price_war'").fetchall()
    assert cleared == [(20.0, "held")]
    for i in range(5):  # history past what is kept: the oldest cleared ones go, open ones stay
        alert_store.write(conn, [AlertChange("price_war", "B1", "s", True, i, i, ""),
                                 AlertChange("price_war", "B1", "s", False, i, i, "")], keep=2)
    assert conn.execute("SELECT count(*) FROM alerts WHERE cleared_at IS NOT NULL").fetchone()[0] == 3
    assert [a.name for a in alert_store.read_open(conn)] == ["ledger_lag"]


@pytest.mark.both_loops  # uvloop: the loop every actor runs on in production
def test_alert_changes_ride_the_writers_connection_and_wait_out_a_locked_database(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # One connection to the file: a second one (alerts written on their own, as before) recreated a
    # deleted file at the path, which the writer then took for a replacement and lost its decisions.
    monkeypatch.setattr(store, "BUSY_TIMEOUT", 0.05)  # the lock below is found at once
    db = tmp_path / "ledger.sqlite3"
    clock = FakeClock()
    war = AlertChange("price_war", "B1", "s", True, 1.0, 1.0, "fell")

    async def body(ledger: Ledger, peer: Peer, ctx: zmq.asyncio.Context, ep: str) -> None:
        await async_wait_for(lambda: ledger.counters["db_open"] == 1)
        lock = sqlite3.connect(db, isolation_level=None)
        lock.execute("BEGIN IMMEDIATE")
        ledger._writer.submit_alerts([war])
        # The lock is met by the alert write, or first by a retention step: either way the writer
        # waits for its retry (the fake clock) and the change waits in the queue.
        await async_wait_for(lambda: ledger.counters["db_errors_locked"] >= 1)
        lock.execute("ROLLBACK")
        lock.close()
        assert ledger.counters["alerts_written"] == 0 and len(ledger._writer.alerts) == 1  # kept for the retry
        clock.now += RETRY
        assert (await peer.batch(1, [decision(1)])).stored == 1  # wakes the writer
        await async_wait_for(lambda: ledger.counters["alerts_written"] == 1)
        assert [(a.name, a.book) for a in await ledger._writer.open_alerts(within=2) or []] == [("price_war", "B1")]

    serve(tmp_path, body, clock=clock)
    assert open_alerts(db) == [("price_war", "B1", "s")]


@pytest.mark.both_loops  # uvloop: the loop every actor runs on in production
def test_the_ledger_raises_and_clears_a_staged_price_war_and_a_restart_remembers_it(tmp_path: Path) -> None:
    db = tmp_path / "ledger.sqlite3"
    # The staged decisions are a day old (tests.actors.ledger.helpers): the Ledger's own lag left out.
    thresholds = Thresholds(price_war_ticks=3, guardrail_share_pct=0, ledger_lag_seconds=0)
    config = tmp_path / "repricer.toml"
    config.write_text("[[books]]\nids = ['B001']\n[alerts]\nprice_war_ticks = 3\nguardrail_share_pct = 0\n"
                      "ledger_lag_seconds = 0\n")
    assert load_thresholds(str(config)) == thresholds

    async def war(ledger: Ledger, peer: Peer, ctx: zmq.asyncio.Context, ep: str) -> None:
        for tick in range(1, 4):  # two falls: not yet
            assert (await peer.batch(tick, [falling(tick, drop=10)])).stored == 1
        assert ledger.counters["alerts_active_price_war"] == 0
        await peer.batch(4, [falling(4, drop=10)])  # the third fall in a row
        assert ledger.counters["alerts_active_price_war"] == 1
        await async_wait_for(lambda: open_alerts(db) == [("price_war", "B001", "default")])

    serve(tmp_path, war, config=str(config))

    async def restarted(ledger: Ledger, peer: Peer, ctx: zmq.asyncio.Context, ep: str) -> None:
        await async_wait_for(lambda: ledger.counters["alerts_active_price_war"] == 1, 15)  # read back at start
        await peer.batch(5, [falling(5, drop=10)])  # a baseline for the restarted watch: still at war
        await peer.batch(6, [falling(6, drop=0)])  # the competitor holds: the war ends
        assert ledger.counters["alerts_active_price_war"] == 0 and ledger.counters["alerts_cleared"] == 1
        await async_wait_for(lambda: open_alerts(db) == [])

    serve(tmp_path, restarted, config=str(config))
    (war_row,) = rows(db, "alerts", "id")
    assert war_row["since"] == T0 + 2 and war_row["cleared_at"] is not None  # the first of the three falls
    assert "fell together on 3 decisions" in war_row["detail"]


@pytest.mark.both_loops  # uvloop: the loop every actor runs on in production
def test_a_sighup_reload_takes_new_thresholds_and_a_bad_file_keeps_the_running_ones(tmp_path: Path) -> None:
    config = tmp_path / "repricer.toml"
    config.write_text("[alerts]\nprice_war_ticks = 3\nledger_lag_seconds = 0\n")

    async def body(ledger: Ledger, peer: Peer, ctx: zmq.asyncio.Context, ep: str) -> None:
        config.write_text("[alerts]\nprice_war_ticks = 0\nledger_lag_seconds = 0\n")
        await ledger._alerting.reload()
        assert ledger._alerting.watch.thresholds.price_war_ticks == 0
        config.write_text("[alerts]\nprice_war_ticks = -4\n")
        await ledger._alerting.reload()
        assert ledger._alerting.watch.thresholds.price_war_ticks == 0
        assert ledger.counters["alerts_reloads"] == 1 and ledger.counters["alerts_reload_errors"] == 1
        for tick in range(1, 8):  # a war the reloaded thresholds turned off
            await peer.batch(tick, [falling(tick, drop=10)])
        assert ledger.counters["alerts_raised"] == 0

    serve(tmp_path, body, config=str(config))


def test_a_bad_alerts_table_is_refused_naming_the_file_and_key(tmp_path: Path) -> None:
    config = tmp_path / "r.toml"
    config.write_text("[alerts]\nstale_competitor_seconds = 'soon'\n")
    with pytest.raises(ValueError, match=r"r.toml: alerts.stale_competitor_seconds: expected seconds"):
        load_thresholds(str(config))
    with pytest.raises(ValueError, match=r"cannot read"):
        load_thresholds(str(tmp_path / "missing.toml"))


CHANGE = AlertChange("floor_pinned", "B1", "s", True, 100.0, 160.0, "the floor has set the price for 60 s")


@pytest.mark.both_loops  # uvloop: the loop every actor runs on in production
def test_the_webhook_retries_a_bounded_number_of_times_and_never_blocks() -> None:
    answers = [500, 503, 200, 500, 500, 500]
    bodies: list[bytes] = []

    async def post(body: bytes) -> int:
        bodies.append(body)
        return answers.pop(0)

    async def main() -> None:
        hook = Webhook("http://x", pause=0.001, post=post, queue_max=2)
        task = asyncio.create_task(hook.run())
        for _ in range(3):
            hook.send(CHANGE)  # the third does not fit: dropped, at once
        assert hook.counters["webhook_dropped"] == 1
        await async_wait_for(lambda: hook.counters["webhook_sent"] + hook.counters["webhook_failed"] == 2)
        assert (hook.counters["webhook_sent"], hook.counters["webhook_failed"], hook.counters["webhook_retries"]) == \
            (1, 1, 4)
        task.cancel()

    run_async(main())
    assert len(bodies) == 6
    sent = json.loads(bodies[0])
    assert sent == {"alert": "floor_pinned", "title": "Pinned at the floor", "state": "raised", "book": "B1",
                    "strategy": "s", "since": 100.0, "at": 160.0, "detail": "the floor has set the price for 60 s",
                    "advice": sent["advice"]} and "floor" in sent["advice"]


@pytest.mark.both_loops  # uvloop: the loop every actor runs on in production
def test_the_webhook_posts_json_over_http() -> None:
    got: list[dict[str, Any]] = []

    async def main() -> None:
        async def receive(request: web.Request) -> web.Response:
            got.append(await request.json())
            return web.Response(status=204)

        app = web.Application()
        app.router.add_post("/hook", receive)
        runner = web.AppRunner(app)
        await runner.setup()
        port = free_port()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        hook = Webhook(f"http://127.0.0.1:{port}/hook", timeout=5)
        task = asyncio.create_task(hook.run())
        try:
            hook.send(CHANGE)
            await async_wait_for(lambda: hook.counters["webhook_sent"] == 1)
        finally:
            task.cancel()
            await runner.cleanup()

    run_async(main())
    assert got[0]["alert"] == "floor_pinned" and got[0]["state"] == "raised"
