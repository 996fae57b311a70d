"""The depth benchmark's two layouts keep every decision once (bench/ledger_depth.py): its numbers
compare like with like only if both layouts did the same work."""

from __future__ import annotations

from pathlib import Path

from bench import ledger_depth


def test_both_layouts_keep_every_decision_once_and_time_every_tick(tmp_path: Path) -> None:
    direct, staged = ledger_depth.run(tmp_path, books=120, ticks=7, merge_every=3, merge_books=50)
    assert len(direct.cpu_us) == len(staged.cpu_us) == 7 and min(direct.cpu_us + staged.cpu_us) > 0
    conn = ledger_depth.open_database(tmp_path / "staged.sqlite3")
    try:
        # Ticks 0-5 merged (two merges), tick 6 still staged; nothing twice, nothing lost.
        assert conn.execute("SELECT count(*), count(DISTINCT book || tick) FROM decisions").fetchone() == (720, 720)
        assert conn.execute("SELECT min(tick), max(tick), count(*) FROM staging").fetchone() == (6, 6, 120)
        # A decision sent again after its merge is not staged again (INSERT OR IGNORE across both tables).
        conn.executemany(ledger_depth._STAGE, ledger_depth.tick_rows([f"B{i:07d}" for i in range(120)], 0))
        assert conn.execute("SELECT count(*) FROM staging").fetchone() == (120,)
    finally:
        conn.close()
