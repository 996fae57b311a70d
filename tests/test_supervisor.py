"""The launcher as a supervisor, driven for real: kill or freeze each actor in turn, stop the launcher,
kill the launcher, make an actor crash at start."""

from __future__ import annotations

import itertools
import os
import re
import signal
import socket
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
import zmq

from tests.harness import LauncherRun, alive, check_decision, read_points
from tests.test_launcher import write_csv
from transport import protocol
from transport.protocol import ActorStatus, SupervisorEvent

ACTORS = ["scheduler", "datamanager", "apiserver", "ledger", "algorithm"]
FAST = ["--books", "A,B,C", "--tick", "0.2", "--delay", "0", "--hang-timeout", "1.5", "--grace", "3"]


@pytest.fixture
def csv_path(tmp_path: Path) -> Path:
    return write_csv(tmp_path / "prices.csv", rows_per_book=200)


@pytest.fixture
def run(csv_path: Path, ipc_dir: Path) -> Iterator[LauncherRun]:
    launched = LauncherRun(ipc_dir, ["--data", str(csv_path), *FAST])
    try:
        yield launched
    finally:
        launched.kill_everything()


def assert_consistent(run: LauncherRun, csv_path: Path) -> None:
    """Every decision right, none twice, and per pair the ticks only ever go forward."""
    points = read_points(csv_path)
    decisions = list(run.decisions)
    per_key = Counter((d["book"], d["strategy"], d["tick"]) for d in decisions)
    assert max(per_key.values()) == 1
    ticks: dict[tuple[str, str], list[int]] = defaultdict(list)
    for d in decisions:
        check_decision(d, points)
        ticks[(d["book"], d["strategy"])].append(d["tick"])
    for sequence in ticks.values():
        assert sequence == sorted(sequence)


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGSTOP], ids=["SIGKILL", "SIGSTOP"])
@pytest.mark.parametrize("victim", ACTORS)
def test_one_actor_failing_never_stops_the_others(run: LauncherRun, csv_path: Path, victim: str, sig: int) -> None:
    before = run.wait_for_actors(ACTORS)
    run.wait_decisions(6)
    os.kill(before[victim], sig)
    after = run.wait_until(lambda: run.pids()[victim] != before[victim] and run.pids(), 20,
                           f"{victim} to be restarted")
    for name in ACTORS:
        if name != victim:
            assert after[name] == before[name] and alive(before[name]), f"{name} was disturbed"
    assert not alive(before[victim])
    reason = "hung" if sig == signal.SIGSTOP else "SIGKILL"
    assert any(victim in line and reason in line for line in run.log)
    resumed_from = max(d["tick"] for d in run.decisions)
    run.wait_until(lambda: max(d["tick"] for d in run.decisions) > resumed_from + 2, 20, "decisions to resume")
    assert run.stop() == 0
    assert_consistent(run, csv_path)


def test_sigterm_stops_everything_with_exit_0(run: LauncherRun, csv_path: Path) -> None:
    pids = run.wait_for_actors(ACTORS)
    run.wait_decisions(3)
    assert run.stop(signal.SIGTERM, timeout=10) == 0
    assert not [name for name, pid in pids.items() if alive(pid)]
    assert_consistent(run, csv_path)


def test_sigint_stops_everything_with_exit_0(run: LauncherRun) -> None:
    pids = run.wait_for_actors(ACTORS)
    assert run.stop(signal.SIGINT, timeout=10) == 0
    assert not [name for name, pid in pids.items() if alive(pid)]


def test_a_killed_launcher_leaves_no_orphans(run: LauncherRun) -> None:
    pids = run.wait_for_actors(ACTORS)
    run.process.kill()
    run.process.wait(5)
    run.wait_until(lambda: not any(alive(pid) for pid in pids.values()), 10, "every actor to exit")


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def test_a_crash_loop_backs_off_while_the_others_keep_working(csv_path: Path, ipc_dir: Path) -> None:
    blocker = socket.socket()
    blocker.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    run = LauncherRun(ipc_dir, ["--data", str(csv_path), *FAST, "--max-backoff", "4"])
    try:
        blocker.bind(("127.0.0.1", run.api_port))  # the APIServer cannot bind: it dies at every start
        blocker.listen()
        delays = run.wait_until(
            lambda: d if len(d := [float(m.group(1)) for line in run.log if "apiserver" in line
                                   and (m := re.search(r"restarting in ([\d.]+)s", line))]) >= 4 else None,
            30, "four apiserver restarts")
        assert all(later > earlier for earlier, later in itertools.pairwise(delays))  # backoff grows
        pids = run.pids()
        cpu = cpu_seconds(run.process.pid)
        run.wait_until(lambda: len([line for line in run.log if "apiserver" in line and "restarting" in line]) >= 5,
                       30, "a fifth restart")
        assert cpu_seconds(run.process.pid) - cpu < 1.0  # waiting out a backoff costs the launcher nothing
        for name in ("scheduler", "datamanager", "algorithm"):
            assert run.pids()[name] == pids[name] and alive(pids[name])
        blocker.close()  # the port frees up: the APIServer starts and decisions flow
        run.wait_decisions(3, timeout=40)
        assert run.stop() == 0
    finally:
        blocker.close()
        run.kill_everything()


