"""The launcher's start line about the Ledger's database, and its warning when history would go
missing (issue 21 item 3): a new, empty database while another one holds decisions is never silent."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from actors.dashboard.options import DashboardOptions
from actors.ledger.found import Found, iso, look
from actors.ledger.options import DEFAULT_DB, LedgerOptions
from actors.ledger.records import to_row
from actors.ledger.store import LedgerStore
from repricer_supervisor import launcher
from repricer_supervisor.history import OLD_DEFAULT, elsewhere, start_lines
from repricer_supervisor.plan import plan
from tests.actors.ledger.helpers import T0, decision
from tests.helpers import REPO

RUN = T0 - 60


def ledger_with(path: Path, *pairs: tuple[str, str], ticks: int = 3) -> None:
    store = LedgerStore(str(path))
    store.open()
    rows = []
    for tick in range(ticks):
        for book, strategy in pairs:
            row = to_row(decision(tick, book, strategy, run=RUN))
            assert not isinstance(row, str)
            rows.append(row)
    store.write([rows])
    store.close()


def test_the_start_line_names_the_absolute_path_the_counts_and_the_run(tmp_path: Path) -> None:
    db = tmp_path / "var" / "ledger.sqlite3"
    assert start_lines(str(db), str(tmp_path), look_at=[]) == [
        (logging.INFO, f"ledger: {db}: new (no file yet): every pair starts from the competitor's average")]
    ledger_with(db, ("B001", "default"), ("B001", "cautious"), ("B002", "default"))
    found = look(db)
    assert (found.decisions, found.pairs, found.newest_run) == (9, 3, RUN) and found.history
    [(level, line)] = start_lines(str(db), str(tmp_path), look_at=[])
    assert level == logging.INFO
    assert line.startswith(f"ledger: {db}: 9 decision(s) of 3 pair(s); the newest at ")
    assert line.endswith(f", of the run started {iso(RUN)}: each pair resumes from its last decided price")


def test_the_default_database_is_the_same_from_any_working_directory(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    # Issue 21: run from another directory, the launcher started a new, empty var/ledger.sqlite3 there.
    monkeypatch.chdir(tmp_path)
    options = launcher.parse_options([])
    assert options.ledger_db == DEFAULT_DB == str(REPO / "var" / "ledger.sqlite3")
    the_plan = plan(options, t0=0.0, private_dir=str(tmp_path))
    # The children are given no --db: their own default is that same absolute file.
    assert "--db" not in the_plan.named("ledger").argv and "--db" not in the_plan.named("dashboard").argv
    assert LedgerOptions().db == DashboardOptions().db == DEFAULT_DB
    # A relative --db is the working directory's, made absolute once for every child and the start line.
    assert launcher.parse_options(["--db", "here.sqlite3"]).ledger_db == str(tmp_path / "here.sqlite3")
    assert look("some/where.sqlite3").path == str(tmp_path / "some" / "where.sqlite3")


def test_a_new_database_beside_one_with_history_is_warned_about(tmp_path: Path) -> None:
    # The trial: a restart from another directory. The old default, var/ledger.sqlite3 of the
    # working directory, holds the history; the database used now is new.
    old = tmp_path / "old-cwd" / OLD_DEFAULT
    ledger_with(old, ("ISBN978000001", "default"))
    new = tmp_path / "elsewhere" / "ledger.sqlite3"
    lines = start_lines(str(new), str(tmp_path / "old-cwd"), look_at=[str(old)])
    assert lines[0] == (logging.INFO, f"ledger: {new}: new (no file yet): every pair starts from the competitor's "
                        "average")
    level, warning = lines[1]
    assert level == logging.WARNING
    assert warning.startswith(f"ledger: starting a new, empty database at {new}, but {old} holds 3 decision(s) of "
                              "1 pair(s) (the newest at ")
    assert warning.endswith(f"to continue that history pass --db {old}")
    # Not when the database used holds history itself, nor when the other one is empty.
    ledger_with(new, ("B", "default"))
    assert len(start_lines(str(new), str(tmp_path / "old-cwd"), look_at=[str(old)])) == 1


def test_where_else_history_may_be(tmp_path: Path) -> None:
    assert elsewhere(DEFAULT_DB, str(tmp_path)) == [str(tmp_path / OLD_DEFAULT)]
    assert elsewhere(str(tmp_path / OLD_DEFAULT), str(tmp_path)) == [DEFAULT_DB]
    assert elsewhere("/x/y.sqlite3", str(tmp_path)) == [str(tmp_path / OLD_DEFAULT), DEFAULT_DB]


def test_an_unreadable_or_foreign_file_is_said_not_raised(tmp_path: Path) -> None:
    junk = tmp_path / "junk.sqlite3"
    junk.write_bytes(b"not a database" * 100)
    found = look(junk)
    assert found.exists and found.problem is not None and not found.history
    assert "cannot be read now" in found.describe()
    assert Found(str(junk), True, problem="x").describe().endswith("the Ledger says more when it starts")
