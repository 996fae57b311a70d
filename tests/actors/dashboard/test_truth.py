"""The Dashboard tells the truth (in process, over databases written in the Ledger's schema): the current
catalogue by default and earlier runs behind a filter, marked; trend and % against the competitor;
sold and guardrail apart; alert badges; a book opens its first configured strategy; charts break
where nothing was decided; the favicon is served, not refused."""

from __future__ import annotations

import re
import sqlite3
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from actors.dashboard import books_page, business, series
from actors.dashboard.bounds import load_bounds
from actors.dashboard.params import BooksQuery
from actors.dashboard.rows import CSV_HEADER, DecisionRow, change_pct, csv_lines, decision, gap_pct
from actors.dashboard.web import DashboardWeb
from actors.ledger import alert_store
from actors.ledger.watch import AlertChange
from bench import fake_ledger
from bench.fake_ledger import Row
from tests.actors.dashboard.test_web import serve

pytestmark = pytest.mark.both_loops  # uvloop: the loop every actor runs on in production

NOW = time.time()
EARLIER = NOW - 7200.0  # a run two hours ago
CURRENT = NOW - 600.0


def row(book: str, strategy: str, tick: int, price: str, avg: str, *, run: float = CURRENT, sold: bool = False,
        guardrail: tuple[str, ...] = (), ts: float | None = None) -> Row:
    return Row(book, strategy, tick, run + tick * 5.0 if ts is None else ts, (Decimal(avg),), Decimal(avg),
               1000 + tick, sold, Decimal(price), None, guardrail, run)


@pytest.fixture
def two_runs(tmp_path: Path) -> Path:
    """B001 and B002 decided by an earlier run (B002 by strategies cautious and default), then the
    current run prices B002 and B003: B001 is only in the earlier run."""
    path = tmp_path / "ledger.sqlite3"
    conn = fake_ledger.create(path)
    try:
        fake_ledger.write(conn, [row(b, "default", t, "10.00", "10", run=EARLIER) for b in ("B001", "B002")
                                 for t in range(3)])
        fake_ledger.write(conn, [row("B002", "cautious", t, "10.00", "10", run=EARLIER) for t in range(3)])
        prices = ["10.00", "10.50", "11.00"]
        fake_ledger.write(conn, [row("B002", "default", t, prices[t], "10", sold=t == 2, guardrail=("step",) if t == 2
                                     else ()) for t in range(3)])
        fake_ledger.write(conn, [row("B003", "default", t, "9.00", "10") for t in range(3)])
        alert_store.write(conn, [AlertChange("price_war", "B003", "default", True, NOW - 60, NOW - 30, "fell"),
                                 AlertChange("guardrails_most", "", "default", True, NOW - 60, NOW - 30, "most")])
    finally:
        conn.close()
    return path


def cells(html: str, book: str, strategy: str) -> list[str]:
    """The text of each cell of a row of the books table (tags stripped)."""
    for tr in re.findall(r"<tr[^>]*>(.*?)</tr>", html, re.S):
        texts = [re.sub(r"<[^>]+>", " ", cell).split() for cell in re.findall(r"<td[^>]*>(.*?)</td>", tr, re.S)]
        if texts and texts[0][:1] == [book] and texts[1][:1] == [strategy]:
            return [" ".join(t) for t in texts]
    raise AssertionError(f"no row {book}/{strategy}")


def test_the_books_list_shows_the_current_catalogue_and_earlier_runs_behind_a_filter(two_runs: Path) -> None:
    async def scenario(client: TestClient[Any, Any], web: DashboardWeb) -> None:
        current = await (await client.get("/api/books")).json()
        assert [(r["book"], r["strategy"]) for r in current["rows"]] == [("B002", "default"), ("B003", "default")]
        assert current["scopes"] == {"current": 2, "earlier": 2, "all": 4} and current["scope"] == "current"
        earlier = await (await client.get("/api/books?scope=earlier")).json()
        assert [(r["book"], r["strategy"], r["current"]) for r in earlier["rows"]] == [
            ("B001", "default", False), ("B002", "cautious", False)]
        page = await (await client.get("/books?scope=all")).text()
        assert "current catalogue (2)" in page and "earlier runs only (2)" in page
        assert cells(page, "B001", "default")[0] == "B001 earlier run"  # marked
        assert cells(page, "B002", "default")[0] == "B002"
        bad = await client.get("/books?scope=yesterday")
        assert bad.status == 400 and "scope must be one of current, earlier, all" in await bad.text()

    serve(two_runs, scenario)


