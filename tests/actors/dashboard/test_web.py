"""The Dashboard's HTTP side in process (aiohttp's test client): pages, API, CSV, /metrics, and every
kind of bad request answered with a clear, counted 4xx."""

from __future__ import annotations

import csv
import io
import json
import sqlite3
import time
from collections.abc import Awaitable, Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from actors.dashboard.bounds import Bounds, BoundsSource, DefaultBounds
from actors.dashboard.live import LiveState
from actors.dashboard.metrics import DashboardMetrics
from actors.dashboard.rows import iso
from actors.dashboard.sse import LiveStream, StreamLimits
from actors.dashboard.web import DashboardWeb
from bench import fake_ledger
from tests.actors.dashboard.ledger_reads import Readers
from tests.helpers import run_async
from transport.protocol import ActorStatus, SupervisorEvent

pytestmark = pytest.mark.both_loops  # uvloop: the loop every actor runs on in production

Scenario = Callable[[TestClient[Any, Any], DashboardWeb], Awaitable[None]]


def serve(db: Path, scenario: Scenario, bounds: Bounds | BoundsSource | None = None,
          report: Path | None = None) -> DashboardWeb:
    """Run ``scenario`` against the Dashboard's web side over ``db``, read from the file or over the
    Ledger's socket (by the test's loop: tests/actors/dashboard/ledger_reads.py)."""
    state = LiveState(600, 5, time.time)
    readers = Readers(db)
    ledger = readers.reader
    stream = LiveStream(state.snapshot, lambda: state.version, StreamLimits(max_clients=2, interval=0.01))
    own: dict[str, int] = {}
    metrics = DashboardMetrics(state, lambda: own)
    source = DefaultBounds(bounds) if isinstance(bounds, Bounds) else bounds or DefaultBounds()
    web = DashboardWeb(state, ledger, stream, metrics, source, report)

    async def run() -> None:
        async with readers.serving(), TestClient(TestServer(web.make_app())) as client:
            await scenario(client, web)
        stream.close()

    try:
        run_async(run(), timeout=30)
    finally:
        readers.close()
    return web


def test_pages_answer_and_carry_a_strict_content_security_policy(ledger_db: Path) -> None:
    async def scenario(client: TestClient[Any, Any], web: DashboardWeb) -> None:
        for path in ("/", "/books", "/books?sort=hits&dir=desc&q=b", "/book?id=B1", "/book?id=B1&strategy=fast",
                     "/static/uPlot.iife.min.js", "/static/uPlot.min.css", "/static/overview.js"):
            response = await client.get(path)
            assert response.status == 200, path
            assert "script-src 'self'" in response.headers["Content-Security-Policy"]
        page = await (await client.get("/books?sort=price&dir=desc")).text()
        assert page.count('<a href="/book?id=') == 5 and "1 to 5 of 5 (book, strategy) pairs" in page

    serve(ledger_db, scenario)


def test_the_backtest_report_is_linked_and_served_in_a_sandbox(ledger_db: Path, tmp_path: Path) -> None:
    report = tmp_path / "report.html"

    async def scenario(client: TestClient[Any, Any], web: DashboardWeb) -> None:
        missing = await client.get("/backtest")
        assert missing.status == 404 and "python -m actors.algorithm.backtest" in await missing.text()
        assert 'href="/backtest">The last backtest report' not in await (await client.get("/")).text()
        report.write_text("<!doctype html><script>document.title = 'inline'</script>", encoding="utf-8")
        page = await (await client.get("/")).text()
        assert 'href="/backtest">The last backtest report</a> (written 20' in page
        served = await client.get("/backtest")
        assert served.status == 200 and await served.text() == report.read_text(encoding="utf-8")
        policy = served.headers["Content-Security-Policy"]
        assert policy.startswith("sandbox allow-scripts;") and "script-src 'unsafe-inline'" in policy
        assert served.headers["Content-Type"].startswith("text/html")
        other = await client.get("/books")  # every other page keeps the strict policy
        assert "script-src 'self'" in other.headers["Content-Security-Policy"]

    serve(ledger_db, scenario, report=report)


def test_the_book_page_has_every_decision_field_and_the_bounds(ledger_db: Path) -> None:
    with sqlite3.connect(ledger_db) as conn:
        newest = conn.execute("SELECT tick, price, rule_price, request_id FROM decisions WHERE book = 'B3' "
                              "ORDER BY ts DESC LIMIT 1").fetchone()

    async def scenario(client: TestClient[Any, Any], web: DashboardWeb) -> None:
        page = await (await client.get("/book?id=B3")).text()
        assert ">floor / ceiling now</dt><dd>30 / \u2013</dd>" in page  # the config's, named as such
        first_row = page.split('<table id="decisions">')[1].split("<tr>")[2]
        for value in (f"<td>{newest[0]}</td>", newest[1], newest[2], str(newest[3])):
            assert str(value) in first_row
        api = await (await client.get("/api/book?id=B3&limit=3")).json()
        assert [d["tick"] for d in api["decisions"]] == [11, 10, 9]
        assert api["bounds"] == {"floor": "30", "ceiling": None}
        assert set(api["decisions"][0]) == {"ts", "tick", "book", "strategy", "prices", "avg_comp_price",
                                            "request_id", "sold", "price", "rule_price", "guardrail", "run",
                                            "floor", "ceiling", "factor", "previous_price"}

    serve(ledger_db, scenario, Bounds(Decimal("30"), None))


