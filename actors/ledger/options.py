"""The Ledger's command-line options (a light module: the launcher imports it)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from actors import paths
from actors.ledger.records import SYNCHRONOUS_MODES, Retention
from actors.options import option
from transport import endpoints

DEFAULT_DB: Final = str(paths.LEDGER_DB)  # absolute: the same history from any working directory
DB_HELP: Final = ("SQLite database file (default: var/ledger.sqlite3 in the project's folder, whatever the working "
                  "directory); created, with its directory, on first start")
MAX_AGE_DAYS: Final = 36_500.0
MIN_DB_BYTES: Final = 128 * 1024  # room for the schema (20-odd tables and indexes) and a first write


@dataclass(frozen=True, slots=True)
class LedgerOptions:
    ledger_endpoint: str = option(endpoints.DEFAULT_LEDGER, "ROUTER endpoint to bind (the Algorithm workers "
                                  "connect to it)", metavar="ENDPOINT", deprecated=("--ledger",))
    db: str = option(DEFAULT_DB, DB_HELP, metavar="PATH")
    retain_days: float = option(30.0, "delete decisions older than D days, a few thousand rows at a time "
                                "(0: keep every age)", metavar="D")
    retain_rows: int = option(10_000_000, "keep at most N decisions, deleting the oldest (0: no limit)",
                              metavar="N")
    synchronous: str = option("full", "full: fsync every commit before acknowledging it (survives a power "
                              "loss); normal: survives a crash of the process, not of the machine",
                              choices=SYNCHRONOUS_MODES, parse=str.lower)
    max_db_bytes: int = option(0, "refuse to grow the database file past this size: inserts then fail as on "
                               "a full disk (0: no cap; --retain-* keep it smaller)", metavar="BYTES")
    db_retry: float = option(1.0, "seconds between attempts to open or write a database that failed",
                             metavar="S")
    quick_check_every: float = option(60.0, "seconds between PRAGMA quick_check runs over the whole database, on "
                                      "a thread of their own, to find a damaged file (0: never; a long check "
                                      "spaces them further, to at most 10% of the time)", metavar="S")
    config: str | None = option(None, "the repricer's TOML config, read for its [alerts] table (the thresholds "
                                "of the alerts the Ledger raises), again on SIGHUP", metavar="FILE")

    def __post_init__(self) -> None:
        if not 0 <= self.retain_days <= MAX_AGE_DAYS:
            raise ValueError(f"--retain-days must be within 0..{MAX_AGE_DAYS:.0f}")
        if not 0 <= self.retain_rows <= 10**12:
            raise ValueError("--retain-rows must be within 0..10^12")
        if self.synchronous not in SYNCHRONOUS_MODES:
            raise ValueError(f"--synchronous must be one of {', '.join(SYNCHRONOUS_MODES)}")
        if self.max_db_bytes and not MIN_DB_BYTES <= self.max_db_bytes <= 2**50:
            raise ValueError(f"--max-db-bytes must be 0 or at least {MIN_DB_BYTES}")
        if not 0.01 <= self.db_retry <= 600:
            raise ValueError("--db-retry must be within 0.01..600 seconds")
        if self.quick_check_every != 0 and not 0.1 <= self.quick_check_every <= 86_400:
            raise ValueError("--quick-check-every must be 0 or within 0.1..86400 seconds")
        if not self.db:
            raise ValueError("--db must name a file")

    @property
    def retention(self) -> Retention:
        return Retention(self.retain_days, self.retain_rows)
