"""End to end: the real ``launcher.py`` with fast ticks; every printed decision is checked against an
independent computation from the CSV."""

from __future__ import annotations

import subprocess
import sys
from collections import Counter
from pathlib import Path

from tests.harness import REPO, LauncherRun, alive, check_decision, read_points

CSV = """\ufefftimestamp,book_id,price\r
2026-01-01T00:00:00Z,A,10.00\r
2026-01-01T00:00:00Z,B,20.00\r
2026-01-01T00:00:01Z,A,10.50\r
2026-01-01T00:00:01Z,B,not-a-price\r
\r
2026-01-01T00:00:02Z,A,11.25\r
2026-01-01T00:00:02Z,B,21.00\r
"""


def write_csv(path: Path, rows_per_book: int = 40) -> Path:
    lines = [CSV.rstrip("\r\n")]
    for i in range(rows_per_book):
        lines.append(f"2026-01-02T00:00:{i:02}Z,A,{12 + (i * 37 % 11) / 4:.2f}")
        lines.append(f"2026-01-02T00:00:{i:02}Z,B,{22 + (i * 13 % 7) / 4:.2f}")
        lines.append(f"2026-01-02T00:00:{i:02}Z,C,{5 + (i * 7 % 5) / 4:.2f}")
        if i % 10 == 3:
            lines.append(f"2026-01-02T00:00:{i:02}Z,C,-1.00")
    path.write_text("\r\n".join(lines) + "\r\n", encoding="utf-8")
    return path


def test_help_documents_every_option() -> None:
    result = subprocess.run([sys.executable, "launcher.py", "--help"], cwd=REPO, capture_output=True, text=True,
                            timeout=30)
    assert result.returncode == 0
    for option in ("--data", "--books", "--tick", "--delay", "--mode", "--duration", "--json", "--workers"):
        assert option in result.stdout


def test_every_decision_matches_the_csv(tmp_path: Path, ipc_dir: Path) -> None:
    csv_path = write_csv(tmp_path / "prices.csv")
    run = LauncherRun(ipc_dir, ["--data", str(csv_path), "--books", "A,B,C", "--tick", "0.2", "--delay", "0.05",
                                "--duration", "4"])
    try:
        code = run.process.wait(40)
        run.stop()
    finally:
        run.kill_everything()
    assert code == 0, "\n".join(run.log[-20:])
    points = read_points(csv_path)
    assert len(run.decisions) >= 3 * 5  # several ticks for every book
    for decision in run.decisions:
        check_decision(decision, points)
    per_pair = Counter((d["book"], d["strategy"], d["tick"]) for d in run.decisions)
    assert max(per_pair.values()) == 1  # no (book, strategy, tick) decided twice
    assert {d["book"] for d in run.decisions} == {"A", "B", "C"}
    assert not [pid for pid in run.all_pids() if alive(pid)]  # a clean stop leaves no process behind
