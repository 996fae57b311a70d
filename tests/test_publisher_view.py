"""What a publisher sees of the real system, in one launcher run (every actor, the Ledger, the Dashboard,
a webhook) and one headless Chromium session, then a short run that resumes: two runs serve what took
five (the browser, the staged alerts, the live metrics and the logs' two).

The competitor's CSV is written as the system runs (follow mode), over a Ledger database an earlier
run already wrote to, and stages:

1. alerts: a price war (W's competitor and our undercutting price fall together), a pinned floor (C,
   whose floor sits far above its prices) and stale competitor data (S gets no new row) each raise
   their alert within the configured time, in the Ledger's database and at the webhook;
2. /metrics: promtool has nothing to say, every counter any actor reports is described, the metrics
   the shipped alerting rules use are there, decisions are counted once;
3. the Dashboard in Chromium: the overview leads with the business and its numbers move without a
   reload; the three alerts are on its panel, C's on its page; the process counters hide behind a
   toggle, in words; the books list shows the current catalogue, the earlier run behind its filter,
   marked; a book opens its first configured strategy, its chart holds the database's decisions point
   for point, fits the prices, and its time labels never touch;
4. the conditions end: each alert clears, in the database, on the Dashboard and at the webhook;
5. a SIGHUP with a config that pauses B and raises C's floor: the Dashboard shows B paused, and C's
   chart the floor each decision had, the new one from the next decision on;
6. killing the DataManager raises the Dashboard's banner, which clears once it is back; the favicon
   was never refused; the status lines and each actor's stop line read as sentences;
7. the next run over the same Ledger says at start which prices it resumed, from when.

The browser stages need Debian's ``chromium`` and ``chromium-driver`` (``.ci/run`` installs them):
without them the rest runs and the test then skips, saying so (under CI it fails).
"""

from __future__ import annotations

import contextlib
import http.server
import itertools
import json
import os
import re
import signal
import sqlite3
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any, TypeVar

import pytest
from prometheus_client.parser import text_string_to_metric_families
from selenium import webdriver
from selenium.webdriver.support.ui import WebDriverWait

from actors.alert_rules import ALERTS
from bench import fake_ledger
from bench.browser import chromium, env_says_ci, find_browser
from bench.driver import LauncherRun
from tests.actors.dashboard.promtool import check_metrics
from tests.helpers import free_port

T = TypeVar("T")

TICK = 0.3
PINNED, STALE, WAR_TICKS = 2.0, 2.0, 3
CONFIG = f"""[strategies.default]
delay = 0
[strategies.cautious]
delay = 0
sold_factor = "1.05"
unsold_factor = "0.95"
[strategies.undercut]
delay = 0
sold_factor = "0.90"
unsold_factor = "0.90"
[[books]]
ids = ["A", "B"]
strategies = ["default", "cautious"]
[[books]]
ids = ["C", "S"]
strategies = ["default"]
[[books]]
ids = ["W"]
strategies = ["undercut"]
[guardrails.books.C]
floor = "30.00"
[alerts]
price_war_ticks = {WAR_TICKS}
floor_pinned_seconds = {PINNED}
stale_competitor_seconds = {STALE}
guardrail_share_pct = 0
ledger_lag_seconds = 0
webhook = "http://127.0.0.1:{{port}}/hook"
"""
WANTED = {("price_war", "W"), ("floor_pinned", "C"), ("stale_competitor", "S")}
FAST = ["--tick", str(TICK), "--grace", "3"]

# Read the overview in one round trip: what it shows and what its script knows.
OVERVIEW_STATE = """
const text = (id) => document.getElementById(id).textContent;
const banner = document.getElementById('banner');
return {total: text('decisions-total'), books: text('books-priced'), alerts: text('alerts-count'),
        panel: text('alerts-panel'), mark: window.__testMark || null, bannerHidden: banner.hidden,
        banners: window.__banners || [], actors: (window.dashboardState || {actors: []}).actors};
"""
WATCH_BANNER = """
window.__banners = [];
new MutationObserver(() => {
  const b = document.getElementById('banner');
  if (!b.hidden && b.textContent) window.__banners.push(b.textContent);
}).observe(document.getElementById('banner'), {childList: true, subtree: true, attributes: true});
"""
# The books table as shown, cell by cell, and last the competitor average's exact value (its tooltip).
BOOKS_TABLE = "return [...document.querySelectorAll('#books tbody tr')].map((tr) => [...tr.querySelectorAll('td')]" \
    ".map((td) => td.innerText.trim()).concat([(tr.querySelector('td:nth-child(6) span[title]') || {title: ''})" \
    ".title.split(' ')[0]]));"
