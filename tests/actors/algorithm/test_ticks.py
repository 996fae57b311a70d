"""Tick intake: which ticks are followed (pure gate), and the receive loop under a flood."""

from __future__ import annotations

import asyncio
import itertools
import math
import time
from pathlib import Path
from typing import Any, Final

import pytest
import zmq
import zmq.asyncio
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from actors.algorithm.dispatch import MAX_CARRIED
from actors.algorithm.ticks import Standing, TickGate, TickReceiver, Verdict
from tests.helpers import async_wait_for, ipc_endpoint, run_async, stamp_every_ms
from transport import limits, protocol
from transport.protocol import Tick
from transport.roles import TICKS
from transport.sockets import Sockets

pytestmark = pytest.mark.both_loops  # uvloop: the loop every actor runs on in production

NOW = 1_800_000_000.0
T0 = NOW - 100.0


def tick(seq: int, t0: float = T0, interval: float = 1.0) -> Tick:
    return Tick(seq, t0 + seq * interval, NOW, interval, t0)


def test_consecutive_ticks_are_followed_and_repeats_are_stale() -> None:
    gate = TickGate()
    assert gate.judge(tick(100), NOW) is Verdict.NEW
    assert gate.judge(tick(101), NOW + 1) is Verdict.NEW
    assert gate.judge(tick(101), NOW + 1) is Verdict.STALE
    assert gate.judge(tick(99), NOW + 1) is Verdict.STALE


def test_a_new_scheduler_run_is_followed_from_seq_0() -> None:
    gate = TickGate()
    assert gate.judge(tick(100), NOW) is Verdict.NEW
    later = NOW + 30  # the old run stopped; a new launcher started a new run just now
    assert gate.judge(tick(0, t0=later), later) is Verdict.NEW_RUN
    assert gate.judge(tick(1, t0=later), later + 1) is Verdict.NEW
    assert gate.judge(tick(101), later + 1) is Verdict.FOREIGN_RUN  # the old run is no longer followed


def test_another_run_while_ours_is_alive_is_refused() -> None:
    gate = TickGate()
    assert gate.judge(tick(100), NOW) is Verdict.NEW
    assert gate.judge(tick(3, t0=NOW - 3.2), NOW + 0.2) is Verdict.FOREIGN_RUN
    assert gate.judge(tick(101), NOW + 1) is Verdict.NEW


def test_one_forged_huge_seq_is_refused_and_does_not_silence_the_run() -> None:
    gate = TickGate()
    assert gate.judge(tick(100), NOW) is Verdict.NEW
    forged = Tick(2**63 - 1, 0.0, NOW, 1.0, T0)
    assert gate.judge(forged, NOW) is Verdict.IMPLAUSIBLE
    consistent_but_far = tick(2**40)
    assert gate.judge(consistent_but_far, NOW) is Verdict.IMPLAUSIBLE
    assert gate.judge(tick(101), NOW + 1) is Verdict.NEW


def test_scheduled_at_must_agree_with_the_run() -> None:
    gate = TickGate()
    assert gate.judge(Tick(100, T0 + 100.5, NOW, 1.0, T0), NOW) is Verdict.IMPLAUSIBLE


@settings(max_examples=200)
@given(seq=st.integers(0, 2**63 - 1), interval=st.floats(limits.TICK_MIN, limits.TICK_MAX),
       t0=st.floats(0, 4e9))
def test_only_ticks_due_near_our_clock_are_followed(seq: int, interval: float, t0: float) -> None:
    candidate = Tick(seq, t0 + seq * interval, NOW, interval, t0)
    verdict = TickGate().judge(candidate, NOW)
    due = t0 + seq * interval
    assert verdict.accepted == (abs(due - NOW) <= max(limits.TICK_CLOCK_SKEW_MAX, 2 * interval))


def test_the_receiver_counts_each_verdict_and_dispatches_the_newest_after_the_ticks_just_before_it() -> None:
    followed: list[int] = []
    now = [NOW]
    receiver = TickReceiver(TickGate(), lambda t, v: followed.append(t.seq), clock=lambda: now[0])
    frames = [protocol.encode(t) for t in (tick(100), tick(101), tick(99), Tick(2**63 - 1, 0.0, NOW, 1.0, T0))]
    receiver.handle([*frames, b"garbage"])
    assert followed == [100, 101]  # both queued (the loop held up): each decided, in order
    c = receiver.counters
    seen = (c["ticks"], c["superseded_ticks"], c["stale_ticks"], c["implausible_ticks"], c["bad_frames"])
    assert seen == (2, 0, 1, 1, 1)
    assert c["last_tick"] == 101
    # A longer hold-up: the newest and the MAX_CARRIED before it are served, older ones superseded.
    followed.clear()
    last = 102 + MAX_CARRIED + 2
    now[0] = T0 + last + 0.01
    receiver.handle([protocol.encode(tick(seq)) for seq in range(102, last + 1)])
    assert followed == list(range(last - MAX_CARRIED, last + 1)) and c["superseded_ticks"] == 2


