"""Alerts staged over the real system (launcher, follow mode, Ledger, Dashboard, a webhook): a price war,
a pinned floor and stale competitor data, each written into the competitor's CSV as it runs, each
raise their alert within the configured time and clear when the condition ends -- in the Ledger's
database, on the Dashboard and at the webhook."""

from __future__ import annotations

import http.server
import json
import re
import sqlite3
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bench.driver import LauncherRun
from tests.helpers import free_port

TICK = 0.3
PINNED, STALE, WAR_TICKS = 2.0, 2.0, 3
CONFIG = f"""[strategies.undercut]
delay = 0
sold_factor = "0.90"
unsold_factor = "0.90"
[[books]]
ids = ["W", "F", "S"]
[guardrails.books.F]
floor = "20.00"
[alerts]
price_war_ticks = {WAR_TICKS}
floor_pinned_seconds = {PINNED}
stale_competitor_seconds = {STALE}
guardrail_share_pct = 0
ledger_lag_seconds = 0
webhook = "http://127.0.0.1:{{port}}/hook"
"""


class Feed:
    """The competitor's CSV, appended to while the system runs (one row per book per step)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.prices = {"W": 30.0, "F": 15.0, "S": 25.0}
        self.moves = {"W": -0.05, "F": 0.01, "S": 0.01}  # W falls; F creeps up, far below its floor; S ...
        self.writing = {"W", "F"}  # ... gets no new row: stale
        self._lock = threading.Lock()
        self._stop = threading.Event()
        lines = ["timestamp,book_id,price"]
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


def overview(port: int) -> dict[str, Any]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/overview", timeout=10) as reply:
        return dict(json.loads(reply.read()))


@pytest.mark.timeout(180)
def test_a_price_war_a_pinned_floor_and_stale_data_raise_their_alerts_in_time_and_clear(
        tmp_path: Path, ipc_dir: Path, hook: tuple[int, list[dict[str, Any]]]) -> None:
    hook_port, delivered = hook
    feed = Feed(tmp_path / "prices.csv")
    config = tmp_path / "repricer.toml"
    config.write_text(CONFIG.format(port=hook_port), encoding="utf-8")
    db = ipc_dir / "ledger.sqlite3"
    port = free_port()
    writer = threading.Thread(target=feed.run, daemon=True)
    wanted = {("price_war", "W"), ("floor_pinned", "F"), ("stale_competitor", "S")}
    try:
        with LauncherRun(["--data-file", str(feed.path), "--mode", "follow", "--config", str(config), "--tick",
                          str(TICK), "--dashboard", "--dashboard-port", str(port)], ipc_dir) as run:
            run.wait_decisions(3)
            writer.start()  # the competitor moves from now on (S excepted)
            started = time.time()
            raised = run.wait_until(lambda: (a := alerts(db)) and wanted <= set(a) and a, 40, "the three alerts")
            took = time.time() - started
            war, pinned, stale = raised[("price_war", "W")][0], raised[("floor_pinned", "F")][0], \
                raised[("stale_competitor", "S")][0]
            # Each within its configured time: the floor and the stale prices as soon as their time had passed
            # (at the next decision), the war on its third fall in a row.
            assert PINNED <= pinned["raised_at"] - pinned["since"] < PINNED + 4 * TICK + 1, pinned
            assert STALE <= stale["raised_at"] - stale["since"] < STALE + 4 * TICK + 1, stale
            assert f"fell together on {WAR_TICKS} decisions in a row" in war["detail"], war
            assert 0 < war["raised_at"] - war["since"] < (WAR_TICKS + 2) * TICK + 1, war  # on the third fall
            assert took < 30, took
            shown = run.wait_until(lambda: (o := overview(port))["business"] and o["business"]["alerts_open"] >= 3
                                   and o, 20, "the alerts on the Dashboard")
            assert {(a["alert"], a["book"]) for a in shown["business"]["alerts"]} >= wanted

            # The conditions end: W's competitor climbs, F's rises over its floor, S gets new rows.
            feed.set("W", +0.5)
            feed.set("F", 0.01, price=30.0)
            feed.set("S", 0.01, write=True)
            ended = run.wait_until(lambda: all((a := alerts(db))[key][-1]["cleared_at"] for key in wanted) and a, 40,
                                   "the three alerts cleared")
            assert re.fullmatch(r"the price \((2\d\.\d\d)\) is off its floor", ended[("floor_pinned", "F")][-1]
                                ["cleared_detail"])
            assert "changed" in ended[("stale_competitor", "S")][-1]["cleared_detail"]
            run.wait_until(lambda: overview(port)["business"]["alerts_open"] == 0, 20, "the Dashboard clear")
            # The webhook got each raise and each clear, as JSON.
            run.wait_until(lambda: {(d["alert"], d["book"], d["state"]) for d in delivered} >= {
                (a, b, s) for a, b in wanted for s in ("raised", "cleared")}, 20, "the webhook's deliveries")
            assert run.stop() == 0, run.log_tail()
    finally:
        feed.stop()
        if writer.is_alive():
            writer.join(5)
