"""Fixtures of the Dashboard's tests: a Ledger database written with the stdlib in the Ledger's schema."""

from __future__ import annotations

import time
from decimal import Decimal
from pathlib import Path

import pytest

from bench import fake_ledger


@pytest.fixture
def ledger_db(tmp_path: Path) -> Path:
    """Three books of one run: B1 and B2 priced by two strategies, B3 by one with a floor that holds; 12
    ticks each."""
    path = tmp_path / "ledger.sqlite3"
    conn = fake_ledger.create(path)
    start = time.time() - 12 * 5.0
    try:
        fake_ledger.write(conn, fake_ledger.synthetic(["B1", "B2"], ["default", "fast"], 12, seed=3, start=start))
        fake_ledger.write(conn, fake_ledger.synthetic(["B3"], ["default"], 12, seed=4, floor=Decimal("30"),
                                                      start=start))
    finally:
        conn.close()
    return path