def test_a_tick_flood_does_not_starve_the_event_loop(ipc_dir: Path) -> None:
    """100,000 frames queued at once (about a second of decoding): another coroutine keeps running
    meanwhile, never waiting long (a receive loop that never suspends would stop it for the whole
    flood)."""

    async def body() -> None:
        ctx = zmq.asyncio.Context()
        endpoint = ipc_endpoint(ipc_dir, "ticks")
        pub = Sockets(ctx).pub(endpoint, hwm=100_000)
        sub = Sockets(ctx).sub(endpoint, hwm=100_000, channel=TICKS)
        followed: list[int] = []
        receiver = TickReceiver(TickGate(), lambda t, v: followed.append(t.seq))
        stamps: list[float] = []

        try:
            async with asyncio.TaskGroup() as group:
                task = group.create_task(receiver.run(sub))
                beat = group.create_task(stamp_every_ms(stamps))
                t0 = time.time()
                good = protocol.encode(Tick(0, t0, t0, 1.0, t0))
                async def sent_until_followed() -> bool:  # PUB drops what a SUB has not joined for yet
                    if not followed:
                        await pub.send(good)
                    return bool(followed)

                await async_wait_for(sent_until_followed, interval=0.01, what="the first tick to be followed")
                garbage = protocol.encode(Tick(2**63 - 1, 0.0, t0, 1.0, t0))
                for _ in range(100_000):
                    pub.send(garbage, zmq.NOBLOCK)  # a plain send: the flood does not wait for us
                sent = time.monotonic()
                await async_wait_for(lambda: receiver.counters["implausible_ticks"] >= 90_000, timeout=25)
                during = [t for t in stamps if t > sent]
                gaps = [b - a for a, b in itertools.pairwise(during)]
                assert len(gaps) > 20 and max(gaps) < 0.25, (len(gaps), max(gaps, default=0))
                task.cancel()
                beat.cancel()
        finally:
            pub.close(linger=0)
            sub.close(linger=0)
            ctx.destroy(linger=0)

    run_async(body(), timeout=30)


def test_ticks_that_stop_advancing_are_warned_about(ipc_dir: Path, caplog: Any) -> None:
    """After a tick with a 10 ms interval, silence (or only refused ticks) for a second is a stall:
    counted and logged (rate-limited), naming the last seq."""

    async def body() -> TickReceiver:
        ctx = zmq.asyncio.Context()
        sub = Sockets(ctx).sub(ipc_endpoint(ipc_dir, "ticks"), channel=TICKS)
        now = time.time()
        receiver = TickReceiver(TickGate(), lambda t, v: None)
        receiver.handle([protocol.encode(Tick(7, now, now, 0.01, now - 0.07))])
        try:
            async with asyncio.TaskGroup() as group:
                task = group.create_task(receiver.run(sub))
                await async_wait_for(lambda: receiver.counters["tick_stalls"] >= 1, timeout=5)
                task.cancel()
        finally:
            sub.close(linger=0)
            ctx.destroy(linger=0)
        return receiver

    receiver = run_async(body())
    assert receiver.counters["last_tick"] == 7
    assert any("no new tick for" in m and "last seq 7" in m for m in caplog.messages)


def test_new_runs_are_all_counted_but_logged_rate_limited(caplog: Any) -> None:
    """Forged ticks of ever new runs (each after the old one fell quiet) must not flood the log."""
    now = [NOW]
    receiver = TickReceiver(TickGate(), lambda t, v: None, clock=lambda: now[0])
    for _ in range(20):
        now[0] += 10.0  # the run followed is quiet for 10 intervals: the next run is taken
        receiver.handle([protocol.encode(Tick(0, now[0], now[0], 1.0, now[0]))])
    assert receiver.counters["new_runs"] == 19 and receiver.counters["ticks"] == 20
    logged = [m for m in caplog.messages if m.startswith("following a new Scheduler run")]
    assert len(logged) == 5  # RateLimitedLog's burst; the rest only counted


