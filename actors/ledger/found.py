"""What a Ledger database holds, looked at read-only before the Ledger starts: for the launcher's one
start line (the absolute path, the decisions and pairs found, the run the pairs resume from) and for
its warning when a new, empty database is about to be started while another one holds history (issue
21: a relative default once started an empty ledger in every working directory, silently).

Read-only and quick: three indexed reads, never a scan of the decisions; any failure is a reason in
the result, never an exception (the Ledger itself reports and retries a bad database).
"""

from __future__ import annotations

import os
import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Final
from urllib.parse import quote

from actors.ledger.records import journal_pairs

OPEN_TIMEOUT: Final = 1.0  # seconds: another process's write lock, at most


@dataclass(frozen=True, slots=True)
class Found:
    path: str  # absolute
    exists: bool
    decisions: int = 0
    pairs: int = 0
    newest_ts: float | None = None  # the newest decision's time
    newest_run: float | None = None  # its run (the Scheduler run's start; 0 before runs were recorded)
    problem: str | None = None  # why it could not be read

    @property
    def history(self) -> bool:
        """Whether it holds decisions to resume from."""
        return self.exists and self.problem is None and self.decisions > 0

    def describe(self) -> str:
        """One line: where, how much, and what the pairs resume from."""
        if not self.exists:
            return f"{self.path}: new (no file yet): every pair starts from the competitor's average"
        if self.problem is not None:
            return f"{self.path}: cannot be read now ({self.problem}): the Ledger says more when it starts"
        if not self.decisions:
            return f"{self.path}: no decision kept yet: every pair starts from the competitor's average"
        run = ""
        if self.newest_run:
            run = f", of the run started {iso(self.newest_run)}"
        newest = f"; the newest at {iso(self.newest_ts)}{run}" if self.newest_ts is not None else ""
        return (f"{self.path}: {self.decisions} decision(s) of {self.pairs} pair(s){newest}: each pair resumes from "
                "its last decided price")


def iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def count_pairs(conn: sqlite3.Connection, tables: set[str]) -> int:
    """The pairs held: those folded into ``pairs`` and those only in ``pairs_pending`` (committed but not
    yet folded when the last run stopped: the Ledger folds them at its next open)."""
    keys = {(book, strategy) for book, strategy in conn.execute("SELECT book, strategy FROM pairs")}
    if "pairs_pending" in tables:
        for (entry,) in conn.execute("SELECT fold FROM pairs_pending"):
            keys.update((pair.book, pair.strategy) for pair in journal_pairs(entry) or ())
    return len(keys)


def look(path: str | Path) -> Found:
    """What the database at ``path`` holds (read-only)."""
    where = os.path.abspath(path)
    if not os.path.exists(where):
        return Found(where, False)
    try:
        conn = sqlite3.connect(f"file:{quote(where)}?mode=ro", uri=True, timeout=OPEN_TIMEOUT)
    except sqlite3.Error as exc:
        return Found(where, True, problem=str(exc))
    try:
        tables = {name for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if not {"decisions", "pairs", "ledger_counts"} <= tables:
            return Found(where, True, problem="not a ledger database" if tables else None)
        (decisions,) = conn.execute("SELECT value FROM ledger_counts WHERE name = 'decisions'").fetchone() or (0,)
        pairs = count_pairs(conn, tables)
        columns = {row[1] for row in conn.execute("PRAGMA table_info(decisions)")}
        newest = conn.execute(f"SELECT ts, {'run' if 'run' in columns else 'NULL'} FROM decisions "
                              "ORDER BY ts DESC LIMIT 1").fetchone()
    except sqlite3.Error as exc:
        return Found(where, True, problem=str(exc))
    finally:
        conn.close()
    ts, run = newest if newest is not None else (None, None)
    return Found(where, True, int(decisions), int(pairs), ts, run)
