"""The launcher's side of the Dashboard: on by default, its URL logged, a private events endpoint, a
refusal of a public address without --insecure."""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path
from typing import Any

from actors.kinds import DASHBOARD
from bench.driver import LauncherRun
from repricer_supervisor.launcher import parse_args
from repricer_supervisor.plan import plan
from tests.helpers import free_port, python


def test_on_by_default_off_with_a_switch_or_run() -> None:
    def starts(*argv: str) -> bool:
        # --dashboard-port 0: the default port may be taken on a machine running tests
        return parse_args(["--dashboard-port", "0", *argv]).options.starts(DASHBOARD)

    assert starts()
    assert not starts("--no-dashboard")
    assert not starts("--run", "scheduler,datamanager,apiserver,algorithm")
    assert starts("--run", "scheduler,dashboard")
    assert starts("--run", "scheduler", "--dashboard")


def test_its_options_come_from_the_launcher() -> None:
    options = parse_args(["--dashboard-port", "9999", "--dashboard-db", "x.db"]).options
    planned = plan(options, t0=0.0, private_dir="/run/x")
    argv = planned.named("dashboard").argv
    assert argv[argv.index("--port") + 1] == "9999" and Path(argv[argv.index("--db") + 1]).is_absolute()
    assert argv[argv.index("--events-endpoint") + 1] == planned.events_endpoint == "ipc:///run/x/events.sock"
    assert planned.dashboard_url == "http://127.0.0.1:9999/"
    options = parse_args(["--dashboard-port", "0", "--db", "/tmp/elsewhere.sqlite3"]).options
    argv = plan(options, t0=0.0, private_dir="/run/x").named("dashboard").argv
    assert argv[argv.index("--db") + 1] == "/tmp/elsewhere.sqlite3"  # the Ledger's database by default


def test_a_public_dashboard_needs_insecure() -> None:
    done = python("launcher.py", "--dashboard", "--dashboard-host", "0.0.0.0")
    assert done.returncode == 2 and "--insecure" in done.stderr
    done = python("launcher.py", "--dashboard", "--dashboard-port", "70000")
    assert done.returncode == 2 and "--dashboard-port must be within 0..65535" in done.stderr


def test_the_launcher_logs_the_url_and_feeds_the_dashboard_its_events(ipc_dir: Path, tmp_path: Path) -> None:
    port = free_port()
    run = LauncherRun(["--run", "dashboard", "--dashboard-port", str(port), "--dashboard-db",
                       str(tmp_path / "none.sqlite3")], ipc_dir)
    try:
        run.wait_until(lambda: any(f"dashboard: http://127.0.0.1:{port}/" in line for line in run.log), 20, "the URL")

        def dashboard_sees_itself() -> Any:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/overview", timeout=2) as response:
                    state = json.loads(response.read())
            except OSError:
                return None
            return [a for a in state["actors"] if a["name"] == "dashboard" and a["state"] == "up"]

        run.wait_until(dashboard_sees_itself, 20, "the dashboard to see its own status on the private events socket")
        assert run.stop() == 0
    finally:
        run.kill_everything()