def test_the_tick_followed_coming_again_is_reported_as_a_repeat() -> None:
    repeats: list[int] = []
    receiver = TickReceiver(TickGate(), lambda t, v: None, clock=lambda: NOW, on_repeat=lambda t: repeats.append(t.seq))
    receiver.handle([protocol.encode(tick(100))])
    receiver.handle([protocol.encode(tick(100)), protocol.encode(tick(100))])  # the Scheduler repeats it
    receiver.handle([protocol.encode(tick(99))])  # older: stale, not a repeat
    receiver.handle([protocol.encode(tick(100, t0=T0 - 7))])  # another run's seq 100: not ours
    assert repeats == [100]
    assert receiver.counters["stale_ticks"] == 3


# --- forged ticks: the Algorithm follows the Scheduler that keeps ticking (issue 20) ---------------------


def test_one_tick_of_the_run_far_ahead_within_the_skew_is_refused_and_changes_nothing() -> None:
    """Issue 20: seq + 100, 50 s ahead (within the 60 s skew) used to make every later seq stale."""
    gate = TickGate()
    assert gate.judge(tick(100), T0 + 100) is Verdict.NEW
    forged = tick(150)  # due 50 s ahead of our clock
    assert gate.judge(forged, T0 + 100.5) is Verdict.EARLY
    assert gate.judge(tick(101), T0 + 101) is Verdict.NEW
    assert gate.judge(tick(102), T0 + 102) is Verdict.NEW
    assert gate.last_seq == 102


def test_a_forged_run_with_an_absurd_interval_after_a_gap_costs_no_real_tick() -> None:
    """Issue 20: a 1.2 s gap of the real Scheduler (0.5 s ticks), then one tick of a run with a
    86,400 s interval: taken (ours was quiet), but only provisionally: the real run's next tick takes
    the Algorithm back at once (it used to be refused as "two Schedulers?", and before that for 1.5
    forged intervals: 36 h)."""
    gate = TickGate()
    now = T0
    for seq in range(10):
        now = T0 + seq * 0.5
        assert gate.judge(tick(seq, interval=0.5), now) is Verdict.NEW
    now += 1.2
    forged = Tick(1, now, now, 86_400.0, now - 86_400.0)
    assert gate.judge(forged, now) is Verdict.NEW_RUN
    assert gate.judge(forged, now + 0.1) is Verdict.STALE  # repeated: not a tick on its own schedule
    assert gate.judge(tick(12, interval=0.5), T0 + 12 * 0.5) is Verdict.RETURN
    assert gate.judge(tick(13, interval=0.5), T0 + 13 * 0.5) is Verdict.NEW
    assert gate.judge(forged, T0 + 13.1 * 0.5) is Verdict.FOREIGN_RUN  # the forged run has no way back


def _gap(interval: float, skipped: int) -> tuple[TickGate, float]:
    """A gate that followed ticks 0..9 of (T0, interval) on time; the Scheduler then skips ``skipped``
    ticks: the first tick after the gap is 10 + skipped."""
    gate = TickGate()
    for seq in range(10):
        assert gate.judge(tick(seq, interval=interval), T0 + seq * interval + 0.01) is Verdict.NEW
    return gate, T0 + 9 * interval + 0.01  # when the last tick before the gap was heard


@pytest.mark.parametrize("skipped", [1, 2, 3])
def test_one_forged_tick_taken_in_a_gap_of_one_to_three_intervals_costs_no_real_tick(skipped: int) -> None:
    """The forger's tick comes the moment ours has been quiet 1.5 intervals, in a run with our own
    interval (the most plausible forgery): the first real tick after the gap is followed."""
    gate, last = _gap(0.5, skipped)
    at = last + 1.5 * 0.5
    assert gate.judge(Tick(0, at, at, 0.5, at), at) is Verdict.NEW_RUN
    first = 10 + skipped
    assert gate.judge(tick(first, interval=0.5), T0 + first * 0.5 + 0.01) is Verdict.RETURN


def test_a_copy_of_our_seq_plus_2_an_interval_early_does_not_make_our_next_tick_stale() -> None:
    """Near copy (a): seq 11 of our own run, heard just before our seq 10 (an interval early), skips
    seq 10: refused (EARLY), so ours is followed; the copy, at its time, is then followed as usual."""
    gate, _ = _gap(1.0, 0)
    assert gate.judge(tick(11), T0 + 10.0) is Verdict.EARLY
    assert gate.judge(tick(10), T0 + 10.01) is Verdict.NEW
    assert gate.judge(tick(11), T0 + 11.01) is Verdict.NEW
    assert gate.judge(tick(12), T0 + 12.01) is Verdict.NEW


