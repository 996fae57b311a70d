"""Whose ticks a book's window follows: the client stepping through them keeps it; others take it only
by stepping on from it, a client that jumped away waits before taking one again."""

from __future__ import annotations

from decimal import Decimal

from actors.data_manager.homes import JUMPER_QUIET, TAKEOVER_STEPS, HomedWindow

NEAR, TTL = 16, 30.0
ALGO, OTHER = b"algorithm", b"other"


def test_the_home_follows_the_client_stepping_through_the_ticks() -> None:
    window = HomedWindow()
    window.answered(0, ALGO, 1.0, NEAR, TTL)
    window.answered(1, ALGO, 2.0, NEAR, TTL)
    assert (window.home, window.home_client, window.home_at, window.served) == (1, ALGO, 2.0, 1)
    assert window.moves_away(1 + NEAR + 1, OTHER, 2.5, NEAR, TTL)  # far from a fresh home
    assert not window.moves_away(1 + NEAR, OTHER, 2.5, NEAR, TTL)
    assert not window.moves_away(500, ALGO, 2.5, NEAR, TTL)  # its own client is never moving it away
    assert not window.moves_away(500, OTHER, 2.0 + TTL + 1, NEAR, TTL)  # a stale home holds nothing


def test_another_client_takes_a_fresh_home_only_by_asking_its_next_ticks() -> None:
    window = HomedWindow()
    window.answered(10, ALGO, 1.0, NEAR, TTL)
    window.answered(5, OTHER, 1.5, NEAR, TTL)  # behind the home: it stays
    assert (window.home, window.home_client) == (10, ALGO)
    window.answered(10 + TAKEOVER_STEPS, OTHER, 2.0, NEAR, TTL)  # a reconnected Algorithm steps on
    assert (window.home, window.home_client) == (10 + TAKEOVER_STEPS, OTHER)


def test_a_jump_releases_the_home_and_the_jumper_waits_before_taking_one() -> None:
    window = HomedWindow()
    window.answered(10, OTHER, 1.0, NEAR, TTL)
    window.answered(10 + NEAR + 1, OTHER, 1.1, NEAR, TTL)  # it jumps far: the home is released
    assert window.home == -1
    window.answered(900, OTHER, 1.2, NEAR, TTL)  # and it cannot take one again at once
    assert window.home == -1
    window.answered(901, OTHER, 1.1 + JUMPER_QUIET + 0.1, NEAR, TTL)
    assert (window.home, window.home_client) == (901, OTHER)


def test_a_kept_home_is_taken_by_stepping_on_but_never_released_or_moved_by_a_jump() -> None:
    """``keep`` (a client that is no stepper, on a stepper's book -- issue 20): it may take the home by
    asking its next ticks and step on from there (a restarted Algorithm does), but its jumps neither
    release the home nor move it, and a released one is not its to take."""
    window = HomedWindow()
    window.answered(10, ALGO, 1.0, NEAR, TTL)
    window.stepped(11, OTHER, 1.1, NEAR, TTL, keep=True)  # one of the home's next ticks: taken
    assert (window.home, window.home_client, window.streak) == (11, OTHER, 0)
    window.stepped(12, OTHER, 1.2, NEAR, TTL, keep=True)  # stepping on: the streak grows
    assert (window.home, window.streak) == (12, 1)
    for tick in (3, 12 + NEAR + 1, 12, 11):  # behind, far, the same, back: nothing moves
        window.stepped(tick, OTHER, 1.3, NEAR, TTL, keep=True)
        assert (window.home, window.home_client, window.streak, window.home_at) == (12, OTHER, 1, 1.2)
    window.stepped(12 + NEAR + 1, OTHER, 1.4, NEAR, TTL)  # without keep, the same jump releases it
    assert window.home == -1
    window.stepped(40, b"flood", 3.0, NEAR, TTL, keep=True)  # a released home is not a stranger's to take
    assert window.home == -1
    window.stepped(40, ALGO, 3.0, NEAR, TTL)
    assert (window.home, window.home_client) == (40, ALGO)


def test_seeks_go_to_the_home_first_then_to_what_reading_reaches_then_the_oldest() -> None:
    window = HomedWindow()
    for _ in range(4):
        window.push(Decimal(1), capacity=4)  # points 0..3
    window.answered(2, ALGO, 1.0, NEAR, TTL)
    assert window.seek_target(NEAR) is None  # nothing waits
    window.pin(3, 6)
    assert window.seek_target(NEAR) is None  # in reach by reading on
    window.pin(900, 905)
    assert window.seek_target(NEAR) == 3  # near the home, reachable: no seek for the far one
    window.unpin(3, 6)
    assert window.seek_target(NEAR) == 900  # the only one waiting
    window.pin(1, 6)
    window.pin(700, 705)
    window.reset(500)  # the window moved away from the home
    assert window.seek_target(NEAR) == 1  # back home first