@pytest.mark.parametrize(("victim", "ready"), [("datamanager", "serving"), ("apiserver", "listening on")])
def test_decisions_resume_within_two_ticks_of_the_peer_coming_back(csv_path: Path, ipc_dir: Path, victim: str,
                                                                    ready: str) -> None:
    tick = 0.5
    run = LauncherRun(ipc_dir, ["--data", str(csv_path), "--books", "A,B,C", "--tick", str(tick), "--delay", "0"])
    try:
        before = run.wait_for_actors(ACTORS)
        run.wait_decisions(6)
        os.kill(before[victim], signal.SIGKILL)
        new_pid = run.wait_until(lambda: (p := run.pids()[victim]) != before[victim] and p, 20, "a restart")
        run.wait_until(lambda: any(f"{victim}[{new_pid}]" in line and ready in line for line in run.log), 20,
                       f"the new {victim} to be ready")
        back_at = time.time()  # the line was read as it was written: this is when the peer came back
        resumed = run.wait_until(
            lambda: next((d for d in list(run.decisions) if decided_at(d) > back_at), None), 20,
            "a decision after the peer came back")
        assert decided_at(resumed) - back_at <= 2 * tick + 0.5, "not within two ticks of the peer coming back"
        assert run.stop() == 0
    finally:
        run.kill_everything()


def decided_at(decision: dict[str, object]) -> float:
    return datetime.fromisoformat(str(decision["ts"]).replace("Z", "+00:00")).timestamp()


def test_supervisor_events_are_published(csv_path: Path, ipc_dir: Path) -> None:
    endpoint = f"ipc://{ipc_dir}/events.sock"
    ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
    sub = ctx.socket(zmq.SUB)
    sub.setsockopt(zmq.SUBSCRIBE, b"")
    sub.setsockopt(zmq.RCVTIMEO, 20_000)
    sub.connect(endpoint)
    run = LauncherRun(ipc_dir, ["--data", str(csv_path), *FAST, "--events", endpoint])
    try:
        before = run.wait_for_actors(ACTORS)
        run.wait_decisions(3)
        os.kill(before["scheduler"], signal.SIGKILL)
        seen: list[SupervisorEvent] = []
        statuses: list[ActorStatus] = []
        # The restart's "started", not the first start's (which the SUB may or may not have caught).
        while not any(e.event == "started" and e.actor == "scheduler" and e.pid != before["scheduler"] for e in seen):
            message = protocol.decode(sub.recv())
            if isinstance(message, SupervisorEvent):
                seen.append(message)
            else:
                assert isinstance(message, ActorStatus)
                statuses.append(message)
        exited = next(e for e in seen if e.event == "exited")
        assert (exited.actor, exited.pid) == ("scheduler", before["scheduler"])
        assert "SIGKILL" in exited.detail
        assert seen[-1].pid == run.pids()["scheduler"] != before["scheduler"]
        assert run.stop() == 0
        stopped: set[str] = set()
        while len(stopped) < len(ACTORS):
            event = protocol.decode(sub.recv())
            if isinstance(event, SupervisorEvent) and event.event == "stopped":
                stopped.add(event.actor)
            elif isinstance(event, ActorStatus):
                statuses.append(event)
        assert stopped == set(ACTORS)
        # Counters travel as messages too: each actor's status comes with its heartbeat's counters.
        assert {s.actor for s in statuses if s.counters and s.pid} >= {"algorithm", "datamanager"}, statuses
    finally:
        run.kill_everything()
        sub.close(linger=0)
        ctx.term()
