"""Renamed flags (issue 18: a flag name means one thing in every program): each old name still works for
one release, means exactly what its new name means, and says so in one warning line on stderr."""

from __future__ import annotations

import argparse
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import msgpack
import pytest
import zmq

from actors import kinds, runtime
from actors.algorithm.options import AlgorithmOptions
from actors.dashboard.options import DashboardOptions
from actors.data_manager.options import DataManagerOptions
from actors.kinds import ActorKind
from actors.ledger.options import LedgerOptions
from actors.scheduler.options import SchedulerOptions
from repricer_supervisor.launcher import build_parser, parse_options
from tests.helpers import REPO, ipc_endpoint

OPTIONS_OF: dict[ActorKind, type[Any]] = {
    kinds.SCHEDULER: SchedulerOptions, kinds.DATA_MANAGER: DataManagerOptions, kinds.LEDGER: LedgerOptions,
    kinds.ALGORITHM: AlgorithmOptions, kinds.DASHBOARD: DashboardOptions,
}

# (program, old name, new name, a value)
RENAMED = [
    ("launcher", "--data", "--data-file", "/srv/prices.csv"),
    ("launcher", "--events", "--events-endpoint", "ipc:///run/events.sock"),
    ("scheduler", "--ticks", "--ticks-endpoint", "ipc:///run/ticks.sock"),
    ("datamanager", "--data", "--data-endpoint", "ipc:///run/data.sock"),
    ("datamanager", "--csv", "--data-file", "/srv/prices.csv"),
    ("algorithm", "--ticks", "--ticks-endpoint", "ipc:///run/ticks.sock"),
    ("algorithm", "--data", "--data-endpoint", "ipc:///run/data.sock"),
    ("algorithm", "--ledger", "--ledger-endpoint", "ipc:///run/ledger.sock"),
    ("algorithm", "--workers", "--workers-total", "3"),
    ("ledger", "--ledger", "--ledger-endpoint", "ipc:///run/ledger.sock"),
    ("dashboard", "--events", "--events-endpoint", "ipc:///run/events.sock"),
    *[(kind.name, "--heartbeat", "--heartbeat-endpoint", "ipc:///run/heartbeat.sock") for kind in OPTIONS_OF],
]


def parse(program: str, argv: list[str]) -> Any:
    if program == "launcher":
        return parse_options(argv)
    kind = kinds.BY_NAME[program]
    return runtime.parse_options(kind, OPTIONS_OF[kind], None, argv)


@pytest.mark.parametrize(("program", "old", "new", "value"), RENAMED,
                         ids=[f"{program} {old}" for program, old, _, _ in RENAMED])
def test_an_old_name_means_the_new_one_and_warns_once(program: str, old: str, new: str, value: str,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    expected = parse(program, [new, value])
    assert capsys.readouterr().err == ""
    assert expected != parse(program, [])  # the value is not the default: the alias really set it
    assert parse(program, [old, value]) == expected
    assert capsys.readouterr().err == f"warning: {old} is deprecated and goes in the next release: use {new}\n"


@pytest.mark.parametrize(("program", "old", "new"), [(program, old, new) for program, old, new, _ in RENAMED],
                         ids=[f"{program} {old}" for program, old, _, _ in RENAMED])
def test_help_names_each_old_name_beside_its_new_one(program: str, old: str, new: str) -> None:
    if program == "launcher":
        parser = build_parser()
    else:
        kind = kinds.BY_NAME[program]
        parser = runtime.build_parser(kind, OPTIONS_OF[kind], None)
    listed = {name: action for action in parser._actions if action.help != argparse.SUPPRESS
              for name in action.option_strings}
    assert old not in listed  # hidden: --help lists each option once, by its new name
    assert f"old name {old}: deprecated, goes in the next release" in str(listed[new].help)


def test_the_old_standalone_command_line_still_runs_the_actor(ipc_dir: Path) -> None:
    # The command the README showed before the rename: the Scheduler still binds where --ticks says.
    endpoint = ipc_endpoint(ipc_dir, "ticks")
    ctx = zmq.Context()
    sub = ctx.socket(zmq.SUB)
    sub.setsockopt(zmq.SUBSCRIBE, b"")
    sub.setsockopt(zmq.LINGER, 0)
    sub.setsockopt(zmq.RCVTIMEO, 10_000)
    sub.connect(endpoint)
    process = subprocess.Popen([sys.executable, "-m", "actors.scheduler", "--ticks", endpoint, "--tick", "0.05",
                                "--log-level", "WARNING"], cwd=REPO, stdin=subprocess.DEVNULL,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        assert msgpack.unpackb(sub.recv())  # a tick arrived
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=10)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate(timeout=5)
        sub.close()
        ctx.term()
    assert process.returncode == 0
    assert err.splitlines() == ["warning: --ticks is deprecated and goes in the next release: use --ticks-endpoint"]
