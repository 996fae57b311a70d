"""The live state, pure: actor states from events and statuses, the banner, rates from counters."""

from __future__ import annotations

from actors.dashboard import live
from actors.dashboard.live import LiveState
from actors.dashboard.rates import RateRing
from tests.helpers import FakeClock
from transport.protocol import ActorStatus, SupervisorEvent


def status(actor: str, pid: int, ts: float, *, up_since: float = 100.0, last_beat: float = 101.0, restarts: int = 0,
           **counters: int) -> ActorStatus:
    return ActorStatus(ts, actor, pid, 30_000, 20_000, restarts, 0, up_since, last_beat, counters)


def test_an_actor_killed_and_restarted_shows_in_the_banner_until_it_beats_again() -> None:
    clock = FakeClock(1000.0)
    state = LiveState(600, 5, clock)
    state.on_status(status("datamanager", 11, 1000.0))
    assert state.actors["datamanager"].state == "up" and state.banner(clock()) == []
    clock.now = 1001.0
    state.on_event(SupervisorEvent(1001.0, "exited", "datamanager", 11, "killed by SIGKILL; restart in 0.5s"))
    assert state.banner(clock()) == ["datamanager is restarting (killed by SIGKILL; restart in 0.5s)"]
    assert state.actors["datamanager"].numbers()[2:4] == (0, 0)  # no process, no memory
    state.on_event(SupervisorEvent(1001.6, "started", "datamanager", 12, "restart #1"))
    assert state.actors["datamanager"].state == "starting"
    assert state.actors["datamanager"].numbers()[2] == 0  # the old process's memory is not the new one's
    assert state.banner(clock()) == ["datamanager is starting (restart #1)"]
    # A status before its first beat keeps it starting; the first beat after the start makes it up.
    state.on_status(status("datamanager", 12, 1001.7, up_since=1001.6, last_beat=1000.5, restarts=1))
    assert state.actors["datamanager"].state == "starting"
    state.on_status(status("datamanager", 12, 1002.6, up_since=1001.6, last_beat=1002.6, restarts=1))
    view = state.actors["datamanager"]
    assert (view.state, view.pid, view.numbers()) == ("up", 12, (1, 0, 30_000, 20_000, 1002.6))
    assert state.banner(clock()) == []


def test_hung_then_stopped_and_a_status_alone_places_an_actor() -> None:
    clock = FakeClock(50.0)
    state = LiveState(600, 5, clock)
    state.on_status(status("algorithm-1", 7, 50.0, up_since=0.0, last_beat=0.0))
    assert state.actors["algorithm-1"].state == "starting"
    state.on_event(SupervisorEvent(51.0, "hung", "algorithm-1", 7, "no heartbeat for 3.1s"))
    assert state.actors["algorithm-1"].state == "hung"
    state.on_status(status("algorithm-1", 0, 52.0))  # no process: still hung/restarting, not "down"
    assert state.actors["algorithm-1"].state == "hung"
    state.on_status(status("scheduler", 0, 52.0))
    assert state.actors["scheduler"].state == "down"
    state.on_event(SupervisorEvent(53.0, "stopping", "scheduler", 3))
    state.on_status(status("scheduler", 3, 53.5))  # a late status does not undo the stop
    assert state.actors["scheduler"].state == "stopping"


def test_the_banner_says_when_the_launcher_is_silent_or_live_state_is_off() -> None:
    clock = FakeClock(10.0)
    state = LiveState(600, 5, clock)
    assert state.banner(clock()) == ["waiting for the launcher's first status message"]
    state.on_status(status("scheduler", 3, 10.0))
    clock.now = 10.0 + live.STALE_AFTER + 5
    assert state.banner(clock())[0].startswith("no news from the launcher for 35s")
    assert LiveState(600, 5, clock, listening=False).banner(clock())[0].startswith("live state is off")


def test_actors_and_events_are_bounded() -> None:
    clock = FakeClock()
    state = LiveState(600, 5, clock)
    for i in range(live.ACTORS_MAX + 10):
        state.on_event(SupervisorEvent(1.0, "started", f"algorithm-{i}", i + 1))
    assert len(state.actors) == live.ACTORS_MAX and state.refused_actors == 10
    assert len(state.events) == live.EVENTS_KEPT
    snapshot = state.snapshot()
    assert snapshot["events"][0]["actor"] == f"algorithm-{live.ACTORS_MAX + 9}"  # newest first


def test_rates_count_moves_not_totals_and_survive_restarts() -> None:
    ring = RateRing(history=60, bucket=5)
    ring.observe("algorithm-0", 10, {"decisions": 500, "skipped": 3}, now=100.0)  # baseline: not a burst
    ring.observe("algorithm-0", 10, {"decisions": 520, "skipped": 3}, now=101.0)
    ring.observe("algorithm-1", 20, {"decisions": 7}, now=102.0)  # baseline
    ring.observe("algorithm-1", 20, {"decisions": 17, "overruns": 2}, now=103.0)
    ring.observe("algorithm-0", 11, {"decisions": 4}, now=106.0)  # restarted: counts from 0 again
    ring.observe("scheduler", 5, {"decisions": 999}, now=106.0)  # not a worker: ignored
    assert ring.totals == {"decisions": 34, "skipped": 0, "overruns": 2}
    assert RateRing(history=60, bucket=5).series(now=111.0)["t"] == []  # nothing seen: no rate known
    series = ring.series(now=111.0)
    assert series["t"] == [105.0, 110.0]  # from the first status seen (t=100) on
    assert series["decisions"][-2:] == [30 / 5, 4 / 5]
    assert series["overruns"][-2:] == [2 / 5, 0]
    assert ring.now(111.0)["decisions"] == 4 / 5
    assert ring.series(now=1000.0)["decisions"] == [0.0] * 12  # old buckets fall out of the window


def test_an_actor_given_up_on_stays_failed_and_the_launcher_is_not_an_actor() -> None:
    clock = FakeClock(10.0)
    state = LiveState(600, 5, clock)
    state.on_event(SupervisorEvent(10.0, "failed", "apiserver", 5, "exit code 2", 2))
    state.on_status(status("apiserver", 0, 10.5))  # not running any more
    assert state.actors["apiserver"].state == "failed"
    state.on_event(SupervisorEvent(11.0, "stopped", "launcher", 1, "", 2))
    assert "launcher" not in state.actors
