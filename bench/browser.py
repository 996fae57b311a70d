"""A real headless Chromium for the Dashboard's browser tests, its screenshots and the soak's live
client (:mod:`bench.soak`): Debian's ``chromium`` driven through Selenium and Debian's ``chromedriver``
(``.ci/run`` installs both)."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator

from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service

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


def env_says_ci() -> bool:
    return bool(os.environ.get("CI"))
