"""The Dashboard in a real headless Chromium, over the real launcher and the real Ledger.

One run of the launcher (three books, two strategies, a floor that holds one book, fast ticks) over a
Ledger database that an earlier run already wrote to, and one browser session, serve the whole
scenario: the overview leads with the business and its numbers move without a reload; an alert the
Ledger raised is on the alerts panel and its pair's badge; the process counters hide behind a toggle,
in words; the books list shows the current catalogue, the earlier run behind its filter, marked; a
book opens its first configured strategy, its chart holds the database's decisions point for point,
fits the prices and its time labels never touch; the favicon is no refusal; and killing the
DataManager raises the banner, which clears once it is back.

Needs Debian's ``chromium`` and ``chromium-driver`` (``.ci/run`` installs them); skipped without them,
except under CI, where their absence is a failure.
"""

from __future__ import annotations

import itertools
import os
import re
import signal
import sqlite3
import time
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar

import pytest
from selenium import webdriver
from selenium.webdriver.support.ui import WebDriverWait

from bench import fake_ledger
from bench.browser import chromium, env_says_ci, find_browser
from bench.driver import LauncherRun
from tests.harness import write_csv
from tests.helpers import free_port

T = TypeVar("T")

if find_browser() is None and not env_says_ci():
    pytest.skip("chromium and chromedriver not installed (apt-get install -y chromium chromium-driver)",
                allow_module_level=True)

CONFIG = """[strategies.default]
delay = 0
[strategies.cautious]
delay = 0
sold_factor = "1.05"
unsold_factor = "0.95"
[[books]]
ids = ["A", "B"]
strategies = ["default", "cautious"]
[[books]]
ids = ["C"]
strategies = ["default"]
[guardrails.books.C]
floor = "30.00"
[alerts]
floor_pinned_seconds = 2
stale_competitor_seconds = 0
guardrail_share_pct = 0
ledger_lag_seconds = 0
"""
FAST = ["--tick", "0.3", "--hang-timeout", "1.5", "--grace", "3"]
# Read the page's state in one round trip: what the overview shows and what the script knows.
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
# Each label of the chart's time axis, as drawn: its text, where its centre is and how wide it is.
TIME_LABELS = """
const u = window.dashboardChart, axis = u.axes[0];
u.ctx.font = axis.font[0];
return axis._values.map((text, i) => ({text, x: u.valToPos(axis._splits[i], 'x'),
                                       width: u.ctx.measureText(text).width / devicePixelRatio}));
"""


def wait(browser: webdriver.Chrome, what: str, predicate: Callable[[webdriver.Chrome], T],
         timeout: float = 20.0) -> T:
    result: T = WebDriverWait(browser, timeout, poll_frequency=0.05).until(predicate, what)
    return result


@pytest.fixture
def system(tmp_path: Path, ipc_dir: Path) -> Iterator[tuple[LauncherRun, Path, str]]:
    db = ipc_dir / "ledger.sqlite3"  # the Ledger's --db under --run-dir
    conn = fake_ledger.create(db)
    try:  # an earlier run priced a book this config no longer has
        fake_ledger.write(conn, fake_ledger.synthetic(["OLD1"], ["default"], 5, start=time.time() - 7200))
    finally:
        conn.close()
    csv_path = write_csv(tmp_path / "prices.csv", rows_per_book=200)
    config = tmp_path / "repricer.toml"
    config.write_text(CONFIG, encoding="utf-8")
    port = free_port()
    run = LauncherRun(["--data-file", str(csv_path), "--config", str(config), *FAST, "--dashboard",
                       "--dashboard-port", str(port)], ipc_dir)
    try:
        run.wait_until(lambda: any("dashboard on http" in line for line in run.log), 30, "the dashboard")
        yield run, db, f"http://127.0.0.1:{port}"
    finally:
        run.kill_everything()


def decisions(path: Path, book: str, strategy: str) -> list[tuple[Any, ...]]:
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as conn:
        return conn.execute("SELECT ts, avg_comp_price, price, sold, tick FROM decisions WHERE book = ? AND "
                            "strategy = ? ORDER BY ts, run, tick", (book, strategy)).fetchall()


def numeric(text: str) -> int | None:
    digits = text.replace(",", "").replace("\u202f", "").replace("\xa0", "")
    return int(digits) if digits.isdigit() else None


def cells(browser: webdriver.Chrome, book: str, strategy: str) -> list[str]:
    for row in browser.find_elements("css selector", "#books tbody tr"):
        texts = [td.text for td in row.find_elements("tag name", "td")]
        if texts and texts[0].split()[0] == book and texts[1].split()[0] == strategy:
            return texts
    raise AssertionError(f"no row {book}/{strategy}")