# Each label of the chart's time axis, as drawn: its text, where its centre is and how wide it is.
TIME_LABELS = """
const u = window.dashboardChart, axis = u.axes[0];
u.ctx.font = axis.font[0];
const left = u.bbox.left / devicePixelRatio;  // where the plot starts in the canvas
return axis._values.map((text, i) => ({text, x: u.valToPos(axis._splits[i], 'x'), left, canvas: u.width,
                                       width: u.ctx.measureText(text).width / devicePixelRatio}));
"""


class Feed:
    """The competitor's CSV, appended to while the system runs (one row per book per half tick)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.prices = {"A": 12.0, "B": 22.0, "C": 15.0, "S": 25.0, "W": 30.0}
        # W falls (a price war); C creeps up, far below its floor; S gets no new row (stale data).
        self.moves = {"A": 0.01, "B": -0.01, "C": 0.01, "S": 0.01, "W": -0.05}
        self.writing = {"A", "B", "C", "W"}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        lines = ["timestamp,book_id,price", "2026-12-04T00:00:00Z,B,-1.00"]  # one bad row: counted by reason
        for step in range(5):
            lines += [f"2026-12-04T00:00:0{step}Z,{book},{price + step * 0.01:.2f}"
                      for book, price in self.prices.items()]
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")

    def set(self, book: str, move: float, price: float | None = None, write: bool = True) -> None:
        with self._lock:
            self.moves[book] = move
            if price is not None:
                self.prices[book] = price
            (self.writing.add if write else self.writing.discard)(book)

    def run(self) -> None:
        while not self._stop.wait(TICK / 2):
            with self._lock, self.path.open("a", encoding="utf-8") as f:
                for book in sorted(self.writing):
                    self.prices[book] = max(1.0, self.prices[book] + self.moves[book])
                    f.write(f"2026-12-04T01:00:00Z,{book},{self.prices[book]:.2f}\n")

    def stop(self) -> None:
        self._stop.set()


@pytest.fixture
def hook() -> Iterator[tuple[int, list[dict[str, Any]]]]:
    """A webhook endpoint: every JSON body POSTed to it, in order."""
    got: list[dict[str, Any]] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            got.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1], got
    finally:
        server.shutdown()
        server.server_close()


def alerts(db: Path) -> dict[tuple[str, str], list[dict[str, Any]]]:
    """Every alert of the Ledger's table, by (alert, book), oldest first."""
    if not db.exists():
        return {}
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        conn.row_factory = sqlite3.Row
        found: dict[tuple[str, str], list[dict[str, Any]]] = {}
        for r in conn.execute("SELECT * FROM alerts ORDER BY id"):
            found.setdefault((r["alert"], r["book"]), []).append(dict(r))
        return found
    except sqlite3.OperationalError:  # no table yet
        return {}
    finally:
        conn.close()


def decisions(path: Path, book: str, strategy: str) -> list[tuple[Any, ...]]:
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as conn:
        return conn.execute("SELECT ts, avg_comp_price, price, sold, tick FROM decisions WHERE book = ? AND "
                            "strategy = ? ORDER BY ts, run, tick", (book, strategy)).fetchall()


def get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=10) as reply:
        return str(reply.read().decode())


def overview(base: str) -> dict[str, Any]:
    return dict(json.loads(get(base + "/api/overview")))


def wait(browser: webdriver.Chrome, what: str, predicate: Callable[[webdriver.Chrome], T],
         timeout: float = 60.0) -> T:
    result: T = WebDriverWait(browser, timeout, poll_frequency=0.05).until(predicate, what)
    return result


def numeric(text: str) -> int | None:
    digits = text.replace(",", "").replace("\u202f", "").replace("\xa0", "")
    return int(digits) if digits.isdigit() else None


def table(browser: webdriver.Chrome) -> list[list[str]]:
    """The books table as shown, cell by cell, in one round trip."""
    rows: list[list[str]] = browser.execute_script(BOOKS_TABLE)
    return rows


def cells(rows: list[list[str]], book: str, strategy: str) -> list[str]:
    for texts in rows:
        if len(texts) > 1 and texts[0].split()[0] == book and texts[1].split()[0] == strategy:
            return texts
    raise AssertionError(f"no row {book}/{strategy}")


