"""The codec bench measures what it says (its numbers are in ``python -m bench.run --only protocol``)."""

from __future__ import annotations

from pathlib import Path

from bench import protocol as bench
from bench.common import Config
from transport import protocol


def test_every_case_has_positive_timings_and_a_bare_msgpack_baseline() -> None:
    outcome = bench.measure(Config(quick=True))
    assert len(outcome.rows) == len(bench.cases(protocol)) + 1 == 6  # and the Ledger's rows
    assert all(row.value > 0 and row.baseline is not None and row.baseline > 0 for row in outcome.rows)


def test_a_codec_compared_with_itself_gives_a_row_per_case() -> None:
    table = bench.compare(Path(protocol.__file__), rounds=1, seconds=0.001)
    rows = [line for line in table.splitlines() if line.startswith("| ") and "ratio" not in line]
    assert [row.split(" | ")[0] for row in rows] == [f"| {name}" for name in bench.cases(protocol)]
    assert all(row.endswith("x |") for row in rows)
