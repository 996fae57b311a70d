"""``python -m actors.ledger history|summary``: the rows asked for in each format, filters, clear errors
for a missing or bad database, and reads that never wait for (or block) the writer."""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import os
import sqlite3
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest

from actors.ledger import cli, schema
from actors.ledger.records import to_row
from actors.ledger.store import LedgerStore
from tests.actors.ledger.helpers import T0, decision
from tests.helpers import REPO


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "ledger.sqlite3"
    store = LedgerStore(str(path))
    store.open()
    decisions = [
        decision(1, "B003", price="10.00", sold=True), decision(2, "B003", price="12.50"),
        dataclasses.replace(decision(3, "B003", price="9.99", sold=True, rule_price="9.50", guardrail=("floor",)),
                            factor=Decimal("1.1"), previous_price=Decimal("12.50"), floor=Decimal("9.99")),
        decision(1, "B003", "fast", price="11.00"), decision(1, "B004", price="5.00"),
    ]
    rows = [to_row(d) for d in decisions]
    store.write([[r for r in rows if not isinstance(r, str)]])
    store.close()
    return path


def run(*argv: str) -> tuple[int, str]:
    out = io.StringIO()
    code = cli.query(list(argv), out)
    return code, out.getvalue()


def test_history_json_gives_each_decision_with_its_explanation(db: Path) -> None:
    code, out = run("history", "--book", "B003", "--strategy", "default", "--format", "json", "--db", str(db))
    assert code == 0
    records = [json.loads(line) for line in out.splitlines()]
    assert [r["tick"] for r in records] == [1, 2, 3]
    assert records[2] == {"ts": cli.iso(T0 + 3), "tick": 3, "book": "B003", "strategy": "default",
                          "prices": ["18.02", "17.98", "17.99", "17.94", "17.95"], "avg_comp_price": "17.976",
                          "request_id": 1003, "sold": True, "price": "9.99", "rule_price": "9.50",
                          "guardrail": ["floor"], "run": None, "dispute": None, "factor": "1.1",
                          "previous_price": "12.50", "floor": "9.99", "ceiling": None}
    assert records[0]["factor"] is None  # kept without one (an older Algorithm's decision)


def test_history_filters_by_time_and_strategy_and_writes_csv_and_tables(db: Path) -> None:
    since, until = cli.iso(T0 + 2), cli.iso(T0 + 3)  # [since, until)
    code, out = run("history", "--book", "B003", "--since", since, "--until", until, "--format", "csv", "--db", str(db))
    assert code == 0
    rows = list(csv.DictReader(io.StringIO(out)))
    assert [(r["tick"], r["price"], r["sold"], r["rule_price"]) for r in rows] == [("2", "12.50", "false", "")]
    code, out = run("history", "--book", "B003", "--db", str(db))  # both strategies, as a table
    lines = out.splitlines()
    assert code == 0 and lines[0].split()[:3] == ["ts", "tick", "book"] and len(lines) == 5
    assert "floor" in lines[-1] and "9.50" in lines[-1]


def test_history_tells_apart_two_runs_with_the_same_tick_numbers(db: Path) -> None:
    store = LedgerStore(str(db))
    store.open()
    later = [to_row(decision(t, "B003", ts=T0 + 3600 + t, run=T0 + 3599.25, price="20.00")) for t in (1, 2)]
    store.write([[r for r in later if not isinstance(r, str)]])
    store.close()
    code, out = run("history", "--book", "B003", "--strategy", "default", "--format", "csv", "--db", str(db))
    assert code == 0
    rows = [(r["run"], r["tick"], r["price"]) for r in csv.DictReader(io.StringIO(out))]
    started = cli.iso(T0 + 3599.25)  # the run's start, as a time (none before runs were recorded)
    assert started.endswith(".250Z")
    assert rows == [("", "1", "10.00"), ("", "2", "12.50"), ("", "3", "9.99"), (started, "1", "20.00"),
                    (started, "2", "20.00")]
    code, out = run("history", "--book", "B003", "--strategy", "default", "--format", "json", "--db", str(db))
    assert [(r["run"], r["tick"]) for r in map(json.loads, out.splitlines())][-2:] == [(started, 1), (started, 2)]


def test_history_shows_both_decisions_of_a_disputed_key(db: Path) -> None:
    store = LedgerStore(str(db))
    store.open()
    other = to_row(decision(2, "B003", price="0.01", request_id=666))  # tick 2 of B003 holds another
    assert not isinstance(other, str)
    store.write([[other]])
    store.close()
    code, out = run("history", "--book", "B003", "--strategy", "default", "--format", "json", "--db", str(db))
    assert code == 0
    found = [(r["tick"], r["request_id"], r["price"], r["dispute"]) for r in map(json.loads, out.splitlines())]
    assert found == [(1, 1001, "10.00", None), (2, 1002, "12.50", "kept"), (2, 666, "0.01", "quarantined"),
                     (3, 1003, "9.99", None)]


def test_summary_per_book_and_strategy(db: Path) -> None:
    code, out = run("summary", "--format", "json", "--db", str(db))
    assert code == 0
    b003, b003_fast, b004 = (json.loads(line) for line in out.splitlines())
    assert b003 == {"book": "B003", "strategy": "default", "decisions": 3, "sold_share": "0.667",
                    "first_price": "10.00", "last_price": "9.99", "min_price": "9.99", "max_price": "12.50",
                    "first_ts": cli.iso(T0 + 1), "last_ts": cli.iso(T0 + 3), "disputed": 0}
    # The other strategy's newer decision does not become this one's last price.
    assert (b003_fast["strategy"], b003_fast["last_price"], b003_fast["decisions"]) == ("fast", "11.00", 1)
    assert b004["decisions"] == 1 and b004["min_price"] == b004["max_price"] == "5.00"
    code, out = run("summary", "--strategy", "fast", "--format", "csv", "--db", str(db))
    assert [(r["book"], r["strategy"]) for r in csv.DictReader(io.StringIO(out))] == [("B003", "fast")]