@pytest.mark.timeout(360)
def test_what_a_publisher_sees_alerts_metrics_and_the_dashboard_in_one_run(
        tmp_path: Path, ipc_dir: Path, hook: tuple[int, list[dict[str, Any]]]) -> None:
    browsing = find_browser() is not None or env_says_ci()  # under CI a missing browser fails
    hook_port, delivered = hook
    db = ipc_dir / "ledger.sqlite3"  # the Ledger's --db under --run-dir
    conn = fake_ledger.create(db)
    try:  # an earlier run priced a book this config no longer has
        fake_ledger.write(conn, fake_ledger.synthetic(["OLD1"], ["default"], 5, start=time.time() - 7200))
        # ... and A two hours ago: its chart opens on today's stretch, after the gap
        fake_ledger.write(conn, fake_ledger.synthetic(["A"], ["default"], 5, start=time.time() - 7200, seed=2))
    finally:
        conn.close()
    feed = Feed(tmp_path / "prices.csv")
    config = tmp_path / "repricer.toml"
    config.write_text(CONFIG.format(port=hook_port), encoding="utf-8")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    writer = threading.Thread(target=feed.run, daemon=True)
    try:
        with LauncherRun(["--data-file", str(feed.path), "--mode", "follow", "--config", str(config), *FAST,
                          "--dashboard", "--dashboard-port", str(port)], ipc_dir, status_every=1) as run:
            run.wait_decisions(3, timeout=60)
            writer.start()  # the competitor moves from now on (S excepted)
            assert any(f"dashboard: {base}/" in line for line in run.log)  # the launcher printed the URL

            # 1. The three alerts, each within its configured time.
            raised = run.wait_until(lambda: (a := alerts(db)) and set(a) >= WANTED and a, 60, "the three alerts")
            war, pinned, stale = (raised[key][0] for key in (("price_war", "W"), ("floor_pinned", "C"),
                                                             ("stale_competitor", "S")))
            # The floor and the stale prices as soon as their time had passed (at the next decision), the
            # war on its third fall in a row.
            assert PINNED <= pinned["raised_at"] - pinned["since"] < PINNED + 4 * TICK + 1, pinned
            assert STALE <= stale["raised_at"] - stale["since"] < STALE + 4 * TICK + 1, stale
            assert f"fell together on {WAR_TICKS} decisions in a row" in war["detail"], war
            assert 0 < war["raised_at"] - war["since"] < (WAR_TICKS + 2) * TICK + 1, war

            # 2. /metrics: every actor's numbers, the Ledger's business too; promtool has nothing to say.
            def complete() -> str | None:
                text = get(base + "/metrics")
                wanted = ('repricer_ledger_lag_seconds{actor="ledger"}', "repricer_decisions_total{",
                          'repricer_datamanager_rows_read_total{actor="datamanager"}',
                          'repricer_strategy_decisions_total{strategy="undercut"}',
                          'repricer_alerts_active{actor="ledger",alert="price_war"} 1',
                          'repricer_apiserver_registered_total{actor="apiserver"}', "repricer_launcher_starts_total")
                return text if all(w in text for w in wanted) else None

            text = run.wait_until(complete, 60, "every actor's numbers on /metrics")
            checked = check_metrics(text)
            assert checked.returncode == 0 and checked.stdout + checked.stderr == "", checked.stdout + checked.stderr
            families = {f.name: f for f in text_string_to_metric_families(text)}
            undescribed = sorted(f"{s.labels['actor']}: {s.labels['counter']}" for f in families.values()
                                 if f.type == "unknown" for s in f.samples)
            assert undescribed == [], f"counters missing from actors/counter_catalog.py: {undescribed}"
            assert {s.labels["alert"] for s in families["repricer_alerts_active"].samples} == set(ALERTS)
            assert "repricer_actor_up" in families and "repricer_ledger_received_decisions" in families
            workers = {s.labels["actor"] for s in families["repricer_decisions"].samples}
            assert workers == {"algorithm"}  # decisions counted once: the Ledger's count is its own family
            assert {s.labels["strategy"] for s in families["repricer_strategy_decisions"].samples} == {
                "default", "cautious", "undercut"}
            assert "repricer_datamanager_bad_rows_by_reason" in families

            # The periodic status is one INFO line a person reads, the alerts in it (the counters at DEBUG).
            status = run.wait_until(lambda: next((line for line in reversed(run.log) if " INFO status: 6 of 6 actors "
                                                  "up" in line and "alerts: 3 (" in line), None), 60, "a status line")
            assert re.search(r"status: 6 of 6 actors up, [0-9.]+ decisions/s, [0-9]+ restarts?, Ledger lag [0-9.]+ s, "
                             r"spool [0-9]+, alerts: 3 \((pinned at the floor 1|price war 1|competitor data stale 1)(, "
                             r"(pinned at the floor 1|price war 1|competitor data stale 1)){2}\)$", status), status
            assert not [line for line in run.log if re.search(r" INFO status \S+ pid=", line)]  # per actor: DEBUG only

            shown = run.wait_until(lambda: (o := overview(base))["business"] and o["business"]["alerts_open"] >= 3
                                   and o, 60, "the alerts on the Dashboard")
            assert {(a["alert"], a["book"]) for a in shown["business"]["alerts"]} >= WANTED

            # 3. The Dashboard in a browser, the alerts still raised.
            with contextlib.ExitStack() as stack:
                browser = stack.enter_context(chromium()) if browsing else None
                if browser is not None:
                    raised_in_browser(browser, base, db, run)

                # 4. The conditions end: W's competitor climbs, C's rises over its floor, S gets new rows.
                feed.set("W", +0.5)
                feed.set("C", 0.01, price=40.0)
                feed.set("S", 0.01, write=True)
                ended = run.wait_until(lambda: all((a := alerts(db))[key][-1]["cleared_at"] for key in WANTED) and a,
                                       60, "the three alerts cleared")
                assert re.fullmatch(r"the price \(([34]\d\.\d\d)\) is off its floor",
                                    ended[("floor_pinned", "C")][-1]["cleared_detail"])
                assert "changed" in ended[("stale_competitor", "S")][-1]["cleared_detail"]

                # 5. A SIGHUP with a config that pauses B and raises C's floor (the launcher forwards it to
                #    the workers and the Dashboard): B shown paused, C's chart has the new floor from the
                #    next decision on, the old one before.
                reloaded = CONFIG.format(port=hook_port).replace('floor = "30.00"', 'floor = "35.00"')
                config.write_text(reloaded + '[pause]\nbooks = ["B"]\n', encoding="utf-8")
                os.kill(run.process.pid, signal.SIGHUP)
                run.wait_until(lambda: {(r["book"], r["paused"]) for r in json.loads(get(base + "/api/books"))["rows"]}
                               >= {("B", True), ("A", False)}, 60, "B shown paused")
                floors: list[str | None] = run.wait_until(
                    lambda: (f := json.loads(get(base + "/api/series?id=C"))["floor"])[-1] == "35.00" and f, 60,
                    "C's new floor")
                old_floor = [i for i, v in enumerate(floors) if v == "30.00"]
                assert old_floor and floors.index("35.00") > old_floor[-1]  # the reload from the next decision on
                run.wait_until(lambda: overview(base)["business"]["alerts_open"] == 0, 60, "the Dashboard clear")
                # The webhook got each raise and each clear, as JSON.
                run.wait_until(lambda: {(d["alert"], d["book"], d["state"]) for d in delivered} >= {
                    (a, b, s) for a, b in WANTED for s in ("raised", "cleared")}, 60, "the webhook's deliveries")

                # 6. The banner on a killed DataManager.
                if browser is not None:
                    banner_on_a_killed_actor(browser, base, run)
            assert run.stop() == 0, run.log_tail()
        stops_read_as_sentences(run.log)

        # 7. A resume: the next run over the same Ledger says at start where its prices come from.
        with LauncherRun(["--data-file", str(feed.path), "--mode", "follow", "--config", str(config), *FAST],
                         ipc_dir) as again:  # the same --run-dir: the same Ledger database
            line = again.wait_until(lambda: next((text for text in again.log if "INFO resumed " in text), None), 60,
                                    "the resume line")
            assert again.stop() == 0, again.log_tail()
        # Every pair, decided by the one run before (its newest decisions: one moment, or a span).
        assert re.search(r"algorithm\[\d+\] INFO resumed (\d+) of \1 pair\(s\) from the Ledger: their last prices, "
                         r"decided (at )?\d{4}-\d\d-\d\d \d\d:\d\d:\d\d( to \d\d:\d\d:\d\d)? UTC by the run "
                         r"started \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC$", line), line
    finally:
        feed.stop()
        if writer.is_alive():
            writer.join(5)
    assert not [line for line in run.log if "refused" in line and "favicon" in line]  # served, never refused
    if not browsing:
        pytest.skip("the browser stages: chromium and chromedriver not installed (apt-get install -y chromium "
                    "chromium-driver); every other stage passed")


