"""``python -m actors ACTOR ...``: the one entry point of the container image."""

from __future__ import annotations

from tests.helpers import python


def test_it_runs_the_named_actor_with_its_options() -> None:
    scheduler = python("-m", "actors", "scheduler", "--help")
    assert scheduler.returncode == 0 and scheduler.stdout.startswith("usage: python -m actors.scheduler ")
    ledger = python("-m", "actors", "ledger", "summary", "--help")  # the Ledger's database commands too
    assert ledger.returncode == 0 and ledger.stdout.startswith("usage: python -m actors.ledger summary ")
    refused = python("-m", "actors", "algorithm", "--no-such-option")  # the actor's own refusal and exit code
    assert refused.returncode == 2 and "unrecognized arguments: --no-such-option" in refused.stderr


def test_an_unknown_or_missing_actor_is_refused() -> None:
    unknown = python("-m", "actors", "schedulr")
    assert unknown.returncode == 2
    assert unknown.stderr == ("error: unknown actor 'schedulr': expected one of scheduler, datamanager, apiserver, "
                              "ledger, algorithm, dashboard\n")
    missing = python("-m", "actors")
    assert missing.returncode == 2 and missing.stderr.startswith("usage: python -m actors ACTOR [OPTIONS...]")