def test_the_series_holds_every_decision_of_the_pair_oldest_first(ledger_db: Path) -> None:
    with sqlite3.connect(ledger_db) as conn:
        rows = conn.execute("SELECT ts, avg_comp_price, price, sold FROM decisions WHERE book = 'B2' AND "
                            "strategy = 'fast' ORDER BY ts").fetchall()

    async def scenario(client: TestClient[Any, Any], web: DashboardWeb) -> None:
        series = await (await client.get("/api/series?id=B2&strategy=fast")).json()
        assert list(zip(series["ts"], series["avg_comp_price"], series["price"], series["sold"], strict=True)) == [
            (ts, avg, price, bool(sold)) for ts, avg, price, sold in rows]

    serve(ledger_db, scenario)


def test_csv_download_streams_every_decision_newest_first(ledger_db: Path) -> None:
    async def scenario(client: TestClient[Any, Any], web: DashboardWeb) -> None:
        response = await client.get("/book.csv?id=B1&strategy=default")
        assert response.status == 200 and response.headers["Content-Type"].startswith("text/csv")
        assert 'filename="decisions-B1-default.csv"' in response.headers["Content-Disposition"]
        table = list(csv.DictReader(io.StringIO(await response.text())))
        assert [int(r["tick"]) for r in table] == list(range(11, -1, -1))
        assert table[0]["book"] == "B1" and len(table[0]["prices"].split()) == 5
        both = list(csv.DictReader(io.StringIO(await (await client.get("/book.csv?id=B1")).text())))
        assert len(both) == 24 and {r["strategy"] for r in both} == {"default", "fast"}

    serve(ledger_db, scenario)


def test_two_runs_with_the_same_ticks_are_all_shown_newest_first_and_paged_by_their_place(tmp_path: Path) -> None:
    path = tmp_path / "runs.sqlite3"
    start = time.time() - 3600
    conn = fake_ledger.create(path)
    for run_start in (start, start + 600):  # each run numbers its ticks 0..4
        fake_ledger.write(conn, fake_ledger.synthetic(["B1"], ["default"], 5, start=run_start))
    conn.close()
    newest_first = [(run_start, tick) for run_start in (start + 600, start) for tick in range(4, -1, -1)]

    async def scenario(client: TestClient[Any, Any], web: DashboardWeb) -> None:
        table = list(csv.DictReader(io.StringIO(await (await client.get("/book.csv?id=B1")).text())))
        # the run as the Ledger's own export writes it (ISO time)
        assert [(r["run"], int(r["tick"])) for r in table] == [(iso(run), tick) for run, tick in newest_first]
        seen: list[tuple[float, int]] = []
        older: str | None = ""
        while older is not None:
            api = await (await client.get("/api/book", params={"id": "B1", "limit": "3", "before": older})).json()
            seen += [(d["run"], d["tick"]) for d in api["decisions"]]
            older = api["older"]
        assert seen == newest_first
        page = await (await client.get("/book?id=B1&limit=3")).text()
        link = page.split('older »')[0].rsplit('href="', 1)[1].split('"')[0].replace("&amp;", "&")
        assert "before=" in link and "<td>1</td>" in await (await client.get(link)).text()

    serve(path, scenario)


def test_a_csv_field_that_a_spreadsheet_would_run_is_defused(tmp_path: Path) -> None:
    path = tmp_path / "l.sqlite3"
    conn = fake_ledger.create(path)
    fake_ledger.write(conn, fake_ledger.synthetic(["=HYPERLINK(1)"], ["default"], 1))
    conn.close()

    async def scenario(client: TestClient[Any, Any], web: DashboardWeb) -> None:
        text = await (await client.get("/book.csv", params={"id": "=HYPERLINK(1)"})).text()
        assert next(csv.DictReader(io.StringIO(text)))["book"] == "'=HYPERLINK(1)"

    serve(path, scenario)