def test_the_next_seq_an_interval_early_is_followed_and_decides_only_itself() -> None:
    """A copy of our next seq (10) heard almost an interval early is followed (it decides its own seq:
    the Scheduler's tick is then its repeat), and does not move the schedule: our seq 11 is on time."""
    gate, _ = _gap(1.0, 0)
    assert gate.judge(tick(10), T0 + 9.1) is Verdict.NEW
    assert gate.judge(tick(10), T0 + 10.01) is Verdict.STALE
    assert gate.lead == pytest.approx(-0.01)
    assert gate.judge(tick(11), T0 + 11.01) is Verdict.NEW


@pytest.mark.parametrize("skipped", [2, 3])
def test_a_late_copy_of_a_seq_skipped_in_a_gap_does_not_make_our_next_tick_early(skipped: int) -> None:
    """Near copy (b): ours skips seqs 10.. in a gap; a copy of seq 10 heard 1.4 intervals late is followed
    (late ticks are: a Scheduler resumed after a pause sends the one it missed) but does not move the
    run's schedule, so our next tick, on time, is followed (it used to be refused as early, then
    followed again at its second)."""
    gate, _ = _gap(1.0, skipped)
    assert gate.judge(tick(10), T0 + 11.4) is Verdict.NEW
    assert gate.lead == pytest.approx(-0.01)
    first = 10 + skipped
    assert gate.judge(tick(first), T0 + first + 0.01) is Verdict.NEW
    assert gate.judge(tick(first + 1), T0 + first + 1.01) is Verdict.NEW


def test_the_schedulers_late_tick_after_a_pause_takes_the_algorithm_back() -> None:
    """A Scheduler SIGSTOPped mid-interval sends the tick it missed the moment it resumes, late by up
    to an interval (3 s of a 5 s one here): that is its next tick in sequence."""
    gate, last = _gap(5.0, 1)
    at = last + 8.0
    assert gate.judge(Tick(0, at, at, 86_400.0, at), at) is Verdict.NEW_RUN
    assert gate.judge(tick(11, interval=5.0), T0 + 11 * 5.0 + 3.0) is Verdict.RETURN


def test_a_tick_of_the_run_left_that_is_early_or_not_newer_does_not_take_it_back() -> None:
    gate, last = _gap(0.5, 2)
    at = last + 0.8
    assert gate.judge(Tick(0, at, at, 86_400.0, at), at) is Verdict.NEW_RUN
    assert gate.judge(tick(9, interval=0.5), at + 0.1) is Verdict.FOREIGN_RUN  # followed already
    assert gate.judge(tick(14, interval=0.5), at + 0.1) is Verdict.FOREIGN_RUN  # 1.6 s ahead: not in sequence
    assert gate.judge(tick(12, interval=0.5), T0 + 12 * 0.5 + 0.01) is Verdict.RETURN


def test_a_forged_run_on_its_schedule_through_a_gap_of_two_ticks_costs_one_real_tick() -> None:
    """The limit left, at the forger's best timing: two ticks 0.5 s apart (within the lead tolerance)
    right after ours, taken as ours skips two ticks; its ticks on schedule then confirm it (an
    interval and 0.5 s after it was taken) before ours is heard again; ours is refused while the
    forger ticks, and followed again at its second tick once the forger stops: one real tick lost."""
    gate, last = _gap(1.0, 2)
    forged_t0 = last + 0.01 - 0.5  # seq 1 due at last + 0.51: heard 0.5 s early
    assert gate.judge(Tick(1, forged_t0 + 1, last, 1.0, forged_t0), last + 0.01) is Verdict.FOREIGN_RUN
    assert gate.judge(Tick(2, forged_t0 + 2, last, 1.0, forged_t0), last + 0.52) is Verdict.NEW_RUN
    taken = last + 0.52
    for k in (1, 2):
        assert gate.judge(Tick(2 + k, forged_t0 + 2 + k, last, 1.0, forged_t0), taken + k) is Verdict.NEW
        assert gate.standing is (Standing.CONFIRMED if k == 2 else Standing.PROVISIONAL)
    assert gate.judge(tick(12), T0 + 12.01) is Verdict.FOREIGN_RUN
    assert gate.judge(tick(13), T0 + 13.01) is Verdict.NEW_RUN


def test_forged_ticks_on_schedule_while_ours_misses_one_tick_cost_no_real_tick() -> None:
    """The forger's stream, heard once while ours ticks and once in the slot of the one tick ours
    skipped, is taken; its next tick, on schedule within the jitter allowed (0.2 of an interval
    early), comes before ours, but ours has not yet had its interval (and 0.5 s) since: still
    provisional, and ours takes the Algorithm back."""
    gate, last = _gap(1.0, 1)
    at = last + 0.1
    assert gate.judge(Tick(0, at, at, 1.0, at), at) is Verdict.FOREIGN_RUN
    assert gate.judge(Tick(1, at + 1, at, 1.0, at), at + 1) is Verdict.NEW_RUN  # ours silent in between
    assert gate.judge(Tick(2, at + 2, at, 1.0, at), at + 1.8) is Verdict.NEW
    assert gate.standing is Standing.PROVISIONAL
    assert gate.judge(tick(11), T0 + 11.01) is Verdict.RETURN


