"""What the DataManager serves first when more requests come than it can serve (issue 20: a client
cycling through identities)."""

from __future__ import annotations

from actors.data_manager.intake import Bucket, Intake, Steppers, cost, units
from transport import protocol
from transport.protocol import WindowsRequest


def msg(identity: bytes, n: int) -> list[bytes]:
    return [identity, b"%d" % n]


def test_with_no_stepper_the_others_are_served_one_per_client_in_turn_when_a_backlog_waits() -> None:
    flood = [msg(b"flood", i) for i in range(10)]
    batch = [*flood[:5], msg(b"newcomer", 1), *flood[5:], [b"garbage"]]
    serve, shed = Intake(Steppers(), strangers_max=3).triage(batch, True, 1.0)
    assert serve == [msg(b"flood", 0), msg(b"newcomer", 1), [b"garbage"]]
    assert shed == len(batch) - 3


def test_nothing_is_shed_without_a_backlog_or_a_stepper() -> None:
    batch = [msg(b"flood", i) for i in range(100)]
    assert Intake(Steppers(), strangers_max=3).triage(batch, False, 0.0) == (batch, 0)


def test_while_a_stepper_is_active_the_others_share_one_budget_whatever_their_identities() -> None:
    """Issue 20: a new identity every 20 requests. The others together get the budget's rate, one
    message per client in turn, and the stepper's messages are all served first."""
    steppers = Steppers()
    steppers.note(b"algorithm", 0.0)
    intake = Intake(steppers, rate=100.0, burst=10.0)
    served = 0
    for turn in range(100):  # 1 s of turns of 10 ms, each with 200 messages of 10 fresh identities
        now = turn * 0.01
        batch = [msg(b"flood-%d-%d" % (turn, i % 10), i) for i in range(200)]
        batch.insert(57, msg(b"algorithm", turn))
        serve, shed = intake.triage(batch, turn % 2 == 0, now)
        assert serve[0] == msg(b"algorithm", turn)
        assert shed == 201 - len(serve)
        served += len(serve) - 1
    assert 100 <= served <= 110  # 10 (the burst) + 100/s, however many identities
    # The second message of a client only after the first of every client.
    steppers.note(b"algorithm", 5.0)
    serve, shed = intake.triage([*(msg(b"a", i) for i in range(11)), msg(b"b", 1)], False, 5.0)
    assert serve[:2] == [msg(b"a", 0), msg(b"b", 1)] and shed == 2


def test_a_batch_of_many_books_pays_for_each_and_a_steppers_for_none() -> None:
    """Issue 20's variant: a flood of ``WindowsRequest``s of 50 books. Each is charged its size's
    guess before it is decoded (so one turn cannot take many times the budget), then what it asked."""
    steppers = Steppers()
    steppers.note(b"algorithm", 0.0)
    intake = Intake(steppers, rate=10.0, burst=100.0)
    batch = protocol.encode(WindowsRequest(1, 3, 5, tuple(f"B{i:03d}" for i in range(50))))
    assert units(50) == 7 and 4 <= cost([b"flood", batch]) <= 7 and cost([b"flood", b"x" * 60]) == 1
    serve, shed = intake.triage([[b"flood-%d" % i, batch] for i in range(50)] + [[b"algorithm", batch]], False, 0.0)
    taken = 100 // cost([b"x", batch])  # what the burst pays for
    assert serve[0] == [b"algorithm", batch] and len(serve) == 1 + taken and shed == 50 - taken
    left = intake.budget.refill(0.0)
    intake.settle(b"algorithm", batch, 50, 0.0)  # a stepper's is free
    intake.settle(b"flood-0", batch, 50, 0.0)  # the rest of what it asked
    assert intake.budget.refill(0.0) == left - (units(50) - cost([b"x", batch]))
    intake.settle(b"flood-1", batch, 10_000, 0.0)  # a debt, bounded by the burst
    assert intake.budget.refill(0.0) == -100.0
    serve, shed = intake.triage([[b"flood", b"x"], [b"algorithm", b"y"]], False, 1.0)
    assert serve == [[b"algorithm", b"y"]] and shed == 1  # the debt is repaid first
    intake.settle(b"flood", b"x" * 400, 1, 1.0)  # guessed too high: refunded
    assert intake.budget.refill(1.0) > -100.0 + 10.0


def test_with_no_stepper_left_the_budget_no_longer_applies() -> None:
    steppers = Steppers(ttl=10.0)
    steppers.note(b"algorithm", 0.0)
    intake = Intake(steppers, rate=1.0, burst=1.0)
    batch = [msg(b"flood", i) for i in range(50)]
    assert intake.triage(batch, False, 1.0)[1] == 49  # one: the burst
    assert intake.triage(batch, False, 10.5) == (batch, 0)  # the Algorithm stopped: nothing to protect


def test_a_bucket_refills_at_its_rate_up_to_its_burst() -> None:
    bucket = Bucket(rate=2.0, burst=5.0)
    bucket.spend(5.0)
    assert bucket.refill(1.0) == 2.0 and bucket.refill(100.0) == 5.0


def test_a_flood_of_new_identities_cannot_evict_a_stepper_between_two_of_its_ticks_and_it_expires() -> None:
    steppers = Steppers(ttl=10.0, limit=4)
    steppers.note(b"algorithm", 0.0)
    for i in range(3):
        steppers.note(b"other-%d" % i, 0.5)
    steppers.note(b"algorithm", 1.0)  # its next tick: the most recent again
    steppers.note(b"other-3", 1.5)  # the oldest (other-0) goes
    assert steppers.stepping(b"algorithm", 2.0) and not steppers.stepping(b"other-0", 2.0)
    assert len(steppers) == 4 and steppers.active(2.0)[-1] == b"other-1"
    assert not steppers.stepping(b"algorithm", 11.5)
    assert steppers.any_active(11.5) and not steppers.any_active(12.0)  # other-3 was the last to step


def test_behind_a_backlog_a_stepper_is_served_alone_and_the_others_get_the_budget_after() -> None:
    """Issue 20: ZeroMQ reads one message of each peer in turn, so while a backlog waits the stepper's
    requests wait behind one of every identity a flood used; the others' are all shed (counted) until
    the reading catches up, and the budget they did not spend meanwhile is theirs after."""
    steppers = Steppers()
    steppers.note(b"algorithm", 0.0)
    intake = Intake(steppers, rate=100.0, burst=10.0)
    intake.budget.spend(10.0)  # empty at 0.0
    batch = [*(msg(b"flood-%d" % i, i) for i in range(50)), msg(b"algorithm", 1), [b"garbage"]]
    assert intake.triage(batch, True, 0.05) == ([msg(b"algorithm", 1)], 51)
    assert intake.behind == 51
    serve, shed = intake.triage(batch, False, 0.1)  # caught up: 0.1 s of the rate unspent
    assert serve[0] == msg(b"algorithm", 1) and len(serve) == 11 and shed == 41
    assert intake.behind == 51
    # No stepper to protect: a backlog still gets its STRANGERS_MAX per turn.
    assert Intake(Steppers(), strangers_max=3).triage(batch, True, 0.0)[1] == len(batch) - 3
