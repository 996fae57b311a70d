"""The launcher as a supervisor, driven for real: kill or freeze each actor in turn, stop the launcher,
kill the launcher, crash an actor again and again, make one fail with a configuration error. Every
observation comes from the launcher's events, never from its log."""

from __future__ import annotations

import itertools
import os
import signal
import socket
from collections import Counter, defaultdict
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
import zmq

from bench.driver import LauncherRun, wait_data_manager, wait_http
from repricer_supervisor.procfs import alive, cpu_seconds
from tests.harness import check_decision, read_points, write_csv
from tests.helpers import wait_for
from transport import protocol
from transport.protocol import ActorStatus

ACTORS = ["scheduler", "datamanager", "apiserver", "ledger", "algorithm"]
FAST = ["--books", "A,B,C", "--tick", "0.2", "--delay", "0", "--hang-timeout", "1.5", "--grace", "3"]


@pytest.fixture
def csv_path(tmp_path: Path) -> Path:
    return write_csv(tmp_path / "prices.csv", rows_per_book=200)


@pytest.fixture
def run(csv_path: Path, ipc_dir: Path) -> Iterator[LauncherRun]:
    with LauncherRun(["--data-file", str(csv_path), *FAST], ipc_dir) as launched:
        yield launched


def assert_consistent(run: LauncherRun, csv_path: Path) -> None:
    """Every decision right, none twice, and per pair the ticks only ever go forward."""
    points = read_points(csv_path)
    decisions = run.decisions()
    per_key = Counter((d["book"], d["strategy"], d["tick"]) for d in decisions)
    assert max(per_key.values()) == 1
    ticks: dict[tuple[str, str], list[int]] = defaultdict(list)
    for d in decisions:
        check_decision(d, points)
        ticks[(d["book"], d["strategy"])].append(d["tick"])
    for sequence in ticks.values():
        assert sequence == sorted(sequence)


def newest_tick(run: LauncherRun) -> int:
    return int(max(d["tick"] for d in run.decisions()))


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGSTOP], ids=["SIGKILL", "SIGSTOP"])
@pytest.mark.parametrize("victim", ACTORS)
def test_one_actor_failing_never_stops_the_others(run: LauncherRun, csv_path: Path, victim: str, sig: int) -> None:
    before = run.wait_for_actors(ACTORS)
    run.wait_decisions(6)
    os.kill(before[victim], sig)
    run.wait_restart(victim, before[victim])
    after = run.pids()
    for name in ACTORS:
        if name != victim:
            assert after[name] == before[name] and alive(before[name]), f"{name} was disturbed"
    assert not alive(before[victim])
    exited = [e for e in run.events("exited", victim) if e.pid == before[victim]]
    assert [e.exitcode for e in exited] == [-signal.SIGKILL]  # killed: by us, or by the launcher as hung
    assert bool(run.events("hung", victim)) == (sig == signal.SIGSTOP)
    resumed_from = newest_tick(run)
    run.wait_until(lambda: newest_tick(run) > resumed_from + 2, 20, "decisions to resume")
    assert run.stop() == 0
    assert_consistent(run, csv_path)


def test_sigterm_stops_everything_with_exit_0(run: LauncherRun, csv_path: Path) -> None:
    pids = run.wait_for_actors(ACTORS)
    run.wait_decisions(3)
    assert run.stop(signal.SIGTERM, timeout=10) == 0
    assert not [name for name, pid in pids.items() if alive(pid)]
    assert_consistent(run, csv_path)
    assert {(e.actor, e.exitcode) for e in run.events("stopped")} == {*((name, 0) for name in ACTORS), ("launcher", 0)}


def test_sigint_stops_everything_with_exit_0(run: LauncherRun) -> None:
    pids = run.wait_for_actors(ACTORS)
    assert run.stop(signal.SIGINT, timeout=10) == 0
    assert not [name for name, pid in pids.items() if alive(pid)]


def test_a_killed_launcher_leaves_no_orphans(run: LauncherRun) -> None:
    pids = run.wait_for_actors(ACTORS)
    run.process.kill()
    run.process.wait(5)
    run.wait_until(lambda: not any(alive(pid) for pid in pids.values()), 10, "every actor to exit",
                   launcher_must_run=False)


def test_a_crash_loop_backs_off_while_the_others_keep_working(csv_path: Path, ipc_dir: Path) -> None:
    with LauncherRun(["--data-file", str(csv_path), *FAST, "--max-backoff", "2"], ipc_dir) as run:
        pids = run.wait_for_actors(ACTORS)
        victim = pids["apiserver"]
        for _ in range(3):  # the APIServer dies as soon as it starts, three times in a row: 0.5, 1, 2 s
            os.kill(victim, signal.SIGKILL)
            victim = run.wait_restart("apiserver", victim)
        delays = [e.restart_in for e in run.events("exited", "apiserver")]
        assert len(delays) == 3 and all(later > earlier for earlier, later in itertools.pairwise(delays)), delays
        assert delays[-1] <= 2.0  # never beyond --max-backoff, jitter included
        os.kill(victim, signal.SIGKILL)
        cpu = cpu_seconds(run.process.pid)
        victim = run.wait_restart("apiserver", victim)
        assert cpu_seconds(run.process.pid) - cpu < 1.0  # waiting out a backoff costs the launcher nothing
        for name in ("scheduler", "datamanager", "algorithm"):
            assert run.pids()[name] == pids[name] and alive(pids[name])
        count = run.decision_count()  # now left alone, the APIServer serves and decisions flow
        run.wait_decisions(count + 3, timeout=40)
        assert run.stop() == 0