def test_a_forged_runs_next_seq_sent_at_once_does_not_confirm_it() -> None:
    """Confirmation needs the next seq heard at the run's lead within a quarter of its interval: sent
    together, seq 1 of a 0.5 s run is 0.5 s early (within LEAD_TOLERANCE, but not on schedule); the
    forger may pull the seq ahead an interval per tick, as in any run, but never confirms it so."""
    gate, last = _gap(0.5, 2)
    at = last + 0.8
    assert gate.judge(Tick(0, at, at, 0.5, at), at) is Verdict.NEW_RUN
    assert gate.judge(Tick(1, at + 0.5, at, 0.5, at), at + 0.01) is Verdict.NEW
    assert gate.judge(Tick(2, at + 1.0, at, 0.5, at), at + 0.02) is Verdict.NEW  # one interval on each time
    assert gate.standing is Standing.PROVISIONAL
    assert gate.judge(tick(12, interval=0.5), T0 + 12 * 0.5 + 0.01) is Verdict.RETURN


def test_a_forged_stream_beside_the_scheduler_is_followed_one_tick_at_a_time_and_costs_no_real_one() -> None:
    """No gap at all: each interval the forger sends two ticks of a fresh run, just after and just
    before a real tick (heard twice with ours silent in between: it used to take over, and ours came
    back only at its second tick). Provisional, it gives way to each real tick at once."""
    gate = TickGate()
    assert gate.judge(tick(0, interval=5.0), T0 + 0.01) is Verdict.NEW
    for seq in range(1, 6):
        forged_t0 = T0 + 1.3 + seq * 0.001  # a fresh run each time
        here = T0 + (seq - 1) * 5.0
        assert gate.judge(Tick(seq, forged_t0 + seq * 5.0, here, 5.0, forged_t0),
                          here + 1.32) is Verdict.FOREIGN_RUN
        assert gate.judge(Tick(seq + 1, forged_t0 + (seq + 1) * 5.0, here, 5.0, forged_t0),
                          here + 4.99 + 1.32) is Verdict.NEW_RUN
        assert gate.judge(tick(seq, interval=5.0), T0 + seq * 5.0 + 0.01) is Verdict.RETURN


def test_after_a_real_restart_a_replay_of_the_old_run_cannot_take_the_algorithm_back() -> None:
    """A new run (the Scheduler restarted) is confirmed at its tick an interval and 0.5 s after the
    first (its third); from then on the old run's ticks, replayed on their schedule, are refused
    (FOREIGN_RUN) while the new run ticks."""
    gate, last = _gap(1.0, 0)
    restart = last + 3.0
    assert gate.judge(Tick(0, restart, restart, 1.0, restart), restart + 0.01) is Verdict.NEW_RUN
    for k in (1, 2):
        assert gate.judge(Tick(k, restart + k, restart + k, 1.0, restart), restart + k + 0.01) is Verdict.NEW
    assert gate.standing is Standing.CONFIRMED
    for k in range(3, 7):
        old = round(restart - T0) + k - 1  # the old run's seq due now
        assert gate.judge(tick(old), T0 + old + 0.01) is Verdict.FOREIGN_RUN
        assert gate.judge(Tick(k, restart + k, restart + k, 1.0, restart), restart + k + 0.01) is Verdict.NEW


def test_a_replay_of_the_old_run_within_a_restarts_first_interval_holds_it_only_while_it_replays() -> None:
    """The window left: the old run's tick replayed before the new run is confirmed is a return; the
    replayer then holds the Algorithm while it replays (as its own run sent in the restart's gap
    would), and the new run is followed again at its second tick after the replay stops."""
    gate, last = _gap(1.0, 0)
    restart = last + 3.0
    assert gate.judge(Tick(0, restart, restart, 1.0, restart), restart + 0.01) is Verdict.NEW_RUN
    old = round(restart - T0) + 1
    assert gate.judge(tick(old - 1), T0 + old - 0.5) is Verdict.RETURN  # late by half an interval
    assert gate.judge(Tick(1, restart + 1, restart + 1, 1.0, restart), restart + 1.01) is Verdict.FOREIGN_RUN
    assert gate.judge(tick(old), T0 + old + 0.02) is Verdict.NEW  # the replayer keeps sending
    assert gate.judge(Tick(2, restart + 2, restart + 2, 1.0, restart), restart + 2.01) is Verdict.FOREIGN_RUN
    assert gate.judge(Tick(3, restart + 3, restart + 3, 1.0, restart), restart + 3.01) is Verdict.NEW_RUN


