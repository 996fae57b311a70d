"""The ledger database's schema and its forward migrations.

``MIGRATIONS[i]`` takes a database from version ``i`` to ``i + 1``; a new Ledger applies the missing
ones at start, each in its own transaction with the version bump, so a crash mid-migration leaves the
previous version intact. A database newer than this code, or a SQLite file that is not a ledger, is
refused (:class:`SchemaError`), never altered. Version 1 is the shared contract (the team brief):
``decisions`` and ``pairs`` are read by other tools and must not change without a migration. Version 3
makes the Scheduler run part of a decision's identity: (book, strategy, run, tick).
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator
from types import MappingProxyType
from typing import Final

from actors.ledger.errors import SchemaError

# What a decision holds besides its identity. Part of migrations already applied to databases in use:
# never edit it (a change is a new migration).
_DECISION_FIELDS: Final = """ts REAL NOT NULL,
        prices TEXT NOT NULL,
        avg_comp_price TEXT NOT NULL,
        request_id INTEGER NOT NULL,
        sold INTEGER NOT NULL,
        price TEXT NOT NULL,
        rule_price TEXT,
        guardrail TEXT"""

_V1: Final = (
    f"""CREATE TABLE decisions (
        book TEXT NOT NULL, strategy TEXT NOT NULL, tick INTEGER NOT NULL,
        {_DECISION_FIELDS},
        PRIMARY KEY (book, strategy, tick)
    ) WITHOUT ROWID""",
    "CREATE INDEX decisions_by_ts ON decisions (ts)",
    """CREATE TABLE pairs (
        book TEXT NOT NULL, strategy TEXT NOT NULL,
        tick INTEGER NOT NULL, ts REAL NOT NULL,
        price TEXT NOT NULL, price_cents INTEGER NOT NULL,
        avg_comp_price TEXT NOT NULL, avg_sort REAL NOT NULL,
        sold INTEGER NOT NULL, guardrail TEXT,
        decisions INTEGER NOT NULL,
        guardrail_hits INTEGER NOT NULL,
        PRIMARY KEY (book, strategy)
    ) WITHOUT ROWID""",
    # The Ledger's own bookkeeping: the number of rows in ``decisions``, kept in the same transactions
    # as the rows, so retention by row count never has to count 40 million rows.
    "CREATE TABLE ledger_counts (name TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID",
    "INSERT INTO ledger_counts VALUES ('decisions', 0)",
)

_V1_REST: Final = "ts, prices, avg_comp_price, request_id, sold, price, rule_price, guardrail"

# Version 2: the indexes the Dashboard asks for: one per sort key of its books table, each ending with
# the primary key, so a page at any depth walks an index instead of sorting the table. They cost the
# Ledger ~15-20% of its insert rate (a pair's row changes with every decision); measured with
# bench/ledger.py. Named, so a benchmark can measure the Dashboard without them (bench/fake_ledger.py).
PAIRS_INDEXES: Final = MappingProxyType({
    "pairs_by_strategy": "strategy, book",
    "pairs_by_price": "price_cents, book, strategy",
    "pairs_by_avg": "avg_sort, book, strategy",
    "pairs_by_sold": "sold, book, strategy",
    "pairs_by_hits": "guardrail_hits, book, strategy",
    "pairs_by_decisions": "decisions, book, strategy",
    "pairs_by_ts": "ts, book, strategy",
})
_V2: Final = tuple(f"CREATE INDEX IF NOT EXISTS {name} ON pairs ({columns})"
                   for name, columns in PAIRS_INDEXES.items())

# Version 3: a decision is one tick of one Scheduler run. Tick numbers restart at 0 with every
# launcher run, so (book, strategy, tick) made a second run's decisions collide with the first's; the
# key is now (book, strategy, run, tick), ``run`` being the run's t0 (``Decision.run``). SQLite cannot
# change a primary key in place: the table is rebuilt (rows kept, in key order, with run = 0: "before
# runs were recorded"), inside the migration's one transaction. ``pairs`` keeps its key and gains the
# run of its newest decision (newest by (ts, run, tick), a total order). ``decisions_by_pair_ts`` (its
# entries end with the key: (book, strategy, ts, run, tick)) lets the Dashboard page through a pair's
# decisions newest first by time without sorting all of them: tick order means nothing across runs.
# Measured with a store writing 200,000 decisions of 10,000 books in groups of 2,000: 0.95-1.0x the
# insert rate without it, +39 bytes per decision.
_V3: Final = (
    f"""CREATE TABLE decisions_v3 (
        book TEXT NOT NULL, strategy TEXT NOT NULL, run REAL NOT NULL, tick INTEGER NOT NULL,
        {_DECISION_FIELDS},
        PRIMARY KEY (book, strategy, run, tick)
    ) WITHOUT ROWID""",
    f"INSERT INTO decisions_v3 (book, strategy, run, tick, {_V1_REST}) SELECT book, strategy, 0, tick, {_V1_REST} "
    "FROM decisions ORDER BY book, strategy, tick",
    "DROP TABLE decisions",  # and its index
    "ALTER TABLE decisions_v3 RENAME TO decisions",
    "CREATE INDEX decisions_by_ts ON decisions (ts)",
    "CREATE INDEX decisions_by_pair_ts ON decisions (book, strategy, ts)",
    "ALTER TABLE pairs ADD COLUMN run REAL NOT NULL DEFAULT 0",
)

# Version 4: ``pairs`` is brought up to date at most a second after its decisions (see
# ``actors/ledger/store.py``): at 50 decisions a second a pair's row was rewritten 50 times, with its 7
# Dashboard index entries each time, more than the decisions' own insert. Until then each write keeps
# its rows' fold of ``pairs`` here, in the decisions' own transaction, so a crash loses nothing of
# ``pairs``: a Ledger that starts folds whatever it finds here into ``pairs``. Small: it is emptied
# with every update of ``pairs``.
_V4: Final = (
    "CREATE TABLE pairs_pending (id INTEGER PRIMARY KEY, fold BLOB NOT NULL)",
)

# Version 5: a decision whose key (book, strategy, run, tick) already holds a *different* decision is
# kept here, never dropped: whichever came first stays in ``decisions``, the other comes here with the
# time it was received, and the key is "disputed" (both shown by ``history``). The Ledger cannot tell
# which one is real (that takes authenticated writers): a forger who sends first must not erase the
# real decision, nor the real one the forgery. Bounded by the Ledger's retention (by age, and at most
# ``COLLISIONS_MAX`` rows).
_V5: Final = (
    f"""CREATE TABLE collisions (
        book TEXT NOT NULL, strategy TEXT NOT NULL, run REAL NOT NULL, tick INTEGER NOT NULL,
        {_DECISION_FIELDS},
        received REAL NOT NULL
    )""",
    "CREATE INDEX collisions_by_key ON collisions (book, strategy, run, tick)",
)
COLLISIONS_MAX: Final = 100_000

# Version 6: a decision explains its price on its own (issue 21): the factor applied, and with
# guardrails the price the step was measured from and the book's floor and ceiling at that moment
# (the Dashboard draws them from here, not from a config it would have to load). NULL in rows kept
# before.
_V6: Final = tuple(f"ALTER TABLE {table} ADD COLUMN {column} TEXT" for table in ("decisions", "collisions")
                   for column in ("factor", "previous_price", "floor", "ceiling"))

# Version 7: the alerts the Ledger raises (actors/ledger/watch.py, written by alert_store.py): one row
# per alert raised, open (``cleared_at`` NULL) until cleared; at most one open per alert and subject
# (``book``, ``strategy``: both empty for the system, the book empty for a strategy). Read by the
# Dashboard (the open ones, a pair's open ones, the newest cleared) and by a restarted Ledger (the open
# ones). Cleared ones past the newest 10,000 are deleted (alert_store.HISTORY_KEPT).
_V7: Final = (
    """CREATE TABLE alerts (
        id INTEGER PRIMARY KEY, alert TEXT NOT NULL, book TEXT NOT NULL, strategy TEXT NOT NULL,
        since REAL NOT NULL, raised_at REAL NOT NULL, detail TEXT NOT NULL,
        cleared_at REAL, cleared_detail TEXT
    )""",
    # Unique: a raise sent twice opens one alert; by subject first: a book page finds its own.
    "CREATE UNIQUE INDEX alerts_open ON alerts (book, strategy, alert) WHERE cleared_at IS NULL",
    # The newest clear at once: the Dashboard looks every second for a change (business.alerts_mark).
    "CREATE INDEX alerts_by_cleared ON alerts (cleared_at)",
)

MIGRATIONS: Final = (_V1, _V2, _V3, _V4, _V5, _V6, _V7)
VERSION: Final = len(MIGRATIONS)


def _tables(conn: sqlite3.Connection) -> set[str]:
    return {name for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}


def read_version(conn: sqlite3.Connection) -> int:
    """The schema version of an existing ledger database (0: an empty database); a SQLite file that is
    not a ledger, or one newer than this code, raises :class:`SchemaError`."""
    tables = _tables(conn)
    if "schema_version" not in tables:
        if tables:
            listed = ", ".join(sorted(tables)[:5])
            raise SchemaError(f"a SQLite database, but not a ledger (it has tables {listed} and no schema_version)")
        return 0
    rows = conn.execute("SELECT version FROM schema_version").fetchall()
    if len(rows) != 1 or type(rows[0][0]) is not int:
        raise SchemaError(f"schema_version must hold one integer, holds {rows[:3]!r}")
    version: int = rows[0][0]
    if not 0 <= version <= VERSION:
        raise SchemaError(f"schema version {version} is not one this Ledger knows (0..{VERSION}): "
                          "written by a newer version?")
    return version


@contextlib.contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[None]:
    """One write transaction on a connection in autocommit mode: BEGIN IMMEDIATE takes the write lock
    at once (so a lock held elsewhere fails here, before any work), COMMIT at the end, ROLLBACK on any
    error (which then propagates: a ROLLBACK that fails too must not hide it)."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
        raise


def migrate(conn: sqlite3.Connection) -> tuple[int, int]:
    """Bring the database (a connection in autocommit mode) up to :data:`VERSION`; return (from, to)."""
    with transaction(conn):  # one writer decides: two Ledgers on one file never both create it
        start = read_version(conn)
        if start == 0 and "schema_version" not in _tables(conn):
            conn.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
            conn.execute("INSERT INTO schema_version VALUES (0)")
    for version in range(start, VERSION):
        with transaction(conn):
            if read_version(conn) != version:  # migrated by someone else meanwhile
                continue
            for statement in MIGRATIONS[version]:
                conn.execute(statement)
            conn.execute("UPDATE schema_version SET version = ?", (version + 1,))
    return start, VERSION