def test_an_actor_that_cannot_bind_its_port_is_given_up_on_with_one_clear_error(csv_path: Path,
                                                                                 ipc_dir: Path) -> None:
    with LauncherRun(["--data-file", str(csv_path), *FAST], ipc_dir) as run, socket.socket() as blocker:
        pids = run.wait_for_actors(ACTORS)
        blocker.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        os.kill(pids["apiserver"], signal.SIGKILL)
        def taken() -> bool:
            try:
                blocker.bind(("127.0.0.1", run.api_port))
            except OSError:
                return False
            return True

        wait_for(taken, 5, what="the port to come free")  # taken the moment it is, before the restart (0.5 s later)
        blocker.listen()
        code = run.wait(30)  # the launcher gives up on it, stops the others and exits
        log = run.log_tail(200)
        failed = run.events("failed")
        left_behind = [pid for pid in run.every_pid() if alive(pid)]
    assert code == 2, log
    assert [(e.actor, e.exitcode) for e in failed] == [("apiserver", 2)]
    assert [e.exitcode for e in run.events("exited", "apiserver")] == [-signal.SIGKILL, 2, 2]  # 3 tries in all
    assert "address already in use" in log.lower() and "giving up" in log
    assert "Traceback" not in log  # one line per attempt, no traceback
    assert {e.actor for e in run.events("stopped")} == {"scheduler", "datamanager", "ledger", "algorithm", "launcher"}
    assert not left_behind


@pytest.mark.parametrize(("victim", "ready"), [("datamanager", "data"), ("apiserver", "http")])
def test_decisions_resume_within_two_ticks_of_the_peer_coming_back(csv_path: Path, ipc_dir: Path, victim: str,
                                                                    ready: str) -> None:
    tick = 0.5
    with LauncherRun(["--data-file", str(csv_path), "--books", "A,B,C", "--tick", str(tick), "--delay", "0"],
                     ipc_dir) as run:
        before = run.wait_for_actors(ACTORS)
        run.wait_decisions(6)
        os.kill(before[victim], signal.SIGKILL)
        run.wait_restart(victim, before[victim])
        # When the new peer answers, seen from outside as the Algorithm sees it.
        back_at = (wait_data_manager(f"ipc://{ipc_dir}/data-0.sock", "A") if ready == "data"
                   else wait_http(f"http://127.0.0.1:{run.api_port}/request-data/0"))
        resumed = run.wait_until(lambda: next((d for d in run.decisions() if decided_at(d) > back_at), None), 20,
                                 "a decision after the peer came back")
        assert decided_at(resumed) - back_at <= 2 * tick + 0.5, "not within two ticks of the peer coming back"
        assert run.stop() == 0


def decided_at(decision: dict[str, object]) -> float:
    return datetime.fromisoformat(str(decision["ts"]).replace("Z", "+00:00")).timestamp()


def counted(run: LauncherRun) -> set[str]:
    """The actors whose counters have arrived in a status message."""
    return {s.actor for s in run.statuses() if s.counters and s.pid}


def test_supervisor_events_and_statuses_are_published(run: LauncherRun) -> None:
    before = run.wait_for_actors(ACTORS)
    run.wait_decisions(3)
    # Counters travel as messages: each actor's status comes with its heartbeat's counters.
    run.wait_until(lambda: counted(run) >= {"algorithm", "datamanager", "scheduler", "apiserver"}, 20,
                   "every actor's counters")
    os.kill(before["scheduler"], signal.SIGKILL)
    after = run.wait_restart("scheduler", before["scheduler"])
    exited = run.events("exited", "scheduler")[-1]
    assert (exited.pid, exited.exitcode) == (before["scheduler"], -signal.SIGKILL)
    assert "SIGKILL" in exited.detail and exited.restart_in > 0
    assert run.events("started", "scheduler")[-1].pid == after
    assert run.stop() == 0
    assert {e.actor for e in run.events("stopped")} == {*ACTORS, "launcher"}
    assert run.events()[-1].actor == "launcher"  # the launcher's own "stopped" is the last word
    final = {s.actor: s for s in run.statuses()}  # each actor's last status: sent after it stopped
    assert final["scheduler"].restarts == 1 and final["algorithm"].restarts == 0


def test_a_late_subscriber_is_told_every_running_actor(csv_path: Path, ipc_dir: Path) -> None:
    # A tick of a minute: no counter changes, so no status would come for seconds but for the greeting.
    with LauncherRun(["--data-file", str(csv_path), "--books", "A,B,C", "--tick", "60"], ipc_dir) as run:
        pids = run.wait_for_actors(ACTORS)
        ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
        late = ctx.socket(zmq.SUB)
        late.setsockopt(zmq.SUBSCRIBE, b"")
        late.connect(run.events_endpoint)
        seen: dict[str, int] = {}
        def every_actor_told() -> bool:
            while late.poll(0):
                message = protocol.decode(late.recv())
                if isinstance(message, ActorStatus):
                    seen[message.actor] = message.pid
            return set(seen) >= set(ACTORS)

        try:
            wait_for(every_actor_told, 1.0, 0.1, "a status of every running actor",
                     pause=lambda seconds: late.poll(int(seconds * 1000) + 1))
        finally:
            late.close(linger=0)
            ctx.term()
        assert seen == pids  # every running actor and its pid, within a second of joining
