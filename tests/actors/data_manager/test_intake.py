"""What the DataManager serves first when more requests come than it can serve (issue 20: a client
cycling through identities)."""

from __future__ import annotations

from actors.data_manager.intake import Steppers, triage


def msg(identity: bytes, n: int) -> list[bytes]:
    return [identity, b"%d" % n]


def test_steppers_are_served_first_and_the_others_one_per_client_in_turn_when_a_backlog_waits() -> None:
    steppers = Steppers()
    steppers.note(b"algorithm", 0.0)
    flood = [msg(b"flood", i) for i in range(10)]
    batch = [*flood[:5], msg(b"algorithm", 1), msg(b"newcomer", 1), *flood[5:], msg(b"algorithm", 2), [b"garbage"]]
    serve, shed = triage(batch, True, steppers, 1.0, strangers_max=3)
    assert serve == [msg(b"algorithm", 1), msg(b"algorithm", 2), msg(b"flood", 0), msg(b"newcomer", 1), [b"garbage"]]
    assert shed == len(batch) - 5


def test_nothing_is_shed_without_a_backlog() -> None:
    batch = [msg(b"flood", i) for i in range(100)]
    assert triage(batch, False, Steppers(), 0.0, strangers_max=3) == (batch, 0)


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