@pytest.mark.timeout(150)
def test_the_dashboard_in_a_browser(system: tuple[LauncherRun, Path, str]) -> None:
    run, db, base = system
    assert any(f"dashboard: {base}/" in line for line in run.log)  # the launcher printed the URL
    run.wait_decisions(6)
    with chromium() as browser:
        # 1. The overview: the business first, its numbers moving without a reload; the alert the
        #    Ledger raised for C (the floor sets its price) on the alerts panel.
        browser.get(base + "/")
        browser.execute_script("window.__testMark = 'no reload';")

        def total(b: webdriver.Chrome) -> int:
            return numeric(b.execute_script(OVERVIEW_STATE)["total"]) or 0  # a dash before the first state

        first = wait(browser, "a first count", total)  # 0 is falsy: waits until decisions are counted
        later = wait(browser, "the count to grow", lambda b: (n := total(b)) > first and n)
        def alerted(b: webdriver.Chrome) -> dict[str, Any] | None:
            s: dict[str, Any] = b.execute_script(OVERVIEW_STATE)
            return s if "Pinned at the floor" in s["panel"] else None

        state = wait(browser, "the alert on the panel", alerted, timeout=30)
        assert state is not None
        assert later > first and state["mark"] == "no reload"
        assert state["books"] == "3" and numeric(state["alerts"]) == 1  # A, B, C; OLD1 was an earlier run
        assert "C · default" in state["panel"] and "the floor has set the price (30.00)" in state["panel"]
        names = {a["name"]: a for a in state["actors"]}
        assert set(names) >= {"scheduler", "datamanager", "apiserver", "algorithm", "ledger", "dashboard"}
        details = browser.find_element("id", "process-details")
        assert not browser.find_element("id", "counters").is_displayed()  # behind the toggle
        details.find_element("tag name", "summary").click()
        assert "decisions printed (Algorithm workers)" in browser.find_element("id", "counters").text

        # 2. The books list: the current catalogue, the earlier run behind its filter and marked.
        browser.get(base + "/books")
        shown = {(row.find_element("css selector", "td:nth-child(1) a").text,
                  row.find_element("css selector", "td:nth-child(2)").text.split()[0])
                 for row in browser.find_elements("css selector", "#books tbody tr")}
        assert shown == {("A", "default"), ("A", "cautious"), ("B", "default"), ("B", "cautious"),
                         ("C", "default")}
        assert "earlier runs only (1)" in browser.find_element("id", "scopes").text
        c = cells(browser, "C", "default")
        assert c[0] == "C at floor" and c[7] == "floor"  # the badge; the guardrail column
        a = cells(browser, "A", "default")
        price, avg, gap = Decimal(a[2]), Decimal(a[5]), a[4]
        assert gap == f"{'+' if price > avg else chr(0x2212) if price < avg else ''}" \
                      f"{abs((price / avg - 1) * 100).quantize(Decimal('0.1'))}%"
        assert a[6] in ("sold", "not sold") and browser.find_elements("css selector", "#books svg.spark")
        browser.find_element("link text", "earlier runs only (1)").click()
        earlier = browser.find_elements("css selector", "#books tbody tr")
        assert len(earlier) == 1 and earlier[0].text.startswith("OLD1 earlier run")

        # 3. A book opens its first configured strategy; its chart holds the database's decisions
        #    point for point, fits the prices, and no two time labels touch.
        run.wait_until(lambda: len(decisions(db, "A", "default")) >= 3, 20, "decisions in the database")
        before = len(decisions(db, "A", "default"))
        browser.get(base + "/book?id=A")
        current = browser.find_element("css selector", ".strategies a[aria-current]").text
        assert current == "default"  # configured first (cautious sorts first by name)
        chart = wait(browser, "the chart", lambda b: b.execute_script(
            "return window.dashboardChart ? {data: window.dashboardChart.data, y: [window.dashboardChart.scales.y.min,"
            " window.dashboardChart.scales.y.max]} : null"))
        rows = decisions(db, "A", "default")
        x, avg_line, price_line, sold, unsold = chart["data"][:5]
        points = [i for i, v in enumerate(price_line) if v is not None]  # gaps aside (a slow tick)
        assert before <= len(points) <= len(rows)
        for i, (ts, row_avg, row_price, row_sold, _) in zip(points, rows, strict=False):
            assert x[i] == pytest.approx(ts) and avg_line[i] == pytest.approx(float(row_avg))
            assert price_line[i] == pytest.approx(float(row_price))
            assert (sold[i], unsold[i]) == ((price_line[i], None) if row_sold else (None, price_line[i]))
        values = [float(r[1]) for r in rows[:len(points)]] + [float(r[2]) for r in rows[:len(points)]]
        low, high = chart["y"]
        assert low <= min(values) and high >= max(values)
        assert high - low <= 1.3 * (max(values) - min(values)) + 0.2 * max(values)  # fits, not squashed
        labels = browser.execute_script(TIME_LABELS)
        assert len(labels) >= 2 and all(re.fullmatch(r"\d\d:\d\d(:\d\d)?", label["text"]) for label in labels)
        for left, right in itertools.pairwise(labels):
            assert right["x"] - left["x"] >= (left["width"] + right["width"]) / 2 + 4, labels  # apart
        browser.get(base + "/book?id=C")
        assert "Pinned at the floor" in browser.find_element("id", "book-alerts").text

        # 4. Kill the DataManager: the banner appears, then clears once it is back.
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

        wait(browser, "the banner to clear", back, timeout=30)
    assert run.stop() == 0
    assert not [line for line in run.log if "refused" in line and "favicon" in line]  # served, never refused
