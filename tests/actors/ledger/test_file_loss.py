"""The Ledger's file taken away or damaged under a running Ledger process (issue 20): deleted, replaced,
truncated, a damaged middle, each with a variant. Each time the Ledger notices, logs once, counts,
refuses what it cannot have stored, and recovers by itself: it never acknowledges a decision that is
not in the file at its path (or, for a file replaced under it, in the copy it saves beside it)."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from actors.ledger.records import to_row
from actors.ledger.store import LedgerStore
from tests.actors.ledger.helpers import decision, keys
from tests.actors.ledger.test_process import send_batch, start, stop
from tests.helpers import REPO, wait_for

pytestmark = [pytest.mark.both_loops, pytest.mark.timeout(90)]

DETECTED = "is not acknowledged; recovering"  # the one line logged when a loss is found
Key = tuple[str, str, int]


@pytest.fixture
def place() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="lf-", dir="/tmp"))  # short: an ipc path lives here
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@dataclass
class Run:
    db: Path
    log: Path
    endpoint: str
    batch_id: int = 0
    acked: list[Key] = field(default_factory=list)
    refusals: list[str] = field(default_factory=list)

    def send(self, count: int = 1, book: str = "B") -> list[Key]:
        """``count`` batches of 20 decisions; the keys of those acknowledged (refusals are noted)."""
        done: list[Key] = []
        for _ in range(count):
            self.batch_id += 1
            batch = [decision(self.batch_id * 100 + i, f"{book}{i:03d}") for i in range(20)]
            ack = send_batch(self.endpoint, self.batch_id, batch)
            assert ack is not None, "the Ledger did not answer"
            if ack.error:
                self.refusals.append(ack.error)
                continue
            assert ack.stored == len(batch)
            done += [(d.book, d.strategy, d.tick) for d in batch]
        self.acked += done
        return done

    def logged(self, text: str) -> int:
        return self.log.read_text(errors="replace").count(text)

    def aside(self, label: str) -> list[Path]:
        found = self.db.parent.glob(f"{self.db.name}.{label}-*")
        return sorted(p for p in found if not p.name.endswith(("-wal", "-shm")))


def scenario(place: Path, body: Callable[[Run], None], *extra: str) -> Run:
    run = Run(place / "ledger.sqlite3", place / "ledger.log", f"ipc://{place}/ledger.sock")
    # One file event at a time: the staged decisions are a day old, so without this every pair would
    # raise stale-data and Ledger-behind alerts, whose writes are commits of their own landing in the
    # window where the file is taken away (a commit just before a replacement is its own case).
    config = place / "alerts.toml"
    config.write_text("[alerts]\nstale_competitor_seconds = 0\nledger_lag_seconds = 0\n", encoding="utf-8")
    ledger = start(run.endpoint, run.db, run.log, "--quick-check-every", "0.2", "--config", str(config), *extra)
    try:
        body(run)
        assert ledger.poll() is None, "the Ledger must stay up"
    finally:
        stop(ledger)
    return run


def history_works(db: Path, book: str) -> None:
    done = subprocess.run([sys.executable, "-m", "actors.ledger", "history", "--book", book, "--db", str(db),
                           "--format", "json"], cwd=REPO, capture_output=True, text=True, timeout=30)
    assert done.returncode == 0 and done.stdout and not done.stderr, done.stderr


def checkpointed(run: Run) -> None:
    """Wait until the Ledger has copied its WAL into the main file (its size grows), then write once
    more so the WAL starts again: the pages written before are then read from the main file."""
    run.send(1)
    size = run.db.stat().st_size
    run.send(10)
    wait_for(lambda: run.db.stat().st_size > size, 10, 0.05)
    run.send(1, "W")


# --- deleted ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("suffixes", [("", "-wal", "-shm"), ("-wal",)], ids=["with-wal-and-shm", "wal-only"])
def test_a_deleted_file_is_put_back_at_its_path_with_nothing_lost(place: Path, suffixes: tuple[str, ...]) -> None:
    def body(run: Run) -> None:
        before = run.send(5)
        for suffix in suffixes:
            os.unlink(f"{run.db}{suffix}")
        wait_for(lambda: run.logged("acknowledging again") == 1, 10, 0.02)  # noticed while idle, within 1 s
        after = run.send(5)
        assert before and after and not run.refusals
        assert run.logged(DETECTED) == 1 and run.logged("acknowledging again") == 1
        assert run.logged("nothing lost") == 1

    run = scenario(place, body)
    assert set(keys(run.db)) == set(run.acked)  # before and after the deletion: every one, once
    history_works(run.db, "B000")
    assert not list(place.glob("*.restoring-*"))


def test_a_deletion_between_commits_refuses_the_next_batch_and_keeps_every_one_acknowledged(place: Path) -> None:
    # No idle second for the periodic check: the commit right after the deletion finds it.
    def body(run: Run) -> None:
        run.send(3)
        for suffix in ("", "-wal", "-shm"):
            os.unlink(f"{run.db}{suffix}")
        run.send(1)
        wait_for(lambda: run.logged("acknowledging again") == 1, 10, 0.02)
        run.send(3)

    run = scenario(place, body)
    kept = set(keys(run.db))
    assert set(run.acked) <= kept  # restored from the still-open file: every one acknowledged
    assert len(kept) == 7 * 20  # and the refused batch too (committed to the deleted file): a resend is a duplicate
    assert len(run.refusals) == 1 and run.refusals[0].startswith("not stored: ledger database lost: "), run.refusals


# --- truncated ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("to", [0, 0.5], ids=["to-zero", "to-half"])
def test_a_truncated_file_is_set_aside_and_a_new_ledger_started(place: Path, to: float) -> None:
    def body(run: Run) -> None:
        checkpointed(run)
        os.truncate(run.db, int(run.db.stat().st_size * to))
        first = run.send(1)  # found by the commit's check (refused) or, if idle first, the periodic one
        wait_for(lambda: run.logged("acknowledging again") == 1, 10, 0.02)
        after = run.send(5)
        assert after and set(first + after) <= set(keys(run.db))  # acknowledged = in the file at the path
        # Seen by the size check, or first by the periodic quick_check's read of the pages now missing:
        # both set the file aside.
        assert run.logged(DETECTED) == 1 and run.logged("truncated to") + run.logged(": quick_check: ") >= 1

    run = scenario(place, body)
    (damaged,) = run.aside("damaged")
    assert damaged.stat().st_size > 0
    assert set(keys(run.db)) <= set(run.acked)
    history_works(run.db, "B000")


# --- replaced -----------------------------------------------------------------------------------------


def another_ledger(path: Path) -> None:
    store = LedgerStore(str(path))
    store.open()
    row = to_row(decision(1, "OTHER"))
    assert not isinstance(row, str)
    store.write([[row]])
    store.close()


def test_a_replaced_file_is_used_and_the_open_one_saved_beside_it(place: Path) -> None:
    def body(run: Run) -> None:
        before = run.send(5)
        another_ledger(place / "restored.sqlite3")
        os.replace(place / "restored.sqlite3", run.db)  # an operator's restore: mv over the path
        wait_for(lambda: run.logged("acknowledging again") == 1, 10, 0.02)
        after = run.send(5)
        assert before and after and not run.refusals
        (lost,) = run.aside("lost")
        assert sorted(keys(lost)) == sorted(before), run.log.read_text()  # what it had acknowledged: saved
        assert set(keys(run.db)) == {("OTHER", "default", 1), *after}, run.log.read_text()

    run = scenario(place, body)
    assert run.logged(DETECTED) == 1
    history_works(run.db, "OTHER")


def test_a_file_replaced_by_something_not_a_ledger_is_left_alone_until_an_operator_moves_it(place: Path) -> None:
    def body(run: Run) -> None:
        before = run.send(3)
        garbage = b"not a database\n" * 1000
        (place / "junk").write_bytes(garbage)
        os.replace(place / "junk", run.db)
        wait_for(lambda: run.logged(DETECTED) == 1, 10, 0.02)
        wait_for(lambda: run.send(1) == [] and "corrupt" in run.refusals[-1], 10, 0.05)
        assert run.db.read_bytes() == garbage  # never overwritten
        (lost,) = run.aside("lost")
        assert set(keys(lost)) == set(before)
        run.db.rename(place / "junk")  # the operator moves it away: a new ledger is started
        wait_for(lambda: run.send(1) != [], 10, 0.05)

    run = scenario(place, body)
    assert set(keys(run.db)) == set(run.acked) - set(keys(run.aside("lost")[0]))


# --- damaged middle -----------------------------------------------------------------------------------


@pytest.mark.parametrize("filler", [b"\xa5", b"\x00"], ids=["garbage", "zeros"])
def test_a_damaged_middle_is_found_by_quick_check_set_aside_and_a_new_ledger_started(place: Path,
                                                                                      filler: bytes) -> None:
    def body(run: Run) -> None:
        checkpointed(run)
        size = run.db.stat().st_size
        with open(run.db, "r+b") as f:  # 8 pages in the middle, written long ago: read from this file
            f.seek(size // 2 // 4096 * 4096)
            f.write(filler * 8 * 4096)
        wait_for(lambda: run.logged("acknowledging again") == 1, 20, 0.02)
        assert run.logged(DETECTED) == 1 and run.logged("quick_check") >= 1
        after = run.send(5)
        assert after and set(keys(run.db)) == set(after)

    run = scenario(place, body)
    (damaged,) = run.aside("damaged")
    assert not quick_check_ok(damaged)  # set aside as it was, for an operator
    history_works(run.db, "B000")


def quick_check_ok(db: Path) -> bool:
    conn = sqlite3.connect(db)
    try:
        return conn.execute("PRAGMA quick_check").fetchall() == [("ok",)]
    except sqlite3.DatabaseError:
        return False
    finally:
        conn.close()
