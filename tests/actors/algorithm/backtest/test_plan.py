"""Reading a live run's request ids (``--ids``): the Ledger's history export, csv or json lines, one
export per book concatenated; several runs only with a choice; anything else refused with its line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from actors.algorithm.backtest.plan import IdsError, read_ids

HEADER = "ts,tick,book,strategy,prices,avg_comp_price,request_id,sold,price,rule_price,guardrail,run\n"


def row(tick: int, book: str, request_id: int, run: str = "1700000000.5") -> str:
    return f'2026-12-04T10:00:00.000Z,{tick},{book},default,"[""1.00""]",1.00,{request_id},true,1.10,,,{run}\n'


def test_concatenated_csv_exports_and_json_lines(tmp_path: Path) -> None:
    path = tmp_path / "ids.csv"
    path.write_text(HEADER + row(3, "A", 11) + row(4, "A", 12) + HEADER + row(4, "B", 13) + "\n", encoding="utf-8")
    plan = read_ids(str(path))
    assert plan.rows == 3 and plan.run == "1700000000.5"
    assert plan.pairs[("A", "default")].ticks.tolist() == [3, 4]
    assert plan.pairs[("A", "default")].ids.tolist() == [11, 12]
    lines = tmp_path / "ids.jsonl"
    lines.write_text("\n".join(json.dumps({"tick": t, "book": "A", "strategy": "s", "request_id": t * 10, "run": 5})
                               for t in (7, 2)) + "\n", encoding="utf-8")
    assert read_ids(str(lines)).pairs[("A", "s")].ticks.tolist() == [2, 7]  # in tick order


def test_several_runs_need_a_choice(tmp_path: Path) -> None:
    path = tmp_path / "ids.csv"
    path.write_text(HEADER + row(3, "A", 11, "1") + row(3, "A", 99, "2"), encoding="utf-8")
    with pytest.raises(IdsError, match=r"several runs .*--ids-run"):
        read_ids(str(path))
    assert read_ids(str(path), "2").pairs[("A", "default")].ids.tolist() == [99]
    with pytest.raises(IdsError, match="no decision of run 3"):
        read_ids(str(path), "3")


@pytest.mark.parametrize(("text", "message"), [
    ("book,strategy,tick\nA,s,1\n", "line 2: no request_id"),
    ("book,strategy,tick,request_id\nA,s,-1,5\n", "line 2: not a decision"),
    ("book,strategy,tick,request_id\nA,s,1,5\nA,s,1,6\n", "line 3: book A strategy s tick 1 has two request ids"),
    ("book,strategy,tick,request_id\nA,s,1\n", "line 2: 3 fields, the header names 4"),
    ('{"book": "A"\n', "line 1: not JSON"),
])
def test_what_is_not_a_run_is_refused_with_its_line(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "ids.csv"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(IdsError, match=message):
        read_ids(str(path))