def stops_read_as_sentences(log: list[str]) -> None:
    """Each actor's stop is one line in words (its headline numbers), the launcher's too: no Python dicts."""
    stops = {actor: [line for line in log if re.search(rf" {actor}\[\d+\] INFO stopped after ", line)]
             for actor in ("scheduler", "datamanager", "apiserver", "ledger", "algorithm")}
    assert all(len(lines) == 1 for lines in stops.values()), stops
    assert not [line for line in log if "counters {" in line or "stopped; counters" in line]
    assert re.search(r"INFO stopped after \d+ s: \d+ decisions", stops["algorithm"][0]), stops["algorithm"]
    assert re.search(r"INFO stopped after \d+ s: \d+ decisions stored", stops["ledger"][0]), stops["ledger"]
    assert re.search(r"launcher\[\d+\] INFO stopped \(exit code 0\): \d+ actor starts", "\n".join(log))


def raised_in_browser(browser: webdriver.Chrome, base: str, db: Path, run: LauncherRun) -> None:
    # The overview: the business first, its numbers moving without a reload; the alerts panel.
    browser.get(base + "/")
    browser.execute_script("window.__testMark = 'no reload';")

    def total(b: webdriver.Chrome) -> int:
        return numeric(b.execute_script(OVERVIEW_STATE)["total"]) or 0  # a dash before the first state

    first = wait(browser, "a first count", total)  # 0 is falsy: waits until decisions are counted
    later = wait(browser, "the count to grow", lambda b: (n := total(b)) > first and n)

    def alerted(b: webdriver.Chrome) -> dict[str, Any] | None:
        s: dict[str, Any] = b.execute_script(OVERVIEW_STATE)
        return s if all(t in s["panel"] for t in ("Pinned at the floor", "Price war", "Competitor data stale")) \
            else None

    state = wait(browser, "the alerts on the panel", alerted)
    assert state is not None
    assert later > first and state["mark"] == "no reload"
    assert state["books"] == "5" and numeric(state["alerts"]) == 3  # A, B, C, S, W; OLD1 was an earlier run
    assert "C · default" in state["panel"] and "the floor has set the price (30.00)" in state["panel"]
    names = {a["name"]: a for a in state["actors"]}
    assert set(names) >= {"scheduler", "datamanager", "apiserver", "algorithm", "ledger", "dashboard"}
    details = browser.find_element("id", "process-details")
    assert not browser.find_element("id", "counters").is_displayed()  # behind the toggle
    details.find_element("tag name", "summary").click()
    assert "decisions printed (Algorithm workers)" in browser.find_element("id", "counters").text

    # The books list: the current catalogue, the earlier run behind its filter and marked.
    catalogue = {("A", "default"), ("A", "cautious"), ("B", "default"), ("B", "cautious"), ("C", "default"),
                 ("S", "default"), ("W", "undercut")}

    def listed(b: webdriver.Chrome) -> list[list[str]] | None:
        # The page reads the Ledger's `pairs`, brought up to date at most every 5 s (docs/ledger.md): a
        # pair decided since the last update is listed at the next one. Reloaded until then.
        b.get(base + "/books")
        shown = table(b)
        return shown if {(r[0].split()[0], r[1].split()[0]) for r in shown} >= catalogue else None

    found = WebDriverWait(browser, 60, poll_frequency=0.5).until(listed, "every pair of the catalogue listed")
    assert found is not None
    rows = found
    assert {(r[0].split()[0], r[1].split()[0]) for r in rows} == catalogue
    assert "earlier runs only (1)" in browser.find_element("id", "scopes").text
    c = cells(rows, "C", "default")
    assert c[0] == "C at floor" and c[7] == "floor"  # the badge; the guardrail column
    assert cells(rows, "W", "undercut")[0] == "W price war" and cells(rows, "S", "default")[0] == "S stale data"
    a = cells(rows, "A", "default")
    price, avg, gap = Decimal(a[2]), Decimal(a[-1] or a[5]), a[4]
    assert Decimal(a[5]) == avg.quantize(Decimal("0.01"), ROUND_HALF_UP)  # shown to the cent
    assert gap == f"{'+' if price > avg else chr(0x2212) if price < avg else ''}" \
                  f"{abs((price / avg - 1) * 100).quantize(Decimal('0.1'))}%"
    assert a[6] in ("sold", "not sold") and browser.find_elements("css selector", "#books svg.spark")
    browser.find_element("link text", "earlier runs only (1)").click()
    earlier = table(browser)
    assert len(earlier) == 1 and earlier[0][0] == "OLD1 earlier run"

    # A book opens its first configured strategy; its chart holds the database's decisions point for
    # point, opens on the newest stretch (after the gap since the earlier run), fits the prices shown,
    # and no two time labels touch.
    run.wait_until(lambda: len(decisions(db, "A", "default")) >= 5 + 3, 60, "decisions in the database")
    before = len(decisions(db, "A", "default"))
    browser.get(base + "/book?id=A")
    current = browser.find_element("css selector", ".strategies a[aria-current]").text
    assert current == "default"  # configured first (cautious sorts first by name)
    chart = wait(browser, "the chart", lambda b: b.execute_script(
        "const u = window.dashboardChart; return u ? {data: u.data, x: [u.scales.x.min, u.scales.x.max],"
        " y: [u.scales.y.min, u.scales.y.max]} : null"))
    kept = decisions(db, "A", "default")
    x, avg_line, price_line, sold, unsold = chart["data"][:5]
    points = [i for i, v in enumerate(price_line) if v is not None]  # gaps aside (a slow tick)
    assert before <= len(points) <= len(kept)
    for i, (ts, row_avg, row_price, row_sold, _) in zip(points, kept, strict=False):
        assert x[i] == pytest.approx(ts) and avg_line[i] == pytest.approx(float(row_avg))
        assert price_line[i] == pytest.approx(float(row_price))
        assert (sold[i], unsold[i]) == ((price_line[i], None) if row_sold else (None, price_line[i]))
    last_gap = max(i for i, v in enumerate(price_line) if v is None)  # at least the two hours since the earlier run
    shown = [i for i in points if i > last_gap] if len(price_line) - last_gap > 2 else points
    assert chart["x"] == [pytest.approx(x[shown[0]]), pytest.approx(x[shown[-1]])]
    if shown != points:
        assert "showing the newest stretch" in browser.find_element("id", "chart-note").text
    values = [avg_line[i] for i in shown] + [price_line[i] for i in shown]
    low, high = chart["y"]
    assert low <= min(values) and high >= max(values)
    assert high - low <= 1.3 * (max(values) - min(values)) + 0.2 * max(values)  # fits, not squashed
    labels = browser.execute_script(TIME_LABELS)
    assert len(labels) >= 2 and all(re.fullmatch(r"\d\d:\d\d(:\d\d)?", label["text"]) for label in labels)
    for left, right in itertools.pairwise(labels):
        assert right["x"] - left["x"] >= (left["width"] + right["width"]) / 2 + 4, labels  # apart
    last = labels[-1]
    assert last["left"] + last["x"] + last["width"] / 2 <= last["canvas"], labels  # the last one not cut
    browser.get(base + "/book?id=C")
    assert "Pinned at the floor" in browser.find_element("id", "book-alerts").text
    # The floor each decision had, kept with it by the Ledger, drawn dashed (30.00: inside the prices).
    drawn = wait(browser, "C's chart", lambda b: b.execute_script(
        "return window.dashboardChart ? window.dashboardChart.series.map((s) => s.label) : null"))
    assert "floor" in drawn and "floor as each decision had them" in browser.find_element("id", "chart-note").text


def banner_on_a_killed_actor(browser: webdriver.Chrome, base: str, run: LauncherRun) -> None:
    browser.get(base + "/books")
    assert cells(table(browser), "B", "default")[0] == "B paused"  # the reloaded config, as the page shows it
    browser.get(base + "/")
    wait(browser, "the live state", lambda b: b.execute_script(OVERVIEW_STATE)["actors"])
    browser.execute_script(WATCH_BANNER)
    wait(browser, "no banner", lambda b: b.execute_script(OVERVIEW_STATE)["bannerHidden"])
    victim = run.pids()["datamanager"]
    os.kill(victim, signal.SIGKILL)
    seen = wait(browser, "the banner", lambda b: [t for t in b.execute_script(OVERVIEW_STATE)["banners"]
                                                  if "datamanager is" in t])
    assert any("restarting" in t or "starting" in t for t in seen), seen

    def back(b: webdriver.Chrome) -> dict[str, Any] | None:
        s = b.execute_script(OVERVIEW_STATE)
        dm = next((a for a in s["actors"] if a["name"] == "datamanager"), None)
        return s if s["bannerHidden"] and dm and dm["state"] == "up" and dm["pid"] != victim else None

    wait(browser, "the banner to clear", back)
