"""Smoke test of the benchmark suite: the quick run of its cheapest measurements produces a table and
a JSON file with positive numbers. (The full suite, ``python -m bench.run``, takes ~10 minutes.)"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import REPO

CHEAP = "cold_read"  # ~6 s in quick mode (ticks alone takes ~17 s)


def _run(tmp_path: Path, only: str, timeout: float) -> tuple[str, dict[str, object]]:
    out = tmp_path / "results.json"
    done = subprocess.run([sys.executable, "-m", "bench.run", "--quick", "--only", only, "--output", str(out)],
                          cwd=REPO, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, done.stderr[-3000:]
    report: dict[str, object] = json.loads(out.read_text(encoding="utf-8"))
    return done.stdout, report


def _check(stdout: str, report: dict[str, object], names: list[str]) -> None:
    assert "| measure | value | baseline | ratio | target | met? |" in stdout
    measures = report["measures"]
    assert isinstance(measures, dict)
    for name in names:
        rows = measures[name]["rows"]
        assert rows, name
        assert any(f"[{name}]" in line for line in stdout.splitlines())
        for row in rows:
            value = row["value"]
            assert isinstance(value, int | float) and value == value, row  # a number, not NaN/null
        # every measurement has at least one strictly positive number (times, rates, sizes)
        assert any(row["value"] > 0 for row in rows), rows


@pytest.mark.alone
@pytest.mark.timeout(90)
def test_quick_cheapest_measurements(tmp_path: Path) -> None:
    stdout, report = _run(tmp_path, CHEAP, timeout=85)
    _check(stdout, report, CHEAP.split(","))


@pytest.mark.slow
@pytest.mark.timeout(420)
def test_quick_everything(tmp_path: Path) -> None:
    names = ["throughput", "latency", "ticks", "memory", "idle_cpu", "cold_read", "dashboard", "api_server", "ledger"]
    stdout, report = _run(tmp_path, ",".join(names), timeout=410)  # the ledger adds ~30 s
    _check(stdout, report, names)
