"""Regenerate the Dashboard's screenshots in ``docs/``: ``python -m tests.actors.dashboard.screenshots``.

Runs the real launcher -- Ledger and Dashboard included -- on the shipped ``data/data.csv`` (five books,
0.5 s ticks) with a config holding a floor (so the book chart shows one and some decisions say why),
and saves what headless Chromium shows of the overview, one book and the books table. Needs chromium
and chromedriver.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from bench.browser import chromium
from bench.driver import LauncherRun
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
        config.write_text('[strategies.default]\ndelay = 0.1\n'
                          '[[books]]\nids = ["B001", "B002", "B003", "B004", "B005"]\n'
                          '[guardrails]\nfloor = "15.50"\n', encoding="utf-8")
        port = free_port()
        run = LauncherRun(["--tick", "0.5", "--config", str(config), "--dashboard",
                           "--dashboard-port", str(port)], work, status_every=5)
        try:
            run.wait_until(lambda: any("dashboard on http" in line for line in run.log), 30, "the dashboard")
            time.sleep(args.seconds)  # history for the charts: there is nothing to wait for but time
            with chromium() as browser:
                base = f"http://127.0.0.1:{port}"
                browser.get(base + "/")
                time.sleep(2.5)  # the live chart fills from the event stream
                browser.save_screenshot(str(out / "dashboard-overview.png"))
                browser.get(base + "/book?id=B002")
                time.sleep(1.5)
                browser.save_screenshot(str(out / "dashboard-book.png"))
                browser.get(base + "/books?sort=price&dir=desc")
                time.sleep(0.5)
                browser.save_screenshot(str(out / "dashboard-books.png"))
            run.stop()
        finally:
            run.kill_everything()
    print(f"wrote {out}/dashboard-overview.png, dashboard-book.png, dashboard-books.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
