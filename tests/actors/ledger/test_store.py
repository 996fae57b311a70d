"""The ledger database itself (the store, on its own, on real files): created on first start, idempotent
inserts with ``pairs`` in the same transaction, resends, retention a step at a time, migrations, and
every kind of bad file or failing disk as an exception of the right kind, with nothing half-written."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from actors.ledger import schema
from actors.ledger.errors import SchemaError, error_kind
from actors.ledger.records import Retention, to_row
from actors.ledger.store import LedgerStore, Written
from tests.actors.ledger.helpers import T0, decision, keys, rows
from transport.ledger_rows import DecisionRow
from transport.protocol import Decision


def to_row_ok(d: Decision) -> DecisionRow:
    row = to_row(d)
    assert not isinstance(row, str), row
    return row


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "var" / "ledger.sqlite3"


def opened(path: Path, **kwargs: object) -> LedgerStore:
    store = LedgerStore(str(path), **kwargs)  # type: ignore[arg-type]
    store.open()
    return store


def test_first_start_creates_the_directory_the_file_and_the_contract_schema(db: Path) -> None:
    store = LedgerStore(str(db))
    assert store.open() == (0, schema.VERSION)
    store.close()
    conn = sqlite3.connect(db)
    assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    assert conn.execute("SELECT version FROM schema_version").fetchall() == [(schema.VERSION,)]
    columns = {table: [c[1] for c in conn.execute(f"PRAGMA table_info({table})")] for table in ("decisions", "pairs")}
    assert columns == {
        "decisions": ["book", "strategy", "run", "tick", "ts", "prices", "avg_comp_price", "request_id", "sold",
                      "price", "rule_price", "guardrail", "factor", "previous_price", "floor", "ceiling"],
        "pairs": ["book", "strategy", "tick", "ts", "price", "price_cents", "avg_comp_price", "avg_sort", "sold",
                  "guardrail", "decisions", "guardrail_hits", "run"],
    }
    primary_key = sorted((c[5], c[1]) for c in conn.execute("PRAGMA table_info(decisions)") if c[5])
    assert [name for _, name in primary_key] == ["book", "strategy", "run", "tick"]
    assert ("decisions_by_ts",) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'index'").fetchall()
    conn.close()
    assert LedgerStore(str(db)).open() == (schema.VERSION, schema.VERSION)  # the second start changes nothing


def test_inserts_are_idempotent_and_pairs_count_each_decision_once(db: Path) -> None:
    store = opened(db)
    first = [to_row_ok(decision(t, guardrail=("floor",) if t == 2 else ())) for t in range(1, 4)]
    assert store.write([first]) == [Written(3, 0, 0)]
    # A resend (the whole batch again, plus one new) inside a group with another batch.
    again = [*first, to_row_ok(decision(4))]
    other = [to_row_ok(decision(1, "B002"))]
    assert store.write([again, other]) == [Written(1, 3, 0), Written(1, 0, 0)]
    assert keys(db) == [("B001", "default", t) for t in (1, 2, 3, 4)] + [("B002", "default", 1)]
    assert store.update_pairs() == 2
    (b1, b2) = rows(db, "pairs", "book")
    assert (b1["decisions"], b1["guardrail_hits"], b1["tick"], b1["price_cents"]) == (4, 1, 4, 1618)
    assert b2["decisions"] == 1
    assert store.rows == 5 and sqlite3.connect(db).execute("SELECT value FROM ledger_counts").fetchone() == (5,)


def test_a_same_key_with_another_decision_is_kept_in_quarantine_never_dropped(db: Path) -> None:
    # A forger sends first (the run's t0, a tick to come, a price of 0.01); the real decision comes next.
    store = opened(db, wall=lambda: T0 + 99)
    forged = to_row_ok(decision(5, request_id=1, price="0.01", run=T0))
    real = to_row_ok(decision(5, request_id=2, price="99.00", run=T0))
    assert store.write([[forged]]) == [Written(1, 0, 0)]
    assert store.write([[real]]) == [Written(0, 1, 1, quarantined=1)]
    assert store.write([[real], [forged]]) == [Written(0, 1, 1), Written(0, 1, 0)]  # resent: kept once
    assert [(r["request_id"], r["price"]) for r in rows(db)] == [(1, "0.01")]
    (kept,) = rows(db, "collisions", "rowid")
    assert kept == {**real._asdict(), "received": T0 + 99}
    same_but_price = to_row_ok(decision(5, request_id=2, price="98.00", run=T0))  # other content, same id
    assert store.write([[same_but_price]]) == [Written(0, 1, 1, quarantined=1)]
    assert store.update_pairs() == 1 and rows(db, "pairs")[0]["decisions"] == 1  # pairs count what is kept


def test_quarantine_is_bounded_and_pruned_with_the_decisions(db: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(schema, "COLLISIONS_MAX", 2)
    store = opened(db)
    store.write([[to_row_ok(decision(t, request_id=1)) for t in range(3)]])
    others = [to_row_ok(decision(t, request_id=2)) for t in range(3)]
    assert store.write([others]) == [Written(0, 3, 3, quarantined=2, unkept=1)]
    assert store.prune(Retention(max_age_days=1 / 86_400), T0 + 3) == 2  # older than T0 + 2: ticks 0 and 1
    assert [r["tick"] for r in rows(db, "collisions", "rowid")] == []  # both kept were of ticks 0 and 1


def test_two_runs_with_the_same_tick_numbers_are_both_kept(db: Path) -> None:
    # Each launcher run numbers its ticks from 0: the second run's ticks 0..2 are new decisions.
    store = opened(db)
    first = [to_row_ok(decision(t, ts=T0 + t, run=T0, request_id=100 + t, price="10.00")) for t in range(3)]
    second = [to_row_ok(decision(t, ts=T0 + 600 + t, run=T0 + 590, request_id=200 + t, price="11.00"))
              for t in range(3)]
    assert store.write([first]) == [Written(3, 0, 0)]
    assert store.write([second]) == [Written(3, 0, 0)]
    assert store.write([second[1:]]) == [Written(0, 2, 0)]  # a resend is still a duplicate, not a collision
    assert [(r["run"], r["tick"], r["request_id"]) for r in rows(db)] == (
        [(T0, t, 100 + t) for t in range(3)] + [(T0 + 590, t, 200 + t) for t in range(3)])
    store.update_pairs()
    (pair,) = rows(db, "pairs")
    assert (pair["run"], pair["tick"], pair["price"], pair["decisions"]) == (T0 + 590, 2, "11.00", 6)
    assert store.rows == 6 and store.last_decided([("B001", "default")]) == [("11.00", T0 + 602)]


def test_pairs_lag_until_updated_but_a_resuming_worker_never_sees_the_lag(db: Path) -> None:
    store = opened(db)
    store.write([[to_row_ok(decision(1, price="11.00")), to_row_ok(decision(1, "B002"))]])
    store.write([[to_row_ok(decision(2, price="12.00"))]])
    assert rows(db, "pairs") == [] and store.pending_pairs == 2
    assert len(rows(db, "pairs_pending", "id")) == 2  # each write's fold, committed with its decisions
    assert store.last_decided([("B001", "default")]) == [("12.00", T0 + 2)]
    assert store.update_pairs() == 2 and store.pending_pairs == 0 and store.update_pairs() == 0
    assert [(p["book"], p["price"], p["decisions"]) for p in rows(db, "pairs", "book")] == [
        ("B001", "12.00", 2), ("B002", "16.18", 1)]
    assert rows(db, "pairs_pending", "id") == []
    assert store.last_decided([("B001", "default")]) == [("12.00", T0 + 2)]


def test_a_ledger_stopped_before_updating_pairs_updates_them_at_its_next_start(db: Path) -> None:
    # What a SIGKILL leaves: decisions committed, their share of pairs only in pairs_pending.
    store = opened(db)
    store.write([[to_row_ok(decision(t, book, guardrail=("floor",) if t == 2 else ())) for t in (1, 2)
                  for book in ("B001", "B002")]])
    store.update_pairs()
    store.write([[to_row_ok(decision(3, "B001", price="13.00"))]])
    store.write([[to_row_ok(decision(4, "B001", price="14.00")), to_row_ok(decision(3, "B003"))]])
    store.close()
    again = opened(db)
    assert again.pending_pairs == 2 and again.journal_skipped == 0
    assert again.last_decided([("B001", "default"), ("B003", "default")]) == [("14.00", T0 + 4), ("16.18", T0 + 3)]
    assert again.update_pairs() == 2
    pairs = rows(db, "pairs", "book")
    assert [(p["book"], p["tick"], p["price"], p["decisions"], p["guardrail_hits"]) for p in pairs] == [
        ("B001", 4, "14.00", 4, 1), ("B002", 2, "16.18", 2, 1), ("B003", 3, "16.18", 1, 0)]
    assert rows(db, "pairs_pending", "id") == []


def test_a_pairs_pending_row_not_written_by_a_ledger_is_skipped_and_counted(db: Path) -> None:
    store = opened(db)
    store.write([[to_row_ok(decision(1))]])
    store.close()
    conn = sqlite3.connect(db)
    foreign = [(b"garbage",), ("text",), (b"\x91\x93\x01\x02\x03",)]  # not msgpack, not a blob, a short pair
    conn.executemany("INSERT INTO pairs_pending (fold) VALUES (?)", foreign)
    conn.commit()
    conn.close()
    again = opened(db)
    assert (again.journal_skipped, again.pending_pairs) == (3, 1)
    again.update_pairs()
    assert [(p["book"], p["decisions"]) for p in rows(db, "pairs")] == [("B001", 1)]


def test_a_late_resend_of_an_older_batch_never_moves_pairs_back(db: Path) -> None:
    store = opened(db)
    store.write([[to_row_ok(decision(2, price="12.00"))]])
    store.update_pairs()
    store.write([[to_row_ok(decision(1, price="11.00"))]])  # an older decision, committed later
    assert store.last_decided([("B001", "default")]) == [("12.00", T0 + 2)]  # pending, but older
    store.update_pairs()
    (pair,) = rows(db, "pairs")
    assert (pair["tick"], pair["price"], pair["decisions"]) == (2, "12.00", 2)
    assert store.last_decided([("B001", "default"), ("B001", "other")]) == [("12.00", T0 + 2), None]


def test_retention_by_rows_and_by_age_deletes_the_oldest_a_step_at_a_time(db: Path) -> None:
    store = opened(db)
    store.write([[to_row_ok(decision(t)) for t in range(100)]])
    by_rows = Retention(max_rows=40, step=25)
    assert [store.prune(by_rows, T0) for _ in range(4)] == [25, 25, 10, 0]
    assert [k[2] for k in keys(db)] == list(range(60, 100)) and store.rows == 40
    by_age = Retention(max_age_days=10 / 86_400, step=7)  # older than 10 s before "now"
    now = T0 + 80
    while store.prune(by_age, now) == 7:
        pass
    assert [k[2] for k in keys(db)] == list(range(70, 100))
    assert sqlite3.connect(db).execute("SELECT value FROM ledger_counts").fetchone() == (30,)
    store.update_pairs()
    assert rows(db, "pairs")[0]["decisions"] == 100  # pairs count what was decided, not what is kept


def test_an_older_schema_is_migrated_forward_and_a_newer_one_refused(db: Path) -> None:
    db.parent.mkdir()
    conn = sqlite3.connect(db)
    conn.executescript("CREATE TABLE schema_version (version INTEGER NOT NULL); INSERT INTO schema_version VALUES (0);")
    conn.close()
    assert LedgerStore(str(db)).open() == (0, schema.VERSION)
    conn = sqlite3.connect(db)
    conn.execute("UPDATE schema_version SET version = ?", (schema.VERSION + 1,))
    conn.commit()
    conn.close()
    with pytest.raises(SchemaError, match="newer"):
        LedgerStore(str(db)).open()


def test_a_version_1_ledger_gains_the_dashboard_indexes_and_keeps_its_rows(db: Path) -> None:
    db.parent.mkdir()
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
    conn.execute("INSERT INTO schema_version VALUES (1)")
    for statement in schema.MIGRATIONS[0]:
        conn.execute(statement)
    conn.close()
    store = LedgerStore(str(db))  # a Ledger of version 1 wrote this; this one migrates it at start
    assert store.open() == (1, schema.VERSION)
    store.write([[to_row_ok(decision(1))]])
    store.close()
    assert LedgerStore(str(db)).open() == (schema.VERSION, schema.VERSION)
    conn = sqlite3.connect(db)
    indexes = {name for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
    assert {"pairs_by_price", "pairs_by_ts", "pairs_by_strategy"} <= indexes
    plan = " ".join(str(r) for r in conn.execute("EXPLAIN QUERY PLAN SELECT book FROM pairs ORDER BY price_cents"))
    assert "pairs_by_price" in plan and keys(db) == [("B001", "default", 1)]


def version_2_ledger(db: Path) -> None:
    """A database as a Ledger of schema version 2 left it: key (book, strategy, tick), two pairs with
    rows (B001 with ticks 1..3, the newest in ``pairs``), the row count kept."""
    db.parent.mkdir()
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
    conn.execute("INSERT INTO schema_version VALUES (2)")
    for statement in (*schema.MIGRATIONS[0], *schema.MIGRATIONS[1]):
        conn.execute(statement)
    old = [("B001", "default", t, T0 + t, '["17.00"]', "17", 1000 + t, t % 2, f"1{t}.00", None,
            '["floor"]' if t == 2 else None) for t in (1, 2, 3)] + [
           ("B002", "fast", 7, T0 + 7, '["9.00"]', "9", 2007, 0, "8.50", "8.40", None)]
    conn.executemany("INSERT INTO decisions VALUES (?,?,?,?,?,?,?,?,?,?,?)", old)
    conn.executemany("INSERT INTO pairs VALUES (?,?,?,?,?,?,?,?,?,?,?,?)", [
        ("B001", "default", 3, T0 + 3, "13.00", 1300, "17", 17.0, 1, None, 3, 1),
        ("B002", "fast", 7, T0 + 7, "8.50", 850, "9", 9.0, 0, None, 1, 0)])
    conn.execute("UPDATE ledger_counts SET value = 4")
    conn.close()


def test_a_version_2_ledger_is_rebuilt_with_the_run_in_the_key_and_keeps_every_row(db: Path) -> None:
    version_2_ledger(db)
    before = rows(db, order="book, strategy, tick")
    store = LedgerStore(str(db))
    assert store.open() == (2, schema.VERSION) and store.rows == 4
    after = rows(db)
    # every field kept; run 0: "before runs"; no factor or bounds (version 6 added them)
    assert after == [{**row, "run": 0.0, "factor": None, "previous_price": None, "floor": None, "ceiling": None}
                     for row in before]
    assert [(p["book"], p["tick"], p["run"], p["price"], p["decisions"]) for p in rows(db, "pairs", "book")] == [
        ("B001", 3, 0.0, "13.00", 3), ("B002", 7, 0.0, "8.50", 1)]
    # The first run after the upgrade numbers its ticks from 0 again: nothing collides with the old rows.
    new = [to_row_ok(decision(t, ts=T0 + 100 + t, run=T0 + 99, price="14.00")) for t in (1, 2, 3)]
    assert store.write([new]) == [Written(3, 0, 0)]
    assert store.last_decided([("B001", "default")]) == [("14.00", T0 + 103)]
    store.close()
    conn = sqlite3.connect(db)
    indexes = {name for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
    assert {"decisions_by_ts", "decisions_by_pair_ts", *schema.PAIRS_INDEXES} <= indexes
    assert "decisions_v3" not in {n for (n,) in conn.execute("SELECT name FROM sqlite_master")}
    assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    assert conn.execute("SELECT value FROM ledger_counts").fetchone() == (7,)
    conn.close()
    assert LedgerStore(str(db)).open() == (schema.VERSION, schema.VERSION)


def test_a_migration_that_fails_half_way_leaves_the_version_2_ledger_as_it_was(db: Path) -> None:
    version_2_ledger(db)
    conn = sqlite3.connect(db, isolation_level=None)
    # The migration's last step fails (pairs has a ``run`` already): the rebuilt ``decisions`` before
    # it must roll back with it.
    conn.execute("ALTER TABLE pairs ADD COLUMN run TEXT")
    conn.close()
    before = rows(db, order="book, strategy, tick")
    with pytest.raises(sqlite3.OperationalError, match="duplicate column"):
        LedgerStore(str(db)).open()
    assert rows(db, order="book, strategy, tick") == before
    conn = sqlite3.connect(db)
    assert conn.execute("SELECT version FROM schema_version").fetchall() == [(2,)]
    assert [c[1] for c in conn.execute("PRAGMA table_info(decisions)")][:3] == ["book", "strategy", "tick"]
    conn.close()


def test_a_sqlite_file_of_something_else_is_refused_and_left_alone(db: Path) -> None:
    db.parent.mkdir()
    conn = sqlite3.connect(db)
    conn.execute("CREATE TABLE invoices (id INTEGER)")
    conn.commit()
    conn.close()
    with pytest.raises(SchemaError, match="not a ledger") as caught:
        LedgerStore(str(db)).open()
    assert error_kind(caught.value) == "schema"
    assert [n for (n,) in sqlite3.connect(db).execute("SELECT name FROM sqlite_master")] == ["invoices"]


def test_a_file_that_is_not_sqlite_is_a_corrupt_error_and_is_not_overwritten(db: Path) -> None:
    db.parent.mkdir()
    garbage = b"this is not a database\n" * 500
    db.write_bytes(garbage)
    with pytest.raises(sqlite3.DatabaseError) as caught:
        LedgerStore(str(db)).open()
    assert error_kind(caught.value) == "corrupt"
    assert db.read_bytes() == garbage


def test_a_full_database_fails_the_whole_write_and_keeps_what_was_committed(db: Path) -> None:
    store = opened(db, max_db_bytes=128 * 1024)
    store.write([[to_row_ok(decision(1))]])
    big = [to_row_ok(decision(t, book="B" * 100)) for t in range(2, 2000)]
    with pytest.raises(sqlite3.Error) as caught:
        store.write([big])
    assert error_kind(caught.value) == "full"
    assert keys(db) == [("B001", "default", 1)] and store.rows == 1
    assert store.pending_pairs == 1 and store.update_pairs() == 1  # only the committed decision
    assert rows(db, "pairs")[0]["decisions"] == 1
    store.write([[to_row_ok(decision(2))]])  # small writes still fit
    assert store.rows == 2


def test_a_database_locked_by_another_process_fails_after_the_busy_timeout_then_works(db: Path) -> None:
    store = opened(db)
    other = sqlite3.connect(db, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # another writer holds the lock
    with pytest.raises(sqlite3.OperationalError) as caught:
        store.write([[to_row_ok(decision(1))]])
    assert error_kind(caught.value) == "locked"
    assert store.last_decided([("B001", "default")]) == [None]  # reads go on meanwhile (WAL)
    other.execute("ROLLBACK")
    store.write([[to_row_ok(decision(1))]])
    assert keys(db) == [("B001", "default", 1)]


def test_a_path_that_is_a_directory_cannot_be_opened(tmp_path: Path) -> None:
    with pytest.raises(sqlite3.Error) as caught:
        LedgerStore(str(tmp_path)).open()
    assert error_kind(caught.value) == "cantopen"
