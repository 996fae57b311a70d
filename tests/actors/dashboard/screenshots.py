"""Regenerate the Dashboard's screenshots in ``docs/``: ``python -m tests.actors.dashboard.screenshots``.

Runs the real launcher -- Ledger and Dashboard included -- on the shipped ``data/data.csv`` (five books,
two strategies, 0.5 s ticks) with a config holding guardrails and alert thresholds short enough to
see alerts within the run, over a Ledger database an earlier run wrote to two hours before (so the
books list has earlier-run pairs behind its filter, and a chart a gap where nothing was decided);
halfway, a SIGHUP pauses B004, as a publisher would. Saves what headless Chromium shows of the
overview, the alerts panel, the books list and one book, each once its data is drawn. Needs chromium
and chromedriver.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from selenium import webdriver
from selenium.webdriver.support.ui import WebDriverWait

from bench import fake_ledger
from bench.browser import chromium
from bench.driver import LauncherRun
from tests.helpers import REPO, free_port

CONFIG = """[strategies.default]
delay = 0.1
[strategies.cautious]
delay = 0.1
sold_factor = "1.05"
unsold_factor = "0.95"
[[books]]
ids = ["B001", "B002", "B003"]
strategies = ["default", "cautious"]
[[books]]
ids = ["B004", "B005"]
strategies = ["default"]
[guardrails]
max_step_pct = 8
[guardrails.books.B005]
floor = "25.00"
[alerts]
price_war_ticks = 4
floor_pinned_seconds = 20
stale_competitor_seconds = 0
guardrail_share_decisions = 40
"""
PAUSE = '[pause]\nbooks = ["B004"]\n'
LIVE = ("const s = window.dashboardState; return !!(s && s.business && s.actors.length"
        " && document.querySelector('#rates-chart canvas'))")


def drawn(browser: webdriver.Chrome, script: str, what: str) -> None:
    WebDriverWait(browser, 30, poll_frequency=0.1).until(lambda b: b.execute_script(script), what)


def shoot(browser: webdriver.Chrome, path: Path, element: str | None = None, height: int = 1000) -> None:
    browser.set_window_size(1280, height)
    if element is None:
        browser.save_screenshot(str(path))
    else:
        browser.find_element("id", element).screenshot(str(path))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.actors.dashboard.screenshots", description=__doc__)
    parser.add_argument("--out", default=str(REPO / "docs"), help="directory for the PNG files (default docs/)")
    parser.add_argument("--seconds", type=float, default=60.0, help="run this long before the shots (default 60)")
    args = parser.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="dash-shot-") as tmp:
        work = Path(tmp)
        conn = fake_ledger.create(work / "ledger.sqlite3")
        try:  # two hours ago: the same books, and two this config no longer prices
            earlier = fake_ledger.synthetic(["B001", "B002", "B005", "B006", "B007"], ["default"], 120,
                                            start=time.time() - 7200, interval=0.5, seed=7)
            fake_ledger.write(conn, earlier)
        finally:
            conn.close()
        config = work / "repricer.toml"
        config.write_text(CONFIG, encoding="utf-8")
        port = free_port()
        run = LauncherRun(["--tick", "0.5", "--config", str(config), "--dashboard", "--dashboard-port", str(port)],
                          work, status_every=5)
        try:
            run.wait_until(lambda: any("dashboard on http" in line for line in run.log), 30, "the dashboard")
            # History for the charts and time for alerts: the run's length is the point here.
            time.sleep(args.seconds / 2)
            config.write_text(CONFIG + PAUSE, encoding="utf-8")
            os.kill(run.process.pid, signal.SIGHUP)  # to the workers and the Dashboard
            time.sleep(args.seconds / 2)
            with chromium() as browser:
                base = f"http://127.0.0.1:{port}"
                browser.get(base + "/")
                drawn(browser, LIVE, "the live state, the business and the chart")
                shoot(browser, out / "dashboard-overview.png", height=1300)
                shoot(browser, out / "dashboard-alerts.png", element="alerts-panel")
                browser.get(base + "/books?sort=price&dir=desc")  # rendered on the server
                shoot(browser, out / "dashboard-books.png", height=760)
                browser.get(base + "/book?id=B005")
                drawn(browser, "return !!window.dashboardChart", "the chart")
                shoot(browser, out / "dashboard-book.png", height=1150)
            run.stop()
        finally:
            run.kill_everything()
    print(f"wrote {out}/dashboard-overview.png, dashboard-alerts.png, dashboard-books.png, dashboard-book.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
