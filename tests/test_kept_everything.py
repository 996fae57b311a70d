"""Every printed decision is in the Ledger exactly once (issues 19 and 26), over real processes at the
issues' sizes: the Algorithm and the Ledger SIGKILLed at random moments (1,000 books on a 0.5 s tick,
10 kills of each in 60 s); a worker deciding through 30 s of its Ledger SIGSTOPped, and 30 s of it
SIGKILLed and kept down; the spool's bound reached (paused, one log line, a counter) and left; the
batched path at 100,000 books. Each ends with a clean stop and a black-box audit of every line printed
on stdout against the database (:mod:`bench.audit`).

All ``slow`` (minutes each): CI runs the short version, a worker and a Ledger SIGKILLed with printed
decisions unacknowledged (tests/test_ledger_end_to_end.py), and the spool's parts are unit-tested
(tests/actors/algorithm/spool/). ``python -m bench.run --only kept`` measures the same runs.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from bench import chaos

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]


def check(outcome: chaos.Outcome) -> None:
    assert outcome.audit.printed > 0
    assert outcome.audit.exactly_once, str(outcome.audit)


def test_algorithm_and_ledger_sigkilled_at_random_moments_lose_no_printed_decision(ipc_dir: Path) -> None:
    kills = {"algorithm": 10, "ledger": 10}
    outcome = chaos.sigkill_run(ipc_dir, books=1000, tick=0.5, seconds=60.0, kills=kills, seed=26,
                                args=chaos.paced(1000, 0.5))
    assert outcome.kills == kills
    check(outcome)


@pytest.mark.parametrize("how", ["stopped", "killed"])
def test_a_worker_keeps_deciding_through_30_s_of_ledger_outage_and_every_decision_is_kept_once(
        ipc_dir: Path, how: str) -> None:
    books = 40
    outcome, during, ticks, backlog = chaos.outage(ipc_dir, how=how, books=books, seconds=30.0)
    assert backlog > 0  # the spool held what the Ledger could not take
    assert during >= books * ticks // 2, (during, ticks)  # repricing went on (a loaded machine overruns some)
    check(outcome)
    assert outcome.counters.get("spool_full_pauses", 0) == 0


def test_a_full_spool_pauses_repricing_with_one_line_and_a_counter_then_resumes_losing_nothing(ipc_dir: Path) -> None:
    full = chaos.full_spool(ipc_dir, books=400, tick=0.2)
    assert full.bytes_at_full <= 1 << 20 and full.pauses == 1 and full.pause_lines == 1
    assert full.printed_while_paused <= 400  # at most what was in flight when it filled
    assert full.resume_lines >= 1
    check(full.outcome)
    assert full.outcome.counters["spool_reclaimed"] >= 1 and full.outcome.counters["spool_paused_ms"] > 0


def test_batched_at_100k_books_the_printed_count_equals_the_count_kept(ipc_dir: Path) -> None:
    scale = chaos.at_scale(ipc_dir, books=100_000, seconds=60.0)
    check(scale.outcome)
    assert scale.outcome.audit.printed == scale.outcome.audit.kept  # a clean run: nothing kept unprinted
    assert scale.outcome.counters.get("ledger_dropped", 0) == 0
