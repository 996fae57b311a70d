"""The launcher's plan, from its command line alone: which children, at which endpoints, with which
argv (no process started). Each child's argv is checked by parsing it as the actor itself does."""

from __future__ import annotations

from typing import Any

import pytest

from actors import kinds, paths, runtime
from actors.algorithm.options import AlgorithmOptions
from actors.api_server.options import APIServerOptions
from actors.dashboard.options import DashboardOptions
from actors.data_manager.options import DataManagerOptions
from actors.kinds import ActorKind
from actors.ledger.options import LedgerOptions
from actors.options import to_argv
from actors.scheduler.options import SchedulerOptions
from repricer_supervisor.launcher import parse_options
from repricer_supervisor.options import LauncherOptions
from repricer_supervisor.plan import ChildPlan, Plan, needs_private_dir, plan

OPTIONS_OF: dict[ActorKind, type[Any]] = {
    kinds.SCHEDULER: SchedulerOptions, kinds.DATA_MANAGER: DataManagerOptions, kinds.API_SERVER: APIServerOptions,
    kinds.LEDGER: LedgerOptions, kinds.ALGORITHM: AlgorithmOptions, kinds.DASHBOARD: DashboardOptions,
}
PRIVATE = "/run/private"


def options(*argv: str) -> LauncherOptions:
    return parse_options(argv)


def planned(*argv: str) -> Plan:
    return plan(options(*argv), t0=1000.0, private_dir=PRIVATE)


def parsed(child: ChildPlan) -> tuple[Any, runtime.RuntimeOptions]:
    """What the child's actor makes of its argv."""
    return runtime.parse_options(child.kind, OPTIONS_OF[child.kind], None, child.argv)


def test_run_algorithm_with_two_workers_plans_exactly_two_workers() -> None:
    the_plan = planned("--run", "algorithm", "--workers", "2", "--books", "A,B", "--api-url", "http://10.0.0.5:8080",
                       "--data-endpoint", "tcp://10.0.0.4:5556", "--ticks-endpoint", "tcp://10.0.0.4:5555",
                       "--no-ledger", "--keys", "/k")
    assert [(c.name, c.kind) for c in the_plan.children] == [("algorithm-0", kinds.ALGORITHM),
                                                              ("algorithm-1", kinds.ALGORITHM)]
    for index, child in enumerate(the_plan.children):
        worker, _ = parsed(child)
        assert worker == AlgorithmOptions(books="A,B", ticks_endpoint="tcp://10.0.0.4:5555",
                                          data_endpoint="tcp://10.0.0.4:5556", api_url="http://10.0.0.5:8080",
                                          ledger_endpoint="", workers_total=2, worker=index)
    assert the_plan.children[1].argv[:8] == ("--books", "A,B", "--ticks-endpoint", "tcp://10.0.0.4:5555",
                                             "--data-endpoint", "tcp://10.0.0.4:5556", "--api-url",
                                             "http://10.0.0.5:8080")


def test_by_default_every_actor_once_on_the_tcp_defaults() -> None:
    the_plan = planned()
    assert [c.name for c in the_plan.children] == ["scheduler", "apiserver", "ledger", "datamanager", "algorithm",
                                                   "dashboard"]
    scheduler, common = parsed(the_plan.named("scheduler"))
    assert scheduler == SchedulerOptions(t0=1000.0)
    assert common.heartbeat_endpoint is None  # the supervisor adds it, with --parent-pid, at each start
    assert the_plan.endpoints.heartbeat == f"ipc://{PRIVATE}/heartbeat.sock"
    assert parsed(the_plan.named("datamanager"))[0] == DataManagerOptions()
    assert parsed(the_plan.named("algorithm"))[0] == AlgorithmOptions()
    assert parsed(the_plan.named("apiserver"))[0] == APIServerOptions()
    assert parsed(the_plan.named("ledger"))[0] == LedgerOptions()
    dashboard, _ = parsed(the_plan.named("dashboard"))
    assert dashboard.events_endpoint == the_plan.events_endpoint == f"ipc://{PRIVATE}/events.sock"


def test_the_launchers_options_reach_each_actor() -> None:
    the_plan = planned("--data-file", "/d/p.csv", "--mode", "follow", "--tick", "0.5", "--delay", "0.1",
                       "--max-in-flight", "8", "--db", "/d/l.sqlite3", "--retain-rows", "5", "--api-port", "9000",
                       "--log-level", "debug", "--hang-timeout", "0.6", "--keys", "/k", "--dashboard-port", "0")
    assert parsed(the_plan.named("datamanager"))[0] == DataManagerOptions(data_file="/d/p.csv", mode="follow")
    assert parsed(the_plan.named("scheduler"))[0] == SchedulerOptions(tick=0.5, t0=1000.0)
    worker = parsed(the_plan.named("algorithm"))[0]
    assert (str(worker.delay), worker.max_in_flight, worker.api_url) == ("0.1", 8, "http://127.0.0.1:9000")
    assert parsed(the_plan.named("ledger"))[0] == LedgerOptions(db="/d/l.sqlite3", retain_rows=5)
    assert parsed(the_plan.named("apiserver"))[0] == APIServerOptions(port=9000)
    assert parsed(the_plan.named("dashboard"))[0].db == "/d/l.sqlite3"
    for child in the_plan.children:
        # Three beats per hang timeout: one late beat is never taken for a hang.
        assert parsed(child)[1] == runtime.RuntimeOptions(heartbeat_interval=0.2, log_level="DEBUG", keys="/k")


