"""Regenerate the Dashboard's screenshots in ``docs/``: ``python -m tests.actors.dashboard.screenshots``.

Runs the real launcher on the shipped ``data/data.csv`` (five books, 0.5 s ticks) publishing its events,
writes its decisions into a Ledger database as the Ledger would (:class:`LedgerStandIn`), runs the
Dashboard beside it with a config holding a floor (so the book chart shows one; the launcher's own
config does not take a ``[guardrails]`` table until the guardrails land), and saves what headless
Chromium shows of the overview, one book and the books table. Needs chromium and chromedriver.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from supervisor.driver import LauncherRun
from tests.actors.dashboard.browser import LedgerStandIn, chromium
from tests.helpers import REPO, free_port


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.actors.dashboard.screenshots", description=__doc__)
    parser.add_argument("--out", default=str(REPO / "docs"), help="directory for the PNG files (default docs/)")
    parser.add_argument("--seconds", type=float, default=40.0, help="run this long before the shots (default 40)")
    args = parser.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="dash-shot-") as tmp:
        work = Path(tmp)
        config = work / "repricer.toml"
        config.write_text('[guardrails]\nfloor = "15.50"\n', encoding="utf-8")
        port = free_port()
        run = LauncherRun(["--tick", "0.5", "--delay", "0.1"], work, status_every=5)
        dashboard = subprocess.Popen([sys.executable, "-m", "actors.dashboard", "--port", str(port), "--events",
                                      run.events_endpoint,
                                      "--db", str(work / "ledger.sqlite3"), "--config", str(config)], cwd=REPO,
                                     stdin=subprocess.DEVNULL)
        try:
            with LedgerStandIn(run, work / "ledger.sqlite3"):
                time.sleep(args.seconds)
                with chromium() as browser:
                    base = f"http://127.0.0.1:{port}"
                    browser.get(base + "/")
                    time.sleep(2.5)
                    browser.save_screenshot(str(out / "dashboard-overview.png"))
                    browser.get(base + "/book?id=B002")
                    time.sleep(1.5)
                    browser.save_screenshot(str(out / "dashboard-book.png"))
                    browser.get(base + "/books?sort=price&dir=desc")
                    time.sleep(0.5)
                    browser.save_screenshot(str(out / "dashboard-books.png"))
            run.stop()
        finally:
            dashboard.terminate()
            dashboard.wait(10)
            run.kill_everything()
    print(f"wrote {out}/dashboard-overview.png, dashboard-book.png, dashboard-books.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