def test_a_burst_of_next_seqs_each_an_interval_early_pulls_the_seq_one_tick_ahead_at_most() -> None:
    """A forger sending the next seqs one interval early each, 50 of them in half a second, used to drag
    the seq followed 50 ticks ahead; judged against the run's schedule, only the first (the next seq,
    under an interval early) is followed: it decides seq 11 early, and the real ticks go on."""
    gate = TickGate()
    assert gate.judge(tick(10), T0 + 10) is Verdict.NEW
    assert gate.judge(tick(11), T0 + 10.31) is Verdict.NEW  # the next seq, 0.69 s early: decides only itself
    for k in range(2, 51):
        assert gate.judge(tick(10 + k), T0 + 10.3 + k * 0.01) is Verdict.EARLY
    assert gate.judge(tick(11), T0 + 11) is Verdict.STALE  # decided (early) by the burst
    assert gate.judge(tick(12), T0 + 12) is Verdict.NEW
    assert gate.judge(tick(13), T0 + 13) is Verdict.NEW


def test_two_schedulers_ticking_in_step_keep_the_one_followed_first() -> None:
    gate = TickGate()
    other = T0 + 0.3
    for seq in range(20):
        assert gate.judge(tick(seq), T0 + seq + 0.01) is Verdict.NEW
        assert gate.judge(tick(seq, t0=other), other + seq + 0.01) is Verdict.FOREIGN_RUN


def test_a_clock_step_is_followed_within_two_ticks() -> None:
    """Our clock steps back 20 s: the run's ticks look 20 s early; the stream that keeps ticking wins."""
    gate = TickGate()
    assert gate.judge(tick(10), T0 + 10) is Verdict.NEW
    assert gate.judge(tick(11), T0 + 11 - 20) is Verdict.EARLY
    assert gate.judge(tick(12), T0 + 12 - 20) is Verdict.RESYNC
    assert gate.judge(tick(13), T0 + 13 - 20) is Verdict.NEW


def test_the_gate_stays_bounded_under_a_flood_of_runs() -> None:
    gate = TickGate()
    assert gate.judge(tick(0), T0) is Verdict.NEW
    for i in range(10_000):
        t0 = T0 - 1000 - i * 0.001
        gate.judge(Tick(1000, t0 + 1000, T0, 1.0, t0), T0 + 0.5)
    assert len(gate.candidates) <= 8
    assert gate.judge(tick(1), T0 + 1) is Verdict.NEW


_HONEST_TICKS = 40


@pytest.mark.production_loop  # pure (no loop): one run of its 400 examples, not one per loop
@settings(max_examples=400, deadline=None)
@given(interval=st.sampled_from([0.5, 1.0, 2.0, 5.0, 10.0]), offset=st.floats(-30, 30),
       jitter=st.lists(st.floats(0, 0.2), min_size=_HONEST_TICKS, max_size=_HONEST_TICKS),
       repeats=st.booleans(),
       forged=st.lists(st.tuples(st.floats(0, 0.6), st.sampled_from(["ahead", "behind", "run", "copy"]),
                                 st.integers(-5, 200), st.sampled_from([0.01, 0.5, 1.0, 5.0, 86_400.0]),
                                 st.floats(-59, 59)), max_size=30))
