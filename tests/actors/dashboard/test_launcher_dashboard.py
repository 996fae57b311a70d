"""The launcher's side of the Dashboard: on by default, its URL logged, a private events endpoint, a
refusal of a public address without --insecure."""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path
from typing import Any

from bench.driver import LauncherRun
from repricer_supervisor.launcher import parse_args
from tests.helpers import free_port, python


def test_on_by_default_off_with_a_switch_or_run() -> None:
    from actors.dashboard import launch
    free = ["--dashboard-port", "0"]  # the default port may be taken on a machine running tests
    assert launch.wanted(parse_args(free))
    assert not launch.wanted(parse_args([*free, "--no-dashboard"]))
    assert not launch.wanted(parse_args([*free, "--run", "scheduler,datamanager,apiserver,algorithm"]))
    assert launch.wanted(parse_args([*free, "--run", "scheduler,dashboard"]))
    assert launch.wanted(parse_args([*free, "--run", "scheduler", "--dashboard"]))
    args = parse_args(["--dashboard-port", "9999", "--dashboard-db", "x.db"])
    options = launch.child_options(args)
    assert options.port == 9999 and Path(options.db).is_absolute() and launch.url(args) == "http://127.0.0.1:9999/"
    args = parse_args([*free, "--db", "/tmp/elsewhere.sqlite3"])
    assert launch.child_options(args).db == "/tmp/elsewhere.sqlite3"  # the Ledger's database by default


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