def test_a_table_sizes_its_columns_to_their_content(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite3"
    store = LedgerStore(str(path))
    store.open()
    isbn, long_id = "9780306406157", 1_795_000_000_000_123_456
    made = [to_row(decision(1, isbn, "step-ending", request_id=long_id, rule_price="17.50",
                            guardrail=("step", "ending"))), to_row(decision(2, isbn, price="9.00"))]
    store.write([[r for r in made if not isinstance(r, str)]])
    store.close()
    for command in (("history", "--book", isbn), ("summary",)):
        code, out = run(*command, "--db", str(path))
        header, *lines = out.splitlines()
        assert code == 0 and len(lines) == 2
        starts = [i for i, c in enumerate(header) if c != " " and (i == 0 or header[i - 1] == " ")]
        for line in lines:  # every value starts where its column's name does, none runs into the next
            assert [i for i in starts if line[i - 2:i] in ("  ", "") and line[i] != " "] == starts, (header, line)
        assert isbn in lines[0] and ("step ending" in out or command[0] == "summary")
    assert str(long_id) in run("history", "--book", isbn, "--db", str(path))[1]


@pytest.mark.parametrize(("content", "message"), [
    (None, "no ledger database"),
    (b"garbage, not sqlite" * 100, "file is not a database"),
])
def test_a_missing_or_damaged_database_is_one_clear_line_and_exit_2(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], content: bytes | None, message: str) -> None:
    path = tmp_path / "ledger.sqlite3"
    if content is not None:
        path.write_bytes(content)
    assert run("summary", "--db", str(path))[0] == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and err.count("\n") == 1
    assert not path.exists() or path.read_bytes() == content  # a reader never creates or changes it


def test_a_fifo_is_refused_in_one_line_without_waiting(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "ledger.sqlite3"
    os.mkfifo(path)
    assert run("summary", "--db", str(path))[0] == 2
    assert capsys.readouterr().err == f"error: {path}: not a regular file (a FIFO)\n"


def test_another_sqlite_database_is_not_a_ledger(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "other.db"
    sqlite3.connect(path).execute("CREATE TABLE t (x)")
    assert run("history", "--book", "B1", "--db", str(path))[0] == 2
    assert "not a ledger" in capsys.readouterr().err


def test_reads_work_while_the_ledger_holds_a_write_transaction(db: Path) -> None:
    writer = sqlite3.connect(db, isolation_level=None)
    writer.execute("BEGIN IMMEDIATE")
    writer.execute("DELETE FROM decisions")  # not committed: readers see the last commit, at once
    try:
        code, out = run("summary", "--format", "json", "--db", str(db))
        assert code == 0 and len(out.splitlines()) == 3  # (B003, default), (B003, fast), (B004, default)
        # ... and the reader did not block the writer, which commits while it may still read
        writer.execute("COMMIT")
    finally:
        writer.close()


def test_bad_arguments_are_usage_errors(db: Path) -> None:
    with pytest.raises(SystemExit) as caught:
        cli.query(["history", "--db", str(db)])  # --book is required
    assert caught.value.code == 2
    with pytest.raises(SystemExit):
        cli.query(["history", "--book", "B1", "--since", "yesterday", "--db", str(db)])


def test_the_module_runs_the_actor_by_default_and_the_commands_on_request(db: Path) -> None:
    def module(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "actors.ledger", *args], cwd=REPO, capture_output=True,
                              text=True, timeout=30)

    actor_help = module("--help")
    assert actor_help.returncode == 0 and "--db PATH" in actor_help.stdout
    usage = actor_help.stdout.split("\n\n")[0]
    assert usage.startswith("usage: python -m actors.ledger") and " history " in usage and " summary " in usage
    assert not any(markup in actor_help.stdout for markup in ("``", ":class:", ":mod:", ":func:"))  # plain text
    assert module("serve", "--help").stdout == actor_help.stdout
    assert module("--db", "x", "--help").stdout == actor_help.stdout
    history = module("history", "--book", "B004", "--format", "json", "--db", str(db))
    assert history.returncode == 0 and json.loads(history.stdout)["price"] == "5.00"
    piped = subprocess.run(f"{sys.executable} -m actors.ledger history --book B003 --db {db} | head -1",
                           shell=True, cwd=REPO, capture_output=True, text=True, timeout=30)
    assert piped.returncode == 0 and "Traceback" not in piped.stderr


def test_history_of_a_database_no_version_6_ledger_has_opened_gives_no_factor(tmp_path: Path) -> None:
    path = tmp_path / "v5.sqlite3"
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
    conn.execute("INSERT INTO schema_version VALUES (0)")
    for statements in schema.MIGRATIONS[:5]:
        for statement in statements:
            conn.execute(statement)
    row = to_row(decision(1, "B003"))
    assert not isinstance(row, str)
    conn.execute(f"INSERT INTO decisions ({', '.join(row._fields[:12])}) VALUES ({', '.join('?' * 12)})", row[:12])
    conn.execute("UPDATE schema_version SET version = 5")
    conn.close()
    code, out = run("history", "--book", "B003", "--format", "json", "--db", str(path))
    assert code == 0
    [record] = [json.loads(line) for line in out.splitlines()]
    assert record["price"] == "16.18" and {name: record[name] for name in cli.EXPLAINED_COLUMNS} == dict.fromkeys(
        cli.EXPLAINED_COLUMNS)
