"""The backtest's HTML report in a real headless Chromium: opened from disk with no network, its
charts are drawn by the inlined uPlot (one canvas per charted pair, the right titles), the tables hold
the numbers of the json output, and book ids with markup in them stay text. Also served by the
Dashboard, sandboxed. Regenerate the screenshot in docs/ with
``python -m tests.actors.algorithm.backtest.test_report_browser``.

Needs Debian's ``chromium`` and ``chromium-driver`` (``.ci/run`` installs them); skipped without them,
except under CI, where their absence is a failure."""

from __future__ import annotations

import contextlib
import io
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

import pytest
from selenium.webdriver.support.ui import WebDriverWait

from actors.algorithm.backtest import cli
from bench.browser import chromium, env_says_ci, find_browser
from tests.actors.algorithm.backtest.helpers import price_file
from tests.helpers import REPO

if find_browser() is None and not env_says_ci():
    pytest.skip("chromium and chromedriver not installed (apt-get install -y chromium chromium-driver)",
                allow_module_level=True)

CONFIG = """
[strategies.task]
[strategies.bold]
sold_factor = "1.25"
unsold_factor = "0.95"
[[books]]
ids = ["B001", "B002", "B003", "B004", "B005"]
strategies = ["task", "bold"]
[guardrails]
floor = "12.00"
max_step_pct = 8
[backtest]
demand = "logistic"
unit_cost = "9.00"
[backtest.logistic]
max_probability = "0.9"
steepness = "12"
seed = 3
"""

STATE = """
return {drawn: document.body.getAttribute('data-charts-drawn'),
        canvases: document.querySelectorAll('#charts canvas').length,
        titles: Array.from(document.querySelectorAll('#charts h3')).map(h => h.textContent),
        cells: Array.from(document.querySelectorAll('table td')).map(td => td.textContent),
        scripts: document.scripts.length, external: Array.from(document.querySelectorAll('[src],[href]')).length};
"""


def backtest(data: Path, config: Path, html: Path) -> dict[str, Any]:
    """Run the backtest's command line; its json output."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
        assert cli.main(["--data-file", str(data), "--config", str(config), "--html", str(html),
                         "--format", "json"]) == 0
    document: dict[str, Any] = json.loads(out.getvalue())
    return document


def test_the_report_draws_its_charts_offline(tmp_path: Path) -> None:
    odd = "<b>B005</b>"  # markup in a book id stays text
    data = price_file(tmp_path / "prices.csv", ["B001", "B002", "B003", "B004", odd], 400, 2)
    config = tmp_path / "repricer.toml"
    config.write_text(CONFIG.replace('"B005"', f'"{odd}"'), encoding="utf-8")
    html = tmp_path / "report.html"
    document = backtest(data, config, html)
    with chromium() as browser:
        browser.get(html.as_uri())
        state = WebDriverWait(browser, 20, poll_frequency=0.05).until(
            lambda b: (s := b.execute_script(STATE))["drawn"] is not None and s, "the charts")
        errors = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]  # type: ignore[no-untyped-call]
    assert errors == []
    assert state["drawn"] == "10" and state["canvases"] == 10
    assert state["titles"][:2] == ["B001 · task", "B001 · bold"] and f"{odd} · bold" in state["titles"]
    assert state["external"] == 0  # self-contained: nothing loaded from anywhere
    for pair in document["pairs"]:
        assert pair["revenue"] in state["cells"] and pair["margin"] in state["cells"]
    assert odd in state["cells"] and odd not in html.read_text(encoding="utf-8")


def screenshot(out: Path) -> None:
    """The report of the shipped data/data.csv (five books, two strategies, logistic demand)."""
    with tempfile.TemporaryDirectory(prefix="bt-shot-") as tmp:
        work = Path(tmp)
        html = work / "report.html"
        (work / "repricer.toml").write_text(CONFIG, encoding="utf-8")
        backtest(REPO / "data" / "data.csv", work / "repricer.toml", html)
        with chromium() as browser:
            browser.set_window_size(1280, 1500)
            browser.get(html.as_uri())
            WebDriverWait(browser, 20).until(lambda b: b.execute_script(STATE)["drawn"] is not None, "the charts")
            browser.save_screenshot(str(out))
    print(f"wrote {out}")


if __name__ == "__main__":
    screenshot(Path(sys.argv[1]) if len(sys.argv) > 1 else REPO / "docs" / "backtest-report.png")