def test_a_run_directory_makes_every_endpoint_private() -> None:
    the_plan = plan(options("--run-dir", "/r", "--data-managers", "2", "--no-dashboard"), t0=0.0)
    net = the_plan.endpoints
    assert (net.ticks, net.data, net.heartbeat, net.ledger) == (
        "ipc:///r/ticks.sock", ("ipc:///r/data-0.sock", "ipc:///r/data-1.sock"), "ipc:///r/heartbeat.sock",
        "ipc:///r/ledger.sock")
    assert [parsed(c)[0].data_endpoint for c in the_plan.of_kind(kinds.DATA_MANAGER)] == list(net.data)
    assert parsed(the_plan.named("algorithm"))[0].data_endpoint == "ipc:///r/data-0.sock,ipc:///r/data-1.sock"
    assert parsed(the_plan.named("ledger"))[0].db == "/r/ledger.sqlite3"
    assert the_plan.events_endpoint is None


def test_several_data_managers_take_consecutive_ports() -> None:
    the_plan = planned("--data-endpoint", "tcp://127.0.0.1:6000", "--data-managers", "3", "--run", "datamanager")
    assert [(c.name, parsed(c)[0].data_endpoint) for c in the_plan.children] == [
        ("datamanager-0", "tcp://127.0.0.1:6000"), ("datamanager-1", "tcp://127.0.0.1:6001"),
        ("datamanager-2", "tcp://127.0.0.1:6002")]


def test_workers_on_several_machines_have_global_indexes() -> None:
    the_plan = planned("--run", "algorithm", "--workers", "2", "--workers-total", "5", "--worker-offset", "3")
    assert [(c.name, parsed(c)[0].worker, parsed(c)[0].workers_total) for c in the_plan.children] == [
        ("algorithm-3", 3, 5), ("algorithm-4", 4, 5)]


def test_without_the_ledger_no_ledger_and_no_ledger_endpoint() -> None:
    the_plan = planned("--no-ledger")
    assert not the_plan.of_kind(kinds.LEDGER)
    assert parsed(the_plan.named("algorithm"))[0].ledger_endpoint == ""


def test_given_endpoints_need_no_private_directory() -> None:
    given = options("--heartbeat-endpoint", "tcp://127.0.0.1:7000", "--events-endpoint", "ipc:///e/ev.sock")
    assert not needs_private_dir(given)
    the_plan = plan(given, t0=0.0)
    assert (the_plan.endpoints.heartbeat, the_plan.events_endpoint) == ("tcp://127.0.0.1:7000", "ipc:///e/ev.sock")
    with pytest.raises(ValueError, match="private directory"):
        plan(options(), t0=0.0)


def test_the_launchers_options_turn_back_into_the_same_command_line() -> None:
    given = options("--data-file", "/d/p.csv", "--run", "scheduler,algorithm", "--workers", "3", "--books", "A",
                    "--events-endpoint", "ipc:///e/ev.sock", "--no-ledger", "--dashboard-port", "0", "--grace", "2")
    assert options(*to_argv(given)) == given


def test_each_worker_gets_the_spool_options_and_a_private_run_keeps_its_spools_inside() -> None:
    assert options().spool_dir == str(paths.SPOOL_DIR)  # in the project's folder, whatever the working directory
    assert options("--run-dir", "/r").spool_dir == "/r/spool"  # a --run-dir run is private: its spools too
    # The spool belongs to its database: two databases never share one (a pair of one resumed from a price
    # the other was given, past its step limit and floor).
    assert options("--db", "/x/r1.db").spool_dir == "/x/r1.db.spool"
    assert options("--db", "/x/r1.db", "--spool-dir", "/s").spool_dir == "/s"
    the_plan = planned("--workers", "2", "--spool-dir", "/s", "--spool-max-bytes", "64M", "--ledger-backlog", "500",
                       "--no-spool")
    workers = [parsed(c)[0] for c in the_plan.children if c.kind == kinds.ALGORITHM]
    assert [(w.worker, w.spool_dir, w.spool_max_bytes, w.ledger_backlog, w.no_spool) for w in workers] == [
        (0, "/s", 64 << 20, 500, True), (1, "/s", 64 << 20, 500, True)]