def test_trend_gap_sold_and_guardrail_columns_and_alert_badges(two_runs: Path) -> None:
    async def scenario(client: TestClient[Any, Any], web: DashboardWeb) -> None:
        page = await (await client.get("/books")).text()
        b2 = cells(page, "B002", "default")
        # book, strategy, our price, trend, vs competitor, competitor average, sold, guardrail, hits, ...
        assert b2[2:8] == ["11.00", "+10.0%", "+10.0%", "10.00", "sold", "step"]  # the average to the cent
        assert '<span title="10 exactly">10.00</span>' in page  # and exactly, as its tooltip
        b3 = cells(page, "B003", "default")
        assert b3[0] == "B003 price war" and b3[1] == "default guardrails"  # the pair's and its strategy's
        assert b3[3:8] == ["0.0%", "\u221210.0%", "10.00", "not sold", "\u2013"]
        assert page.count('<svg class="spark"') == 2
        rows = (await (await client.get("/api/books")).json())["rows"]
        # The newest prices whatever their run: B002's earlier run priced it at 10.00 three times.
        assert rows[0]["trend"] == ["10.00"] * 4 + ["10.50", "11.00"] and rows[0]["gap_pct"] == "10.0"
        assert [a["alert"] for a in rows[1]["alerts"]] == ["price_war"]

    serve(two_runs, scenario)


def test_a_pair_the_config_pauses_is_shown_as_paused(two_runs: Path, tmp_path: Path) -> None:
    config = tmp_path / "repricer.toml"
    config.write_text('[strategies.default]\ndelay = 0\n[[books]]\nids = ["B002", "B003"]\n[pause]\nbooks = ["B003"]\n',
                      encoding="utf-8")

    async def scenario(client: TestClient[Any, Any], web: DashboardWeb) -> None:
        page = await (await client.get("/books")).text()
        assert cells(page, "B003", "default")[0] == "B003 paused price war"
        assert cells(page, "B002", "default")[0] == "B002"
        assert [r["paused"] for r in (await (await client.get("/api/books")).json())["rows"]] == [False, True]
        assert re.search(r"<h1>Book .*>paused</span>", await (await client.get("/book?id=B003")).text())
        assert "paused</span>" not in await (await client.get("/book?id=B002")).text()
        assert (await (await client.get("/api/book?id=B003")).json())["paused"] is True

    serve(two_runs, scenario, load_bounds(str(config)))


def test_a_book_without_a_strategy_opens_its_first_configured_one(two_runs: Path, tmp_path: Path) -> None:
    async def scenario(client: TestClient[Any, Any], web: DashboardWeb) -> None:
        # B002: "cautious" sorts first, but only an earlier run decided it; default is current.
        book = await (await client.get("/api/book?id=B002")).json()
        assert book["strategy"] == "default"
        assert [p["strategy"] for p in book["pairs"]] == ["default", "cautious"]
        page = await (await client.get("/book?id=B003")).text()
        assert 'id="book-alerts"' in page and "Price war" in page and "Guardrails set most prices" in page

    serve(two_runs, scenario)

    # With the config: its order decides among the pairs the newest run decided (B002 and B003 are
    # priced by default alone today, so add a current "cautious" pair for B003).
    conn = sqlite3.connect(two_runs)
    try:
        fake_ledger.write(conn, [row("B003", "cautious", t, "9.50", "10") for t in range(3)])
    finally:
        conn.close()
    config = tmp_path / "repricer.toml"
    config.write_text('[strategies.default]\ndelay = 0\n[strategies.cautious]\ndelay = 0\n[[books]]\n'
                      'ids = ["B002", "B003"]\nstrategies = ["cautious", "default"]\n', encoding="utf-8")

    async def configured(client: TestClient[Any, Any], web: DashboardWeb) -> None:
        book = await (await client.get("/api/book?id=B003")).json()
        assert book["strategy"] == "cautious" and [p["strategy"] for p in book["pairs"]] == ["cautious", "default"]
        # B002's cautious pair: an earlier run's only, so the current default still opens first.
        assert (await (await client.get("/api/book?id=B002")).json())["strategy"] == "default"

    serve(two_runs, configured, load_bounds(str(config)))