def test_any_forger_stops_silencing_the_real_scheduler_two_ticks_after_its_last_tick(
        interval: float, offset: float, jitter: list[float], repeats: bool,
        forged: list[tuple[float, str, int, float, float]]) -> None:
    """One honest Scheduler (ticks at their due time, heard ``offset`` s later, with jitter and its
    repeats) and any forger's ticks at any time in the first 60% of the run: after the forger's last
    tick, every honest seq from the third one heard on is decided (followed, from the honest tick or
    a forged copy of it), and no (run, seq) is ever followed twice."""
    t0 = NOW
    heard: list[tuple[float, int, Tick, bool]] = []  # (our clock, order, tick, honest fresh)
    every = min(1.0, interval / 2)
    for seq in range(_HONEST_TICKS):
        due = t0 + seq * interval
        heard.append((due + offset + jitter[seq], len(heard), Tick(seq, due, due, interval, t0), True))
        if repeats:
            k = 1
            while k * every < interval - 1e-9:
                heard.append((due + offset + k * every + jitter[seq], len(heard), Tick(seq, due, due, interval, t0),
                              False))
                k += 1
    span = _HONEST_TICKS * interval
    last_forged = -math.inf
    for share, kind, k, forged_interval, ahead in forged:
        at = t0 + offset + share * span
        last_forged = max(last_forged, at)
        honest_seq = max(0, int((at - offset - t0) / interval))
        if kind == "copy":
            seq = max(0, honest_seq + k % 3 - 1)
            forged_tick = Tick(seq, t0 + seq * interval, at, interval, t0)
        elif kind in ("ahead", "behind"):
            seq = max(0, honest_seq + (k if kind == "ahead" else -abs(k)))
            forged_tick = Tick(seq, t0 + seq * interval, at, interval, t0)
        else:  # another run, due ``ahead`` seconds from our clock
            forged_t0 = at + ahead - k * forged_interval if k >= 0 else at + ahead
            seq = max(0, k)
            forged_tick = Tick(seq, forged_t0 + seq * forged_interval, at, forged_interval, forged_t0)
        heard.append((at, len(heard), forged_tick, False))
    gate = TickGate()
    followed: list[tuple[float, float, int]] = []
    honest_after: list[int] = []
    for now, _, t, fresh in sorted(heard):
        if gate.judge(t, now).accepted:
            followed.append((t.t0, t.interval, t.seq))
        if fresh and now > last_forged:
            honest_after.append(t.seq)
    assert len(followed) == len(set(followed))
    decided = {seq for run_t0, run_interval, seq in followed if (run_t0, run_interval) == (t0, interval)}
    missing = [seq for seq in honest_after[2:] if seq not in decided]
    assert not missing, (missing, honest_after[:4])


def _assert_one_forged_tick_costs_no_real_tick(interval: float, offset: float, jitter: list[float],
                                               gap_after: int, skipped: int, at: float, forged: Tick) -> None:
    """One honest Scheduler (heard ``offset`` s after each due time, with jitter) skips ``skipped``
    ticks after ``gap_after``; ``forged`` is heard at ``at``: every honest tick sent is decided, and no
    (run, seq) twice."""
    t0 = NOW
    sent = [seq for seq in range(_HONEST_TICKS) if not gap_after < seq <= gap_after + skipped]
    heard = [(t0 + seq * interval + offset + jitter[seq], 0, Tick(seq, t0 + seq * interval, t0 + seq * interval,
                                                                   interval, t0)) for seq in sent]
    heard.append((at, 1, forged))
    gate = TickGate()
    followed = [(t.t0, t.interval, t.seq) for now, _, t in sorted(heard) if gate.judge(t, now).accepted]
    assert len(followed) == len(set(followed))
    decided = {seq for run_t0, run_interval, seq in followed if (run_t0, run_interval) == (t0, interval)}
    assert [seq for seq in sent if seq not in decided] == []


_GAPS: Final = {"interval": st.sampled_from([0.5, 1.0, 2.0, 5.0]), "offset": st.floats(-30, 30),
                "jitter": st.lists(st.floats(0, 0.2), min_size=_HONEST_TICKS, max_size=_HONEST_TICKS),
                "gap_after": st.integers(3, 30), "skipped": st.integers(0, 3), "share": st.floats(0, 1)}


@pytest.mark.production_loop  # pure (no loop): one run of its examples, not one per loop
@settings(max_examples=150, deadline=None)
@given(**_GAPS, kind=st.sampled_from(["ahead", "behind", "run"]), k=st.integers(5, 200),
       forged_interval=st.sampled_from([0.01, 0.5, 1.0, 5.0, 86_400.0]), ahead=st.floats(-59, 59))
def test_one_forged_tick_in_or_after_a_gap_of_up_to_three_ticks_costs_no_real_tick(
        interval: float, offset: float, jitter: list[float], gap_after: int, skipped: int, share: float,
        kind: str, k: int, forged_interval: float, ahead: float) -> None:
    """Issue 20's requirement, for a single forged tick of any kind (a tick of our run far from ours, or
    another run's), heard at any time from the gap's start to 4 intervals later."""
    t0 = NOW
    at = t0 + offset + (gap_after + share * 4) * interval
    honest_seq = max(0, int((at - offset - t0) / interval))
    if kind == "run":
        forged_t0 = at + ahead - k * forged_interval
        forged = Tick(k, forged_t0 + k * forged_interval, at, forged_interval, forged_t0)
    else:
        seq = max(0, honest_seq + k if kind == "ahead" else honest_seq - k)
        forged = Tick(seq, t0 + seq * interval, at, interval, t0)
    _assert_one_forged_tick_costs_no_real_tick(interval, offset, jitter, gap_after, skipped, at, forged)


