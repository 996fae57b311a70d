"""How the Ledger names a change of its files (pure: snapshots in, a verdict out)."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

from actors.ledger.files import Snapshot, change
from actors.ledger.store import LedgerStore, quick_check

OPENED = Snapshot(((1, 10), (1, 11), (1, 12)), 4096)


def test_whole_files_are_no_change() -> None:
    assert change("db", OPENED, Snapshot(OPENED.ids, 8192)) is None  # grown by a checkpoint


def test_a_main_file_truncated_is_the_main_files_loss_even_when_its_wal_went_too() -> None:
    # SQLite may remove the -wal of a main file truncated under it: set the main file aside, not "reopen
    # after a lost -wal" (which found the main file damaged and retried forever).
    found = change("db", OPENED, Snapshot(((1, 10), None, (1, 12)), 0))
    assert found is not None and (found.kind, found.main) == ("truncated", True)
    assert found.detail == "db was truncated to 0 bytes (it had 4096) while open"


def test_the_main_file_replaced_or_deleted_comes_before_its_wal() -> None:
    found = change("db", OPENED, Snapshot(((1, 99), None, None), 4096))
    assert found is not None and (found.kind, found.main, found.detail) == (
        "replaced", True, "db was replaced by another file while open")
    found = change("db", OPENED, Snapshot((None, None, None), 0))
    assert found is not None and (found.kind, found.main) == ("deleted", True)


def test_only_the_wal_or_shm_gone_is_not_the_main_files_loss() -> None:
    found = change("db", OPENED, Snapshot(((1, 10), None, (1, 12)), 4096))
    assert found is not None and (found.kind, found.main, found.detail) == (
        "deleted", False, "db-wal was deleted while open")
    found = change("db", OPENED, Snapshot(((1, 10), (1, 11), (2, 5)), 4096))
    assert found is not None and (found.kind, found.main) == ("replaced", False)


def test_a_file_absent_at_open_is_no_ones_to_lose() -> None:
    opened = Snapshot(((1, 10), None, None), 4096)
    assert change("db", opened, Snapshot(((1, 10), (1, 11), (1, 12)), 4096)) is None


def test_the_periodic_check_opens_nothing_once_the_path_names_other_files(tmp_path: Path) -> None:
    # A connection opened on a file put at the path beside the writer's -wal and -shm indexes that WAL as
    # the new file's, under the writer: whose saving of the old file then fails (issue 20, CI).
    db = tmp_path / "l.sqlite3"
    store = LedgerStore(str(db))
    store.open()
    opened = store.opened_files
    assert opened is not None and quick_check(str(db), opened) == (opened.ids[0], None)
    other = tmp_path / "other.sqlite3"
    sqlite3.connect(other).close()
    os.replace(other, db)
    assert quick_check(str(db), opened) == (None, None)
    store.close()
