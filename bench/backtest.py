"""Backtest speed: decisions per second of ``python -m actors.algorithm.backtest`` over a 10,000,000-row
file (1,000 books x 10,000 rows, made by data/generate.py; 1,000,000 rows in quick mode), for the
task's window-average rule alone and with guardrails (step limit, ending, floor, ceiling: each pair's
decisions then chain on its previous price), and side by side with the plain loop over the live
Decimal code (``--engine plain``) on the same first 1,000,000 rows (200,000 in quick mode), whose
results must be equal to the cent.

Each run is its own process; time is its CPU time (user + system, from wait4), so that other load on
the machine does not count; wall time is kept in the raw results. Peak memory is the process's
maximum RSS: streaming keeps it flat from the short file to the long one.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench.common import DATA_DIR, REPO, Config, Outcome, Row

TARGET = 1_000_000  # decisions per second, one core (issue 24)
CONFIGS = {
    "rule": '[[books]]\nfile = "books.txt"\n',
    "guardrails": '[[books]]\nfile = "books.txt"\n[guardrails]\nfloor = "5.00"\nceiling = "60.00"\n'
                  'max_step_pct = 5\nending = "0.99"\n',
}


def _file(books: int, rows: int) -> Path:
    path = DATA_DIR / f"backtest-{books}x{rows}.csv"
    if not path.exists():
        DATA_DIR.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(".part")
        subprocess.run([sys.executable, str(REPO / "data" / "generate.py"), "--books", str(books), "--rows", str(rows),
                        "--seed", "1", "-o", str(partial)], check=True, timeout=1800)
        partial.rename(path)
    return path


def _prefix(source: Path, rows: int) -> Path:
    path = source.with_name(f"{source.stem}-first{rows}.csv")
    if not path.exists():
        with open(source, "rb") as f, open(path, "wb") as out:
            for _ in range(rows + 1):
                out.write(f.readline())
    return path


def _configs(folder: Path, books: int) -> dict[str, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    width = max(3, len(str(books)))
    (folder / "books.txt").write_text("".join(f"B{i:0{width}d}\n" for i in range(1, books + 1)), encoding="utf-8")
    paths = {}
    for name, text in CONFIGS.items():
        paths[name] = folder / f"{name}.toml"
        paths[name].write_text(text, encoding="utf-8")
    return paths


def backtest(data: Path, config: Path, engine: str = "fast") -> dict[str, Any]:
    """One run in its own process: its json output, CPU seconds, wall seconds and peak RSS."""
    command = [sys.executable, "-m", "actors.algorithm.backtest", "--data-file", str(data), "--config", str(config),
               "--format", "json", "--no-html", "--engine", engine]
    started = time.monotonic()
    with open(DATA_DIR / "backtest-out.json", "w+b") as out:
        child = subprocess.Popen(command, cwd=REPO, stdout=out, stderr=subprocess.PIPE)
        _, status, usage = os.wait4(child.pid, 0)
        child.returncode = os.waitstatus_to_exitcode(status)
        wall = time.monotonic() - started
        err = child.stderr.read().decode() if child.stderr else ""
        if child.returncode:
            raise RuntimeError(f"backtest failed ({child.returncode}): {err[-2000:]}")
        out.seek(0)
        document: dict[str, Any] = json.loads(out.read())
    return {"cpu": usage.ru_utime + usage.ru_stime, "wall": wall, "peak_kib": usage.ru_maxrss,
            "decisions": document["decisions"], "document": document}


def measure(cfg: Config) -> Outcome:
    out = Outcome()
    books, rows = 1000, cfg.pick(1_000, 10_000)
    side_by_side_rows = cfg.pick(200_000, 1_000_000)
    long_file = _file(books, rows)
    short_file = _prefix(long_file, side_by_side_rows)
    configs = _configs(DATA_DIR / "backtest-configs", books)
    for name, config in configs.items():
        fast = backtest(long_file, config)
        rate = fast["decisions"] / fast["cpu"]
        out.rows.append(Row(f"{name}: decisions/s over {books * rows:,} rows (CPU time, one process)", rate,
                            "decisions/s", target=f">= {TARGET:,}", met=rate >= TARGET,
                            note=f"{fast['decisions']:,} decisions, {fast['cpu']:.1f} s CPU, "
                                 f"{fast['wall']:.1f} s wall"))
        short = backtest(short_file, config)
        plain = backtest(short_file, config, "plain")
        same = short["document"]["pairs"] == plain["document"]["pairs"]
        short_rate, plain_rate = short["decisions"] / short["cpu"], plain["decisions"] / plain["cpu"]
        out.rows.append(Row(f"{name}: fast engine vs the plain loop over the live Decimal code, same "
                            f"{side_by_side_rows:,} rows", short_rate, "decisions/s", baseline=plain_rate,
                            baseline_label="plain loop", target="equal results", met=same,
                            note="results equal to the cent" if same else "RESULTS DIFFER"))
        out.rows.append(Row(f"{name}: peak memory, {books * rows:,} rows vs {side_by_side_rows:,}",
                            fast["peak_kib"] / 1024, "MiB", baseline=short["peak_kib"] / 1024,
                            baseline_label=f"{side_by_side_rows:,} rows", target="flat (streaming)"))
        for run in (fast, short, plain):
            del run["document"]
        out.raw[name] = {"long": fast, "short": short, "plain": plain, "equal": same}
    return out
