"""The Dashboard in a real headless Chromium, over the real launcher.

One run of the launcher (three books, fast ticks, the Dashboard on) serves the whole scenario: the
overview's numbers move without a reload, a book's chart holds exactly the decisions in the database,
and killing the DataManager raises the banner, which clears once it is back. The real Ledger keeps the
decisions in ``<run dir>/ledger.sqlite3``; the Dashboard reads that database.

Needs Debian's ``chromium`` and ``chromium-driver`` (``.ci/run`` installs them); skipped without them,
except under CI, where their absence is a failure.
"""

from __future__ import annotations

import os
import signal
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
from selenium import webdriver
from selenium.webdriver.support.ui import WebDriverWait

from bench.browser import chromium, env_says_ci, find_browser
from bench.driver import LauncherRun
from tests.harness import write_csv
from tests.helpers import free_port

T = TypeVar("T")

if find_browser() is None and not env_says_ci():
    pytest.skip("chromium and chromedriver not installed (apt-get install -y chromium chromium-driver)",
                allow_module_level=True)

FAST = ["--books", "A,B,C", "--tick", "0.3", "--delay", "0", "--hang-timeout", "1.5", "--grace", "3"]
# Read the page's state in one round trip: what the overview shows and what the script knows.
OVERVIEW_STATE = """
const total = document.getElementById('decisions-total').textContent;
const banner = document.getElementById('banner');
return {total: total, mark: window.__testMark || null, bannerHidden: banner.hidden,
        banners: window.__banners || [], actors: (window.dashboardState || {actors: []}).actors};
"""
WATCH_BANNER = """
window.__banners = [];
new MutationObserver(() => {
  const b = document.getElementById('banner');
  if (!b.hidden && b.textContent) window.__banners.push(b.textContent);
}).observe(document.getElementById('banner'), {childList: true, subtree: true, attributes: true});
"""


def wait(browser: webdriver.Chrome, what: str, predicate: Callable[[webdriver.Chrome], T],
         timeout: float = 20.0) -> T:
    result: T = WebDriverWait(browser, timeout, poll_frequency=0.05).until(predicate, what)
    return result


@pytest.fixture
def system(tmp_path: Path, ipc_dir: Path) -> Iterator[tuple[LauncherRun, Path, str]]:
    csv_path = write_csv(tmp_path / "prices.csv", rows_per_book=200)
    port = free_port()
    run = LauncherRun(["--data-file", str(csv_path), *FAST, "--dashboard", "--dashboard-port", str(port)], ipc_dir)
    try:
        run.wait_until(lambda: any("dashboard on http" in line for line in run.log), 30, "the dashboard")
        yield run, ipc_dir / "ledger.sqlite3", f"http://127.0.0.1:{port}"  # the Ledger's --db under --run-dir
    finally:
        run.kill_everything()


def count_decisions(path: Path, book: str) -> int:
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as conn:
        return int(conn.execute("SELECT count(*) FROM decisions WHERE book = ? AND strategy = 'default'",
                                (book,)).fetchone()[0])


def numeric(text: str) -> int | None:
    digits = text.replace(",", "").replace("\u202f", "").replace("\xa0", "")
    return int(digits) if digits.isdigit() else None


@pytest.mark.timeout(120)
def test_the_dashboard_in_a_browser(system: tuple[LauncherRun, Path, str]) -> None:
    run, db, base = system
    assert any(f"dashboard: {base}/" in line for line in run.log)  # the launcher printed the URL
    run.wait_decisions(6)
    with chromium() as browser:
        # 1. The overview's numbers move without a reload.
        browser.get(base + "/")
        browser.execute_script("window.__testMark = 'no reload';")

        def total(b: webdriver.Chrome) -> int:
            return numeric(b.execute_script(OVERVIEW_STATE)["total"]) or 0  # a dash before the first state

        first = wait(browser, "a first count", total)  # 0 is falsy: waits until decisions are counted
        later = wait(browser, "the count to grow", lambda b: (n := total(b)) > first and n)
        state = browser.execute_script(OVERVIEW_STATE)
        assert later > first and state["mark"] == "no reload"
        names = {a["name"]: a for a in state["actors"]}
        assert set(names) >= {"scheduler", "datamanager", "apiserver", "algorithm", "dashboard"}
        assert names["algorithm"]["counters"]["decisions"] > 0

        # 2. A book's chart holds the decisions in the database, point for point.
        run.wait_until(lambda: db.exists() and count_decisions(db, "B") >= 3, 20, "decisions in the database")
        before = count_decisions(db, "B")
        browser.get(base + "/book?id=B&strategy=default")
        chart = wait(browser, "the chart", lambda b: b.execute_script(
            "return window.dashboardChart ? {data: window.dashboardChart.data, n: window.dashboardSeries.ts.length}"
            " : null"))
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
            rows = conn.execute("SELECT ts, avg_comp_price, price, sold, tick FROM decisions WHERE book = 'B' AND "
                                "strategy = 'default' ORDER BY ts, run, tick").fetchall()
        shown = len(chart["data"][0])
        assert before >= 3 and before <= shown <= len(rows)  # everything there when the page loaded, or more
        x, avg, price, sold, unsold = chart["data"][:5]
        for i, (ts, row_avg, row_price, row_sold, _) in enumerate(rows[:shown]):
            assert x[i] == pytest.approx(ts) and avg[i] == pytest.approx(float(row_avg))
            assert price[i] == pytest.approx(float(row_price))
            assert (sold[i], unsold[i]) == ((price[i], None) if row_sold else (None, price[i]))
        table = browser.find_elements("css selector", "#decisions tbody tr")  # rendered before the chart's fetch
        assert len(table) >= before and table[0].find_elements("tag name", "td")[1].text == str(rows[len(table) - 1][4])

        # 3. Kill the DataManager: the banner appears, then clears once it is back.
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