def test_the_favicon_is_served_and_nothing_is_refused(two_runs: Path) -> None:
    async def scenario(client: TestClient[Any, Any], web: DashboardWeb) -> None:
        response = await client.get("/favicon.ico")
        assert response.status == 200 and response.headers["Content-Type"] == "image/x-icon"
        assert (await response.read())[:4] == b"\x00\x00\x01\x00"  # an icon file
        assert web.counters["refused"] == 0
        assert '<link rel="icon" href="/favicon.ico">' in await (await client.get("/")).text()

    serve(two_runs, scenario)


def test_a_chart_breaks_where_nothing_was_decided(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite3"
    conn = fake_ledger.create(path)
    try:  # ten decisions 5 s apart, a 10-minute stop, five more
        fake_ledger.write(conn, [row("B1", "default", t, "10.00", "10") for t in range(10)])
        fake_ledger.write(conn, [row("B1", "default", t, "10.00", "10", ts=CURRENT + 45 + 600 + t * 5)
                                 for t in range(10, 15)])
    finally:
        conn.close()

    async def scenario(client: TestClient[Any, Any], web: DashboardWeb) -> None:
        data = await (await client.get("/api/series?id=B1")).json()
        assert data["gaps"] == 1 and data["decisions"] == 15 and len(data["ts"]) == 16
        hole = data["price"].index(None)
        assert hole == 10 and data["ts"][9] < data["ts"][10] < data["ts"][11]
        assert data["avg_comp_price"][hole] is None and data["sold"][hole] is None

    serve(path, scenario)


def test_a_chart_has_the_floor_and_ceiling_each_decision_had_and_an_older_file_none(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite3"
    conn = fake_ledger.create(path)
    try:  # a reload moved the floor from 9.00 to 9.50 at tick 2; no ceiling
        fake_ledger.write(conn, [row("B1", "default", t, "10.00", "10") for t in range(4)])
        conn.execute("UPDATE decisions SET floor = CASE WHEN tick < 2 THEN '9.00' ELSE '9.50' END")
        conn.commit()
    finally:
        conn.close()

    async def kept(client: TestClient[Any, Any], web: DashboardWeb) -> None:
        data = await (await client.get("/api/series?id=B1")).json()
        assert data["floor"] == ["9.00", "9.00", "9.50", "9.50"] and data["ceiling"] == [None] * 4
        newest = (await (await client.get("/api/book?id=B1&limit=1")).json())["decisions"][0]
        assert (newest["floor"], newest["ceiling"]) == ("9.50", None)
        page = await (await client.get("/book?id=B1")).text()
        first_row = page.split('<table id="decisions">')[1].split("<tr>")[2]
        assert first_row.endswith("<td>9.50</td><td></td></tr>\n")  # the table's floor and ceiling columns

    serve(path, kept)
    conn = sqlite3.connect(path)
    try:  # a file of a Ledger before schema version 6: no such columns
        conn.execute("ALTER TABLE decisions DROP COLUMN floor")
        conn.execute("ALTER TABLE decisions DROP COLUMN ceiling")
    finally:
        conn.close()

    async def older(client: TestClient[Any, Any], web: DashboardWeb) -> None:
        data = await (await client.get("/api/series?id=B1")).json()
        assert data["decisions"] == 4 and data["floor"] == [None] * 4

    serve(path, older)


def test_gap_after_is_several_times_the_usual_spacing() -> None:
    assert series.gap_after([0, 5, 10, 15]) == 15.0
    assert series.gap_after([0, 0.1, 0.2, 0.3]) == series.GAP_MIN
    assert series.gap_after([0, 5]) == float("inf")  # too few to know the usual spacing
    decisions = [DecisionRow("B", "s", t, ts, ("1",), "1", t, False, "1.00", None, (), 0.0)
                 for t, ts in enumerate([0, 5, 10, 15, 100, 105])]
    built = series.build(decisions)
    assert built["gaps"] == 1 and built["ts"][4] == 57.5 and built["price"][4] is None


def test_a_decision_carries_what_explains_its_price_to_the_csv_and_reads_an_older_ledgers_row() -> None:
    stored = ["B1", "default", 7, 1_796_400_000.5, '["10.00","11.00"]', "10.50", 42, 1, "11.55", "11.55", '["step"]',
              1_796_399_000.0]
    row = decision([*stored, "9.00", "40.00", "1.1", "11.00"])
    assert (row.floor, row.ceiling, row.factor, row.previous_price) == ("9.00", "40.00", "1.1", "11.00")
    line = csv_lines([row]).decode().strip().split(",")
    assert dict(zip(CSV_HEADER, line, strict=True)) == {
        "ts": "2026-12-04T16:00:00.500Z", "tick": "7", "book": "B1", "strategy": "default", "prices": "10.00 11.00",
        "avg_comp_price": "10.50", "request_id": "42", "sold": "true", "price": "11.55", "rule_price": "11.55",
        "guardrail": "step", "run": "2026-12-04T15:43:20.000Z", "factor": "1.1", "previous_price": "11.00",
        "floor": "9.00", "ceiling": "40.00"}
    older = decision([*stored, "9.00", None])  # a Ledger before the factor and previous price were read
    assert (older.floor, older.ceiling, older.factor, older.previous_price) == ("9.00", None, None, None)


def test_percentages_are_exact_to_one_decimal() -> None:
    assert gap_pct("11.00", "10") == Decimal("10.0")
    assert gap_pct("9.99", "10.00") == Decimal("-0.1")
    assert gap_pct("1.00", "0") is None and gap_pct("x", "1") is None
    assert change_pct(["10.00", "12.00", "15.00"]) == Decimal("50.0") and change_pct(["10.00"]) is None


def test_the_business_reading_counts_the_current_catalogue_bounds_and_alerts(two_runs: Path) -> None:
    conn = sqlite3.connect(f"file:{two_runs}?mode=ro", uri=True, isolation_level=None)
    try:
        reading = business.read(conn, NOW)
    finally:
        conn.close()
    assert (reading.books, reading.pairs, reading.earlier, reading.current_run) == (2, 2, 2, CURRENT)
    assert {s.strategy: (s.pairs, s.current, s.decisions) for s in reading.strategies} == {
        "cautious": (1, 0, 3), "default": (3, 2, 12)}
    assert reading.alerts_open == 2 and [a.alert for a in reading.alerts] == ["guardrails_most", "price_war"]


def test_the_alerts_mark_changes_with_every_raise_and_clear_so_the_dashboard_reads_them_at_once(
        two_runs: Path) -> None:
    conn = sqlite3.connect(two_runs, isolation_level=None)
    try:
        reading = business.read(conn, NOW)
        assert reading.alerts_mark is not None and business.alerts_mark(conn) == reading.alerts_mark
        alert_store.write(conn, [AlertChange("price_war", "B002", "default", True, NOW, NOW, "fell")])
        raised = business.alerts_mark(conn)
        assert raised != reading.alerts_mark
        alert_store.write(conn, [AlertChange("price_war", "B002", "default", False, NOW, NOW + 1, "held")])
        assert business.alerts_mark(conn) not in (raised, reading.alerts_mark)
        conn.execute("DROP TABLE alerts")  # a Ledger older than the alerts
        assert business.alerts_mark(conn) is None
    finally:
        conn.close()


def test_a_page_takes_the_runs_from_the_newest_reading_and_needs_no_filter_when_every_pair_is_current(
        two_runs: Path) -> None:
    conn = sqlite3.connect(f"file:{two_runs}?mode=ro", uri=True, isolation_level=None)
    try:
        measured = books_page.read_runs(conn)
        assert measured == books_page.Runs(CURRENT, 2, 2)
        page = books_page.read(conn, BooksQuery(), runs=measured)
        assert [r.key for r in page.rows] == [("B002", "default"), ("B003", "default")] and page.total == 2
        # A reading that says every pair is current: no filter on run, every pair listed.
        page = books_page.read(conn, BooksQuery(), runs=books_page.Runs(CURRENT, 4, 0))
        assert page.total == 4 and page.scopes == {"current": 4, "earlier": 0, "all": 4}
    finally:
        conn.close()