@pytest.mark.parametrize(("path", "status", "reason", "needle"), [
    ("/book?id=NOPE", 404, "unknown_book", "no book 'NOPE'"),
    ("/book?id=B1&strategy=slow", 404, "unknown_strategy", "has no strategy 'slow'"),
    ("/book", 400, "missing_book", "which book"),
    ("/books?page=abc", 400, "bad_page", "page must be a whole number"),
    ("/books?page=999999", 404, "page_past_end", "past the last page (1)"),
    ("/books?page=99999999999999999999", 400, "bad_page", "page must be"),
    ("/books?sort=nope", 400, "bad_sort", "sort must be one of"),
    ("/book?id=B1&before=-3", 400, "bad_before", "before must be"),
    ("/book?id=B1&before=17", 400, "bad_before", "ts,run,tick"),
    ("/no/such/page", 404, "unknown_path", "no page at"),
])
def test_bad_requests_get_a_clear_html_page_and_are_counted(ledger_db: Path, path: str, status: int, reason: str,
                                                            needle: str) -> None:
    async def scenario(client: TestClient[Any, Any], web: DashboardWeb) -> None:
        response = await client.get(path)
        assert response.status == status
        assert response.headers["Content-Type"].startswith("text/html")
        assert needle.replace("'", "&#x27;") in await response.text()
        api = await client.get("/api" + path if path.startswith(("/book", "/books")) else path)
        if path.startswith(("/book", "/books")):
            assert api.status == status and needle in (await api.json())["error"]
        metrics = await (await client.get("/metrics")).text()
        # counted twice: once as a page, once through the API (or the same unknown path again)
        assert f'repricer_dashboard_refused_requests_total{{reason="{reason}"}} 2.0' in metrics
        assert web.counters["refused"] == 2

    serve(ledger_db, scenario)


def test_wrong_method_and_peer_text_are_handled(ledger_db: Path, caplog: pytest.LogCaptureFixture) -> None:
    async def scenario(client: TestClient[Any, Any], web: DashboardWeb) -> None:
        response = await client.post("/api/books", data=b"x")
        assert response.status == 405 and "not allowed" in (await response.json())["error"]
        evil = "<script>alert(1)</script>\n2026 forged log line"
        page = await (await client.get("/book", params={"id": "B<x>", "strategy": evil[:60]})).text()
        assert "<script>alert" not in page and "<x>" not in page
        await client.get("/books", params={"q": "ok", "sort": evil})

    with caplog.at_level("WARNING", logger="dashboard"):
        serve(ledger_db, scenario)
    assert caplog.records and all("\n" not in r.getMessage() for r in caplog.records)


def test_without_a_database_history_pages_say_so_and_live_state_still_works(tmp_path: Path) -> None:
    async def scenario(client: TestClient[Any, Any], web: DashboardWeb) -> None:
        overview = await client.get("/")
        assert overview.status == 200 and "no Ledger database at" in await overview.text()
        books = await client.get("/books")
        assert books.status == 503 and "no Ledger database at" in await books.text()
        api = await client.get("/api/books")
        assert api.status == 503 and "--no-ledger" in (await api.json())["error"]
        web.state.on_event(SupervisorEvent(time.time(), "started", "scheduler", 42))
        live = await (await client.get("/api/overview")).json()
        assert live["actors"][0]["name"] == "scheduler" and live["actors"][0]["state"] == "starting"

    serve(tmp_path / "missing.sqlite3", scenario)


def test_metrics_answer_in_the_text_format_and_count_their_own_requests(ledger_db: Path) -> None:
    async def scenario(client: TestClient[Any, Any], web: DashboardWeb) -> None:
        now = time.time()
        web.state.on_status(ActorStatus(now, "algorithm-0", 7, 40_000, 30_000, 2, 1, now - 5, now,
                                        {"decisions": 120, "skipped": 3}))
        response = await client.get("/metrics")
        assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        text = await response.text()
        assert 'repricer_decisions_total{actor="algorithm-0"} 120.0' in text
        assert 'repricer_actor_rss_bytes{actor="algorithm-0"} 4.096e+07' in text
        again = await (await client.get("/metrics")).text()
        assert 'repricer_dashboard_http_requests_total{route="/metrics",status="200"} 1.0' in again
        snapshot = json.loads(await (await client.get("/api/overview")).text())
        assert snapshot["actors"][0]["counters"]["decisions"] == 120

    serve(ledger_db, scenario)


def test_csv_downloads_at_once_are_bounded(ledger_db: Path) -> None:
    async def scenario(client: TestClient[Any, Any], web: DashboardWeb) -> None:
        web.csv._running = 2  # two downloads streaming
        response = await client.get("/book.csv?id=B1")
        assert response.status == 503 and "2 CSV downloads already streaming" in (await response.json())["error"]
        web.csv._running = 0
        assert (await client.get("/book.csv?id=B1")).status == 200
        assert web.csv.counters == {"csv_downloads": 1, "csv_aborted": 0}

    serve(ledger_db, scenario)