@pytest.mark.production_loop  # pure (no loop): one run of its examples, not one per loop
@settings(max_examples=200, deadline=None)
@given(**_GAPS, near=st.integers(-3, 3), off_schedule=st.floats(-1.5, 1.5))
def test_one_forged_copy_of_our_own_tick_near_ours_costs_no_real_tick(
        interval: float, offset: float, jitter: list[float], gap_after: int, skipped: int, share: float,
        near: int, off_schedule: float) -> None:
    """The same for a near copy of our own run's tick: any seq within 3 of the one due from the gap's
    start to 4 intervals later, heard up to 1.5 intervals before or after our copy would be (an early
    seq + 2 used to make our seq + 1 stale; a late copy of a seq skipped, our next tick early). Heard
    after our first tick: before it the gate knows no schedule (limits.md, "The first tick heard")."""
    seq = max(0, gap_after + int(share * 4) + near)
    at = NOW + seq * interval + offset + off_schedule * interval
    assume(at > NOW + offset + jitter[0])
    forged = Tick(seq, NOW + seq * interval, at, interval, NOW)
    _assert_one_forged_tick_costs_no_real_tick(interval, offset, jitter, gap_after, skipped, at, forged)


def test_the_receiver_counts_and_logs_each_return_rate_limited(caplog: Any) -> None:
    now = [T0 + 0.01]
    followed: list[tuple[int, Verdict]] = []
    receiver = TickReceiver(TickGate(), lambda t, v: followed.append((t.seq, v)), clock=lambda: now[0])
    receiver.handle([protocol.encode(tick(0))])
    for seq in range(2, 42, 2):  # ours skips every other tick; a forged run is taken in each gap
        now[0] = T0 + seq - 0.4
        receiver.handle([protocol.encode(Tick(0, now[0], now[0], 86_400.0, now[0]))])
        now[0] = T0 + seq + 0.01
        receiver.handle([protocol.encode(tick(seq))])
    assert followed[-2:] == [(0, Verdict.NEW_RUN), (40, Verdict.RETURN)]
    now[0] = T0 + 41.6  # the forged run and ours' return in one batch: both counted, the newest served
    receiver.handle([protocol.encode(Tick(0, now[0], now[0], 86_400.0, now[0])), protocol.encode(tick(42))])
    assert followed[-1] == (42, Verdict.RETURN)
    c = receiver.counters
    assert (c["returns"], c["new_runs"], c["ticks"], c["last_tick"]) == (21, 21, 42, 42)
    assert c["superseded_ticks"] == 1
    logged = [m for m in caplog.messages if m.startswith("following again the run left")]
    assert len(logged) == 5 and f"t0={T0:.3f}) at seq 2:" in logged[0]


def test_the_receiver_counts_and_logs_an_early_tick_and_the_resync(caplog: Any) -> None:
    """Issue 20: the forged tick used to be counted as stale only, and logged nowhere."""
    now = [T0 + 100.0]
    followed: list[tuple[int, Verdict]] = []
    receiver = TickReceiver(TickGate(), lambda t, v: followed.append((t.seq, v)), clock=lambda: now[0])
    receiver.handle([protocol.encode(tick(100))])
    receiver.handle([protocol.encode(tick(150))])  # 50 s ahead: forged
    for seq in (101, 102):
        now[0] = T0 + seq - 20  # then our clock steps back 20 s: the run's ticks look early twice
        receiver.handle([protocol.encode(tick(seq))])
    assert followed == [(100, Verdict.NEW), (102, Verdict.RESYNC)]
    c = receiver.counters
    assert (c["early_ticks"], c["resyncs"], c["stale_ticks"], c["last_tick"]) == (2, 1, 0, 102)
    assert sum("refused tick seq=150: due 50.000s from our clock" in m for m in caplog.messages) == 1
    assert sum(m.startswith("following the ticks that keep coming: seq 102") for m in caplog.messages) == 1


def test_ticks_queued_while_the_loop_was_held_up_are_all_followed_and_so_is_the_next_on_time() -> None:
    """Ticks heard late in a burst (our loop held up 5 s) are our delay, not the schedule's: counted in
    it, the burst's later ticks (less late) and the next ones on time looked early and were refused."""
    gate = TickGate()
    for seq in range(100, 103):
        assert gate.judge(tick(seq), T0 + seq + 0.01) is Verdict.NEW
    held_up = T0 + 108.01
    assert [gate.judge(tick(seq), held_up) for seq in range(103, 109)] == [Verdict.NEW] * 6
    assert gate.judge(tick(109), T0 + 109.01) is Verdict.NEW
    assert abs(gate.lead + 0.01) < 1e-6  # the schedule is where it was
