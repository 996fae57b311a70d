"""A real headless Chromium for the Dashboard's browser tests and its screenshots: Debian's ``chromium``
driven through Selenium and Debian's ``chromedriver`` (``.ci/run`` installs both), plus a stand-in for
the Ledger that writes a launcher's decisions into a database as they are printed."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import threading
from collections.abc import Iterator
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service

from bench import fake_ledger
from supervisor.driver import LauncherRun

FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage", "--window-size=1280,1000", "--hide-scrollbars")


def find_browser() -> tuple[str, str] | None:
    """Debian's chromium and chromedriver, if installed."""
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    return (browser, driver) if browser and driver else None


@contextlib.contextmanager
def chromium() -> Iterator[webdriver.Chrome]:
    found = find_browser()
    if found is None:
        raise RuntimeError("chromium and chromedriver are needed: apt-get install -y chromium chromium-driver")
    browser, driver = found
    profile = tempfile.mkdtemp(prefix="dash-chromium-")
    options = Options()
    options.binary_location = browser
    for flag in (*FLAGS, f"--user-data-dir={profile}"):
        options.add_argument(flag)
    chrome = webdriver.Chrome(service=Service(executable_path=driver), options=options)
    try:
        chrome.set_page_load_timeout(20)
        chrome.set_script_timeout(20)
        yield chrome
    finally:
        chrome.quit()
        shutil.rmtree(profile, ignore_errors=True)


def row_of(decision: dict[str, Any]) -> fake_ledger.Row:
    """A ``--json`` decision line as the Ledger would store it."""
    return fake_ledger.Row(decision["book"], decision["strategy"], decision["tick"],
                           datetime.fromisoformat(decision["ts"]).timestamp(),
                           tuple(Decimal(p) for p in decision["prices"]), Decimal(decision["avg_comp_price"]),
                           decision["request_id"], decision["sold"], Decimal(decision["price"]))


class LedgerStandIn:
    """Writes every decision the launcher prints into ``path`` (a thread, every 0.1 s), as the Ledger
    will once it lands: the Dashboard reads what this writes."""

    def __init__(self, run: LauncherRun, path: Path) -> None:
        self._run = run
        self.path = path
        self.written = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="ledger-stand-in", daemon=True)

    def __enter__(self) -> LedgerStandIn:
        conn = fake_ledger.create(self.path)
        conn.close()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(10)

    def _loop(self) -> None:
        conn = fake_ledger.create_or_open(self.path)
        try:
            while not self._stop.wait(0.1):
                fresh = self._run.decisions()[self.written:]
                if fresh:
                    fake_ledger.write(conn, [row_of(d) for d in fresh])
                    self.written += len(fresh)
        finally:
            conn.close()


def env_says_ci() -> bool:
    return bool(os.environ.get("CI"))
